// Printing syntax trees back to .cell text, normalized: canonical spacing, minimal parentheses,
// shortest round-trip numbers. print(parse(print(x))) == print(x).
#pragma once

#include <string>

#include "syntax/Ast.h"

namespace cellc {

std::string printNumber(double v);
std::string printExpr(const Expr& e);
std::string printInit(const std::vector<InitCall>& init);  // "gamma(2, 0.05) | spectral_radius(1.5, W)"

}  // namespace cellc
