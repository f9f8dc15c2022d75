// Runs the neuron map: for each (kind, layer) not yet in the atlas, load the
// layer's vectors [F, d], normalise them, decode them through the LM head and
// write them in one transaction.
#include "neuronlens/neuron_map.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "io/sha256.h"
#include "model/norm_weight.h"
#include "neuronlens/error.h"

namespace neuronlens {

int64_t parse_nonnegative_integer(const std::string& text, const std::string& what) {
  size_t used = 0;
  long long v = -1;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  // Digits only: stoll alone would accept leading blanks and signs.
  const bool digits_first = !text.empty() && text[0] >= '0' && text[0] <= '9';
  if (!digits_first || used != text.size() || v < 0) throw bad_input(what + " '" + text + "' is not a number");
  return static_cast<int64_t>(v);
}

std::vector<int64_t> parse_layer_list(const std::string& text, int64_t n_layers) {
  std::vector<int64_t> layers;
  if (text.empty() || text == "all") {
    for (int64_t l = 0; l < n_layers; ++l) layers.push_back(l);
    return layers;
  }
  auto parse_number = [&](const std::string& s) -> int64_t {
    const int64_t v = parse_nonnegative_integer(s, "layer");
    if (v >= n_layers) {
      throw bad_input("layer " + s + " is out of range (the model has layers 0 to " + std::to_string(n_layers - 1) +
                      ")");
    }
    return v;
  };
  std::set<int64_t> chosen;
  std::stringstream parts(text);
  std::string part;
  while (std::getline(parts, part, ',')) {
    const size_t dash = part.find('-');
    if (dash == std::string::npos) {
      chosen.insert(parse_number(part));
      continue;
    }
    const int64_t lo = parse_number(part.substr(0, dash)), hi = parse_number(part.substr(dash + 1));
    if (lo > hi) throw bad_input("range '" + part + "' runs backwards");
    for (int64_t l = lo; l <= hi; ++l) chosen.insert(l);
  }
  return {chosen.begin(), chosen.end()};
}

std::vector<VectorKind> parse_kind_list(const std::string& text) {
  if (text.empty() || text == "all") return {VectorKind::Up, VectorKind::Gate, VectorKind::Down};
  std::vector<VectorKind> kinds;
  std::stringstream parts(text);
  std::string part;
  while (std::getline(parts, part, ',')) {
    const VectorKind k = vector_kind_from_name(part);
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  }
  if (kinds.empty()) throw bad_input("no kind given (expected up, gate and/or down)");
  return kinds;
}

MapKinds parse_map_kinds(const std::string& text) {
  if (text.empty() || text == "all") return {parse_kind_list("all"), {}};
  MapKinds out;
  std::stringstream parts(text);
  std::string part;
  while (std::getline(parts, part, ',')) {
    if (part == "ov" || part == "qk") {
      const HeadCircuit c = head_circuit_from_name(part);
      if (std::find(out.circuits.begin(), out.circuits.end(), c) == out.circuits.end()) out.circuits.push_back(c);
      continue;
    }
    if (part == "all") {
      for (VectorKind k : parse_kind_list("all")) {
        if (std::find(out.kinds.begin(), out.kinds.end(), k) == out.kinds.end()) out.kinds.push_back(k);
      }
      continue;
    }
    VectorKind k;
    try {
      k = vector_kind_from_name(part);
    } catch (const Error&) {
      throw bad_input("unknown neuron kind '" + part + "' (expected up, gate, down, or a head circuit: ov, qk)");
    }
    if (std::find(out.kinds.begin(), out.kinds.end(), k) == out.kinds.end()) out.kinds.push_back(k);
  }
  if (out.kinds.empty() && out.circuits.empty()) throw bad_input("no kind given (expected up, gate, down, ov or qk)");
  return out;
}

std::string model_sha256(const Model& model) {
  if (model.format() == ModelFormat::Gguf) return sha256_file_hex(model.path());
  // A Hugging Face folder: hash the digests of its safetensors files, by name.
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(model.path())) {
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  Sha256 combined;
  for (const auto& f : files) {
    const std::string line = f.filename().string() + " " + sha256_file_hex(f.string()) + "\n";
    combined.update(line.data(), line.size());
  }
  return combined.hex_digest();
}

AtlasSettings atlas_settings_for(const Model& model, const DecodeSettings& settings) {
  const ModelConfig& c = model.config();
  AtlasSettings s;
  s.model_name = c.name;
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(model.path(), ec);
  s.model_path = ec ? model.path() : absolute.string();
  s.model_sha256 = model_sha256(model);
  s.architecture = std::string(architecture_name(c.arch));
  s.n_layers = c.n_layers;
  s.d_model = c.d_model;
  s.d_ffn = c.d_ffn;
  s.vocab_size = c.vocab_size;
  s.norm = settings.norm;
  s.read_norm = settings.read_norm;
  s.top_k = settings.top_k;
  s.method = decode_definition(c, settings);
  const DecodeBackendChoice backend = choose_decode_backend(settings);
  s.precision = std::string(precision_name(backend.precision));
  s.precision_bound = backend.bound_definition;
  return s;
}

namespace {

// The heads of each (circuit, layer): an OV output direction is decoded as
// a down vector is (what reaches the residual stream: γ_post ⊙ u where the
// family norms the attention output; the final norm; the LM head); every
// other side is decoded through the token embedding. A layer has only
// n_heads · rank directions, too few to keep every thread's blocks full, so
// layers of a circuit are decoded together in batches of at least
// kHeadBatch directions, then written a layer at a time.
void map_head_layers(const Model& model, const MapOptions& options,
                     const std::vector<std::pair<HeadCircuit, int64_t>>& todo, const LmHeadDecoder& output,
                     Atlas& atlas, MapProgress& progress, const std::function<void(const MapProgress&)>& on_progress) {
  constexpr int64_t kHeadBatch = 2048;
  const ModelConfig& c = model.config();
  const int64_t d = c.d_model;
  // The embedding side's decoder: the LM head's own where the head is the
  // embedding and nothing caps its logits (its vectors then skip the final
  // norm), else one over the embedding: a second copy of a V x d matrix.
  std::optional<LmHeadDecoder> own_embedding;
  if (!c.tied_embeddings || c.final_softcap > 0) {
    DecodeSettings embedding_settings = options.settings;
    embedding_settings.matrix = DecodeMatrix::TokenEmbedding;
    own_embedding.emplace(model, embedding_settings);
  }
  const LmHeadDecoder& embedding = own_embedding ? *own_embedding : output;
  const int64_t per_layer = c.n_heads * options.head_rank;
  // Each batch is a few hundred vectors, below what makes a decoder pack its
  // whole head once rather than tile by tile for every block: the whole run
  // is what counts.
  int64_t ov_layers = 0;
  for (const auto& item : todo) ov_layers += item.first == HeadCircuit::Ov ? 1 : 0;
  output.prepare_for(ov_layers * per_layer);
  embedding.prepare_for((2 * static_cast<int64_t>(todo.size()) - ov_layers) * per_layer);
  size_t next = 0;
  while (next < todo.size()) {
    // One batch: consecutive layers of one circuit.
    const HeadCircuit circuit = todo[next].first;
    std::vector<int64_t> layers;
    while (next < todo.size() && todo[next].first == circuit &&
           (layers.empty() || static_cast<int64_t>(layers.size()) * per_layer < kHeadBatch)) {
      layers.push_back(todo[next++].second);
    }
    std::vector<std::vector<HeadDirection>> directions;
    std::vector<float> rows[2];  // [layers * per_layer, d] per side
    for (int64_t layer : layers) {
      directions.push_back(head_circuit_directions(model, circuit, layer, options.head_rank));
      std::vector<float> gamma;
      if (circuit == HeadCircuit::Ov && c.post_norms) gamma = applied_norm_weight(model, WeightKind::AttnPostNorm, layer);
      for (const HeadDirection& dir : directions.back()) {
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
    std::vector<NeuronDecoding> decoded[2];
    for (int side = 0; side < 2; ++side) {
      const bool as_output = circuit == HeadCircuit::Ov && side == 0;
      const LmHeadDecoder& decoder = as_output ? output : embedding;
      if (as_output) decoder.normalize(rows[side].data(), n);
      const int64_t before = progress.vectors_done;
      decoded[side] = decoder.decode_normalized(rows[side].data(), n, [&](int64_t done) {
        progress.vectors_done = before + done;
        if (on_progress) on_progress(progress);
      });
    }
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto first = static_cast<std::ptrdiff_t>(i) * per_layer;
      std::vector<NeuronDecoding> layer_decoded[2];
      for (int side = 0; side < 2; ++side) {
        layer_decoded[side].assign(decoded[side].begin() + first, decoded[side].begin() + first + per_layer);
      }
      atlas.write_head_layer(circuit, layers[i], directions[i], layer_decoded);
      ++progress.layers_mapped;
    }
  }
}

}  // namespace

MapProgress run_neuron_map(const Model& model, const MapOptions& options, Atlas& atlas,
                           const std::function<void(const MapProgress&)>& on_progress) {
  const ModelConfig& c = model.config();
  std::vector<int64_t> layers = options.layers;
  if (layers.empty()) layers = parse_layer_list("all", c.n_layers);
  for (int64_t l : layers) {
    if (l < 0 || l >= c.n_layers) {
      throw bad_input("layer " + std::to_string(l) + " is out of range (the model has layers 0 to " +
                      std::to_string(c.n_layers - 1) + ")");
    }
  }
  std::vector<std::pair<VectorKind, int64_t>> todo;
  MapProgress progress;
  for (int64_t layer : layers) {
    for (VectorKind kind : options.kinds) {
      if (atlas.layer_done(kind, layer)) {
        ++progress.layers_skipped;
      } else {
        todo.emplace_back(kind, layer);
      }
    }
  }
  std::vector<std::pair<HeadCircuit, int64_t>> head_todo;
  if (!options.circuits.empty() && (options.head_rank < 1 || options.head_rank > c.head_dim)) {
    throw bad_input("head rank " + std::to_string(options.head_rank) + " is outside 1 to " +
                    std::to_string(c.head_dim) + " (the head dimension)");
  }
  for (HeadCircuit circuit : options.circuits) {  // circuit-major: map_head_layers batches a circuit's layers
    for (int64_t layer : layers) {
      if (atlas.head_layer_done(circuit, layer)) {
        ++progress.layers_skipped;
      } else {
        head_todo.emplace_back(circuit, layer);
      }
    }
  }
  if (!options.circuits.empty() && atlas.head_rank() != 0 && atlas.head_rank() != options.head_rank) {
    throw bad_input(atlas.path() + ": this atlas's heads were mapped with --head-rank " +
                    std::to_string(atlas.head_rank()) + ", not " + std::to_string(options.head_rank) +
                    "; write to a new atlas file or use the same rank");
  }
  const int64_t directions_per_layer = c.n_heads * options.head_rank;
  progress.vectors_total = static_cast<int64_t>(todo.size()) * c.d_ffn +
                           static_cast<int64_t>(head_todo.size()) * directions_per_layer * 2;
  if (todo.empty() && head_todo.empty()) return progress;

  const LmHeadDecoder decoder(model, options.settings);
  std::vector<float> vectors;  // [F, d]
  if (on_progress) on_progress(progress);
  for (const auto& [kind, layer] : todo) {
    load_neuron_vectors(model, kind, layer, vectors, options.settings.read_norm);
    decoder.normalize(vectors.data(), c.d_ffn);
    const int64_t before = progress.vectors_done;
    std::vector<NeuronDecoding> decoded = decoder.decode_normalized(vectors.data(), c.d_ffn, [&](int64_t done) {
      progress.vectors_done = before + done;
      if (on_progress) on_progress(progress);
    });
    atlas.write_layer(kind, layer, decoded);
    ++progress.layers_mapped;
  }
  if (!head_todo.empty()) map_head_layers(model, options, head_todo, decoder, atlas, progress, on_progress);
  return progress;
}

}  // namespace neuronlens
