#include "diag/Diagnostics.h"
#include "diag/Text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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
  auto fail = [&](const std::string& why) {
    *error = "cannot read " + quotedPath(path) + ": " + why;
    return SourceFile(path, "");
  };
  // O_NONBLOCK so that opening a FIFO does not wait for a writer; the type check comes from the
  // open descriptor (fstat), so the file cannot be swapped between the check and the read.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail("it is a directory, not a .cell file");
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "a special file";
    return fail(std::string("it is ") + kind + ", not a regular file");
  }
  // Read to the end, or to one byte past the limit (the file may grow while we read): the parser
  // reports a text past kMaxSourceBytes (E102), so that one limit holds for files and strings.
  std::string text;
  char buf[1 << 16];
  while (text.size() <= kMaxSourceBytes) {
    const size_t want = std::min(sizeof buf, kMaxSourceBytes + 1 - text.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return SourceFile(path, std::move(text));
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
