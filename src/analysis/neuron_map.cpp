// Runs the neuron map: for each (kind, layer) not yet in the atlas, load the
// layer's vectors [F, d], normalise them, decode them through the LM head and
// write them in one transaction.
#include "neuronlens/neuron_map.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "analysis/map_unit_decode.h"
#include "io/sha256.h"
#include "neuronlens/error.h"
#include "neuronlens/map_units.h"

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

// Head units are decoded a circuit's layers at a time, in batches of at
// least kHeadBatch directions: a layer has only n_heads · rank, too few to
// keep every thread's blocks full.
void map_head_units(const Model& model, const MapOptions& options, const std::vector<MapUnit>& todo,
                    const LmHeadDecoder& output, Atlas& atlas, MapProgress& progress,
                    const std::function<void(const MapProgress&)>& on_progress) {
  constexpr int64_t kHeadBatch = 2048;
  const std::optional<LmHeadDecoder> own_embedding = embedding_decoder_for(model, options.settings);
  const LmHeadDecoder& embedding = own_embedding ? *own_embedding : output;
  const int64_t per_layer = model.config().n_heads * options.head_rank;
  // Each batch is a few hundred vectors, below what makes a decoder pack its
  // whole head once rather than tile by tile for every block: the whole run
  // is what counts.
  int64_t ov_layers = 0;
  for (const MapUnit& unit : todo) ov_layers += unit.circuit == HeadCircuit::Ov ? 1 : 0;
  output.prepare_for(ov_layers * per_layer);
  embedding.prepare_for((2 * static_cast<int64_t>(todo.size()) - ov_layers) * per_layer);
  size_t next = 0;
  while (next < todo.size()) {
    // One batch: consecutive layers of one circuit.
    const HeadCircuit circuit = todo[next].circuit;
    std::vector<int64_t> layers;
    while (next < todo.size() && todo[next].circuit == circuit &&
           (layers.empty() || static_cast<int64_t>(layers.size()) * per_layer < kHeadBatch)) {
      layers.push_back(todo[next++].layer);
    }
    const int64_t before = progress.vectors_done;
    const std::vector<MappedUnit> units =
        decode_head_units(model, circuit, layers, options.head_rank, output, embedding, [&](int64_t done) {
          progress.vectors_done = before + done;
          if (on_progress) on_progress(progress);
        });
    for (const MappedUnit& unit : units) {
      write_mapped_unit(atlas, unit);
      ++progress.layers_mapped;
    }
  }
}

}  // namespace

MapProgress run_neuron_map(const Model& model, const MapOptions& options, Atlas& atlas,
                           const std::function<void(const MapProgress&)>& on_progress) {
  const MapPlan plan = plan_neuron_map(model, options, atlas);
  MapProgress progress;
  progress.layers_skipped = plan.units_skipped;
  progress.vectors_total = plan.vectors_total;
  if (plan.todo.empty()) return progress;

  const LmHeadDecoder decoder(model, options.settings);
  if (on_progress) on_progress(progress);
  Atlas::BulkWrite bulk(atlas);
  std::vector<MapUnit> head_todo;
  for (const MapUnit& unit : plan.todo) {
    if (unit.heads) {
      head_todo.push_back(unit);
      continue;
    }
    const int64_t before = progress.vectors_done;
    MappedUnit mapped;
    mapped.unit = unit;
    mapped.neurons = decode_neuron_unit(model, unit.kind, unit.layer, decoder, [&](int64_t done) {
      progress.vectors_done = before + done;
      if (on_progress) on_progress(progress);
    });
    write_mapped_unit(atlas, mapped);
    ++progress.layers_mapped;
  }
  if (!head_todo.empty()) map_head_units(model, options, head_todo, decoder, atlas, progress, on_progress);
  bulk.finish();
  return progress;
}

}  // namespace neuronlens
