// Parsing: .cell text to a syntax tree, through the ANTLR4 grammar in grammar/Cell.g4.
#pragma once

#include <optional>

#include "diag/Diagnostics.h"
#include "syntax/Ast.h"

namespace cellc {

// Limits that keep the recursive-descent parser and the tree walks within the stack on
// hostile input. Real cells are far below them. (The size limit, kMaxSourceBytes, is in
// diag/Diagnostics.h, where files are read.)
inline constexpr int kMaxBracketDepth = 64;
inline constexpr int kMaxTokensPerStatement = 2000;

// Reports every syntax error (one per statement, so errors do not cascade) to `diags`.
// Returns the tree when the file parsed without errors.
std::optional<CellAst> parseCell(const SourceFile& file, DiagnosticSink& diags);

}  // namespace cellc
