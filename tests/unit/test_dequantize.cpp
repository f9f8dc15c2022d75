// Dequantisation against gguf-py: random blocks of every type and every
// tensor of the default model must come out bit for bit as
// gguf.quants.dequantize gives them (fixtures from
// scripts/fixtures/gen_quant_blocks.py). Also the fp16/bf16 conversions, the
// dtype table, row-range checks and the SHA-256 used for the model digests.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <random>
#include <vector>

#include "io/half.h"
#include "io/mapped_file.h"
#include "io/sha256.h"
#include "io/sha256_blocks.h"
#include "neuronlens/dtype.h"
#include "neuronlens/error.h"
#include "neuronlens/tensor.h"
#include "quant_fixture.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K};

using testing::kQuantFixtureRows;
using testing::load_quant_fixture;
using testing::QuantFixture;
using testing::view_of;

// Bit equality (so -0.0 vs 0.0 and NaN payloads count), reporting the first
// difference with both values and their bits.
::testing::AssertionResult bits_equal(const float* actual, const float* expected, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t a = std::bit_cast<uint32_t>(actual[i]);
    const uint32_t e = std::bit_cast<uint32_t>(expected[i]);
    if (a != e) {
      char bits[64];
      std::snprintf(bits, sizeof bits, "0x%08x vs 0x%08x", a, e);
      return ::testing::AssertionFailure() << "first mismatch at index " << i << ": got " << actual[i]
                                           << ", reference " << expected[i] << " (bits " << bits << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// fp16 / bf16

TEST(DequantizeHalf, Fp16KnownValues) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xFC00), -std::numeric_limits<float>::infinity());
  // NumPy keeps NaN payloads, signalling ones included.
  EXPECT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(0x7C01)), 0x7F802000u);
  EXPECT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(0xFE00)), 0xFFC00000u);
}

TEST(DequantizeHalf, Fp16RoundTripsEveryValue) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const float widened = fp16_to_fp32(half);
    if (std::isnan(widened)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(widened)))) << std::hex << bits;
    } else {
      ASSERT_EQ(fp32_to_fp16(widened), half) << std::hex << bits;
    }
  }
}

TEST(DequantizeHalf, Fp16NarrowingRoundsToNearestEven) {
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // tie between 65504 and 2^16: even is inf
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24
  EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units: tie to even 2
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie: stays even
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // tie: up to even
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(DequantizeHalf, Bf16) {
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xC040), -3.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(bf16_to_fp32(0x0001)), 0x00010000u);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie: stays even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie: up to even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7F800001u)), 0x7FC0);  // NaN made quiet
}

// ---------------------------------------------------------------------------
// dtype table

TEST(DequantizeDTypeTable, BlockSizesMatchGgml) {
  struct Expected {
    DType type;
    int64_t elements;
    int64_t bytes;
  };
  const Expected table[] = {
      {DType::F32, 1, 4},     {DType::F16, 1, 2},      {DType::BF16, 1, 2},     {DType::Q4_0, 32, 18},
      {DType::Q4_1, 32, 20},  {DType::Q5_0, 32, 22},   {DType::Q5_1, 32, 24},   {DType::Q8_0, 32, 34},
      {DType::Q2_K, 256, 84}, {DType::Q3_K, 256, 110}, {DType::Q4_K, 256, 144}, {DType::Q5_K, 256, 176},
      {DType::Q6_K, 256, 210},
  };
  for (const Expected& e : table) {
    const DTypeTraits& traits = dtype_traits(e.type);
    EXPECT_EQ(traits.block_elements, e.elements) << traits.name;
    EXPECT_EQ(traits.block_bytes, e.bytes) << traits.name;
    // The enum values are the ggml ids, and both name tables agree.
    const auto id = static_cast<uint32_t>(e.type);
    EXPECT_EQ(dtype_from_gguf_id(id), e.type) << traits.name;
    EXPECT_EQ(gguf_type_id_name(id), traits.name);
    EXPECT_EQ(dtype_name(e.type), traits.name);
  }
  EXPECT_EQ(dtype_bytes_for(DType::Q4_K, 4096), 16 * 144);
}

