// Runs the neuron map: for each (kind, layer) not yet in the atlas, load the
// layer's vectors [F, d], normalise them, decode them through the LM head and
// write them in one transaction.
#include "neuronlens/neuron_map.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "io/sha256.h"
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
  progress.vectors_total = static_cast<int64_t>(todo.size()) * c.d_ffn;
  if (todo.empty()) return progress;

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
  }
  return progress;
}

}  // namespace neuronlens
