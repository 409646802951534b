#include "Cli.h"

#include <charconv>
#include <cmath>
#include <iostream>

namespace cellc::cli {

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = options.find(name);
  return it == options.end() ? fallback : it->second;
}

std::vector<std::string> Args::multi(const std::string& name) const {
  auto it = all.find(name);
  return it == all.end() ? std::vector<std::string>{} : it->second;
}

static void parseOverride(const std::string& text, Overrides& out) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("-D expects name=value, got '" + text + "'");
  std::string name = text.substr(0, eq), value = text.substr(eq + 1);
  double v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(v))
    throw UsageError("-D " + name + ": '" + value + "' is not a finite number");
  out[name] = v;
}

Args Args::parse(int argc, char** argv, const Command& cmd) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      a.help = true;
      return a;
    }
    if (s.rfind("-D", 0) == 0 && !cmd.cellOverrides)
      throw UsageError("-D sets a dim or const of a .cell file; an experiment sets its cell's with "
                       "--set cell.dims.NAME=VALUE or --set cell.consts.NAME=VALUE");
    if (s == "-D") {
      if (i + 1 >= argc) throw UsageError("-D needs name=value");
      parseOverride(argv[++i], a.overrides);
    } else if (s.rfind("-D", 0) == 0) {
      parseOverride(s.substr(2), a.overrides);
    } else if (s.rfind("--", 0) == 0) {
      std::string name = s.substr(2), value;
      bool inlineValue = false;  // --name=value, possibly empty
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inlineValue = true;
      }
      const Option* opt = nullptr;
      for (const Option& o : cmd.options)
        if (o.name == name) opt = &o;
      if (!opt) throw UsageError("unknown option --" + name);
      if (!opt->takesValue && inlineValue) throw UsageError("--" + name + " takes no value");
      if (opt->takesValue && inlineValue && value.empty()) throw UsageError("--" + name + "= needs a value");
      if (opt->takesValue && !inlineValue) {
        if (i + 1 >= argc) throw UsageError("--" + name + " needs a value");
        value = argv[++i];
      }
      a.options[name] = value;
      a.all[name].push_back(value);
    } else if (s.size() > 1 && s[0] == '-') {
      throw UsageError("unknown option " + s);
    } else {
      a.positional.push_back(s);
    }
  }
  int n = static_cast<int>(a.positional.size());
  if (n < cmd.minPositional || (cmd.maxPositional >= 0 && n > cmd.maxPositional))
    throw UsageError(n < cmd.minPositional ? "missing argument" : "too many arguments");
  return a;
}

std::optional<Program> loadOrReport(const std::string& path, const Overrides& overrides) {
  std::string err;
  SourceFile file = SourceFile::load(path, &err);
  DiagnosticSink diags;
  if (!err.empty()) {
    diags.report(Code::E103, {0, 0}, err);
    diags.render(std::cerr, file);
    return std::nullopt;
  }
  std::optional<Program> prog = loadCell(file, overrides, diags);
  diags.render(std::cerr, file);
  return prog;
}

}  // namespace cellc::cli