TEST(DequantizeDTypeTable, UnsupportedIdsAreNamedButNotMapped) {
  const std::pair<uint32_t, std::string_view> unsupported[] = {
      {9, "Q8_1"},   {15, "Q8_K"}, {16, "IQ2_XXS"}, {20, "IQ4_NL"}, {23, "IQ4_XS"}, {24, "I8"},
      {28, "F64"},   {29, "IQ1_M"}, {34, "TQ1_0"},  {35, "TQ2_0"},  {39, "MXFP4"}, {4, "Q4_2"},
  };
  for (const auto& [id, name] : unsupported) {
    EXPECT_EQ(gguf_type_id_name(id), name);
    EXPECT_FALSE(dtype_from_gguf_id(id).has_value()) << name;
  }
  EXPECT_EQ(gguf_type_id_name(1000), "unknown");
  EXPECT_FALSE(dtype_from_gguf_id(1000).has_value());
}

// ---------------------------------------------------------------------------
// Random blocks vs. gguf-py

TEST(Dequantize, RandomBlocksMatchGgufPyBitForBit) {
  for (DType type : kAllTypes) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const QuantFixture fixture = load_quant_fixture(type);
    const auto n = static_cast<int64_t>(fixture.expected.size());
    ASSERT_GT(n, 0);
    ASSERT_EQ(dtype_bytes_for(type, n), static_cast<int64_t>(fixture.data.size()));

    std::vector<float> out(fixture.expected.size());
    dequantize(type, fixture.data.data(), n, out.data());
    EXPECT_TRUE(bits_equal(out.data(), fixture.expected.data(), n));

    // Blocks inside a file have no alignment: run again from an odd address.
    std::vector<uint8_t> shifted(fixture.data.size() + 1);
    std::memcpy(shifted.data() + 1, fixture.data.data(), fixture.data.size());
    std::vector<float> out_unaligned(fixture.expected.size());
    dequantize(type, shifted.data() + 1, n, out_unaligned.data());
    EXPECT_TRUE(bits_equal(out_unaligned.data(), fixture.expected.data(), n));
  }
}

TEST(Dequantize, PartialBlockCountThrows) {
  std::vector<uint8_t> data(34, 0);
  std::vector<float> out(32);
  EXPECT_THROW(dequantize(DType::Q8_0, data.data(), 31, out.data()), Error);
}

// ---------------------------------------------------------------------------
// Row ranges

TEST(DequantizeRows, AnyRowRangeMatchesWholeTensor) {
  for (DType type : kAllTypes) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const QuantFixture fixture = load_quant_fixture(type);
    const auto n = static_cast<int64_t>(fixture.expected.size());
    const int64_t row_length = n / kQuantFixtureRows;
    const TensorView view = view_of(fixture, type, {kQuantFixtureRows, row_length});
    ASSERT_EQ(view.rows(), kQuantFixtureRows);

    for (int64_t first = 0; first < kQuantFixtureRows; ++first) {
      for (int64_t count = 0; first + count <= kQuantFixtureRows; ++count) {
        std::vector<float> out(static_cast<size_t>(count * row_length) + 1);
        dequantize_rows(view, first, count, out.data());
        ASSERT_TRUE(bits_equal(out.data(), fixture.expected.data() + first * row_length, count * row_length))
            << "rows [" << first << ", " << first + count << ")";
      }
    }

    // A 3-D view of the same bytes has the same rows.
    const TensorView view_3d = view_of(fixture, type, {2, kQuantFixtureRows / 2, row_length});
    ASSERT_EQ(view_3d.rows(), kQuantFixtureRows);
    std::vector<float> out(fixture.expected.size());
    dequantize_rows(view_3d, 0, kQuantFixtureRows, out.data());
    EXPECT_TRUE(bits_equal(out.data(), fixture.expected.data(), n));
  }
}

