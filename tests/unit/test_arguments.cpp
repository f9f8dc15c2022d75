// Parsing of the layer, kind and neuron arguments shared by the commands.
#include <gtest/gtest.h>

#include <functional>

#include "neuronlens/error.h"
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

TEST(Arguments, LayerLists) {
  EXPECT_EQ(parse_layer_list("all", 3), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(parse_layer_list("3-5,1,4", 30), (std::vector<int64_t>{1, 3, 4, 5}));
  EXPECT_EQ(parse_layer_list("29", 30), (std::vector<int64_t>{29}));
  EXPECT_NE(error_of([] { parse_layer_list("30", 30); }).find("out of range (the model has layers 0 to 29)"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_layer_list("5-3", 30); }).find("runs backwards"), std::string::npos);
  EXPECT_NE(error_of([] { parse_layer_list("x", 30); }).find("'x' is not a number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_layer_list("-1", 30); }).find("is not a number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_layer_list("1,,2", 30); }).find("is not a number"), std::string::npos);
}

TEST(Arguments, KindLists) {
  EXPECT_EQ(parse_kind_list("all").size(), 3u);
  EXPECT_EQ(parse_kind_list("down,up,down"), (std::vector<VectorKind>{VectorKind::Down, VectorKind::Up}));
  EXPECT_NE(error_of([] { parse_kind_list("sideways"); }).find("unknown neuron kind 'sideways'"), std::string::npos);
}

TEST(Arguments, NonNegativeIntegers) {
  EXPECT_EQ(parse_nonnegative_integer("4031", "index"), 4031);
  for (const char* bad : {"", "4x", "-2", "1e3", " 7", "99999999999999999999"}) {
    EXPECT_THROW(parse_nonnegative_integer(bad, "index"), Error) << bad;
  }
}

}  // namespace
}  // namespace neuronlens
