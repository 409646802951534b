// Robustness: the parser and checker never crash or hang, whatever the input. Every input yields a
// program or at least one error (never neither), every diagnostic points inside the file (line 0 only
// for the whole-file codes), and an accepted program prints back to a program that checks clean.
//
// A watchdog aborts the run, naming the input, when one input takes longer than kHangSeconds.
#include <catch2/catch.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "diag/Diagnostics.h"
#include "sema/Program.h"
#include "syntax/Parse.h"

namespace fs = std::filesystem;
using namespace cellc;

namespace {

const fs::path kSourceDir = CELLC_SOURCE_DIR;
constexpr int kHangSeconds = 20;

std::string readBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct NamedText {
  std::string name;
  std::string text;
};

std::vector<NamedText> readCells(std::initializer_list<const char*> dirs) {
  std::vector<NamedText> out;
  for (const char* dir : dirs) {
    std::vector<fs::path> paths;
    for (const auto& entry : fs::directory_iterator(kSourceDir / dir))
      if (entry.path().extension() == ".cell") paths.push_back(entry.path());
    std::sort(paths.begin(), paths.end());
    for (const fs::path& p : paths) out.push_back({p.filename().string(), readBytes(p)});
  }
  return out;
}

// The input as a C string literal, cut after `limit` bytes: for failure messages.
std::string escaped(const std::string& text, size_t limit = 600) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') out += "\\n";
    else if (c == '"' || c == '\\') out += std::string("\\") + char(c);
    else if (c >= 0x20 && c < 0x7f) out += char(c);
    else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  out += "\"";
  if (text.size() > limit) out += " ... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

// Aborts the process when an input runs longer than kHangSeconds, naming it. The watchdog thread
// polls; arming and disarming only touch atomics and an uncontended mutex, so the watchdog costs
// nothing measurable even when the machine is busy.
class Watchdog {
 public:
  Watchdog() : thread_([this] { loop(); }) {}
  ~Watchdog() {
    quit_ = true;
    thread_.join();
  }
  void arm(const std::string& label, const std::string& text) {
    std::lock_guard<std::mutex> lock(m_);
    label_ = &label;
    text_ = &text;
    startNs_ = nowNs();
    ++generation_;
    armed_ = true;
  }
  void disarm() {
    std::lock_guard<std::mutex> lock(m_);
    armed_ = false;
  }

 private:
  static int64_t nowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void loop() {
    while (!quit_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (!armed_ || nowNs() - startNs_ < int64_t{kHangSeconds} * 1000000000) continue;
      std::lock_guard<std::mutex> lock(m_);  // the input cannot change while we hold this
      if (!armed_ || nowNs() - startNs_ < int64_t{kHangSeconds} * 1000000000) continue;
      std::cerr << "\nHANG: " << *label_ << " ran longer than " << kHangSeconds
                << " s; input: " << escaped(*text_, 300) << std::endl;
      std::abort();
    }
  }

