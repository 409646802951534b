#!/usr/bin/python3
"""The layer order, declared once, and its check: a source file may include only files of its own
folder or of a lower layer (Chromium's checkdeps and Python's import-linter are the models).

    /usr/bin/python3 tests/layers.py SOURCE_DIR      # exit 1 and one line per include that points up

Each folder below is a layer, lowest first; compiler/ runs in pipeline order, runtime/ sits above
it, the command line and the Python bindings on top. A folder not listed (a new one) is an error
too, so the order is decided when the folder is made. Tests, benchmarks and generated code are
outside the layers (they may include anything).
"""

import os
import re
import sys

LAYERS = [
    "compiler/diag",        # diagnostics and the error codes
    "compiler/syntax",      # parse tree -> syntax tree
    "compiler/sema",        # names, kinds, shapes
    "compiler/ir",          # the step graph, StepIR
    "compiler/autodiff",    # reverse mode, `cellc grad`'s printer
    "compiler/pipeline",    # lowering, hoisting, the segment plan, the StepKernel interface
    "compiler/codegen",     # the plan and LLVM IR emission
    "compiler/eval",        # the reference evaluator
    "compiler/blas",        # the numeric kernels generated code calls, threads, the work pool
    "compiler/jit",         # LLJIT: emits and links a planned step
    "compiler/driver",      # the compile driver: every pass in order, program -> compiled step
    "runtime/io",           # .npy, binary streams, files, processes
    "runtime/random",       # seeded streams and draws
    "runtime/params",       # initializers
    "runtime/train",        # BPTT, losses, optimizers, EWC, checkpoints, the trainer, memory estimates
    "runtime/unroll",       # plain unrolling, `cellc unroll` (checks its memory with train/Memory.h)
    "runtime/tasks",        # the experiments' tasks
    "runtime/experiment",   # the experiment format, the model, the task table, the test stage
    "runtime/analysis",     # analyses after training
    "runtime/run",          # `cellc run`: phases, the run folder, figures
    "runtime/sweep",        # `cellc sweep`
    "tools/cellc",          # the command line
    "tools/cellc/commands",
    "python/src",           # the Python bindings
]
# Where an include's first path component is looked up, in order (the include folders of CMake).
ROOTS = ["compiler", "runtime", "tools/cellc", "python/src"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(folder):
    return LAYERS.index(folder) if folder in LAYERS else None


def resolve(src_dir, inc, top):
    """The folder (relative to top) of the file an include names, or None (a system header)."""
    if os.path.isfile(os.path.join(top, src_dir, inc)):
        return os.path.dirname(os.path.normpath(os.path.join(src_dir, inc)))
    for r in ROOTS:
        if os.path.isfile(os.path.join(top, r, inc)):
            return os.path.dirname(os.path.normpath(os.path.join(r, inc)))
    return None


def check(top):
    problems = []
    for base in ("compiler", "runtime", "tools", "python/src"):
        for dp, _, files in os.walk(os.path.join(top, base)):
            rel = os.path.relpath(dp, top)
            srcs = [f for f in files if f.endswith((".h", ".cpp", ".def"))]
            if not srcs:
                continue
            mine = layer_of(rel)
            if mine is None:
                problems.append(f"{rel}/: a folder of sources that tests/layers.py does not place "
                                "in the layer order: add it to LAYERS")
                continue
            for f in sorted(srcs):
                text = open(os.path.join(dp, f), errors="replace").read()
                for m in INCLUDE.finditer(text):
                    folder = resolve(rel, m.group(1), top)
                    if folder is None or folder == rel:
                        continue
                    theirs = layer_of(folder)
                    line = text.count("\n", 0, m.start()) + 1
                    if theirs is None:
                        problems.append(f"{rel}/{f}:{line}: includes {m.group(1)} from {folder}/, "
                                        "a folder outside the layer order")
                    elif theirs > mine:
                        problems.append(f"{rel}/{f}:{line}: includes {m.group(1)}: {folder}/ is "
                                        f"above {rel}/ (layer {theirs} > {mine}, tests/layers.py)")
    return problems


def self_test():
    """The check fails on an include that points up and on an unplaced folder, and passes a
    downward one (a scratch tree)."""
    import tempfile
    with tempfile.TemporaryDirectory() as t:
        def write(path, text):
            os.makedirs(os.path.dirname(os.path.join(t, path)), exist_ok=True)
            with open(os.path.join(t, path), "w") as f:
                f.write(text)
        write("compiler/jit/Jit.h", '#include "ir/Graph.h"\n')
        write("compiler/ir/Graph.h", "// nothing\n")
        assert check(t) == [], check(t)
        write("compiler/ir/Step.h", '#include <vector>\n#include "jit/Jit.h"\n')
        got = check(t)
        assert len(got) == 1 and got[0].startswith("compiler/ir/Step.h:2: includes jit/Jit.h"), got
        write("compiler/newstage/X.cpp", "// nothing\n")
        assert any("does not place" in p for p in check(t)), check(t)
    print("layers: self-test passed")


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        self_test()
        return 0
    top = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(top)
    for p in problems:
        print(p)
    if problems:
        print(f"layers: {len(problems)} include(s) against the layer order")
        return 1
    print(f"layers: every include of {len(LAYERS)} layers points down or sideways")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
