// Depth-bounded JSON parsing and bounded excerpts (src/io/json_input.h): the
// bound is exact (256 levels parse, 257 do not), both container kinds count,
// the error has the kind asked for and names the source; excerpts equal
// dump() for small values and stay short and shallow for any value.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "io/json_input.h"
#include "neuronlens/error.h"
#include "scratch_dir.h"

namespace neuronlens {
namespace {

using Json = nlohmann::json;

std::string nested_arrays(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

std::string nested_objects(int levels) {
  std::string text;
  for (int i = 0; i < levels; ++i) text += "{\"a\":";
  text += "1";
  text += std::string(levels, '}');
  return text;
}

// The Error parse_json_input throws for `text`, or a failure if it throws none.
Error parse_error(const std::string& text, ErrorKind kind = ErrorKind::BadFile) {
  try {
    parse_json_input(text, "in.json", kind);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "parsed without error";
  return internal_error("none");
}

const std::string kTooDeep = "in.json: JSON nested deeper than 256 levels of arrays and objects";

TEST(JsonInput, ParsesUpToTheDepthBound) {
  EXPECT_EQ(kMaxJsonDepth, 256);
  const Json arrays = parse_json_input(nested_arrays(256), "in.json");
  int depth = 0;
  for (const Json* j = &arrays; j->is_array(); j = &(*j)[0]) {
    ++depth;
    if (j->empty()) break;
  }
  EXPECT_EQ(depth, 256);
  EXPECT_EQ(parse_json_input(nested_objects(256), "in.json").dump(), nested_objects(256));
}

TEST(JsonInput, RefusesOneLevelMoreAsABadFile) {
  for (const std::string& text : {nested_arrays(257), nested_objects(257), nested_arrays(65536),
                                  "{\"shape\": " + nested_arrays(100000) + "}"}) {
    const Error e = parse_error(text);
    EXPECT_EQ(std::string(e.what()), kTooDeep);
    EXPECT_EQ(e.kind(), ErrorKind::BadFile);
  }
  // Arrays and objects count alike.
  EXPECT_EQ(std::string(parse_error(std::string("[") + nested_objects(256) + "]").what()), kTooDeep);
}

TEST(JsonInput, ErrorsHaveTheKindAskedFor) {
  EXPECT_EQ(parse_error(nested_arrays(300), ErrorKind::BadInput).kind(), ErrorKind::BadInput);
  const Error syntax = parse_error("{\"a\": ", ErrorKind::BadInput);
  EXPECT_EQ(syntax.kind(), ErrorKind::BadInput);
  EXPECT_EQ(std::string(syntax.what()).rfind("in.json: not valid JSON: ", 0), 0u) << syntax.what();
}

TEST(JsonInput, CallbackSeesEveryEvent) {
  int keys = 0;
  const Json j = parse_json_input("{\"a\": [1, {\"b\": 2}]}", "in.json", ErrorKind::BadFile,
                                  [&](int, Json::parse_event_t event, Json&) {
                                    if (event == Json::parse_event_t::key) ++keys;
                                    return true;
                                  });
  EXPECT_EQ(keys, 2);
  EXPECT_EQ(j["a"][1]["b"], 2);
}

TEST(JsonInput, ReadsFiles) {
  testing::ScratchDir dir;
  std::ofstream(dir.file("deep.json")) << "{\"chat_template\": " << nested_arrays(1000) << "}";
  try {
    read_json_file(dir.file("deep.json"));
    ADD_FAILURE() << "read without error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("deep.json") + ": JSON nested deeper than 256 levels of arrays and objects");
    EXPECT_EQ(e.kind(), ErrorKind::BadFile);
  }
  try {
    read_json_file(dir.file("absent.json"));
    ADD_FAILURE() << "read without error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("absent.json") + ": cannot open");
    EXPECT_EQ(e.kind(), ErrorKind::BadFile);
  }
}

TEST(JsonExcerpt, SmallValuesAreTheirDump) {
  for (const char* text : {"42", "-1.5", "true", "null", "\"8\"", "[]", "{}", "[1,2]", "{\"a\":[1,{\"b\":null}]}",
                           "[[[[[[[[1]]]]]]]]"}) {
    const Json j = Json::parse(text);
    EXPECT_EQ(json_excerpt(j), j.dump()) << text;
  }
}

TEST(JsonExcerpt, LongValuesAreCutToThePrefixOfTheirDump) {
  Json numbers = Json::array();
  for (int i = 0; i < 10000; ++i) numbers.push_back(i);
  EXPECT_EQ(json_excerpt(numbers), numbers.dump().substr(0, 80) + "...");
  EXPECT_EQ(json_excerpt(numbers, 10), "[0,1,2,3,4...");
  Json object = Json::object();
  for (int i = 0; i < 100; ++i) object["key" + std::to_string(i)] = std::string(i, 'x');
  EXPECT_EQ(json_excerpt(object), object.dump().substr(0, 80) + "...");
  EXPECT_EQ(json_excerpt(Json(std::string(1'000'000, 'a'))), std::string("\"") + std::string(79, 'a') + "...");
}

TEST(JsonExcerpt, CutsNeverSplitAUtf8Character) {
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";  // U+00E9
  std::string expected = "\"";
  for (int i = 0; i < 39; ++i) expected += "\xc3\xa9";
  EXPECT_EQ(json_excerpt(Json(accents)), expected + "...");
}

TEST(JsonExcerpt, DeepValuesStopAtEightLevels) {
  // Built in memory, past any parser bound: the excerpt must not follow it down.
  Json deep = 1;
  for (int i = 0; i < 10000; ++i) deep = Json::array({std::move(deep)});
  EXPECT_EQ(json_excerpt(deep), std::string(9, '[') + "...");
  Json deep_object = 1;
  for (int i = 0; i < 10000; ++i) deep_object = Json{{"k", std::move(deep_object)}};
  EXPECT_EQ(json_excerpt(deep_object), "{\"k\":{\"k\":{\"k\":{\"k\":{\"k\":{\"k\":{\"k\":{\"k\":{...");
}

}  // namespace
}  // namespace neuronlens
