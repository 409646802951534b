// Binding an intermediate as a param: the cell with `W = expr` replaced by `param W[...]`, so an
// analysis can set an effective matrix directly (E1 edits W_rec,eff without re-rectifying it).
#pragma once

#include <optional>
#include <string>

#include "sema/Program.h"

namespace cellc {

// The checked program of `file` with the intermediate `name` made a param of its shape.
// Errors (unknown name, not an intermediate, depends on batched values) go to `diags`.
std::optional<Program> bindAsParam(const SourceFile& file, const Overrides& overrides,
                                   const std::string& name, DiagnosticSink& diags);

}  // namespace cellc
