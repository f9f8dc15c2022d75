// Weight edits written to a GGUF copy (neuronlens/model_edit.h,
// gguf_writer.h, edit_effect.h): the copy's untouched tensors and metadata
// are byte-identical to the source's; an edited vector reads back as its
// intended values within the type's rounding; an ablation or a scale written
// into the weights gives the logits the runtime's hooks give; TARS lowers
// the default model's p(dog) after dog prompts, and the KL on neutral text
// is reported.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/decode.h"
#include "neuronlens/edit_effect.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/gguf_writer.h"
#include "neuronlens/model_edit.h"
#include "neuronlens/quantize.h"
#include "neuronlens/runtime.h"
#include "neuronlens/text_model.h"
#include "scratch_dir.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

std::vector<float> rows_of(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.elements()));
  dequantize_rows(t, 0, t.rows(), out.data());
  return out;
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.type == b.type && a.nbytes == b.nbytes && a.shape == b.shape && std::memcmp(a.data, b.data, static_cast<size_t>(a.nbytes)) == 0;
}

std::vector<int32_t> some_tokens(const ModelConfig& c) {
  std::vector<int32_t> t;
  for (int i = 0; i < 12; ++i) t.push_back(static_cast<int32_t>((i * 37 + 5) % c.vocab_size));
  return t;
}

