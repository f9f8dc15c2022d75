// Map units: planning what an atlas lacks, decoding one unit, writing it, and
// carrying it between processes as bytes.
#include "neuronlens/map_units.h"

#include <cstring>
#include <type_traits>

#include "analysis/map_unit_decode.h"
#include "model/norm_weight.h"
#include "neuronlens/error.h"

namespace neuronlens {

std::string map_unit_name(const MapUnit& unit) {
  if (unit.heads) return std::string(head_circuit_name(unit.circuit)) + " heads of layer " + std::to_string(unit.layer);
  return std::string(vector_kind_name(unit.kind)) + " layer " + std::to_string(unit.layer);
}

int64_t map_unit_vectors(const ModelConfig& config, const MapOptions& options, const MapUnit& unit) {
  return unit.heads ? config.n_heads * options.head_rank * 2 : config.d_ffn;
}

MapPlan plan_neuron_map(const Model& model, const MapOptions& options, const Atlas& atlas) {
  const ModelConfig& c = model.config();
  std::vector<int64_t> layers = options.layers;
  if (layers.empty()) layers = parse_layer_list("all", c.n_layers);
  for (int64_t l : layers) {
    if (l < 0 || l >= c.n_layers) {
      throw bad_input("layer " + std::to_string(l) + " is out of range (the model has layers 0 to " +
                      std::to_string(c.n_layers - 1) + ")");
    }
  }
  if (!options.circuits.empty() && (options.head_rank < 1 || options.head_rank > c.head_dim)) {
    throw bad_input("head rank " + std::to_string(options.head_rank) + " is outside 1 to " +
                    std::to_string(c.head_dim) + " (the head dimension)");
  }
  if (!options.circuits.empty() && atlas.head_rank() != 0 && atlas.head_rank() != options.head_rank) {
    throw bad_input(atlas.path() + ": this atlas's heads were mapped with --head-rank " +
                    std::to_string(atlas.head_rank()) + ", not " + std::to_string(options.head_rank) +
                    "; write to a new atlas file or use the same rank");
  }
  MapPlan plan;
  auto add = [&](const MapUnit& unit, bool done) {
    if (done) {
      ++plan.units_skipped;
      return;
    }
    plan.todo.push_back(unit);
    plan.vectors_total += map_unit_vectors(c, options, unit);
  };
  for (int64_t layer : layers) {
    for (VectorKind kind : options.kinds) add(MapUnit{false, kind, HeadCircuit::Ov, layer}, atlas.layer_done(kind, layer));
  }
  for (HeadCircuit circuit : options.circuits) {
    for (int64_t layer : layers) {
      add(MapUnit{true, VectorKind::Up, circuit, layer}, atlas.head_layer_done(circuit, layer));
    }
  }
  return plan;
}

void write_mapped_unit(Atlas& atlas, const MappedUnit& mapped) {
  if (mapped.unit.heads) {
    atlas.write_head_layer(mapped.unit.circuit, mapped.unit.layer, mapped.directions, mapped.sides);
  } else {
    atlas.write_layer(mapped.unit.kind, mapped.unit.layer, mapped.neurons);
  }
}

std::vector<NeuronDecoding> decode_neuron_unit(const Model& model, VectorKind kind, int64_t layer,
                                               const LmHeadDecoder& decoder,
                                               const std::function<void(int64_t)>& on_vectors) {
  std::vector<float> vectors;  // [F, d]
  load_neuron_vectors(model, kind, layer, vectors, decoder.settings().read_norm);
  const int64_t n = model.config().d_ffn;
  decoder.normalize(vectors.data(), n);
  return decoder.decode_normalized(vectors.data(), n, on_vectors);
}

std::optional<LmHeadDecoder> embedding_decoder_for(const Model& model, const DecodeSettings& settings) {
  const ModelConfig& c = model.config();
  if (c.tied_embeddings && c.final_softcap <= 0) return std::nullopt;
  DecodeSettings embedding_settings = settings;
  embedding_settings.matrix = DecodeMatrix::TokenEmbedding;
  return LmHeadDecoder(model, embedding_settings);
}

std::vector<MappedUnit> decode_head_units(const Model& model, HeadCircuit circuit, const std::vector<int64_t>& layers,
                                          int head_rank, const LmHeadDecoder& output, const LmHeadDecoder& embedding,
                                          const std::function<void(int64_t)>& on_vectors) {
  const ModelConfig& c = model.config();
  const int64_t d = c.d_model;
  const int64_t per_layer = c.n_heads * head_rank;
  std::vector<MappedUnit> units;
  std::vector<float> rows[2];  // [layers * per_layer, d] per side
  for (int64_t layer : layers) {
    MappedUnit& unit = units.emplace_back();
    unit.unit = MapUnit{true, VectorKind::Up, circuit, layer};
    unit.directions = head_circuit_directions(model, circuit, layer, head_rank);
    std::vector<float> gamma;
    if (circuit == HeadCircuit::Ov && c.post_norms) gamma = applied_norm_weight(model, WeightKind::AttnPostNorm, layer);
    for (const HeadDirection& dir : unit.directions) {
      for (int side = 0; side < 2; ++side) {
        const std::vector<float>& v = side == 0 ? dir.left : dir.right;
        const size_t at = rows[side].size();
        rows[side].insert(rows[side].end(), v.begin(), v.end());
        if (side == 0 && !gamma.empty()) {
          for (int64_t e = 0; e < d; ++e) rows[side][at + static_cast<size_t>(e)] *= gamma[static_cast<size_t>(e)];
        }
      }
    }
  }
  const int64_t n = static_cast<int64_t>(layers.size()) * per_layer;
  for (int side = 0; side < 2; ++side) {
    const bool as_output = circuit == HeadCircuit::Ov && side == 0;
    const LmHeadDecoder& decoder = as_output ? output : embedding;
    if (as_output) decoder.normalize(rows[side].data(), n);
    const int64_t before = side * n;
    const std::vector<NeuronDecoding> decoded = decoder.decode_normalized(rows[side].data(), n, [&](int64_t done) {
      if (on_vectors) on_vectors(before + done);
    });
    for (size_t i = 0; i < units.size(); ++i) {
      const auto first = decoded.begin() + static_cast<std::ptrdiff_t>(i) * per_layer;
      units[i].sides[side].assign(first, first + per_layer);
    }
  }
  return units;
}

struct UnitMapper::Impl {
  const Model& model;
  MapOptions options;
  LmHeadDecoder output;
  std::optional<LmHeadDecoder> own_embedding;
  bool embedding_made = false;
};

UnitMapper::UnitMapper(const Model& model, const MapOptions& options)
    : impl_(std::make_unique<Impl>(Impl{model, options, LmHeadDecoder(model, options.settings), std::nullopt})) {}
UnitMapper::UnitMapper(UnitMapper&&) noexcept = default;
UnitMapper::~UnitMapper() = default;

const LmHeadDecoder& UnitMapper::output_decoder() const { return impl_->output; }

MappedUnit UnitMapper::map(const MapUnit& unit, const std::function<void(int64_t)>& on_vectors) const {
  Impl& m = *impl_;
  if (!unit.heads) {
    MappedUnit out;
    out.unit = unit;
    out.neurons = decode_neuron_unit(m.model, unit.kind, unit.layer, m.output, on_vectors);
    return out;
  }
  if (!m.embedding_made) {  // built on the first head unit only: a neuron-only map never needs it
    m.own_embedding = embedding_decoder_for(m.model, m.options.settings);
    m.embedding_made = true;
  }
  const LmHeadDecoder& embedding = m.own_embedding ? *m.own_embedding : m.output;
  return std::move(decode_head_units(m.model, unit.circuit, {unit.layer}, m.options.head_rank, m.output, embedding,
                                     on_vectors)
                       .front());
}

// --- bytes --------------------------------------------------------------
//
// Layout, all in the host's byte order: "NLMU" and a format version (u32);
// the unit (u8 heads, u8 kind or circuit, i64 layer); then for neurons a
// count and that many decodings, for heads a count of directions, each
// (i64 head, i32 rank, f64 singular value, u64 d, d floats left, d floats
// right), then the two sides' decodings. A decoding: five f64 (logsumexp,
// entropy, top-k mass and the two error bounds), a u32 top-k length, the
// ids (i32) and logits (f64).

namespace {

constexpr char kMagic[4] = {'N', 'L', 'M', 'U'};
constexpr uint32_t kFormatVersion = 1;

class ByteWriter {
 public:
  template <typename T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  template <typename T>
  void put_array(const std::vector<T>& values) {
    put<uint64_t>(values.size());
    bytes_.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  }
  void put_decoding(const NeuronDecoding& n) {
    put(n.logsumexp);
    put(n.entropy);
    put(n.topk_mass);
    put(n.logsumexp_error);
    put(n.entropy_error);
    put_array(n.top_ids);
    put_array(n.top_logits);
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  T get() {
    T value;
    need(sizeof value);
    std::memcpy(&value, bytes_.data() + at_, sizeof value);
    at_ += sizeof value;
    return value;
  }
  template <typename T>
  std::vector<T> get_array() {
    const auto n = get<uint64_t>();
    if (n > (bytes_.size() - at_) / sizeof(T)) fail();
    std::vector<T> values(n);
    std::memcpy(values.data(), bytes_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return values;
  }
  NeuronDecoding get_decoding() {
    NeuronDecoding n;
    n.logsumexp = get<double>();
    n.entropy = get<double>();
    n.topk_mass = get<double>();
    n.logsumexp_error = get<double>();
    n.entropy_error = get<double>();
    n.top_ids = get_array<int32_t>();
    n.top_logits = get_array<double>();
    return n;
  }
  // A count of items each at least `min_bytes` long, checked against what is
  // left so a corrupt count cannot ask for a huge allocation.
  size_t get_count(size_t min_bytes) {
    const auto n = get<uint64_t>();
    if (n > (bytes_.size() - at_) / min_bytes) fail();
    return static_cast<size_t>(n);
  }
  void expect_end() const {
    if (at_ != bytes_.size()) fail();
  }
  [[noreturn]] void fail() const {
    throw internal_error("a mapped unit's bytes are malformed (" + std::to_string(bytes_.size()) +
                         " bytes, stopped at " + std::to_string(at_) + ")");
  }

 private:
  void need(size_t n) const {
    if (n > bytes_.size() - at_) fail();
  }
  std::string_view bytes_;
  size_t at_ = 0;
};

constexpr size_t kMinDecodingBytes = 5 * sizeof(double) + 2 * sizeof(uint64_t);

}  // namespace

std::string serialize_mapped_unit(const MappedUnit& mapped) {
  ByteWriter w;
  for (char c : kMagic) w.put(c);
  w.put(kFormatVersion);
  w.put<uint8_t>(mapped.unit.heads ? 1 : 0);
  w.put<uint8_t>(static_cast<uint8_t>(mapped.unit.heads ? static_cast<int>(mapped.unit.circuit)
                                                        : static_cast<int>(mapped.unit.kind)));
  w.put<int64_t>(mapped.unit.layer);
  if (!mapped.unit.heads) {
    w.put<uint64_t>(mapped.neurons.size());
    for (const NeuronDecoding& n : mapped.neurons) w.put_decoding(n);
    return w.take();
  }
  w.put<uint64_t>(mapped.directions.size());
  for (const HeadDirection& d : mapped.directions) {
    w.put<int64_t>(d.head);
    w.put<int32_t>(d.rank);
    w.put(d.singular_value);
    w.put_array(d.left);
    w.put_array(d.right);
  }
  for (const auto& side : mapped.sides) {
    w.put<uint64_t>(side.size());
    for (const NeuronDecoding& n : side) w.put_decoding(n);
  }
  return w.take();
}

MappedUnit deserialize_mapped_unit(std::string_view bytes) {
  ByteReader r(bytes);
  for (char c : kMagic) {
    if (r.get<char>() != c) r.fail();
  }
  if (r.get<uint32_t>() != kFormatVersion) r.fail();
  MappedUnit out;
  out.unit.heads = r.get<uint8_t>() != 0;
  const uint8_t which = r.get<uint8_t>();
  if (which >= (out.unit.heads ? 2 : kVectorKindCount)) r.fail();
  if (out.unit.heads) {
    out.unit.circuit = static_cast<HeadCircuit>(which);
  } else {
    out.unit.kind = static_cast<VectorKind>(which);
  }
  out.unit.layer = r.get<int64_t>();
  if (!out.unit.heads) {
    out.neurons.resize(r.get_count(kMinDecodingBytes));
    for (NeuronDecoding& n : out.neurons) n = r.get_decoding();
  } else {
    out.directions.resize(r.get_count(sizeof(int64_t) + sizeof(int32_t) + sizeof(double) + 2 * sizeof(uint64_t)));
    for (HeadDirection& d : out.directions) {
      d.head = r.get<int64_t>();
      d.rank = r.get<int32_t>();
      d.singular_value = r.get<double>();
      d.left = r.get_array<float>();
      d.right = r.get_array<float>();
    }
    for (auto& side : out.sides) {
      side.resize(r.get_count(kMinDecodingBytes));
      for (NeuronDecoding& n : side) n = r.get_decoding();
    }
  }
  r.expect_end();
  return out;
}

}  // namespace neuronlens
