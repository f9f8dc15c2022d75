// Parsing of the layer, kind, neuron and intervention arguments shared by the
// front ends (the CLI and the server).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/interventions.h"
#include "neuronlens/model.h"
#include "neuronlens/neuron_map.h"

namespace neuronlens {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The core's messages name the text but no option: the CLI and the server put
// their own names in front ("--layers: ", "layers: "); tests/unit/test_neuron_map.cpp
// and test_serve_bad_input.cpp check those.
TEST(Arguments, LayerLists) {
  EXPECT_EQ(parse_layer_list("all", 3), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(parse_layer_list("3-5,1,4", 30), (std::vector<int64_t>{1, 3, 4, 5}));
  EXPECT_EQ(parse_layer_list("29", 30), (std::vector<int64_t>{29}));
  EXPECT_EQ(error_of([] { parse_layer_list("30", 30); }), "layer 30 is out of range (the model has layers 0 to 29)");
  EXPECT_EQ(error_of([] { parse_layer_list("5-3", 30); }), "range '5-3' runs backwards");
  EXPECT_EQ(error_of([] { parse_layer_list("x", 30); }), "layer 'x' is not a number");
  // A leading '-' reads as a range with no start.
  EXPECT_EQ(error_of([] { parse_layer_list("-1", 30); }), "layer '' is not a number");
  EXPECT_EQ(error_of([] { parse_layer_list("1,,2", 30); }), "layer '' is not a number");
}

TEST(Arguments, KindLists) {
  EXPECT_EQ(parse_kind_list("all").size(), 3u);
  EXPECT_EQ(parse_kind_list("down,up,down"), (std::vector<VectorKind>{VectorKind::Down, VectorKind::Up}));
  EXPECT_EQ(error_of([] { parse_kind_list("sideways"); }), "unknown neuron kind 'sideways' (expected up, gate or down)");
}

TEST(Arguments, NonNegativeIntegers) {
  EXPECT_EQ(parse_nonnegative_integer("4031", "index"), 4031);
  for (const char* bad : {"", "4x", "-2", "1e3", " 7", "99999999999999999999"}) {
    EXPECT_THROW(parse_nonnegative_integer(bad, "index"), Error) << bad;
  }
  EXPECT_EQ(error_of([] { parse_nonnegative_integer("4x", "index"); }), "index '4x' is not a number");
}

// Clamps, ablations and neurons as text (neuronlens/interventions.h), against
// a model of 30 layers of 576 neurons; the CLI's "--clamp: " etc. prefixes are
// checked in test_generate_cli.cpp and test_activations_cli.cpp.
TEST(Arguments, Interventions) {
  ModelConfig config;
  config.n_layers = 30;
  config.d_ffn = 576;

  const NeuronIntervention clamp = parse_clamp("5:123=-2.5", config);
  EXPECT_EQ(clamp.layer, 5);
  EXPECT_EQ(clamp.neuron, 123);
  ASSERT_TRUE(clamp.clamp_value.has_value());
  EXPECT_EQ(*clamp.clamp_value, -2.5f);
  const NeuronIntervention ablation = parse_ablation("29:575", config);
  EXPECT_EQ(ablation.layer, 29);
  EXPECT_EQ(ablation.neuron, 575);
  EXPECT_FALSE(ablation.clamp_value.has_value());
  const FfnNeuron neuron = parse_ffn_neuron("0:0", config);
  EXPECT_EQ(neuron.layer, 0);
  EXPECT_EQ(neuron.neuron, 0);

  auto clamp_error = [&](const std::string& text) { return error_of([&] { parse_clamp(text, config); }); };
  auto ablation_error = [&](const std::string& text) { return error_of([&] { parse_ablation(text, config); }); };
  EXPECT_EQ(clamp_error("5:123"), "'5:123' is not LAYER:NEURON=VALUE, e.g. 5:123=10");
  EXPECT_EQ(clamp_error("5=1:2"), "'5=1:2' is not LAYER:NEURON=VALUE, e.g. 5:123=10");
  EXPECT_EQ(clamp_error("x:1=2"), "'x:1=2': layer 'x' is not a number");
  EXPECT_EQ(clamp_error("1:y=2"), "'1:y=2': neuron 'y' is not a number");
  EXPECT_EQ(clamp_error("30:0=1"), "'30:0=1': layer 30 is out of range (the model has layers 0 to 29)");
  EXPECT_EQ(clamp_error("0:576=1"), "'0:576=1': neuron 576 is out of range (layers have neurons 0 to 575)");
  for (const std::string value : {"x", "", "3x", "nan", "inf", "1e300"}) {
    EXPECT_EQ(clamp_error("0:1=" + value), "'0:1=" + value + "': value '" + value + "' is not a finite number");
  }
  EXPECT_EQ(ablation_error("5"), "'5' is not LAYER:NEURON, e.g. 5:123");
  EXPECT_EQ(ablation_error("0:1=2"), "'0:1=2' is not LAYER:NEURON, e.g. 5:123");
  EXPECT_EQ(ablation_error("0:1:2"), "'0:1:2': neuron '1:2' is not a number");
  EXPECT_EQ(ablation_error("-1:2"), "'-1:2': layer '-1' is not a number");
  EXPECT_EQ(error_of([&] { parse_ffn_neuron("999:1", config); }),
            "'999:1': layer 999 is out of range (the model has layers 0 to 29)");
}

}  // namespace
}  // namespace neuronlens
