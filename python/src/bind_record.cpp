// Activation records in Python (neuronlens/neuron_record.h): record a
// corpus into an atlas, read a neuron's evidence, the record's info and its
// agreement with the down decode. The package's record(), Atlas.evidence(),
// Atlas.record_info and Atlas.agreement() wrap these.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_record.h"
#include "neuronlens/record_agreement.h"
#include "py_model.h"

namespace nb = nanobind;

namespace neuronlens::python {
namespace {

nb::dict record_corpus(const PyModel& model, const std::string& atlas_path, const std::vector<std::string>& corpus,
                       int64_t seq_len, int64_t max_tokens, int64_t contexts, int64_t window,
                       double density_threshold, std::optional<nb::callable> on_progress) {
  CorpusOptions corpus_options;
  corpus_options.seq_len = seq_len;
  corpus_options.max_tokens = max_tokens;
  RecordOptions options;
  options.contexts = contexts;
  options.window = window;
  options.density_threshold = density_threshold;
  const auto progress = [fn = std::move(on_progress)](const RecordProgress& p) {
    nb::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
    if (fn) (*fn)(p.chunks_done, p.chunks_total);
  };
  RecordProgress done;
  {
    nb::gil_scoped_release release;
    const TokenCorpus tokens = tokenize_corpus(corpus, model.text().tokenizer, corpus_options);
    Atlas atlas = open_atlas_for_record(model.model(), atlas_path);
    done = run_neuron_record(model.model(), tokens, options, atlas, progress);
  }
  nb::dict d;
  d["chunks_done"] = done.chunks_done;
  d["chunks_total"] = done.chunks_total;
  d["tokens_done"] = done.tokens_done;
  d["chunks_skipped"] = done.chunks_skipped;
  return d;
}

nb::list contexts_list(const Atlas& atlas, const std::vector<NeuronContext>& contexts, int64_t limit) {
  nb::list out;
  for (size_t i = 0; i < contexts.size() && (limit < 0 || static_cast<int64_t>(i) < limit); ++i) {
    const NeuronContext& c = contexts[i];
    nb::list tokens;
    for (const ContextToken& t : context_window(atlas, c)) {
      nb::dict token;
      token["id"] = t.id;
      token["text"] = t.text;
      token["activation"] = t.activation;
      token["fired"] = t.fired;
      tokens.append(token);
    }
    nb::dict context;
    context["activation"] = c.activation;
    context["chunk"] = c.chunk;
    context["offset"] = c.offset;
    context["tokens"] = tokens;
    out.append(context);
  }
  return out;
}

nb::object evidence(const Atlas& atlas, int64_t layer, int64_t index, int64_t contexts) {
  const AtlasSettings& s = atlas.settings();
  if (layer < 0 || layer >= s.n_layers) throw bad_input("layer " + std::to_string(layer) + " is out of range");
  if (index < 0 || index >= s.d_ffn) throw bad_input("neuron " + std::to_string(index) + " is out of range");
  const std::optional<NeuronEvidence> e = atlas.neuron_evidence(layer, index);
  if (!e) return nb::none();
  nb::dict stats;
  stats["mean"] = e->stats.mean;
  stats["std"] = e->stats.std;
  stats["max_abs"] = e->stats.max_abs;
  stats["density"] = e->stats.density;
  nb::dict d;
  d["stats"] = stats;
  d["positive"] = contexts_list(atlas, e->positive, contexts);
  d["negative"] = contexts_list(atlas, e->negative, contexts);
  return d;
}

nb::object record_info(const Atlas& atlas) {
  const std::optional<RecordInfo> info = atlas.record_info();
  if (!info) return nb::none();
  nb::list files;
  for (const CorpusFile& f : info->files) {
    nb::dict file;
    file["name"] = f.name;
    file["sha256"] = f.sha256;
    file["bytes"] = f.bytes;
    file["documents"] = f.documents;
    files.append(file);
  }
  nb::dict d;
  d["files"] = files;
  d["seq_len"] = info->seq_len;
  d["chunks_total"] = info->chunks_total;
  d["chunks_done"] = info->chunks_done;
  d["tokens_recorded"] = info->tokens_recorded;
  d["contexts"] = info->contexts;
  d["window"] = info->window;
  d["density_threshold"] = info->density_threshold;
  d["complete"] = info->complete();
  return d;
}

// Columns for a pandas DataFrame, one row per layer.
nb::dict agreement(const Atlas& atlas, const std::string& kind) {
  const ContextAgreementReport report = record_agreement(atlas, vector_kind_from_name(kind));
  std::vector<int64_t> layer, neurons;
  std::vector<double> rate, chance, above;
  for (const LayerContextAgreement& l : report.layers) {
    layer.push_back(l.layer);
    neurons.push_back(l.neurons);
    rate.push_back(l.mean_rate);
    chance.push_back(l.mean_chance);
    above.push_back(l.above_chance);
  }
  nb::dict d;
  d["layer"] = layer;
  d["neurons"] = neurons;
  d["rate"] = rate;
  d["chance"] = chance;
  d["above_chance"] = above;
  return d;
}

}  // namespace

void bind_record(nb::module_& m) {
  m.def("_record", &record_corpus, nb::arg("model"), nb::arg("atlas_path"), nb::arg("corpus"), nb::arg("seq_len"),
        nb::arg("max_tokens"), nb::arg("contexts"), nb::arg("window"), nb::arg("density_threshold"),
        nb::arg("progress").none());
  m.def("_evidence", &evidence, nb::arg("atlas"), nb::arg("layer"), nb::arg("index"), nb::arg("contexts"));
  m.def("_record_info", &record_info, nb::arg("atlas"));
  m.def("_agreement", &agreement, nb::arg("atlas"), nb::arg("kind"));
}

}  // namespace neuronlens::python
