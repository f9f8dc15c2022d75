#include "neuronlens/mpi_launch.h"

#include <cstdlib>

namespace neuronlens {
namespace {

int positive(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return 0;
  const int n = std::atoi(text);
  return n > 0 ? n : 0;
}

}  // namespace

int mpi_launch_size() {
  if (const int n = positive("OMPI_COMM_WORLD_SIZE")) return n;
  if (const int n = positive("PMI_SIZE")) return n;
  const bool pmi_rank = std::getenv("PMIX_RANK") != nullptr || std::getenv("PMI_RANK") != nullptr;
  if (pmi_rank) {
    const int n = positive("SLURM_NTASKS");
    return n > 0 ? n : 1;
  }
  return 0;
}

int slurm_step_tasks() { return positive("SLURM_STEP_NUM_TASKS"); }

}  // namespace neuronlens