  std::mutex m_;
  std::atomic<bool> quit_{false}, armed_{false};
  std::atomic<int64_t> startNs_{0};
  std::atomic<unsigned long> generation_{0};
  const std::string* label_ = nullptr;
  const std::string* text_ = nullptr;
  std::thread thread_;
};

Watchdog& watchdog() {
  static Watchdog w;
  return w;
}

// Broken promises, grouped by kind: a count and the first examples of each.
struct Stats {
  size_t inputs = 0, accepted = 0, rejected = 0;
  struct Kind {
    size_t count = 0;
    std::vector<std::string> examples;
  };
  std::map<std::string, Kind> failures;
  void fail(const std::string& kind, const std::string& label, const std::string& text,
            const std::string& detail) {
    Kind& k = failures[kind];
    if (++k.count <= 2) k.examples.push_back(label + ": " + detail + "\n  input: " + escaped(text));
  }
};

bool wholeFileCode(Code c) { return c == Code::E102 || c == Code::E103 || c == Code::E401; }

// Runs the front end on one input and records every broken promise in `stats`.
void probe(const std::string& label, const std::string& text, Stats& stats, bool roundTrip = true) {
  watchdog().arm(label, text);
  ++stats.inputs;
  SourceFile file(label, text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);

  if (prog) ++stats.accepted;
  else ++stats.rejected;
  if (!prog && !diags.hasErrors()) stats.fail("rejected without an error", label, text, "");
  if (prog && diags.hasErrors()) stats.fail("accepted with an error", label, text, "");

  // Line lengths in bytes, without the '\n'.
  std::vector<size_t> lineLen;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == '\n') {
      lineLen.push_back(i - start);
      start = i + 1;
    }
  for (const Diagnostic& d : diags.all()) {
    const std::string where = std::string(codeInfo(d.code).name) + " at " +
                              std::to_string(d.loc.line) + ":" + std::to_string(d.loc.col) +
                              " (" + d.message.substr(0, 120) + ")";
    if (d.loc.line == 0) {
      if (!wholeFileCode(d.code) || d.loc.col != 0)
        stats.fail("no location", label, text, where);
    } else if (d.loc.line < 1 || static_cast<size_t>(d.loc.line) > lineLen.size()) {
      stats.fail("line outside the file", label, text,
                 where + ", the file has " + std::to_string(lineLen.size()) + " lines");
    } else if (d.loc.col < 1 ||
               static_cast<size_t>(d.loc.col) > lineLen[d.loc.line - 1] + 1) {
      stats.fail("column outside its line", label, text,
                 where + ", the line has " + std::to_string(lineLen[d.loc.line - 1]) + " bytes");
    }
    std::string rendered = renderDiagnostic(d, file);
    if (rendered.rfind(label, 0) != 0) stats.fail("rendering lost the path", label, text, where);
    for (unsigned char c : rendered.substr(0, rendered.find('\n')))
      if (c < 0x20 && c != '\t') {
        stats.fail("control byte in a message", label, text, where);
        break;
      }
  }

  if (prog && roundTrip) {
    // The printed program checks with no error and the same warnings, and prints identically.
    const std::string printed = printProgram(*prog);
    SourceFile again(label + " (printed)", printed);
    DiagnosticSink diags2;
    std::optional<Program> prog2 = loadCell(again, {}, diags2);
    auto codesOf = [](const DiagnosticSink& ds) {
      std::vector<std::string> out;
      for (const Diagnostic& d : ds.all()) out.push_back(codeInfo(d.code).name);
      std::sort(out.begin(), out.end());
      return out;
    };
    if (!prog2 || codesOf(diags2) != codesOf(diags)) {
      std::ostringstream os;
      diags2.render(os, again);
      stats.fail("the printed program does not check like the original", label, text,
                 "\n" + printed + os.str().substr(0, 2000));
    } else if (printProgram(*prog2) != printed) {
      stats.fail("printing is not a fixed point", label, text, "\n" + printed);
    }
  }
  watchdog().disarm();
}

void report(const Stats& stats) {
  std::string all;
  for (const auto& [kind, k] : stats.failures) {
    all += "* " + kind + ": " + std::to_string(k.count) + " input(s), e.g.\n";
    for (const std::string& e : k.examples) all += "  " + e + "\n";
  }
  INFO(stats.inputs << " inputs, " << stats.accepted << " accepted, " << stats.rejected
                    << " rejected\n" << all);
  CHECK(stats.failures.empty());
}

const char* const kAlphabet[] = {
    "" /* stands for a NUL byte */, "\xff", "(", ")", "[", "]", "{", "}", "\"", "'", "\n", "\r",
    ";", "=", "~", "|", "@", "^", "-", "+", "*", "/", "#", ":", ",", ".", "$", "\t", " ", "0",
    "1e", "cell", "dim", "state", "param", "const", "output", "input", "noise", "h'", "x", "n",
};

}  // namespace