// Every tensor not in `changed` has the source's bytes; every metadata key of
// the source is written as it was, but `neuronlens.edit`.
void expect_untouched_elsewhere(const GgufFile& src, const GgufFile& out, const std::vector<std::string>& changed) {
  ASSERT_EQ(src.tensors().size(), out.tensors().size());
  for (const TensorView& t : src.tensors()) {
    const TensorView* o = out.find_tensor(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    if (std::find(changed.begin(), changed.end(), t.name) != changed.end()) continue;
    EXPECT_TRUE(same_bytes(t, *o)) << t.name << " changed";
  }
  for (size_t i = 0; i < src.keys().size(); ++i) {
    if (src.keys()[i] == "neuronlens.edit") continue;
    const auto [a0, a1] = src.key_span(i);
    const auto it = std::find(out.keys().begin(), out.keys().end(), src.keys()[i]);
    ASSERT_NE(it, out.keys().end()) << src.keys()[i];
    const auto [b0, b1] = out.key_span(static_cast<size_t>(it - out.keys().begin()));
    ASSERT_EQ(a1 - a0, b1 - b0) << src.keys()[i];
    EXPECT_EQ(0, std::memcmp(src.mapping()->data() + a0, out.mapping()->data() + b0, static_cast<size_t>(a1 - a0)))
        << src.keys()[i];
  }
}

TEST(GgufCopy, KeepsEveryTensorAndKeyAndAddsOrReplacesAString) {
  testing::ScratchDir dir;
  const GgufFile src = GgufFile::open(testing::fixture_path("tiny_llama.gguf"));
  write_gguf_copy(src, {{}, {{"neuronlens.edit", "first"}}}, dir.file("a.gguf"));
  const GgufFile a = GgufFile::open(dir.file("a.gguf"));
  expect_untouched_elsewhere(src, a, {});
  EXPECT_EQ(a.keys().size(), src.keys().size() + 1);
  EXPECT_EQ(a.get_string("neuronlens.edit"), "first");
  // A copy of the copy replaces the key where it was, not beside it.
  write_gguf_copy(a, {{}, {{"neuronlens.edit", "second"}}}, dir.file("b.gguf"));
  const GgufFile b = GgufFile::open(dir.file("b.gguf"));
  EXPECT_EQ(b.keys(), a.keys());
  EXPECT_EQ(b.get_string("neuronlens.edit"), "second");
}

TEST(GgufCopy, RefusesItsSourceAWrongSizeAndAnUnknownTensor) {
  testing::ScratchDir dir;
  const GgufFile src = GgufFile::open(testing::fixture_path("tiny_llama.gguf"));
  EXPECT_THROW(write_gguf_copy(src, {}, src.path()), Error);
  GgufCopyChanges wrong;
  wrong.tensors["output_norm.weight"] = {DType::F32, std::vector<uint8_t>(3)};
  EXPECT_THROW(write_gguf_copy(src, wrong, dir.file("w.gguf")), Error);
  GgufCopyChanges unknown;
  unknown.tensors["no.such.tensor"] = {DType::F32, {}};
  EXPECT_THROW(write_gguf_copy(src, unknown, dir.file("u.gguf")), Error);
  try {
    write_gguf_copy(src, {}, dir.file("no/such/folder/x.gguf"));
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write '" + dir.file("no/such/folder/x.gguf") + "'"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("w.gguf")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("u.gguf")));
}

// On the float32 tiny model an edit is exact, so the weights of the copy and
// the runtime's hooks must give the same logits.
TEST(ModelEdit, AblationAndScaleInTheWeightsEqualTheRuntimeHooks) {
  testing::ScratchDir dir;
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const std::vector<VectorEdit> edits = {ablation_edit(model, {1, 7}), scale_edit(model, {0, 11}, 2.5f)};
  const auto written = write_edited_gguf(model, edits, "test", dir.file("e.gguf"));
  ASSERT_EQ(written.size(), 2u);
  const Model edited = Model::load(dir.file("e.gguf"));
  expect_untouched_elsewhere(*model.gguf(), *edited.gguf(), {"blk.0.ffn_up.weight", "blk.1.ffn_up.weight"});

  Session hooked(model);
  hooked.ablate_neurons(1, {7});
  hooked.scale_neurons(0, {11}, 2.5f);
  Session plain_edited(edited);
  const auto tokens = some_tokens(model.config());
  const std::vector<float> want = hooked.forward(tokens);
  const std::vector<float> got = plain_edited.forward(tokens);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << i;
  // And the edit did something: the plain model differs.
  Session plain(model);
  const std::vector<float> before = plain.forward(tokens);
  double moved = 0;
  for (size_t i = 0; i < want.size(); ++i) moved = std::max(moved, std::fabs(double(before[i]) - want[i]));
  EXPECT_GT(moved, 1e-3);
}

// The ranking is the brute-force best cosine, and a tars edit writes
// -|w| t̂ into the row (up) or the column (down).
TEST(ModelEdit, TarsReplacesTheMostSimilarVectorsByTheReversedDirection) {
  testing::ScratchDir dir;
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const ModelConfig& c = model.config();
  const ConceptTokens ct = expand_concept(model.vocab(), "the", false);
  const TargetingVector t = concept_targeting_vector(model, ct.ids, 20);
  EXPECT_GE(t.concept_prob, t.concept_prob_start);
  double norm = 0;
  for (float x : t.direction) norm += double(x) * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);

  for (VectorKind kind : {VectorKind::Up, VectorKind::Down}) {
    const auto targets = rank_edit_targets(model, t.direction, {kind}, {}, 3);
    ASSERT_EQ(targets.size(), 3u);
    // Brute force, float64, from load_neuron_vectors.
    double best = -2;
    EditTarget best_target;
    std::vector<float> vectors;
    for (int64_t l = 0; l < c.n_layers; ++l) {
      load_neuron_vectors(model, kind, l, vectors);
      for (int64_t i = 0; i < c.d_ffn; ++i) {
        double dot = 0, n = 0;
        for (int64_t j = 0; j < c.d_model; ++j) {
          dot += double(vectors[i * c.d_model + j]) * t.direction[j];
          n += double(vectors[i * c.d_model + j]) * vectors[i * c.d_model + j];
        }
        if (dot / std::sqrt(n) > best) best = dot / std::sqrt(n), best_target = {kind, l, i, best};
      }
    }
    EXPECT_EQ(targets[0].layer, best_target.layer);
    EXPECT_EQ(targets[0].neuron, best_target.neuron);
    EXPECT_NEAR(targets[0].cosine, best, 1e-6);
    EXPECT_GE(targets[0].cosine, targets[1].cosine);
    EXPECT_GE(targets[1].cosine, targets[2].cosine);

    const VectorEdit edit = reversal_edit(model, targets[0], t.direction, EditMethod::Tars);
    const std::string out = dir.file(std::string(vector_kind_name(kind)) + ".gguf");
    write_edited_gguf(model, {edit}, "tars", out);
    const Model edited = Model::load(out);
    std::vector<float> before, after;
    load_neuron_vectors(model, kind, targets[0].layer, before);
    load_neuron_vectors(edited, kind, targets[0].layer, after);
    double w_norm = 0;
    for (int64_t j = 0; j < c.d_model; ++j) w_norm += double(before[targets[0].neuron * c.d_model + j]) * before[targets[0].neuron * c.d_model + j];
    for (int64_t i = 0; i < c.d_ffn; ++i) {
      for (int64_t j = 0; j < c.d_model; ++j) {
        const float got = after[i * c.d_model + j];
        if (i == targets[0].neuron) {
          ASSERT_NEAR(got, -std::sqrt(w_norm) * t.direction[j], 1e-6) << i << "," << j;
        } else {
          ASSERT_EQ(got, before[i * c.d_model + j]) << i << "," << j;
        }
      }
    }
  }
}

TEST(ModelEdit, BadEditsAreRefused) {
  testing::ScratchDir dir;
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const std::vector<float> direction(static_cast<size_t>(model.config().d_model), 1.0f);
  EXPECT_THROW(rank_edit_targets(model, direction, {VectorKind::Up}, {}, 0), Error);
  EXPECT_THROW(rank_edit_targets(model, direction, {VectorKind::Up}, {}, 2 * 96 + 1), Error);
  EXPECT_NO_THROW(rank_edit_targets(model, direction, {VectorKind::Up}, {}, 2 * 96));
  EXPECT_THROW(rank_edit_targets(model, direction, {VectorKind::Up}, {5}, 1), Error);
  EXPECT_THROW(ablation_edit(model, {0, 96}), Error);
  EXPECT_THROW(write_edited_gguf(model, {ablation_edit(model, {0, 1}), scale_edit(model, {0, 1}, 2)}, "", dir.file("x.gguf")),
               Error);
  EXPECT_THROW(write_edited_gguf(model, {ablation_edit(model, {0, 1})}, "", model.path()), Error);
  const Model folder = Model::load(testing::fixture_path("tiny_llama_hf"));
  EXPECT_THROW(write_edited_gguf(folder, {ablation_edit(folder, {0, 1})}, "", dir.file("y.gguf")), Error);
}

// A block type: an edited row is the quantisation of its intended values
// (so within half a step of them), the tensor's other rows keep their bytes;
// an edited column changes one block per row.
TEST(ModelEdit, DefaultModelRowsAndColumnsAreRequantisedInPlace) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  testing::ScratchDir dir;
  const Model model = Model::load(path);
  const ModelConfig& c = model.config();
  const TensorView& up = model.weight(WeightKind::FfnUp, 20);
  const TensorView& down = model.weight(WeightKind::FfnDown, 20);
  ASSERT_TRUE(can_quantize(up.type) && can_quantize(down.type)) << dtype_name(up.type);
  std::vector<float> intended(static_cast<size_t>(c.d_model));
  for (size_t j = 0; j < intended.size(); ++j) intended[j] = 0.05f * std::sin(0.1f * static_cast<float>(j));
  const VectorEdit row{VectorKind::Up, 20, 100, intended, "row"};
  const VectorEdit column{VectorKind::Down, 20, 333, intended, "column"};
  const auto written = write_edited_gguf(model, {row, column}, "test", dir.file("e.gguf"));
  const Model edited = Model::load(dir.file("e.gguf"));
  expect_untouched_elsewhere(*model.gguf(), *edited.gguf(), {up.name, down.name});
  EXPECT_EQ(edited.gguf()->get_string("neuronlens.edit"), "test");

  const TensorView& up2 = edited.weight(WeightKind::FfnUp, 20);
  ASSERT_EQ(up2.type, up.type);
  for (int64_t r = 0; r < up.rows(); ++r) {
    const bool same = std::memcmp(up.data + r * up.row_bytes(), up2.data + r * up.row_bytes(), static_cast<size_t>(up.row_bytes())) == 0;
    EXPECT_EQ(same, r != 100) << "up row " << r;
  }
  std::vector<uint8_t> q(static_cast<size_t>(up.row_bytes()));
  quantize(up.type, intended.data(), c.d_model, q.data());
  EXPECT_EQ(0, std::memcmp(q.data(), up2.data + 100 * up.row_bytes(), q.size()));
  std::vector<float> back(static_cast<size_t>(c.d_model));
  dequantize_rows(up2, 100, 1, back.data());
  for (int64_t b = 0; b < c.d_model / 32; ++b) {
    const auto first = intended.begin() + b * 32;
    const auto [lo, hi] = std::minmax_element(first, first + 32);
    const float step = (*hi - *lo) / 15.0f;  // Q4_1's step; finer types do better
    for (int64_t j = b * 32; j < b * 32 + 32; ++j) ASSERT_NEAR(back[j], intended[j], 0.51f * step + 1e-6f) << j;
  }

  const TensorView& down2 = edited.weight(WeightKind::FfnDown, 20);
  const std::vector<float> d_before = rows_of(down), d_after = rows_of(down2);
  const int64_t F = c.d_ffn, block = dtype_traits(down.type).block_elements;
  for (int64_t r = 0; r < c.d_model; ++r) {
    // Within half a step of the requantised block: its old values with the
    // column's new one.
    std::vector<float> values(d_before.begin() + r * F + 333 / block * block,
                              d_before.begin() + r * F + 333 / block * block + block);
    values[333 % block] = intended[r];
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    EXPECT_NEAR(d_after[r * F + 333], intended[r], 0.51f * (*hi - *lo) / 15.0f + 1e-6f) << r;
    for (int64_t i = 0; i < F; ++i) {
      if (i / block == 333 / block) continue;  // the block holding the column is requantised
      ASSERT_EQ(d_after[r * F + i], d_before[r * F + i]) << r << "," << i;
    }
  }
}

