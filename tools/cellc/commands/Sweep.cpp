// `cellc sweep`: a sweep file to a folder of runs (runtime/sweep/), locally or under MPI.
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <new>

#include "Cli.h"
#include "sweep/Driver.h"
#include "sweep/Mpi.h"
#include "io/Spawn.h"
#include "sweep/SweepFile.h"

namespace cellc::cli {

namespace {

using namespace runtime;

// MPI ranks on this node, from the launcher's environment (Open MPI, MPICH); 1 when unknown.
int ranksPerNode() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"}) {
    const char* v = std::getenv(var);
    int n = 0;
    if (v && std::from_chars(v, v + std::strlen(v), n).ec == std::errc() && n > 0) return n;
  }
  return 1;
}

// Rank 0 (or the only process): validate, lock, run, report. Never throws: under MPI the workers
// wait for it to say stop.
int coordinate(const Args& a, int jobs, int ranks) {
  try {
    std::vector<std::string> sets = a.multi("set");
    Sweep s = loadSweep(a.positional[0], sets, a.get("profile", ""), a.flag("allow-large"));
    SweepOptions opt;
    opt.outDir = a.get("out", "");
    opt.jobs = jobs;
    opt.runsPerMachine = ranks > 1 ? ranksPerNode() : jobs;
    opt.plot = !a.flag("no-plot");
    opt.only = a.multi("only");
    SweepDriver d(s, opt, std::cerr);
    std::vector<std::string> errors = unmatchedFilters(s, opt.only);
    for (const std::string& e : validateSweep(s)) errors.push_back(e);
    for (const std::string& e : errors) std::cerr << e << "\n";
    if (!errors.empty()) {
      std::cerr << "cellc sweep: " << errors.size() << (errors.size() == 1 ? " error" : " errors")
                << " in the sweep; nothing was run\n";
      return 1;
    }
    if (a.flag("dry-run")) {
      d.list(std::cout);
      return 0;
    }
    SweepLock lock(d.out());
    std::vector<size_t> todo = d.prepare();
    installSweepSignals();
    if (ranks > 1) {
      std::cerr << "sweep: " << ranks - 1 << " MPI workers\n";
      mpiCoordinate(d, todo);
    } else {
      runLocal(d, todo, jobs, lock.fd());
    }
    return d.report(sweepSignal());
  } catch (const std::bad_alloc&) {
    std::cerr << "cellc sweep: error: out of memory: an allocation failed (std::bad_alloc)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "cellc sweep: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int runSweep(const Args& a) {
  if (a.positional.empty()) throw UsageError("missing the sweep file");
  int jobs = 1;
  if (a.flag("jobs")) {
    std::string j = a.get("jobs", "");
    auto [end, ec] = std::from_chars(j.data(), j.data() + j.size(), jobs);
    if (ec != std::errc() || end != j.data() + j.size() || jobs < 1 || jobs > 1024)
      throw UsageError("--jobs expects a whole number from 1 to 1024, got '" + j + "'");
  }
  bool mpi = mpiLaunched();
  if (mpi && !mpiBuilt()) {
    std::cerr << "cellc sweep: started by an MPI launcher, but this cellc was built without MPI "
                 "(install libopenmpi-dev and rebuild); every rank would run the whole sweep. "
                 "Use --jobs N instead.\n";
    return 1;
  }
  int rank = 0, ranks = 1;
  if (mpi) mpiStart(&rank, &ranks);
  if (rank > 0) {
    int rc = mpiWorker();
    mpiEnd();
    return rc;
  }
  int rc = coordinate(a, jobs, ranks);
  if (mpi) {
    mpiStopWorkers();
    mpiEnd();
  }
  return rc;
}

}  // namespace cellc::cli
