// The random quantised blocks of scripts/fixtures/gen_quant_blocks.py
// (quant_blocks/TYPE.bin: kQuantFixtureRows rows of 16 blocks, fp16 scales
// finite: normal, subnormal, zero, negative) and gguf-py's dequantisation of
// them (TYPE.f32), for the dequantisation and block-kernel tests.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "neuronlens/dtype.h"
#include "neuronlens/tensor.h"
#include "test_paths.h"

namespace neuronlens::testing {

inline constexpr int64_t kQuantFixtureRows = 8;  // ROWS in gen_quant_blocks.py

struct QuantFixture {
  std::vector<uint8_t> data;    // raw GGUF blocks
  std::vector<float> expected;  // gguf.quants.dequantize of `data`
};

inline std::vector<uint8_t> read_fixture_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot open fixture " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline QuantFixture load_quant_fixture(DType type) {
  const std::string stem = fixture_path("quant_blocks/" + std::string(dtype_name(type)));
  QuantFixture fixture;
  fixture.data = read_fixture_bytes(stem + ".bin");
  const std::vector<uint8_t> expected_bytes = read_fixture_bytes(stem + ".f32");
  fixture.expected.resize(expected_bytes.size() / sizeof(float));
  std::memcpy(fixture.expected.data(), expected_bytes.data(), expected_bytes.size());
  return fixture;
}

// A tensor of `shape` over the fixture's blocks (which must outlive it).
inline TensorView view_of(const QuantFixture& fixture, DType type, std::vector<int64_t> shape) {
  TensorView view;
  view.name = "fixture." + std::string(dtype_name(type));
  view.type = type;
  view.shape = std::move(shape);
  view.data = fixture.data.data();
  view.nbytes = static_cast<int64_t>(fixture.data.size());
  return view;
}

}  // namespace neuronlens::testing