TEST_CASE("every prefix of every cell", "[robustness]") {
  Stats stats;
  for (const NamedText& cell : readCells({"cells"})) {
    for (size_t len = 0; len <= cell.text.size(); ++len)
      probe(cell.name + "[0:" + std::to_string(len) + "]", cell.text.substr(0, len), stats,
            /*roundTrip=*/len == cell.text.size());
  }
  CHECK(stats.accepted >= 8);  // at least the complete cells
  report(stats);
}

TEST_CASE("random mutations of the cells", "[robustness]") {
  const std::vector<NamedText> cells = readCells({"cells", "tests/fixtures/valid"});
  std::vector<std::vector<std::string>> lines(cells.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    std::istringstream in(cells[i].text);
    std::string l;
    while (std::getline(in, l)) lines[i].push_back(l + "\n");
  }
  std::mt19937 rng(12345);
  auto pick = [&](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); };
  const size_t alphabetSize = sizeof kAlphabet / sizeof kAlphabet[0];
  auto token = [&]() -> std::string {
    size_t k = pick(alphabetSize + 4);
    if (k >= alphabetSize) return std::string(1, static_cast<char>(rng() & 0xff));  // any byte
    return k == 0 ? std::string(1, '\0') : std::string(kAlphabet[k]);
  };

  Stats stats;
  for (int m = 0; m < 2000; ++m) {
    const size_t base = pick(cells.size());
    std::string text = cells[base].text;
    const int edits = 1 + static_cast<int>(pick(6));
    std::string what;
    for (int e = 0; e < edits; ++e) {
      const size_t pos = pick(text.size() + 1);
      switch (pick(7)) {
        case 0: {  // delete a run of bytes
          size_t n = 1 + pick(std::min<size_t>(40, text.size() - std::min(pos, text.size()) + 1));
          text.erase(std::min(pos, text.size()), n);
          what += " delete";
          break;
        }
        case 1:  // insert a token or byte
          text.insert(pos, token());
          what += " insert";
          break;
        case 2:  // replace a byte
          if (!text.empty()) text[std::min(pos, text.size() - 1)] = token()[0];
          what += " replace";
          break;
        case 3: {  // splice a line of another cell in at a line start
          const auto& other = lines[pick(lines.size())];
          if (other.empty()) break;
          size_t at = text.rfind('\n', pos == 0 ? 0 : pos - 1);
          at = at == std::string::npos ? 0 : at + 1;
          text.insert(at, other[pick(other.size())]);
          what += " splice";
          break;
        }
        case 4: {  // replace a line by a line of another cell
          const auto& other = lines[pick(lines.size())];
          if (other.empty() || text.empty()) break;
          size_t ls = text.rfind('\n', pos == 0 ? 0 : pos - 1);
          ls = ls == std::string::npos ? 0 : ls + 1;
          size_t le = text.find('\n', ls);
          le = le == std::string::npos ? text.size() : le + 1;
          text.replace(ls, le - ls, other[pick(other.size())]);
          what += " swapline";
          break;
        }
        case 5: {  // duplicate a run of bytes
          size_t n = 1 + pick(60);
          std::string chunk = text.substr(std::min(pos, text.size()), n);
          text.insert(std::min(pos + n, text.size()), chunk);
          what += " dup";
          break;
        }
        default: {  // flip a bracket or quote at a random place
          static const char brackets[] = "()[]{}'\"";
          text.insert(pos, 1, brackets[pick(8)]);
          what += " bracket";
          break;
        }
      }
    }
    probe("mutation " + std::to_string(m) + " of " + cells[base].name + " (" + what.substr(1) + ")",
          text, stats);
  }
  report(stats);
}

