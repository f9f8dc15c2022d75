// Whether an MPI launcher started this process, read from the environment
// the launchers set, so that the CLI initialises MPI only then (a plain run
// never pays for it) and a build without MPI can refuse a multi-rank launch
// instead of running N copies of one job against one atlas.
#pragma once

namespace neuronlens {

// The world size the launcher announced: mpirun/mpiexec of Open MPI
// (OMPI_COMM_WORLD_SIZE), MPICH and Slurm's PMI (PMI_SIZE), srun
// (SLURM_NTASKS, with PMIX_RANK or PMI_RANK set). 0 when no launcher
// started this process.
int mpi_launch_size();

}  // namespace neuronlens
