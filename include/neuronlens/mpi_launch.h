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

// The tasks of the Slurm job step this process belongs to
// (SLURM_STEP_NUM_TASKS); 0 outside Slurm. More than one while MPI sees a
// world of one means srun started copies without wiring them together
// (no --mpi=pmix or pmi2): each would map the whole model into one atlas.
int slurm_step_tasks();

}  // namespace neuronlens
