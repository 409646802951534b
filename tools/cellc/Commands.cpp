// The command table: one entry per subcommand, with its help text.
#include "Cli.h"

namespace cellc::cli {

int runCheck(const Args&);
int runPrint(const Args&);
int runGrad(const Args&);
int runEmitLLVM(const Args&);

const std::vector<Command>& commands() {
  static const std::vector<Command> cmds = {
      {"check", "check .cell files for errors",
       "usage: cellc check [-D name=value ...] [--quiet] FILE...\n\n"
       "Parses and checks each cell (names, kinds, shapes). Diagnostics go to stderr as\n"
       "file:line:col: error[CODE]: message. Exit status 0 when every file is clean, 1 otherwise.\n\n"
       "  -D name=value   override a dim or a scalar const (repeatable)\n"
       "  --quiet         no summary line\n",
       {{"quiet", false}}, 1, -1, runCheck},
      {"print", "print the resolved program of a cell",
       "usage: cellc print [-D name=value ...] FILE\n\n"
       "Prints the checked cell: dims with their values, every declaration and equation with its\n"
       "shape ([B, ...] marks the batch dimension). The output is itself a valid .cell file.\n\n"
       "  -D name=value   override a dim or a scalar const (repeatable)\n",
       {}, 1, 1, runPrint},
      {"grad", "print the derived backward step of a cell",
       "usage: cellc grad [-D name=value ...] [--graph] FILE\n\n"
       "Prints the backward step that cellc derived (reverse mode), as .cell-style equations:\n"
       "d_X is the adjoint dL/dX; each line names the source line it differentiates.\n\n"
       "  -D name=value   override a dim or a scalar const (repeatable)\n"
       "  --graph         print the forward and backward IR graphs instead\n",
       {{"graph", false}}, 1, 1, runGrad},
      {"emit-llvm", "print the LLVM IR of a cell's forward and backward steps",
       "usage: cellc emit-llvm [-D name=value ...] [--precision f32|f64] [--O0] [--plan] FILE\n\n"
       "Prints the LLVM IR generated for cell_forward and cell_backward, optimized (O3, host CPU)\n"
       "unless --O0 is given.\n\n"
       "  -D name=value        override a dim or a scalar const (repeatable)\n"
       "  --precision f32|f64  element type (default f32)\n"
       "  --O0                 the IR as generated, before optimization\n"
       "  --plan               the kernel plan instead: fusion, buffers, tape\n",
       {{"precision", true}, {"O0", false}, {"plan", false}}, 1, 1, runEmitLLVM},
  };
  return cmds;
}

}  // namespace cellc::cli
