// The atlas (an SQLite neuron map), map, find and compare. Tables come back
// as {column: numpy array or list}, which the package turns into pandas
// DataFrames (python/neuronlens/__init__.py).
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "names.h"
#include "neuronlens/atlas.h"
#include "neuronlens/atlas_weights.h"
#include "neuronlens/compare.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/neuron_map.h"
#include "py_model.h"

namespace neuronlens::python {
namespace {

std::vector<VectorKind> kinds_from_names(const std::vector<std::string>& names) {
  std::vector<VectorKind> kinds;
  for (const std::string& name : names) {
    const VectorKind kind = vector_kind_from_name(name);
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  }
  if (kinds.empty()) throw bad_input("no neuron kinds given (expected some of up, gate, down)");
  return kinds;
}

std::vector<int64_t> checked_layers(const std::optional<std::vector<int64_t>>& layers, int64_t n_layers) {
  if (!layers) return {};
  for (int64_t layer : *layers) check_layer(layer, n_layers);
  return *layers;
}

// Calls `fn(done, total)` with the GIL held, after checking for Ctrl-C: a
// KeyboardInterrupt raised there unwinds the map between two writes, so the
// atlas keeps every (kind, layer) finished so far and resumes from there.
std::function<void(const MapProgress&)> map_progress_callback(std::optional<nb::callable> fn) {
  return [fn = std::move(fn)](const MapProgress& p) {
    nb::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
    if (fn) (*fn)(p.vectors_done, p.vectors_total);
  };
}

nb::dict progress_dict(const MapProgress& p) {
  nb::dict d;
  d["vectors_done"] = p.vectors_done;
  d["vectors_total"] = p.vectors_total;
  d["layers_skipped"] = p.layers_skipped;
  return d;
}

nb::dict settings_dict(const AtlasSettings& s) {
  nb::dict d;
  d["model_name"] = s.model_name;
  d["model_path"] = s.model_path;
  d["model_sha256"] = s.model_sha256;
  d["architecture"] = s.architecture;
  d["n_layers"] = s.n_layers;
  d["d_model"] = s.d_model;
  d["d_ffn"] = s.d_ffn;
  d["vocab_size"] = s.vocab_size;
  d["norm"] = std::string(norm_mode_name(s.norm));
  d["read_norm"] = std::string(read_norm_name(s.read_norm));
  d["top_k"] = s.top_k;
  d["method"] = s.method;
  d["precision"] = s.precision.empty() ? std::string("exact") : s.precision;
  d["precision_bound"] = s.precision_bound;
  d["max_logsumexp_error"] = s.max_logsumexp_error;
  d["max_entropy_error"] = s.max_entropy_error;
  return d;
}

// Every neuron of the chosen kinds and layers with its top-1 token.
nb::dict neuron_table(const Atlas& atlas, const std::optional<std::string>& kind_name,
                      const std::optional<int64_t>& layer) {
  const AtlasSettings& s = atlas.settings();
  if (layer) check_layer(*layer, s.n_layers);
  const std::optional<VectorKind> only_kind =
      kind_name ? std::optional<VectorKind>(vector_kind_from_name(*kind_name)) : std::nullopt;
  std::vector<AtlasNeuron> rows;
  {
    nb::gil_scoped_release release;
    for (const auto& [kind, l] : atlas.layers_done()) {
      if ((only_kind && kind != *only_kind) || (layer && l != *layer)) continue;
      auto part = atlas.layer_neurons(kind, l, Atlas::NeuronOrder::Index, false, 0, s.d_ffn, 1);
      rows.insert(rows.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    }
  }
  std::vector<std::string> kinds, texts;
  std::vector<int64_t> layers, neurons;
  std::vector<int32_t> top1;
  std::vector<double> lse, entropy, top1_prob;
  for (const AtlasNeuron& n : rows) {
    kinds.emplace_back(vector_kind_name(n.kind));
    layers.push_back(n.layer);
    neurons.push_back(n.index);
    lse.push_back(n.logsumexp);
    entropy.push_back(n.entropy);
    const int32_t id = n.top_ids.empty() ? -1 : n.top_ids[0];
    top1.push_back(id);
    texts.push_back(id < 0 ? "" : atlas.token_text(id));
    top1_prob.push_back(n.top1_prob);
  }
  const size_t count = rows.size();
  nb::dict table;
  table["kind"] = kinds;
  table["layer"] = numpy_from_vector(std::move(layers), {count});
  table["neuron"] = numpy_from_vector(std::move(neurons), {count});
  table["logsumexp"] = numpy_from_vector(std::move(lse), {count});
  table["entropy"] = numpy_from_vector(std::move(entropy), {count});
  table["top1_token"] = numpy_from_vector(std::move(top1), {count});
  table["top1_text"] = texts;
  table["top1_prob"] = numpy_from_vector(std::move(top1_prob), {count});
  return table;
}

// One neuron's stored top tokens.
nb::dict top_token_table(const Atlas& atlas, int64_t layer, const std::string& kind_name, int64_t neuron) {
  const AtlasSettings& s = atlas.settings();
  const VectorKind kind = vector_kind_from_name(kind_name);
  check_layer(layer, s.n_layers);
  check_neuron(neuron, s.d_ffn);
  const std::optional<AtlasNeuron> n = atlas.neuron(kind, layer, neuron);
  if (!n) {
    throw bad_input(atlas.path() + ": layer " + std::to_string(layer) + " of kind " + kind_name +
                    " is not mapped in this atlas");
  }
  std::vector<int64_t> rank;
  std::vector<int32_t> token;
  std::vector<std::string> text;
  for (size_t i = 0; i < n->top_ids.size(); ++i) {
    rank.push_back(int64_t(i) + 1);
    token.push_back(n->top_ids[i]);
    text.push_back(atlas.token_text(n->top_ids[i]));
  }
  const size_t count = rank.size();
  nb::dict table;
  table["rank"] = numpy_from_vector(std::move(rank), {count});
  table["token"] = numpy_from_vector(std::move(token), {count});
  table["text"] = text;
  table["logit"] = numpy_from_vector(std::vector<double>(n->top_logits), {count});
  table["prob"] = numpy_from_vector(std::vector<double>(n->top_probs), {count});
  table["logsumexp"] = n->logsumexp;
  table["entropy"] = n->entropy;
  return table;
}

nb::dict map_model(const PyModel& model, const std::string& atlas_path, const std::vector<std::string>& kinds,
                   const std::optional<std::vector<int64_t>>& layers, int top_k, const std::string& norm,
                   const std::string& read_norm, const std::string& precision, const std::string& backend,
                   int head_rank, std::optional<nb::callable> on_progress) {
  MapOptions options;
  // Neuron kinds and head circuits ("ov", "qk"), as `map --kinds` takes them.
  std::string joined;
  for (const std::string& k : kinds) {
    if (k.empty() || k.find(',') != std::string::npos) throw bad_input("kind '" + k + "' is not one kind");
    joined += (joined.empty() ? "" : ",") + k;
  }
  if (joined.empty()) throw bad_input("no kinds given (expected some of up, gate, down, ov, qk)");
  const MapKinds parsed = parse_map_kinds(joined);
  options.kinds = parsed.kinds;
  options.circuits = parsed.circuits;
  options.head_rank = head_rank;
  options.layers = checked_layers(layers, model.config().n_layers);
  options.settings.norm = norm_mode_from_name(norm);
  options.settings.read_norm = read_norm_from_name(read_norm);
  if (top_k < 1 || top_k > 1000) throw bad_input("top_k must be 1 to 1000, got " + std::to_string(top_k));
  options.settings.top_k = top_k;
  options.settings.precision = precision_from_name(precision);
  options.settings.backend = backend;
  const auto progress = map_progress_callback(std::move(on_progress));
  nb::gil_scoped_release release;
  Atlas atlas = Atlas::create_or_resume(atlas_path, atlas_settings_for(model.model(), options.settings),
                                        model.model().vocab());
  const MapProgress done = run_neuron_map(model.model(), options, atlas, progress);
  nb::gil_scoped_acquire acquire;
  return progress_dict(done);
}

FindOptions find_options(const std::vector<std::string>& kinds, const std::optional<std::vector<int64_t>>& layers,
                         int64_t n_layers, const std::string& by, int limit, int show_top) {
  FindOptions options;
  options.kinds = kinds_from_names(kinds);
  options.layers = checked_layers(layers, n_layers);
  options.rank_by = rank_by_from_name(by);
  if (limit < 1 || limit > 10000) throw bad_input("top must be 1 to 10000, got " + std::to_string(limit));
  if (show_top < 0 || show_top > 100) throw bad_input("show_top must be 0 to 100, got " + std::to_string(show_top));
  options.limit = limit;
  options.show_top = show_top;
  return options;
}

// The hits as columns, with the concept's tokens and whether the ranking
// was exact (from the weights) or within the stored top-k.
template <class TextOf>
nb::dict hit_table(const ConceptTokens& ct, const std::vector<ConceptHit>& hits, const TextOf& text_of, bool exact,
                   const std::string& note) {
  std::vector<std::string> kinds;
  std::vector<int64_t> layers, neurons, ranks;
  std::vector<double> probs, logits;
  std::vector<std::vector<std::string>> tops;
  std::vector<std::vector<double>> top_probs;
  for (const ConceptHit& h : hits) {
    kinds.emplace_back(vector_kind_name(h.kind));
    layers.push_back(h.layer);
    neurons.push_back(h.index);
    probs.push_back(h.prob);
    logits.push_back(h.logit);
    ranks.push_back(h.rank);
    std::vector<std::string> texts;
    for (int32_t id : h.top_ids) texts.push_back(text_of(id));
    tops.push_back(std::move(texts));
    top_probs.push_back(h.top_probs);
  }
  nb::dict table;
  table["kind"] = kinds;
  table["layer"] = layers;
  table["neuron"] = neurons;
  table["prob"] = probs;
  table["logit"] = logits;
  table["rank"] = ranks;
  table["top_tokens"] = tops;
  table["top_probs"] = top_probs;
  nb::dict result;
  result["table"] = table;
  result["concept"] = ct.concept_text;
  result["token_ids"] = ct.ids;
  result["token_texts"] = ct.variants;
  result["not_single_tokens"] = ct.not_single;
  result["exact"] = exact;
  result["note"] = note;
  return result;
}

// find over an atlas: exact from its weights when they are at hand (the
// recorded path or `model_path`, same sha256), else within the stored top-k.
nb::dict find_in_atlas(const Atlas& atlas, const std::string& concept_text, const std::vector<std::string>& kinds,
                       const std::optional<std::vector<int64_t>>& layers, const std::string& by, int limit,
                       int show_top, bool exact_text, const std::string& model_path) {
  const FindOptions options = find_options(kinds, layers, atlas.settings().n_layers, by, limit, show_top);
  nb::gil_scoped_release release;
  AtlasWeights weights = load_atlas_weights(atlas, model_path);
  if (weights.model) {
    DecodeSettings settings;
    settings.norm = atlas.settings().norm;
    settings.read_norm = atlas.settings().read_norm;
    settings.top_k = atlas.settings().top_k;
    const ConceptTokens ct = expand_concept(weights.model->vocab(), concept_text, exact_text);
    const LmHeadDecoder decoder(*weights.model, settings);
    const auto hits = find_concept(*weights.model, decoder, &atlas, ct, options);
    nb::gil_scoped_acquire acquire;
    const Vocabulary& vocab = weights.model->vocab();
    return hit_table(ct, hits, [&](int32_t id) { return vocab.token(id).display; }, true, "");
  }
  const Vocabulary vocab = atlas.vocabulary();
  const ConceptTokens ct = expand_concept(vocab, concept_text, exact_text);
  const auto hits = find_concept_in_atlas(atlas, ct, options);
  nb::gil_scoped_acquire acquire;
  return hit_table(ct, hits, [&](int32_t id) { return atlas.token_text(id); }, false, weights.why_missing);
}

// find over a model's weights: the chosen kinds and layers mapped once into
// an in-memory atlas (for every neuron's logsumexp), then ranked exactly.
nb::dict find_in_model(const PyModel& model, const std::string& concept_text, const std::vector<std::string>& kinds,
                       const std::optional<std::vector<int64_t>>& layers, const std::string& by, int limit,
                       int show_top, bool exact_text, const std::string& norm, const std::string& read_norm,
                       std::optional<nb::callable> on_progress) {
  const FindOptions options = find_options(kinds, layers, model.config().n_layers, by, limit, show_top);
  DecodeSettings settings;
  settings.norm = norm_mode_from_name(norm);
  settings.read_norm = read_norm_from_name(read_norm);
  const ConceptTokens ct = expand_concept(model.model().vocab(), concept_text, exact_text);
  MapOptions map;
  map.kinds = options.kinds;
  map.layers = options.layers;
  map.settings = settings;
  const auto progress = map_progress_callback(std::move(on_progress));
  nb::gil_scoped_release release;
  const std::shared_ptr<Atlas> atlas = model.memory_atlas(map, progress);
  const auto decoder = model.decoder(settings);
  const auto hits = find_concept(model.model(), *decoder, atlas.get(), ct, options);
  nb::gil_scoped_acquire acquire;
  const Vocabulary& vocab = model.model().vocab();
  return hit_table(ct, hits, [&](int32_t id) { return vocab.token(id).display; }, true, "");
}

nb::dict compare(const Atlas& a, const Atlas& b, int most_changed) {
  if (most_changed < 0 || most_changed > 100000) {
    throw bad_input("most_changed must be 0 to 100000, got " + std::to_string(most_changed));
  }
  Comparison c;
  {
    nb::gil_scoped_release release;
    c = compare_atlases(a, b, most_changed);
  }
  nb::dict layers, kinds, changed;
  std::vector<std::string> kind;
  std::vector<int64_t> layer, neurons;
  std::vector<double> top1_same, mean_overlap;
  for (const LayerAgreement& l : c.layers) {
    kind.emplace_back(vector_kind_name(l.kind));
    layer.push_back(l.layer);
    neurons.push_back(l.neurons);
    top1_same.push_back(l.top1_same);
    mean_overlap.push_back(l.mean_overlap);
  }
  layers["kind"] = kind;
  layers["layer"] = layer;
  layers["neurons"] = neurons;
  layers["top1_same"] = top1_same;
  layers["mean_overlap"] = mean_overlap;
  kind.clear(), neurons.clear(), top1_same.clear(), mean_overlap.clear();
  for (const KindAgreement& k : c.kinds) {
    kind.emplace_back(vector_kind_name(k.kind));
    neurons.push_back(k.neurons);
    top1_same.push_back(k.top1_same);
    mean_overlap.push_back(k.mean_overlap);
  }
  kinds["kind"] = kind;
  kinds["neurons"] = neurons;
  kinds["top1_same"] = top1_same;
  kinds["mean_overlap"] = mean_overlap;
  kind.clear(), layer.clear();
  std::vector<int64_t> index;
  std::vector<double> overlap;
  std::vector<std::vector<std::string>> top_a, top_b;
  auto texts = [](const Atlas& atlas, const std::vector<int32_t>& ids) {
    std::vector<std::string> out;
    for (int32_t id : ids) out.push_back(atlas.token_text(id));
    return out;
  };
  for (const ChangedNeuron& n : c.most_changed) {
    kind.emplace_back(vector_kind_name(n.kind));
    layer.push_back(n.layer);
    index.push_back(n.index);
    overlap.push_back(n.overlap);
    top_a.push_back(texts(a, n.top_a));
    top_b.push_back(texts(b, n.top_b));
  }
  changed["kind"] = kind;
  changed["layer"] = layer;
  changed["neuron"] = index;
  changed["overlap"] = overlap;
  changed["top_a"] = top_a;
  changed["top_b"] = top_b;
  nb::dict result;
  result["layers"] = layers;
  result["kinds"] = kinds;
  result["most_changed"] = changed;
  return result;
}

}  // namespace

void bind_atlas(nb::module_& m) {
  nb::class_<Atlas>(m, "_Atlas", "An atlas opened read-only (the package's Atlas wraps it).")
      .def("__init__", [](Atlas* self, const std::string& path) { new (self) Atlas(Atlas::open(path)); },
           nb::arg("path"))
      .def_prop_ro("path", &Atlas::path)
      .def_prop_ro("settings", [](const Atlas& a) { return settings_dict(a.settings()); })
      .def("meta", &Atlas::meta, nb::arg("key"))
      .def(
          "layers_done",
          [](const Atlas& a) {
            std::vector<std::pair<std::string, int64_t>> out;
            for (const auto& [kind, layer] : a.layers_done()) out.emplace_back(vector_kind_name(kind), layer);
            return out;
          },
          "The (kind, layer) pairs mapped.")
      .def("token_text", &Atlas::token_text, nb::arg("id"))
      .def("neuron_table", &neuron_table, nb::arg("kind") = nb::none(), nb::arg("layer") = nb::none())
      .def("top_token_table", &top_token_table, nb::arg("layer"), nb::arg("kind"), nb::arg("neuron"));

  m.def("_map", &map_model, nb::arg("model"), nb::arg("atlas_path"), nb::arg("kinds"), nb::arg("layers"),
        nb::arg("top_k"), nb::arg("norm"), nb::arg("read_norm"), nb::arg("precision") = "auto",
        nb::arg("backend") = "", nb::arg("head_rank") = 4, nb::arg("on_progress") = nb::none());
  m.def("_find_in_atlas", &find_in_atlas, nb::arg("atlas"), nb::arg("concept"), nb::arg("kinds"), nb::arg("layers"),
        nb::arg("by"), nb::arg("limit"), nb::arg("show_top"), nb::arg("exact"), nb::arg("model_path"));
  m.def("_find_in_model", &find_in_model, nb::arg("model"), nb::arg("concept"), nb::arg("kinds"), nb::arg("layers"),
        nb::arg("by"), nb::arg("limit"), nb::arg("show_top"), nb::arg("exact"), nb::arg("norm"),
        nb::arg("read_norm"), nb::arg("on_progress") = nb::none());
  m.def("_compare", &compare, nb::arg("a"), nb::arg("b"), nb::arg("most_changed"));
}

}  // namespace neuronlens::python
