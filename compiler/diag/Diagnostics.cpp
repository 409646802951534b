#include "diag/Diagnostics.h"

#include <algorithm>
#include <fstream>
#include <ostream>
#include <sstream>

namespace cellc {

const std::vector<CodeInfo>& allCodes() {
  static const std::vector<CodeInfo> codes = {
#define X(code, sev, summary) {Code::code, #code, Severity::sev, summary},
#include "diag/Codes.def"
#undef X
  };
  return codes;
}

const CodeInfo& codeInfo(Code code) { return allCodes()[static_cast<size_t>(code)]; }

SourceFile::SourceFile(std::string path, std::string text)
    : path_(std::move(path)), text_(std::move(text)) {
  lineStarts_.push_back(0);
  for (size_t i = 0; i < text_.size(); ++i)
    if (text_[i] == '\n') lineStarts_.push_back(i + 1);
}

SourceFile SourceFile::load(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open '" + path + "'";
    return SourceFile(path, "");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return SourceFile(path, ss.str());
}

std::string_view SourceFile::line(int lineNo) const {
  if (lineNo < 1 || static_cast<size_t>(lineNo) > lineStarts_.size()) return {};
  size_t start = lineStarts_[lineNo - 1];
  size_t end = text_.find('\n', start);
  if (end == std::string::npos) end = text_.size();
  if (end > start && text_[end - 1] == '\r') --end;
  return std::string_view(text_).substr(start, end - start);
}

void DiagnosticSink::report(Code code, SourceLoc loc, std::string message) {
  diags_.push_back({code, loc, std::move(message)});
}

bool DiagnosticSink::hasErrors() const { return errorCount() > 0; }

size_t DiagnosticSink::errorCount() const {
  return std::count_if(diags_.begin(), diags_.end(),
                       [](const Diagnostic& d) { return d.severity() == Severity::Error; });
}

// Control bytes and non-ASCII in a quoted line are shown as '?' so garbage cannot corrupt a terminal.
static std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += (c == '\t' || (c >= 0x20 && c < 0x7f)) ? char(c) : '?';
  return out;
}

std::string renderDiagnostic(const Diagnostic& d, const SourceFile& file) {
  std::ostringstream os;
  const CodeInfo& info = codeInfo(d.code);
  os << file.path();
  if (d.loc.line > 0) os << ":" << d.loc.line << ":" << d.loc.col;
  os << ": " << (info.severity == Severity::Error ? "error" : "warning") << "[" << info.name
     << "]: " << d.message << "\n";
  if (d.loc.line > 0) {
    std::string text = printable(file.line(d.loc.line));
    if (text.size() > 200) text = text.substr(0, 200) + " ...";
    os << "  " << d.loc.line << " | " << text << "\n";
    std::string pad(std::to_string(d.loc.line).size(), ' ');
    os << "  " << pad << " | ";
    for (int i = 1; i < d.loc.col && i <= 200; ++i)
      os << (static_cast<size_t>(i - 1) < text.size() && text[i - 1] == '\t' ? '\t' : ' ');
    os << "^\n";
  }
  return os.str();
}

void DiagnosticSink::render(std::ostream& os, const SourceFile& file) const {
  std::vector<Diagnostic> sorted = diags_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.loc.line != b.loc.line ? a.loc.line < b.loc.line : a.loc.col < b.loc.col;
  });
  for (const Diagnostic& d : sorted) os << renderDiagnostic(d, file);
}

}  // namespace cellc