TEST(DequantizeRows, OutOfRangeRowsThrowNamingTheTensor) {
  const QuantFixture fixture = load_quant_fixture(DType::Q4_1);
  const auto row_length = static_cast<int64_t>(fixture.expected.size()) / kQuantFixtureRows;
  const TensorView view = view_of(fixture, DType::Q4_1, {kQuantFixtureRows, row_length});
  std::vector<float> out(fixture.expected.size());
  const std::pair<int64_t, int64_t> bad_ranges[] = {
      {-1, 1}, {0, -1}, {0, kQuantFixtureRows + 1}, {kQuantFixtureRows, 1}, {kQuantFixtureRows + 1, 0},
      {1, std::numeric_limits<int64_t>::max()}, {std::numeric_limits<int64_t>::max(), 1},
  };
  for (const auto& [first, count] : bad_ranges) {
    try {
      dequantize_rows(view, first, count, out.data());
      ADD_FAILURE() << "rows " << first << " + " << count << " did not throw";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("fixture.Q4_1"), std::string::npos) << error.what();
    }
  }
  EXPECT_NO_THROW(dequantize_rows(view, kQuantFixtureRows, 0, out.data()));
}

TEST(DequantizeRows, ViewShorterThanItsShapeThrows) {
  const QuantFixture fixture = load_quant_fixture(DType::Q8_0);
  const auto row_length = static_cast<int64_t>(fixture.expected.size()) / kQuantFixtureRows;
  TensorView view = view_of(fixture, DType::Q8_0, {kQuantFixtureRows, row_length});
  view.nbytes -= 1;
  std::vector<float> out(fixture.expected.size());
  EXPECT_THROW(dequantize_rows(view, 0, kQuantFixtureRows, out.data()), Error);
  EXPECT_NO_THROW(dequantize_rows(view, 0, kQuantFixtureRows - 1, out.data()));
}

TEST(DequantizeRows, TensorViewShapeHelpers) {
  TensorView view;
  view.type = DType::Q4_0;
  view.shape = {1536, 576};
  EXPECT_EQ(view.elements(), 1536 * 576);
  EXPECT_EQ(view.rows(), 1536);
  EXPECT_EQ(view.row_bytes(), 18 * 18);
  EXPECT_EQ(view.shape_string(), "[1536, 576]");
  view.shape = {};
  EXPECT_EQ(view.elements(), 1);
  EXPECT_EQ(view.shape_string(), "[]");
  view.shape = {4, 0};
  EXPECT_EQ(view.elements(), 0);
  EXPECT_EQ(view.rows(), 0);
}

// ---------------------------------------------------------------------------
// Every tensor of the default model vs. gguf-py

