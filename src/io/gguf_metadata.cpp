// Typed access to GGUF metadata. A key of the wrong type is an error naming
// the file, the key, the type expected and the type found.
#include <cmath>
#include <limits>

#include "neuronlens/error.h"
#include "neuronlens/gguf.h"

namespace neuronlens {
namespace {

[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GgufValue& v,
                             const std::string& expected) {
  std::string found(gguf_value_type_name(v.type));
  if (const GgufArray* a = v.array()) found = "array of " + std::string(gguf_value_type_name(a->element_type()));
  throw bad_file(path + ": metadata key '" + key + "' has type " + found + ", expected " + expected);
}

uint64_t as_uint(const std::string& path, const std::string& key, const GgufValue& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v.value)) {
    if (*i < 0)
      throw bad_file(path + ": metadata key '" + key + "' is " + std::to_string(*i) +
                     ", expected a non-negative integer");
    return static_cast<uint64_t>(*i);
  }
  wrong_type(path, key, v, "an integer");
}

int64_t as_int(const std::string& path, const std::string& key, const GgufValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v.value)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v.value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw bad_file(path + ": metadata key '" + key + "' value " + std::to_string(*u) + " is out of range");
    }
    return static_cast<int64_t>(*u);
  }
  wrong_type(path, key, v, "an integer");
}

double as_float(const std::string& path, const std::string& key, const GgufValue& v) {
  if (const auto* d = std::get_if<double>(&v.value)) return *d;
  if (v.is_integer()) return static_cast<double>(as_int(path, key, v));
  wrong_type(path, key, v, "a number");
}

const GgufArray& as_array(const std::string& path, const std::string& key, const GgufValue& v,
                          const std::string& expected) {
  if (const GgufArray* a = v.array()) return *a;
  wrong_type(path, key, v, expected);
}

}  // namespace

#define NEURONLENS_REQUIRE_KEY(key)                                                      \
  const GgufValue* v = find(key);                                                        \
  if (v == nullptr) throw bad_file(path_ + ": metadata key '" + (key) + "' is missing")

uint64_t GgufFile::get_uint(const std::string& key) const {
  NEURONLENS_REQUIRE_KEY(key);
  return as_uint(path_, key, *v);
}

double GgufFile::get_float(const std::string& key) const {
  NEURONLENS_REQUIRE_KEY(key);
  return as_float(path_, key, *v);
}

bool GgufFile::get_bool(const std::string& key) const {
  NEURONLENS_REQUIRE_KEY(key);
  if (const auto* b = std::get_if<bool>(&v->value)) return *b;
  wrong_type(path_, key, *v, "bool");
}

const std::string& GgufFile::get_string(const std::string& key) const {
  NEURONLENS_REQUIRE_KEY(key);
  if (const auto* s = std::get_if<std::string>(&v->value)) return *s;
  wrong_type(path_, key, *v, "string");
}

size_t GgufFile::get_array_size(const std::string& key) const {
  NEURONLENS_REQUIRE_KEY(key);
  return as_array(path_, key, *v, "an array").size();
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  NEURONLENS_REQUIRE_KEY(key);
  const GgufArray& items = as_array(path_, key, *v, "array of string");
  if (items.element_type() != GgufValueType::STRING) wrong_type(path_, key, *v, "array of string");
  std::vector<std::string> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) out.emplace_back(items.string_at(i));
  return out;
}

// Number arrays: element by element, so an array of arrays or of strings is
// refused by as_int / as_float with the key's name.
std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  NEURONLENS_REQUIRE_KEY(key);
  const GgufArray& items = as_array(path_, key, *v, "array of integers");
  if (items.element_type() == GgufValueType::ARRAY) wrong_type(path_, key, *v, "array of integers");
  std::vector<int64_t> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) out.push_back(as_int(path_, key, items.at(i)));
  return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  NEURONLENS_REQUIRE_KEY(key);
  const GgufArray& items = as_array(path_, key, *v, "array of numbers");
  if (items.element_type() == GgufValueType::ARRAY) wrong_type(path_, key, *v, "array of numbers");
  std::vector<double> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) out.push_back(as_float(path_, key, items.at(i)));
  return out;
}

#undef NEURONLENS_REQUIRE_KEY

uint64_t GgufFile::get_uint_or(const std::string& key, uint64_t fallback) const {
  return has(key) ? get_uint(key) : fallback;
}
double GgufFile::get_float_or(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}
bool GgufFile::get_bool_or(const std::string& key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}
std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

}  // namespace neuronlens
