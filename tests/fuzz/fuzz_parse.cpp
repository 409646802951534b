// libFuzzer target for the front end: any bytes -> SourceFile -> loadCell (parse + check), plus the
// renderer and the printer on what comes out. Crashes, sanitizer reports and timeouts are findings;
// so are broken promises, which abort with a message:
//   - an input yields a program or at least one error, never neither;
//   - every diagnostic points inside the file (line 0 only for the whole-file codes E102/E103/E401);
//   - an accepted program prints to text that checks back with no error.
//
// Build: with CMake, configure a separate build with clang and -DCELLC_FUZZ=ON and build the target
// fuzz_parse. clang 14 rejects antlr4 4.9's `Vocabulary() = default;` under C++20, so compile
// against a copy of /usr/include/antlr4-runtime whose Vocabulary.h says `Vocabulary() {}`.
// By hand, every front-end source and build/grammar/gen/Cell{Lexer,Parser}.cpp with
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-char8_t \
//           -Icompiler -isystem build/grammar/gen -isystem <patched antlr4-runtime headers> -c ...
// then link with -fsanitize=fuzzer,address,undefined ... -lantlr4-runtime.
// Run: ./fuzz_parse -max_len=4096 -timeout=10 corpus/   (seed corpus: cells/*.cell and the fixtures)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "diag/Diagnostics.h"
#include "sema/Program.h"
#include "syntax/Parse.h"

using namespace cellc;

namespace {

[[noreturn]] void broken(const char* what, const Diagnostic* d = nullptr) {
  if (d)
    std::fprintf(stderr, "broken promise: %s: %s at %d:%d: %s\n", what, codeInfo(d->code).name,
                 d->loc.line, d->loc.col, d->message.c_str());
  else
    std::fprintf(stderr, "broken promise: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  SourceFile file("fuzz.cell", text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  if (!prog && !diags.hasErrors()) broken("rejected without an error");
  if (prog && diags.hasErrors()) broken("accepted with an error");

  std::vector<size_t> lineLen;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == '\n') {
      lineLen.push_back(i - start);
      start = i + 1;
    }
  for (const Diagnostic& d : diags.all()) {
    if (d.loc.line == 0) {
      if (d.code != Code::E102 && d.code != Code::E103 && d.code != Code::E401)
        broken("no location", &d);
    } else if (d.loc.line < 0 || static_cast<size_t>(d.loc.line) > lineLen.size()) {
      broken("line outside the file", &d);
    } else if (d.loc.col < 1 || static_cast<size_t>(d.loc.col) > lineLen[d.loc.line - 1] + 1) {
      broken("column outside its line", &d);
    }
    (void)renderDiagnostic(d, file);
  }

  if (prog) {
    const std::string printed = printProgram(*prog);
    SourceFile again("printed.cell", printed);
    DiagnosticSink diags2;
    std::optional<Program> prog2 = loadCell(again, {}, diags2);
    if (!prog2) {
      for (const Diagnostic& d : diags2.all())
        if (d.severity() == Severity::Error) broken("the printed program does not check", &d);
      broken("the printed program does not check");
    }
    if (printProgram(*prog2) != printed) broken("printing is not a fixed point");
  }
  return 0;
}
