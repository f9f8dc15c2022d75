// Reads (dequantises to float32) every weight of a model, a row block at a
// time, and prints the time, the rate and the peak resident memory. The
// model is memory-mapped, so peak RSS should stay near the mapped file plus
// one block, never the model's float32 size.
//
// usage: read_weights_bench MODEL [--block-rows 256]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/model.h"

int main(int argc, char** argv) {
  using namespace neuronlens;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [--block-rows N]\n", argv[0]);
    return 2;
  }
  int64_t block_rows = 256;
  if (argc >= 4 && !std::strcmp(argv[2], "--block-rows")) block_rows = std::stoll(argv[3]);
  try {
    const auto start = std::chrono::steady_clock::now();
    const Model model = Model::load(argv[1]);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<float> buffer;
    int64_t values = 0;
    double checksum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const TensorView* t : model.all_tensors()) {
      for (int64_t first = 0; first < t->rows(); first += block_rows) {
        const int64_t n = std::min(block_rows, t->rows() - first);
        buffer.resize(static_cast<size_t>(n * t->row_length()));
        dequantize_rows(*t, first, n, buffer.data());
        checksum += buffer.front();
        values += n * t->row_length();
      }
    }
    const double read_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("model %s: %zu tensors, %lld values (%.1f MiB as float32) from %.1f MiB of file\n",
                model.config().name.c_str(), model.all_tensors().size(), static_cast<long long>(values),
                static_cast<double>(values) * 4 / 1048576.0, static_cast<double>(model.file_bytes()) / 1048576.0);
    std::printf("open + validate: %.3f s; dequantise all: %.3f s (%.0f M values/s, one thread)\n", load_s, read_s,
                static_cast<double>(values) / read_s / 1e6);
    std::printf("peak RSS: %.1f MiB (checksum %g)\n", static_cast<double>(usage.ru_maxrss) / 1024.0, checksum);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "read_weights_bench: %s\n", e.what());
    return 2;
  }
}