// A K-quant tensor has no quantiser here: it becomes F16, the edited column
// exactly the F16 of its values, every other value the F16 of its
// dequantised value.
TEST(ModelEdit, KQuantTensorIsStoredAsF16) {
  NEURONLENS_REQUIRE_GEMMA3_MODEL(path);
  testing::ScratchDir dir;
  const Model model = Model::load(path);
  // Gemma 3 270M's rows of d = 640 are not whole K-quant blocks of 256, so
  // its K-quants are the down projections [d, F].
  int64_t layer = 0;
  while (layer < model.config().n_layers && can_quantize(model.weight(WeightKind::FfnDown, layer).type)) ++layer;
  ASSERT_LT(layer, model.config().n_layers);
  const TensorView& down = model.weight(WeightKind::FfnDown, layer);
  std::vector<float> intended(static_cast<size_t>(model.config().d_model));
  for (size_t j = 0; j < intended.size(); ++j) intended[j] = 0.01f * std::sin(0.3f * static_cast<float>(j));
  const auto written = write_edited_gguf(model, {{VectorKind::Down, layer, 10, intended, "k"}}, "k", dir.file("k.gguf"));
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].from, down.type);
  EXPECT_EQ(written[0].to, DType::F16);
  const Model edited = Model::load(dir.file("k.gguf"));
  const TensorView& down2 = edited.weight(WeightKind::FfnDown, layer);
  ASSERT_EQ(down2.type, DType::F16);
  const std::vector<float> before = rows_of(down), after = rows_of(down2);
  const int64_t F = down.row_length();
  for (int64_t r = 0; r < down.rows(); ++r) {
    for (int64_t i = 0; i < F; ++i) {
      const float want = i == 10 ? intended[static_cast<size_t>(r)] : before[r * F + i];
      uint8_t h[2];
      quantize(DType::F16, &want, 1, h);
      float rounded;
      dequantize(DType::F16, h, 1, &rounded);
      ASSERT_EQ(after[r * F + i], rounded) << r << "," << i;
    }
  }
}

