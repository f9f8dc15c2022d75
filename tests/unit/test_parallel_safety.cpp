// What the parallel code owes its callers (issue 16): an exception inside an
// OpenMP region reaches the caller as itself (never std::terminate), weights
// or vectors holding NaN are refused rather than folded into a top-k, and the
// runtime's per-thread BLAS products do not change the thread count other
// BLAS calls run with.
#include <cblas.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "backends/cpu/omp_exceptions.h"
#include "backends/cpu/gemm.h"
#include "neuronlens/decode.h"
#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "neuronlens/tensor.h"
#include "scratch_dir.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

TEST(FirstException, AThrowInsideAParallelLoopReachesTheCallerAsItself) {
  // Two threads at least, so the throw happens while another thread works.
  cpu::FirstException failure;
  std::atomic<int> ran{0};
#pragma omp parallel for schedule(dynamic) num_threads(2)
  for (int i = 0; i < 1000; ++i) {
    failure.run([&] {
      ++ran;
      if (i == 37 || i == 600) throw bad_file("iteration " + std::to_string(i));
    });
  }
  EXPECT_TRUE(failure.failed());
  try {
    failure.rethrow();
    FAIL() << "no exception rethrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadFile);
    EXPECT_TRUE(std::string(e.what()) == "iteration 37" || std::string(e.what()) == "iteration 600") << e.what();
  }
  // Iterations after the failure was seen return at once.
  EXPECT_LT(ran.load(), 1000);
}

TEST(FirstException, NothingThrownRethrowsNothing) {
  cpu::FirstException failure;
#pragma omp parallel for num_threads(2)
  for (int i = 0; i < 100; ++i) failure.run([] {});
  EXPECT_FALSE(failure.failed());
  EXPECT_NO_THROW(failure.rethrow());
}

// The tile path sets OpenBLAS's process-wide thread count to 1 while its
// threads each run a product. Without the BLAS lock (gemm.h) another
// thread's BLAS call in the meantime ran on one thread, and two such
// products racing could leave the count at 1 for good; with it, every other
// call waits and then runs with the process's count.
TEST(BlasThreads, ARuntimeForwardLeavesOtherCallsTheirThreads) {
  const std::string path = testing::default_model_path();
  if (path.empty()) GTEST_SKIP() << "default model not fetched";
  const Model model = Model::load(path);
  Session session(model);
  std::vector<int32_t> tokens(48);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(100 + 37 * i);
  openblas_set_num_threads(2);
  std::atomic<bool> done{false};
  std::atomic<int> lowest{2}, calls{0};
  std::thread other_caller([&] {
    while (!done) {
      lowest = std::min(lowest.load(), cpu::blas_threads_for_a_call());
      ++calls;
    }
  });
  for (int round = 0; round < 3; ++round) session.forward(tokens);  // 48 tokens: the Q4_1 tile path
  done = true;
  other_caller.join();
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(lowest.load(), 2);
  EXPECT_EQ(openblas_get_num_threads(), 2);
}

TEST(NonFiniteValues, ADecodeOfANanVectorIsABadInputNotATerminate) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const LmHeadDecoder decoder(model, DecodeSettings{});
  const int64_t d = model.config().d_model;
  const int64_t n = 3000;  // many blocks, over both threads
  std::vector<float> vectors(static_cast<size_t>(n * d), 0.25f);
  vectors[static_cast<size_t>(2345 * d + 3)] = std::numeric_limits<float>::quiet_NaN();
  omp_set_num_threads(2);
  try {
    decoder.decode_normalized(vectors.data(), n);
    FAIL() << "a NaN vector was decoded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_EQ(std::string(e.what()), "vector 2345 holds NaN (a vector to decode must be finite)");
  }
}

// A copy of the tiny model with one value of layer 1's up_proj set to `value`.
std::string with_poisoned_up_weight(const testing::ScratchDir& dir, float value) {
  const std::string source = testing::fixture_path("tiny_llama.gguf");
  std::vector<char> bytes;
  {
    std::ifstream in(source, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  {
    const Model model = Model::load(source);
    const TensorView& up = model.weight(WeightKind::FfnUp, 1);
    EXPECT_EQ(up.type, DType::F32);
    // Find the tensor's bytes in the file by its first 64 (random floats:
    // unique), then poison its row 2, element 5.
    const auto at = std::search(bytes.begin(), bytes.end(), reinterpret_cast<const char*>(up.data),
                                reinterpret_cast<const char*>(up.data) + 64);
    EXPECT_NE(at, bytes.end());
    const int64_t offset = (at - bytes.begin()) + (2 * up.row_length() + 5) * 4;
    std::memcpy(bytes.data() + offset, &value, 4);
  }
  const std::string out = dir.file("poisoned.gguf");
  std::ofstream(out, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out;
}

TEST(NonFiniteValues, AMapOfWeightsHoldingNanOrInfinityExitsTwoNamingTheNeuron) {
  const testing::ScratchDir dir;
  for (const auto& [value, word] : std::vector<std::pair<float, std::string>>{
           {std::numeric_limits<float>::quiet_NaN(), "NaN"}, {std::numeric_limits<float>::infinity(), "infinity"}}) {
    const std::string model = with_poisoned_up_weight(dir, value);
    std::string output;
    const int code = testing::run_command(
        "'" + testing::cli_path() + "' map '" + model + "' -o '" + dir.file(word + ".db") + "' --kinds up --layers 1",
        output);
    EXPECT_EQ(code, 2) << output;
    EXPECT_NE(output.find("layer 1 up vector of neuron 2 holds " + word + "; the model file's weights are broken"),
              std::string::npos)
        << output;
  }
}

}  // namespace
}  // namespace neuronlens
