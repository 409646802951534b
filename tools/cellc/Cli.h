// The small shared machinery of the subcommands: argument parsing with -D overrides, and the
// command table.
#pragma once

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "sema/Program.h"

namespace cellc::cli {

inline constexpr int kUsageError = 2;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Command;

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // --name value (or "" for flags); the last one wins
  std::map<std::string, std::vector<std::string>> all;  // every value of a repeated option
  Overrides overrides;                         // -D name=value
  bool help = false;

  static Args parse(int argc, char** argv, const Command& cmd);
  bool flag(const std::string& name) const { return options.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  std::vector<std::string> multi(const std::string& name) const;
};

struct Option {
  std::string name;  // without the dashes
  bool takesValue;
};

struct Command {
  const char* name;
  const char* summary;
  const char* help;
  std::vector<Option> options;
  int minPositional, maxPositional;  // maxPositional < 0: any number
  std::function<int(const Args&)> run;
  // Whether -D name=value means something here: a .cell file's dims and consts. An experiment's
  // are keys (--set cell.dims.NAME=...), so run and sweep refuse -D rather than ignore it.
  bool cellOverrides = true;
};

const std::vector<Command>& commands();

// Loads and checks a cell, printing diagnostics to stderr. nullopt when it has errors.
std::optional<Program> loadOrReport(const std::string& path, const Overrides& overrides);

}  // namespace cellc::cli
