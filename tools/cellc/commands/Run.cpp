// `cellc run`: an experiment file to a run folder (runtime/run/Runner.h).
#include <iostream>

#include "Cli.h"
#include "run/Runner.h"
#include "train/Trainer.h"

namespace cellc::cli {

int runRun(const Args& a) {
  if (a.flag("keys")) {
    std::cout << runtime::keyReference();
    return 0;
  }
  if (a.positional.empty()) throw UsageError("missing the experiment file");
  std::vector<std::string> sets;
  for (const std::string& s : a.multi("set")) sets.push_back(s);
  runtime::Experiment e = runtime::loadExperiment(a.positional[0], sets, a.get("profile", ""));
  runtime::RunOptions opt;
  opt.outDir = a.get("out", "");
  opt.plot = !a.flag("no-plot");
  opt.fresh = a.flag("fresh");
  runtime::installInterruptHandler();
  try {
    runtime::runExperiment(e, opt, std::cerr);
  } catch (const runtime::ExperimentError& err) {
    std::cerr << err.what() << "\n";
    return runtime::Trainer::interruptFlag() ? runtime::interruptedExitCode() : 1;
  }
  return 0;
}

}  // namespace cellc::cli
