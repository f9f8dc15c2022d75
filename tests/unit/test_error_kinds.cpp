// Every Error says whose fault it is (issue 16): the CLI exits 2 for bad
// input and bad files and 1 for internal errors; the server answers 400, 422
// and 500. These check the kind at representative throw sites of each layer.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "neuronlens/atlas.h"
#include "neuronlens/decode.h"
#include "neuronlens/error.h"
#include "neuronlens/interventions.h"
#include "neuronlens/model.h"
#include "neuronlens/neuron_map.h"
#include "scratch_dir.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

template <typename Call>
ErrorKind kind_of(Call call) {
  try {
    call();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no Error thrown";
  return ErrorKind::Internal;
}

TEST(ErrorKinds, FilesThatAreMissingOrMalformedAreBadFiles) {
  const testing::ScratchDir dir;
  EXPECT_EQ(kind_of([&] { Model::load(dir.file("absent.gguf")); }), ErrorKind::BadFile);
  std::ofstream(dir.file("junk.gguf")) << "not a model";
  EXPECT_EQ(kind_of([&] { Model::load(dir.file("junk.gguf")); }), ErrorKind::BadFile);
  std::ofstream(dir.file("junk.db")) << "not an atlas, not even SQLite";
  EXPECT_EQ(kind_of([&] { Atlas::open(dir.file("junk.db")); }), ErrorKind::BadFile);
}

TEST(ErrorKinds, ArgumentsTheCallerCanFixAreBadInput) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  DecodeSettings zero_k;
  zero_k.top_k = 0;
  EXPECT_EQ(kind_of([&] { LmHeadDecoder(model, zero_k); }), ErrorKind::BadInput);
  EXPECT_EQ(kind_of([&] { parse_layer_list("3-1", model.config().n_layers); }), ErrorKind::BadInput);
  EXPECT_EQ(kind_of([&] { parse_clamp("1:5", model.config()); }), ErrorKind::BadInput);
}

}  // namespace
}  // namespace neuronlens
