// The command table: one entry per subcommand, with its help text.
#include "Cli.h"

namespace cellc::cli {

int runCheck(const Args&);
int runPrint(const Args&);
int runGrad(const Args&);
int runEmitLLVM(const Args&);
int runRun(const Args&);
int runUnroll(const Args&);
int runSweep(const Args&);

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
       "Prints the LLVM IR generated for cell_forward and cell_backward (and, when the step has a\n"
       "sequence-invariant part, cell_prologue and cell_epilogue, run once per sequence), optimized\n"
       "(O3, host CPU) unless --O0 is given.\n\n"
       "  -D name=value        override a dim or a scalar const (repeatable)\n"
       "  --precision f32|f64  element type (default f32)\n"
       "  --O0                 the IR as generated, before optimization\n"
       "  --plan               the kernel plan instead: fusion, buffers, tape, and the stages\n"
       "                       (invariant, per step, once at the end)\n",
       {{"precision", true}, {"O0", false}, {"plan", false}}, 1, 1, runEmitLLVM},
      {"run", "run an experiment: train, analyse, draw figures",
       "usage: cellc run [--out DIR] [--profile NAME] [--set key=value ...] [--no-plot] [--fresh] FILE.toml\n"
       "       cellc run --keys\n\n"
       "Runs the experiment and leaves a run folder (default runs/<name>): the resolved experiment,\n"
       "the cell, metrics.csv, params/*.npy, arrays/*.npy, checkpoints, summary.json and figures/.\n"
       "Running the same command again resumes an interrupted run (Ctrl-C saves a checkpoint).\n\n"
       "  --out DIR         the run folder\n"
       "  --profile NAME    apply the file's [profiles.NAME] table (e.g. quick)\n"
       "  --set key=value   override a key, e.g. --set train.batch=64 (repeatable)\n"
       "  --no-plot         do not run experiments/plot.py at the end\n"
       "  --fresh           start over: an existing run folder is moved aside (to DIR.old-N, never\n"
       "                    deleted) and the run starts from step 0\n"
       "  --keys            print every experiment key with its type, default and meaning\n\n"
       "Dims and consts of the cell are keys here: --set cell.dims.n=128 (-D is refused).\n",
       {{"out", true}, {"profile", true}, {"set", true}, {"no-plot", false}, {"keys", false}, {"fresh", false}},
       0, 1, runRun, false},
      {"sweep", "run a grid of experiments: locally (--jobs) or under MPI",
       "usage: cellc sweep [--jobs N] [--out DIR] [--profile NAME] [--set key=value ...]\n"
       "                   [--only NAME=VALUE ...] [--dry-run] [--no-plot] [--allow-large] FILE.toml\n"
       "       mpirun -n K cellc sweep FILE.toml      (srun on Slurm)\n\n"
       "Expands the sweep file (a base experiment and axes over its keys, docs/sweeps.md) to runs,\n"
       "checks every run's experiment before anything runs, and runs each as `cellc run BASE --set\n"
       "...` in its own folder DIR/<point>. DIR/sweep.csv gets one row per run (its point, its\n"
       "status and the numbers of its summary.json); the [[plot]] figures go to DIR/figures/.\n"
       "Running the same command again skips finished runs and resumes the others. Under MPI,\n"
       "rank 0 hands runs to the other ranks as they free up. Exit status 0 when every (selected)\n"
       "run finished, 1 when one failed or the sweep has errors, 130/143 when interrupted.\n\n"
       "  --jobs N          runs at a time on this machine (default 1), each on cores / N threads\n"
       "                    unless --set train.threads=K says otherwise\n"
       "  --out DIR         the sweep folder (default sweeps/<name>)\n"
       "  --profile NAME    apply the base experiment's [profiles.NAME] to every run\n"
       "  --set key=value   override a key in every run (repeatable)\n"
       "  --only NAME=VALUE run only the runs whose name has this part, e.g. --only cell=nbrc\n"
       "                    (repeatable: all must hold); the others are left as they are\n"
       "  --dry-run         list the runs and their --set edits; run nothing\n"
       "  --no-plot         do not draw the [[plot]] figures\n"
       "  --allow-large     run a grid of more than 100,000 runs (refused without it)\n",
       {{"jobs", true}, {"out", true}, {"profile", true}, {"set", true}, {"only", true}, {"dry-run", false},
        {"no-plot", false}, {"allow-large", false}},
       1, 1, runSweep, false},
      {"unroll", "run a cell over .npy arrays; write outputs, loss and gradients",
       "usage: cellc unroll [-D name=value ...] [--precision f64|f32]\n"
       "                    [--loss adjoints|mse|mse_last|none] CELL DIR --out OUTDIR\n\n"
       "Compiles the cell, reads named .npy arrays from DIR, runs T steps over a batch of B\n"
       "sequences and writes the results to OUTDIR as .npy files, to compare the cell with\n"
       "another framework on the same data. T and B come from the first input.\n\n"
       "DIR holds (float32 or float64, C order):\n"
       "  <param>.npy            every param, the param's shape (a scalar: shape ())\n"
       "  <input>.npy            every input, [T, B, dims...]\n"
       "  <state>.npy            optional initial state, [B, dims...] (default: as declared)\n"
       "  <noise>.npy            optional noise, [T, B, dims...] (default: zeros; ones for ~ dropout())\n"
       "  d_<output>.npy         --loss adjoints: dL/dy, [T, B, dims...] (missing: zero)\n"
       "  d_final_<state>.npy    --loss adjoints: dL/d(final state), [B, dims...]\n"
       "  target_<output>.npy    --loss mse: [T, B, dims...]; --loss mse_last: [B, dims...]\n"
       "  mask_<output>.npy      --loss mse: optional weights, the target's shape\n\n"
       "OUTDIR gets <output>.npy, final_<state>.npy and, with a loss, loss.npy, grad_<param>.npy,\n"
       "grad_<input>.npy and grad_init_<state>.npy. Exit status 0 on success, 1 on a problem with\n"
       "the cell or the arrays (the message names the file), 2 on a wrong command line.\n\n"
       "  -D name=value         override a dim or a scalar const (repeatable)\n"
       "  --out OUTDIR          where to write the results (created if missing); required\n"
       "  --precision f64|f32   element type of the computation and of the files written\n"
       "                        (default f64)\n"
       "  --loss KIND           adjoints: sum <d_y, y> + <d_final, h_T>;\n"
       "                        mse: sum(mask (y - target)^2) / (T B units), per output;\n"
       "                        mse_last: sum((y_T - target)^2) / (B units), per output;\n"
       "                        none: forward only. Default: adjoints if DIR holds a d_*.npy,\n"
       "                        else none\n",
       {{"out", true}, {"precision", true}, {"loss", true}}, 2, 2, runUnroll},
  };
  return cmds;
}

}  // namespace cellc::cli
