// Sweeps under MPI: `mpirun -n K cellc sweep FILE` (and `srun cellc sweep FILE` on Slurm). Rank 0
// is the coordinator: it validates the sweep, holds the lock, and hands run indices to ranks
// 1..K-1 as they free up (so long and short runs balance), gathering each run's exit status; with
// K = 1 it runs the sweep locally (--jobs). Each worker starts its `cellc run` child itself.
// Without MPI at build time, these report that MPI is unavailable.
#pragma once

#include <cstddef>
#include <vector>

namespace cellc::runtime {

class SweepDriver;

bool mpiBuilt();     // built with MPI (CMake found it)
bool mpiLaunched();  // started by mpirun/srun (their environment variables)

void mpiStart(int* rank, int* size);  // MPI_Init
void mpiEnd();                        // MPI_Finalize

// Rank 0: runs `todo` on the workers; returns when every started run ended (after a signal, no
// new run starts). Then call mpiStopWorkers.
void mpiCoordinate(SweepDriver& d, const std::vector<size_t>& todo);
void mpiStopWorkers();

// Ranks > 0: run what rank 0 sends until it says stop. Returns the exit status.
int mpiWorker();

}  // namespace cellc::runtime
