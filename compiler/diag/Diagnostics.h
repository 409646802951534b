// Diagnostics: coded, located messages rendered as `file:line:col: error[CODE]: message`, then the
// source line and a caret under the column (as Brian2 and rustc do).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace cellc {

enum class Code {
#define X(code, sev, summary) code,
#include "diag/Codes.def"
#undef X
};

enum class Severity { Error, Warning };

struct CodeInfo {
  Code code;
  const char* name;  // "E203"
  Severity severity;
  const char* summary;
};

const CodeInfo& codeInfo(Code code);
const std::vector<CodeInfo>& allCodes();

// 1-based line and column; line 0 means "the file as a whole".
struct SourceLoc {
  int line = 0;
  int col = 0;
  bool operator==(const SourceLoc&) const = default;
};

struct Diagnostic {
  Code code;
  SourceLoc loc;
  std::string message;
  Severity severity() const { return codeInfo(code).severity; }
};

// The largest .cell source, in bytes (docs/language.md): real cells are a few KiB. The one limit:
// load() reads no more than one byte past it, and the parser reports a longer text as E102 at the
// line and column where the limit falls, whether it came from a file or from a string.
inline constexpr size_t kMaxSourceBytes = size_t{1} << 20;

// A source file kept in memory so diagnostics can quote its lines.
class SourceFile {
 public:
  SourceFile(std::string path, std::string text);
  // Reads a regular file, at most its first kMaxSourceBytes + 1 bytes (the parser then reports
  // E102). On failure sets *error to a message naming the path as given and resolved (absolute) and
  // the reason (the OS error, a directory, a FIFO or device), and returns an empty file.
  static SourceFile load(const std::string& path, std::string* error);
  const std::string& path() const { return path_; }
  const std::string& text() const { return text_; }
  std::string_view line(int lineNo) const;  // without the newline; empty when out of range

 private:
  std::string path_;
  std::string text_;
  std::vector<size_t> lineStarts_;
};

class DiagnosticSink {
 public:
  void report(Code code, SourceLoc loc, std::string message);
  const std::vector<Diagnostic>& all() const { return diags_; }
  bool hasErrors() const;
  size_t errorCount() const;
  // Diagnostics sorted by position, each with its source line and caret.
  void render(std::ostream& os, const SourceFile& file) const;

 private:
  std::vector<Diagnostic> diags_;
};

std::string renderDiagnostic(const Diagnostic& d, const SourceFile& file);

}  // namespace cellc