TEST(DequantizeDefaultModel, EveryTensorMatchesGgufPyDigest) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model_path);
  const std::string json_path = testing::fixture_path("quant_blocks/default_model_tensors.json");
  ASSERT_TRUE(std::filesystem::exists(json_path)) << json_path << " missing: run gen_quant_blocks.py with --model";
  std::ifstream json_in(json_path);
  const nlohmann::json manifest = nlohmann::json::parse(json_in);
  ASSERT_EQ(std::filesystem::file_size(model_path), manifest["fingerprint"]["size"].get<uint64_t>())
      << "the digests were made from a different model file";

  const std::shared_ptr<MappedFile> file = MappedFile::open(model_path);
  int checked = 0;
  std::vector<float> buffer;
  for (const nlohmann::json& entry : manifest["tensors"]) {
    TensorView view;
    view.name = entry["name"].get<std::string>();
    SCOPED_TRACE(view.name);
    const std::optional<DType> type = dtype_from_gguf_id(entry["type_id"].get<uint32_t>());
    ASSERT_TRUE(type.has_value()) << gguf_type_id_name(entry["type_id"].get<uint32_t>());
    view.type = *type;
    const std::vector<int64_t> ne = entry["ne"].get<std::vector<int64_t>>();
    view.shape.assign(ne.rbegin(), ne.rend());  // GGUF lists the innermost dimension first
    const auto offset = entry["data_offset"].get<int64_t>();
    view.nbytes = entry["n_bytes"].get<int64_t>();
    ASSERT_LE(offset + view.nbytes, file->size());
    ASSERT_EQ(dtype_bytes_for(view.type, view.elements()), view.nbytes);
    view.data = file->data() + offset;

    // Stream a few rows at a time, the way the decoders read weights.
    const int64_t rows_per_chunk = 61;  // not a divisor of the usual sizes, so the last chunk is partial
    buffer.resize(static_cast<size_t>(rows_per_chunk * view.row_length()));
    Sha256 digest;
    for (int64_t row = 0; row < view.rows(); row += rows_per_chunk) {
      const int64_t count = std::min(rows_per_chunk, view.rows() - row);
      dequantize_rows(view, row, count, buffer.data());
      digest.update(buffer.data(), static_cast<size_t>(count * view.row_length()) * sizeof(float));
    }
    EXPECT_EQ(digest.hex_digest(), entry["sha256"].get<std::string>());
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// ---------------------------------------------------------------------------
// SHA-256

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256().hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.update("abc", 3);
  EXPECT_EQ(abc.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the length no longer fits in the first padded block.
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  Sha256 longer;
  longer.update(two_blocks.data(), two_blocks.size());
  EXPECT_EQ(longer.hex_digest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// The SHA extensions' compression against FIPS 180-4's "abc" digest (one
// padded block) and against the portable code on random states and data,
// block counts 1 .. 17 and 300.
TEST(Sha256, ShaExtensionsMatchPortableCompression) {
  if (!sha256_detail::cpu_has_sha_ni()) GTEST_SKIP() << "this CPU has no SHA extensions (CPUID.(7,0):EBX.SHA)";
#if defined(__x86_64__)
  uint8_t abc_block[64] = {'a', 'b', 'c', 0x80};
  abc_block[63] = 24;  // the message length in bits, big-endian
  uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  sha256_detail::compress_sha_ni(state, abc_block, 1);
  const uint32_t abc_digest[8] = {0xba7816bf, 0x8f01cfea, 0x414140de, 0x5dae2223,
                                  0xb00361a3, 0x96177a9c, 0xb410ff61, 0xf20015ad};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(state[i], abc_digest[i]) << "word " << i;

  std::mt19937 rng(7);
  std::vector<uint8_t> data(300 * 64);
  for (auto& byte : data) byte = static_cast<uint8_t>(rng());
  for (size_t count : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 300}) {
    uint32_t portable[8], extensions[8];
    for (int i = 0; i < 8; ++i) portable[i] = extensions[i] = static_cast<uint32_t>(rng());
    sha256_detail::compress_portable(portable, data.data(), count);
    sha256_detail::compress_sha_ni(extensions, data.data(), count);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(extensions[i], portable[i]) << count << " blocks, word " << i;
  }
#endif
}

TEST(Sha256, StreamingInOddPiecesMatchesOneShot) {
  // One million 'a', fed in pieces that straddle block boundaries.
  const std::string million(1000000, 'a');
  Sha256 pieces;
  size_t fed = 0;
  for (size_t piece = 1; fed < million.size(); piece = piece * 7 % 1000 + 1) {
    const size_t take = std::min(piece, million.size() - fed);
    pieces.update(million.data() + fed, take);
    fed += take;
  }
  EXPECT_EQ(pieces.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // hex_digest leaves the state alone, so it can be asked twice.
  EXPECT_EQ(pieces.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FileDigest) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("neuronlens_sha256_" + std::to_string(::getpid()));
  {
    std::ofstream out(path, std::ios::binary);
    out << "abc";
  }
  EXPECT_EQ(sha256_file_hex(path.string()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::filesystem::remove(path);
  EXPECT_THROW(sha256_file_hex(path.string()), Error);
}

}  // namespace
}  // namespace neuronlens
