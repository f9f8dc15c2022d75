// The online softmax fold (decode/online_softmax.h) against float64 sums over
// the whole row, for tiles that keep, raise a little, and raise by far more
// than exp can shift in float (the re-done tile).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "decode/online_softmax.h"

namespace neuronlens::decode_detail {
namespace {

struct Exact {
  double logsumexp, entropy;
};

Exact exact_of(const std::vector<float>& z) {
  double m = -INFINITY;
  for (float x : z) m = std::max(m, static_cast<double>(x));
  double sum = 0;
  for (float x : z) sum += std::exp(x - m);
  const double lse = m + std::log(sum);
  double h = 0;
  for (float x : z) h -= std::exp(x - lse) * (x - lse);
  return {lse, h};
}

TEST(OnlineSoftmax, TilesFoldToTheWholeRowsSoftmax) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  // Offsets added to each of four 1000-logit tiles: the running maximum
  // kept; raised by a few; raised by 100 (past the 60 a one-pass tile may
  // exceed it by, so that tile is redone); and a far lower tile.
  const std::vector<std::vector<float>> cases = {{0, 0, 0, 0}, {0, 4, 9, 2}, {0, 100, 1, 105}, {100, -200, 0, 0}};
  for (const auto& offsets : cases) {
    std::vector<float> z;
    OnlineSoftmax sm;
    for (float offset : offsets) {
      std::vector<float> tile(1000);
      for (float& x : tile) x = dist(rng) + offset;
      sm.add_tile(tile.data(), static_cast<int64_t>(tile.size()));
      z.insert(z.end(), tile.begin(), tile.end());
    }
    const Exact e = exact_of(z);
    EXPECT_NEAR(sm.logsumexp(), e.logsumexp, 1e-5 * std::max(1.0, std::abs(e.logsumexp)))
        << "offsets " << offsets[0] << " " << offsets[1] << " " << offsets[2] << " " << offsets[3];
    EXPECT_NEAR(sm.entropy(), e.entropy, 1e-5 * std::max(1.0, e.entropy))
        << "offsets " << offsets[0] << " " << offsets[1] << " " << offsets[2] << " " << offsets[3];
  }
}

}  // namespace
}  // namespace neuronlens::decode_detail