// The paper's method on the default model: one TARS edit of an up row lowers
// p(dog) after prompts that lead to "dog"; the neutral-text KL is reported.
TEST(ModelEdit, TarsLowersTheDefaultModelsDogProbability) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  testing::ScratchDir dir;
  const TextModel tm = TextModel::load(path);
  const Model& model = tm.model;
  const ConceptTokens ct = expand_concept(model.vocab(), "dog", false);
  const TargetingVector t = concept_targeting_vector(model, ct.ids);
  const auto targets = rank_edit_targets(model, t.direction, {VectorKind::Up}, {}, 1);
  write_edited_gguf(model, {reversal_edit(model, targets[0], t.direction, EditMethod::Tars)}, "tars dog",
                    dir.file("nodog.gguf"));
  const Model edited = Model::load(dir.file("nodog.gguf"));
  std::vector<std::vector<int32_t>> prompts;
  for (const char* p : {"It's raining cats and", "The dog barked at the mailman. The", "He took his dog for a walk. The",
                        "A Labrador is a breed of", "Wolves are the wild ancestors of domestic"}) {
    prompts.push_back(tm.prompt_tokens(p, false));
  }
  const std::vector<int32_t> neutral = tm.prompt_tokens(
      "The committee met on Tuesday to review the budget for the coming year. Several members asked for more detail "
      "on the costs of the new library, which is due to open in the spring. The chair said that the figures would be "
      "published next month, after the auditors have finished their work. In other business, the council approved a "
      "plan to repair the old bridge over the river, and agreed to plant trees along the main road.",
      false);
  const EditEffect effect = measure_edit_effect(model, edited, ct.ids, prompts, neutral);
  const double before = std::accumulate(effect.concept_before.begin(), effect.concept_before.end(), 0.0) / 5;
  const double after = std::accumulate(effect.concept_after.begin(), effect.concept_after.end(), 0.0) / 5;
  std::cout << "edited " << vector_kind_name(targets[0].kind) << " " << targets[0].layer << ":" << targets[0].neuron
            << " (cos " << targets[0].cosine << "); mean p(dog) " << before << " -> " << after << "; neutral KL mean "
            << effect.kl_mean << ", median " << effect.kl_median << ", max " << effect.kl_max << " nats over "
            << effect.kl.size() << " positions\n";
  EXPECT_GT(before, 0.3);
  EXPECT_LT(after, 0.5 * before);
  EXPECT_LT(effect.kl_mean, 0.01);
  EXPECT_EQ(effect.kl.size(), neutral.size());
}