TEST_CASE("random bytes and random token soup", "[robustness]") {
  std::mt19937 rng(777);
  Stats stats;
  for (int i = 0; i < 500; ++i) {
    std::string text(rng() % 4097, '\0');
    for (char& c : text) c = static_cast<char>(rng() & 0xff);
    probe("random bytes " + std::to_string(i), text, stats);
  }
  // Random sequences of the language's own tokens reach deeper into the parser than random bytes.
  const size_t alphabetSize = sizeof kAlphabet / sizeof kAlphabet[0];
  for (int i = 0; i < 500; ++i) {
    std::string text = (rng() % 2) ? "cell t {\n" : "";
    size_t n = rng() % 400;
    for (size_t k = 0; k < n; ++k) {
      size_t t = rng() % alphabetSize;
      text += t == 0 ? std::string(1, '\0') : std::string(kAlphabet[t]);
      if (rng() % 3 == 0) text += ' ';
    }
    if (rng() % 2) text += "\n}\n";
    probe("token soup " + std::to_string(i), text, stats);
  }
  report(stats);
}

namespace {

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// `expr` as the value of an intermediate in an otherwise valid cell that declares a, x and W.
std::string inCell(const std::string& expr) {
  return "cell t {\n  dim n = 2\n  input x[n]\n  param a ~ fill(0.5)\n  param W[n, n] ~ glorot()\n"
         "  state h[n] = 0\n  z = " +
         expr + "\n  h' = h + x\n  output y = h' + z\n}\n";
}

}  // namespace

TEST_CASE("pathological inputs", "[robustness]") {
  struct Case {
    std::string name, text;
  };
  std::vector<Case> cases = {
      {"1000 nested parens", repeat("(", 1000) + "x" + repeat(")", 1000)},
      {"1000 nested parens in a cell", inCell(repeat("(", 1000) + "x" + repeat(")", 1000))},
      {"1000 unclosed brackets in a cell", inCell(repeat("[", 1000))},
      {"64 nested parens in a cell (the limit)", inCell(repeat("(", 64) + "a" + repeat(")", 64))},
      {"'-' x1999 then x", repeat("-", 1999) + "x"},
      {"'-' x1999 then x in a cell", inCell(repeat("-", 1999) + "x")},
      {"'-' x1990 then a in a cell (under the token limit)", inCell(repeat("-", 1990) + "a")},
      {"'a^' x900 then a", repeat("a^", 900) + "a"},
      {"'a^' x900 then a in a cell", inCell(repeat("a^", 900) + "a")},
      {"'a^-' x600 then a in a cell", inCell(repeat("a^-", 600) + "a")},
      {"'a+' x995 then a in a cell", inCell(repeat("a+", 995) + "a")},
      {"'W @ ' x990 then x in a cell", inCell(repeat("W @ ", 990) + "x")},
      {"'[0]' x600 in a cell", inCell("x" + repeat("[0]", 600))},
      {"a 100k-character line of a+", repeat("a+", 50000)},
      {"a 100k-character line of a+ in a cell", inCell(repeat("a+", 50000) + "a")},
      {"3 MiB of 'x = 1'", repeat("x = 1\n", (3 << 20) / 6)},
      {"a file larger than the limit", repeat("# padding padding padding padding\n", (5 << 20) / 34)},
      {"a file of only a newline", "\n"},
      {"an empty file", ""},
      {"a file of only a comment", "# just a comment\n"},
      {"a comment without a newline", "# just a comment"},
      {"a lone 'cell'", "cell"},
      {"'cell t'", "cell t"},
      {"'cell t {'", "cell t {"},
      {"'cell t {}'", "cell t {}"},
      {"only NUL bytes", std::string(1000, '\0')},
      {"only 0xff bytes", std::string(1000, '\xff')},
      {"only newlines", std::string(100000, '\n')},
      {"only carriage returns", std::string(1000, '\r')},
      {"CRLF cell", "cell t {\r\n  dim n = 2\r\n  state h[n] = 0\r\n  h' = h\r\n  output y = h'\r\n}\r\n"},
      {"10000 statements separated by ';'", "cell t {\n  dim n = 2; state h[n] = 0; h' = h; output y = h'" +
                                               repeat("; ", 10000) + "\n}\n"},
      {"10000 intermediates", [] {
         std::string s = "cell t {\n  dim n = 2\n  state h[n] = 0\n  v0 = h\n";
         for (int i = 1; i < 10000; ++i)
           s += "  v" + std::to_string(i) + " = v" + std::to_string(i - 1) + " + 1\n";
         return s + "  h' = v9999\n  output y = h'\n}\n";
       }()},
      {"a 100k-character name", "cell t {\n  dim " + std::string(100000, 'n') + " = 2\n}\n"},
      {"a 100k-digit number", inCell(std::string(100000, '9'))},
      {"a huge dim", "cell t {\n  dim n = 1e12\n  state h[n, n] = 0\n  h' = h\n  output y = h'\n}\n"},
      {"a dim product past 2^31", "cell t {\n  dim k = 65536\n  dim n = k * k * k * k\n  state h[n] = 0\n"
                                  "  h' = h\n  output y = h'\n}\n"},
  };
  Stats stats;
  for (const Case& c : cases) {
    auto t0 = std::chrono::steady_clock::now();
    probe(c.name, c.text, stats);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(c.name << " took " << secs << " s");
    CHECK(secs < 10);
  }
  report(stats);

  // Specific outcomes.
  auto codes = [](const std::string& text) {
    SourceFile file("t.cell", text);
    DiagnosticSink diags;
    std::optional<Program> prog = loadCell(file, {}, diags);
    std::vector<std::string> out;
    for (const Diagnostic& d : diags.all()) out.push_back(codeInfo(d.code).name);
    return std::make_pair(prog.has_value(), out);
  };
  auto [okDeep, deep] = codes(inCell(repeat("(", 1000) + "x" + repeat(")", 1000)));
  CHECK_FALSE(okDeep);
  CHECK(deep == std::vector<std::string>{"E102"});
  auto [okBig, big] = codes(repeat("# padding padding padding padding\n", (5 << 20) / 34));
  CHECK_FALSE(okBig);
  CHECK(big == std::vector<std::string>{"E102"});
  auto [okLimit, limit] = codes(inCell(repeat("(", 64) + "a" + repeat(")", 64)));
  CHECK(okLimit);
  auto [okEmpty, empty] = codes("");
  CHECK_FALSE(okEmpty);
  CHECK(empty == std::vector<std::string>{"E101"});
}

