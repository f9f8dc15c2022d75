// The names of the decode's options (neuron.h, decode.h), read both ways
// from one table per enum.
#include <span>
#include <string>
#include <utility>

#include "neuronlens/decode.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron.h"

namespace neuronlens {
namespace {

template <typename E>
using NameTable = std::span<const std::pair<E, std::string_view>>;

constexpr std::pair<VectorKind, std::string_view> kKindNames[] = {
    {VectorKind::Up, "up"}, {VectorKind::Gate, "gate"}, {VectorKind::Down, "down"}};
constexpr std::pair<NormMode, std::string_view> kNormNames[] = {{NormMode::Final, "final"}, {NormMode::None, "none"}};
constexpr std::pair<ReadNorm, std::string_view> kReadNormNames[] = {{ReadNorm::None, "none"}, {ReadNorm::Ffn, "ffn"}};
constexpr std::pair<Precision, std::string_view> kPrecisionNames[] = {
    {Precision::Auto, "auto"}, {Precision::Exact, "exact"}, {Precision::Bf16, "bf16"}};

template <typename E>
std::string_view name_in(NameTable<E> table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";
}

// The value named `name`, or an Error "unknown <what> 'x' (expected a, b or c)".
template <typename E>
E value_in(NameTable<E> table, std::string_view name, std::string_view what) {
  std::string expected;
  size_t i = 0;
  for (const auto& [v, n] : table) {
    if (n == name) return v;
    expected += (i == 0 ? "" : i + 1 == table.size() ? " or " : ", ") + std::string(n);
    ++i;
  }
  throw bad_input("unknown " + std::string(what) + " '" + std::string(name) + "' (expected " + expected + ")");
}

}  // namespace

std::string_view vector_kind_name(VectorKind kind) { return name_in<VectorKind>(kKindNames, kind); }
VectorKind vector_kind_from_name(std::string_view name) {
  return value_in<VectorKind>(kKindNames, name, "neuron kind");
}
std::string_view norm_mode_name(NormMode mode) { return name_in<NormMode>(kNormNames, mode); }
NormMode norm_mode_from_name(std::string_view name) { return value_in<NormMode>(kNormNames, name, "norm"); }
std::string_view read_norm_name(ReadNorm mode) { return name_in<ReadNorm>(kReadNormNames, mode); }
ReadNorm read_norm_from_name(std::string_view name) {
  return value_in<ReadNorm>(kReadNormNames, name, "read norm");
}
std::string_view precision_name(Precision precision) { return name_in<Precision>(kPrecisionNames, precision); }
Precision precision_from_name(std::string_view name) {
  return value_in<Precision>(kPrecisionNames, name, "precision");
}

}  // namespace neuronlens
