#include "sweep/Mpi.h"

#include <cstdlib>

#ifdef CELLC_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: no deprecated C++ bindings
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <time.h>

#include <chrono>
#include <deque>
#include <string>

#include "sweep/Driver.h"
#include "io/Spawn.h"
#endif

namespace cellc::runtime {

bool mpiLaunched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

#ifndef CELLC_MPI

bool mpiBuilt() { return false; }
void mpiStart(int* rank, int* size) { *rank = 0, *size = 1; }
void mpiEnd() {}
void mpiCoordinate(SweepDriver&, const std::vector<size_t>&) {}
void mpiStopWorkers() {}
int mpiWorker() { return 1; }

#else

namespace {

enum Tag { kWork = 1, kStop = 2, kResult = 3 };

// Blocking MPI calls spin a core; on a small machine the coordinator and idle workers would take
// the cores from the runs. Poll instead, sleeping between looks.
void nap() {
  timespec t{0, 20'000'000};
  nanosleep(&t, nullptr);
}

bool probe(int source, int tag, MPI_Status* st) {
  int flag = 0;
  MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, st);
  return flag != 0;
}

}  // namespace

bool mpiBuilt() { return true; }

void mpiStart(int* rank, int* size) {
  MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
}

void mpiEnd() { MPI_Finalize(); }

void mpiCoordinate(SweepDriver& d, const std::vector<size_t>& todo) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::deque<int> idle;
  for (int r = 1; r < size; ++r) idle.push_back(r);
  size_t next = 0;
  int busy = 0;
  while (true) {
    while (sweepSignal() == 0 && !idle.empty() && next < todo.size()) {
      size_t i = todo[next++];
      d.started(i);
      // The work: the run's index, its log, then its argument vector, '\0'-separated.
      std::string msg = std::to_string(i) + '\0' + (d.runDir(i) / "log.txt").string();
      for (const std::string& a : d.command(i)) msg += '\0' + a;
      MPI_Send(msg.data(), static_cast<int>(msg.size()), MPI_CHAR, idle.front(), kWork, MPI_COMM_WORLD);
      idle.pop_front();
      ++busy;
    }
    if (busy == 0) break;
    MPI_Status st;
    if (!probe(MPI_ANY_SOURCE, kResult, &st)) {
      nap();
      continue;
    }
    double result[3];
    MPI_Recv(result, 3, MPI_DOUBLE, st.MPI_SOURCE, kResult, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    d.ended(static_cast<size_t>(result[0]), static_cast<int>(result[1]), result[2]);
    idle.push_back(st.MPI_SOURCE);
    --busy;
  }
}

void mpiStopWorkers() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (int r = 1; r < size; ++r) MPI_Send(nullptr, 0, MPI_CHAR, r, kStop, MPI_COMM_WORLD);
}

int mpiWorker() {
  installSweepSignals();  // mpirun's SIGTERM: the run checkpoints, its result still goes back
  while (true) {
    MPI_Status st;
    if (!probe(0, MPI_ANY_TAG, &st)) {
      nap();
      continue;
    }
    int n = 0;
    MPI_Get_count(&st, MPI_CHAR, &n);
    std::string msg(static_cast<size_t>(n), '\0');
    MPI_Recv(msg.data(), n, MPI_CHAR, 0, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (st.MPI_TAG == kStop) return 0;
    std::vector<std::string> parts;
    for (size_t p = 0;;) {
      size_t e = msg.find('\0', p);
      parts.push_back(msg.substr(p, e == std::string::npos ? std::string::npos : e - p));
      if (e == std::string::npos) break;
      p = e + 1;
    }
    double result[3] = {std::stod(parts[0]), 127, 0};
    auto t0 = std::chrono::steady_clock::now();
    try {
      pid_t pid = spawnChild(std::vector<std::string>(parts.begin() + 2, parts.end()), parts[1]);
      registerChild(pid);
      int code = 127;
      waitChild(pid, &code);
      unregisterChild(pid);
      result[1] = code;
    } catch (const std::exception&) {
      result[1] = 127;  // could not start: reported as a failed run
    }
    result[2] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MPI_Send(result, 3, MPI_DOUBLE, 0, kResult, MPI_COMM_WORLD);
  }
}

#endif

}  // namespace cellc::runtime