// Inputs that hang the checker today (see the report that came with this file). Each runs in a
// child process that is killed after a timeout, so a hang fails this test instead of hanging the
// whole run.
TEST_CASE("a const whose value refers to itself is an error, not a hang", "[robustness]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"const a = a, used by an initializer",
       "cell t {\n  dim n = 2\n  const a = a\n  state h[n] = 0\n  param w ~ fill(a)\n"
       "  h' = w * h\n  output y = h'\n}\n"},
      {"const a = b; const b = a, used by an initializer",
       "cell t {\n  dim n = 2\n  const a = b\n  const b = a\n  state h[n] = 0\n  param w ~ fill(b)\n"
       "  h' = w * h\n  output y = h'\n}\n"},
      {"const f = f, used by dale()",
       "cell t {\n  dim n = 2\n  const f = f\n  const ei[n] = dale(f)\n  state h[n] = 0\n"
       "  h' = ei * h\n  output y = h'\n}\n"},
  };
  for (const auto& [name, text] : cases) {
    DYNAMIC_SECTION(name) {
      std::fflush(nullptr);
      pid_t pid = fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        SourceFile file("t.cell", text);
        DiagnosticSink diags;
        std::optional<Program> prog = loadCell(file, {}, diags);
        _exit(!prog && diags.hasErrors() ? 0 : 1);
      }
      int status = 0;
      bool done = false;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (std::chrono::steady_clock::now() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
          done = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
      }
      INFO("input: " << escaped(text));
      INFO((done ? "finished" : "did not finish within 1 s (killed)"));
      CHECK(done);
      if (done) {
        CHECK(WIFEXITED(status));
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));  // rejected with an error
      }
    }
  }
}
