// The agreement score (neuronlens/record_agreement.h) on a record written by
// hand into a mapped tiny atlas, where the answer is known: neuron 0 of
// layer 0 has three top contexts with a next token (two of them followed by
// tokens of its down decode's top-k, one not) and one at its chunk's end; two
// of the six tokens that follow recorded positions are in its top-k.
#include <gtest/gtest.h>

#include <algorithm>

#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/record_agreement.h"
#include "scratch_dir.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

NeuronContext context_at(int64_t chunk, int32_t offset, float activation) {
  NeuronContext c;
  c.chunk = chunk;
  c.offset = offset;
  c.activation = activation;
  c.window_start = offset;
  return c;
}

TEST(RecordAgreement, RateAndChanceOfAHandWrittenRecord) {
  testing::ScratchDir dir;
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  MapOptions map;
  map.kinds = {VectorKind::Down};
  map.layers = {0};
  Atlas atlas = Atlas::create_or_resume(dir.file("a.db"), atlas_settings_for(model, map.settings), model.vocab());
  EXPECT_THROW(record_agreement(atlas), Error);  // no record yet
  run_neuron_map(model, map, atlas);

  const std::vector<int32_t> top = atlas.layer_topk(VectorKind::Down, 0).at(0);
  std::vector<int32_t> outside;
  for (int32_t id = 2; outside.size() < 4; ++id) {
    if (std::find(top.begin(), top.end(), id) == top.end()) outside.push_back(id);
  }
  // offsets:                  0  1           2  3           4           5           6           7
  const std::vector<int32_t> chunk = {1, outside[0], top[0], outside[1], top[1], outside[2], outside[3], outside[0]};
  RecordInfo info;
  info.files = {{"hand.txt", std::string(64, 'a'), 10, 1}};
  info.seq_len = 8;
  info.chunks_total = 1;
  info.contexts = 4;
  info.window = 0;
  info.density_threshold = 0.1;
  info.identity = "hand-written";
  atlas.begin_record(info, {chunk}, {0});
  std::vector<std::vector<NeuronRecordState>> states(2, std::vector<NeuronRecordState>(96));
  states[0][0].positive = {context_at(0, 1, 3.0f), context_at(0, 3, 2.0f), context_at(0, 5, 1.5f),
                           context_at(0, 7, 1.0f)};
  states[0][0].negative = {context_at(0, 2, -1.0f)};  // the negative side is not scored
  atlas.write_record_checkpoint(1, 7, states);

  const ContextAgreementReport report = record_agreement(atlas);
  ASSERT_EQ(report.layers.size(), 1u);  // layer 1's down vectors are not mapped
  const LayerContextAgreement& layer = report.layers[0];
  EXPECT_EQ(layer.layer, 0);
  EXPECT_EQ(layer.neurons, 1);  // the other neurons have no contexts
  EXPECT_NEAR(layer.mean_rate, 2.0 / 3.0, 1e-12);
  // Next tokens (offsets 2..7): top[0], outside[1], top[1], outside[2],
  // outside[3], outside[0]: two of six in the top-k.
  EXPECT_NEAR(layer.mean_chance, 2.0 / 6.0, 1e-12);
  EXPECT_DOUBLE_EQ(layer.above_chance, 1.0);
  const NeuronContextAgreement& n = report.neurons.at(0);
  EXPECT_EQ(n.contexts, 3);
  EXPECT_EQ(n.hits, 2);
  const std::string svg = agreement_svg(report, "test");
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("layer 0: 66.7%"), std::string::npos) << svg;
  // The up kind is not mapped: a clear error.
  EXPECT_THROW(record_agreement(atlas, VectorKind::Up), Error);
}

}  // namespace
}  // namespace neuronlens
