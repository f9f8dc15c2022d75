// The neuron map across MPI ranks (built with NEURONLENS_WITH_MPI; library
// neuronlens_mpi). `mpirun -n N neuronlens map ...` or `srun neuronlens map
// ...`: every rank loads the model(s) from its own path and checks their
// sha256 against rank 0's; rank 0, the one writer of each SQLite atlas,
// plans the units the atlases lack and hands them out one at a time as ranks
// ask (so fast and slow nodes even out), maps units itself between messages,
// and writes what the others send back, a unit a transaction. A job stopped
// anywhere leaves atlases that the next job, with any number of ranks,
// completes.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/map_jobs.h"
#include "neuronlens/mpi_launch.h"
#include "neuronlens/neuron_map.h"

namespace neuronlens {

// MPI_Init on construction, MPI_Finalize on destruction. One per process.
class MpiContext {
 public:
  MpiContext();
  ~MpiContext();
  MpiContext(const MpiContext&) = delete;
  MpiContext& operator=(const MpiContext&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0;
  int size_ = 1;
};

// Collective: every rank says whether it could start (what it failed with,
// or nothing), before any rank waits on another. Where one could not, rank 0
// throws the first failure (its own, else the lowest rank's, naming the rank
// and host) and the others throw DistributedMapStopped: one message for a
// bad option, even one only some nodes reject (a CPU without bf16).
void agree_to_start(const MpiContext& mpi, const std::exception_ptr& failure);

struct DistributedMapRequest {
  // What to map, read on rank 0 only (the others get it from rank 0): the
  // jobs in `jobs_file` when set, else `jobs`.
  std::string jobs_file;
  std::vector<MapJob> jobs;
  // Every map's options; `options.layers` is ignored: `layers` ("all",
  // "0-3") is resolved against each model.
  MapOptions options;
  std::string layers = "all";
  std::string layers_name = "layers";  // what its errors call it (the CLI: "--layers")
  // Applied to the model paths on ranks other than 0 (nodes that mount the
  // models elsewhere).
  std::vector<PathMapping> model_paths;
};

struct DistributedMapResult {
  // Rank 0 only: each job and what was done for it, in the jobs' order.
  std::vector<MapJob> jobs;
  std::vector<MapProgress> progress;
  // Rank 0 only: the ranks' host names and OpenMP threads, and the writer's
  // load: units and rows (neuron rows plus their top-k rows, head direction
  // rows plus their sides' top-k rows) written and the seconds it spent.
  std::vector<std::string> hosts;
  std::vector<int> threads;
  int64_t units_written = 0;
  int64_t rows_written = 0;
  double write_seconds = 0;
  double index_seconds = 0;  // building the atlases' by-token indexes at the end (Atlas::BulkWrite)
  // Every rank: units this rank decoded.
  int64_t units_decoded_here = 0;
};

// Called on rank 0 as the whole job advances (all jobs, all ranks).
using DistributedProgress = std::function<void(const MapProgress&)>;

// Collective: every rank of MPI_COMM_WORLD calls it with the same request.
// On rank 0 a failure anywhere (a model that does not load or differs from
// rank 0's, an atlas rank 0 cannot write, a jobs file that does not parse, a
// rank failing mid-unit) throws Error of that failure's kind, its message
// naming the rank and host, after every rank has stopped and what was
// finished is written. Other ranks then throw DistributedMapStopped (their
// exit code, nothing to print: rank 0 says what happened).
DistributedMapResult run_distributed_map(const MpiContext& mpi, const DistributedMapRequest& request,
                                         const DistributedProgress& on_progress = {});

struct DistributedMapStopped {
  int exit_code;
};

}  // namespace neuronlens