TEST(EditCli, BadInputExitsWithTwo) {
  testing::ScratchDir dir;
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const std::string cli = testing::cli_path() + " edit " + model + " ";
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"--remove xqzvbnmk -o " + dir.file("a.gguf"), "not a single token"},
      {"--remove the -o " + model, "is the model file itself"},
      {"--remove the --max-edits 0 -o " + dir.file("a.gguf"), "--max-edits: max edits is 0"},
      {"--remove the --max-edits 100000 -o " + dir.file("a.gguf"), "it must be 1 to 192"},
      {"-o " + dir.file("a.gguf"), "nothing to edit"},
      {"--ablate 0:1 --scale 0:1=2 -o " + dir.file("a.gguf"), "edited twice"},
      {"--ablate 9:1 -o " + dir.file("a.gguf"), "--ablate: '9:1': layer 9 is out of range"},
      {"--remove the --method flip -o " + dir.file("a.gguf"), "not an edit method"},
      {"--remove the --control the -o " + dir.file("a.gguf"), "--control and --control-prompt go together"},
      {"--ablate 0:1 -p hello -o " + dir.file("a.gguf"), "give --remove CONCEPT with it"},
  };
  for (const Case& c : cases) {
    std::string output;
    EXPECT_EQ(testing::run_command(cli + c.args, output), 2) << c.args << "\n" << output;
    EXPECT_NE(output.find(c.message), std::string::npos) << c.args << "\n" << output;
  }
  std::string output;
  EXPECT_EQ(testing::run_command(testing::cli_path() + " edit " + testing::fixture_path("tiny_llama_hf") +
                                     " --ablate 0:1 -o " + dir.file("b.gguf"),
                                 output),
            2);
  EXPECT_NE(output.find("Hugging Face folder"), std::string::npos) << output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.gguf")));
}

}  // namespace
}  // namespace neuronlens
