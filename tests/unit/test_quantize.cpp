// The quantisers (neuronlens/quantize.h) against gguf-py's
// `gguf.quants.quantize` (scripts/fixtures/gen_quantize_reference.py): the
// bytes must be identical, edge cases included (zero and constant blocks, a
// negative extreme, ties, values on a rounding boundary).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/quantize.h"
#include "neuronlens/tensor.h"
#include "quant_fixture.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

std::vector<float> as_floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

class QuantizeMatchesGgufPy : public ::testing::TestWithParam<DType> {};

TEST_P(QuantizeMatchesGgufPy, BytesAreIdentical) {
  const DType type = GetParam();
  const std::string stem = testing::fixture_path("quantize_reference/" + std::string(dtype_name(type)));
  const std::vector<float> input = as_floats(testing::read_fixture_bytes(stem + ".in"));
  const std::vector<uint8_t> expected = testing::read_fixture_bytes(stem + ".q");
  ASSERT_FALSE(input.empty());
  const auto n = static_cast<int64_t>(input.size());
  ASSERT_EQ(static_cast<int64_t>(expected.size()), dtype_bytes_for(type, n));
  std::vector<uint8_t> got(expected.size());
  quantize(type, input.data(), n, got.data());
  const DTypeTraits& traits = dtype_traits(type);
  for (size_t b = 0; b < got.size(); b += static_cast<size_t>(traits.block_bytes)) {
    ASSERT_EQ(0, std::memcmp(got.data() + b, expected.data() + b, static_cast<size_t>(traits.block_bytes)))
        << dtype_name(type) << " block " << b / static_cast<size_t>(traits.block_bytes) << " differs from gguf-py";
  }
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeMatchesGgufPy,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                           DType::Q5_1, DType::Q8_0),
                         [](const ::testing::TestParamInfo<DType>& p) { return std::string(dtype_name(p.param)); });

// Dequantising a Q4_1 block gives back every value within half a step,
// d/2 with d = (max - min) / 15, plus the fp16 rounding of d and min.
TEST(Quantize, Q4_1RoundTripIsWithinHalfAStep) {
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  std::vector<uint8_t> q(static_cast<size_t>(dtype_bytes_for(DType::Q4_1, 64)));
  quantize(DType::Q4_1, x.data(), 64, q.data());
  std::vector<float> back(64);
  dequantize(DType::Q4_1, q.data(), 64, back.data());
  for (size_t b = 0; b < 2; ++b) {
    float lo = x[b * 32], hi = x[b * 32];
    for (size_t i = b * 32; i < b * 32 + 32; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
    const float step = (hi - lo) / 15.0f;
    for (size_t i = b * 32; i < b * 32 + 32; ++i) EXPECT_NEAR(back[i], x[i], 0.5f * step + 1e-2f * step) << i;
  }
}

TEST(Quantize, RefusesKQuantsPartialBlocksAndNonFiniteValues) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(1024);
  EXPECT_FALSE(can_quantize(DType::Q4_K));
  EXPECT_THROW(quantize(DType::Q4_K, x.data(), 256, out.data()), Error);
  EXPECT_THROW(quantize(DType::Q8_0, x.data(), 33, out.data()), Error);
  x[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize(DType::Q8_0, x.data(), 32, out.data()), Error);
  x[7] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(quantize(DType::Q4_0, x.data(), 32, out.data()), Error);
}

}  // namespace
}  // namespace neuronlens
