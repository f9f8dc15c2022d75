// Model: loading, sizes, the tokenizer, neuron vectors and their decode.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "names.h"
#include "neuronlens/decode.h"
#include "py_model.h"
#include "py_session.h"

namespace neuronlens::python {
namespace {

// The decode of some neurons of one (kind, layer): row i is neurons[i].
struct Decoding {
  std::string kind;
  int64_t layer = 0;
  int64_t k = 0;                      // tokens per neuron
  std::vector<int64_t> neurons;       // [n]
  std::vector<int32_t> token_ids;     // [n, k]
  std::vector<double> logits;         // [n, k]
  std::vector<double> probs;          // [n, k]
  std::vector<double> logsumexp;      // [n]
  std::vector<double> entropy;        // [n]
  std::vector<double> topk_mass;      // [n]
  std::vector<std::vector<std::string>> token_texts;  // [n][k]
  size_t n() const { return neurons.size(); }
};

std::vector<int32_t> tokenize(const PyModel& m, const std::string& text, bool chat, bool special) {
  if (chat) return m.text().prompt_tokens(text, true);
  const Tokenizer& tok = m.text().tokenizer;
  std::vector<int32_t> ids;
  if (tok.adds_bos() && tok.bos_id()) ids.push_back(*tok.bos_id());
  const std::vector<int32_t> body = tok.encode(text, special);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

NumpyArray<float> vectors(const PyModel& m, const std::string& kind, int64_t layer, const std::string& read_norm) {
  const VectorKind k = vector_kind_from_name(kind);
  const ReadNorm rn = read_norm_from_name(read_norm);
  check_layer(layer, m.config().n_layers);
  std::vector<float> out;
  {
    nb::gil_scoped_release release;
    load_neuron_vectors(m.model(), k, layer, out, rn);
  }
  return numpy_from_vector(std::move(out), {size_t(m.config().d_ffn), size_t(m.config().d_model)});
}

Decoding decode(const PyModel& m, const std::string& kind, int64_t layer, std::optional<std::vector<int64_t>> neurons,
                int top_k, const std::string& norm, const std::string& read_norm, const std::string& precision) {
  const ModelConfig& c = m.config();
  DecodeSettings settings;
  settings.norm = norm_mode_from_name(norm);
  settings.read_norm = read_norm_from_name(read_norm);
  settings.precision = precision_from_name(precision);
  if (top_k < 1 || top_k > 1000) throw bad_input("top_k must be 1 to 1000, got " + std::to_string(top_k));
  settings.top_k = top_k;
  Decoding d;
  d.kind = std::string(vector_kind_name(vector_kind_from_name(kind)));
  d.layer = layer;
  check_layer(layer, c.n_layers);
  if (neurons) {
    for (int64_t i : *neurons) check_neuron(i, c.d_ffn);
    d.neurons = *neurons;
  } else {
    for (int64_t i = 0; i < c.d_ffn; ++i) d.neurons.push_back(i);
  }
  std::vector<NeuronDecoding> results;
  {
    nb::gil_scoped_release release;
    std::vector<float> all;  // [F, d]
    load_neuron_vectors(m.model(), vector_kind_from_name(kind), layer, all, settings.read_norm);
    const int64_t dm = c.d_model;
    std::vector<float> rows(d.n() * size_t(dm));  // [n, d]
    for (size_t r = 0; r < d.n(); ++r) {
      std::memcpy(rows.data() + r * size_t(dm), all.data() + size_t(d.neurons[r] * dm), size_t(dm) * sizeof(float));
    }
    const auto decoder = m.decoder(settings);
    decoder->normalize(rows.data(), int64_t(d.n()));
    results = decoder->decode_normalized(rows.data(), int64_t(d.n()));
  }
  d.k = results.empty() ? top_k : int64_t(results[0].top_ids.size());
  const Vocabulary& vocab = m.model().vocab();
  for (const NeuronDecoding& r : results) {
    d.logsumexp.push_back(r.logsumexp);
    d.entropy.push_back(r.entropy);
    d.topk_mass.push_back(r.topk_mass);
    std::vector<std::string> texts;
    for (size_t j = 0; j < r.top_ids.size(); ++j) {
      d.token_ids.push_back(r.top_ids[j]);
      d.logits.push_back(r.top_logits[j]);
      d.probs.push_back(std::exp(r.top_logits[j] - r.logsumexp));
      texts.push_back(vocab.token(r.top_ids[j]).display);
    }
    d.token_texts.push_back(std::move(texts));
  }
  return d;
}

template <class T>
auto matrix_property(std::vector<T> Decoding::*member) {
  return [member](nb::handle_t<Decoding> self) {
    Decoding& d = *nb::inst_ptr<Decoding>(self);
    return numpy_view(d.*member, {d.n(), size_t(d.k)}, self);
  };
}

template <class T>
auto vector_property(std::vector<T> Decoding::*member) {
  return [member](nb::handle_t<Decoding> self) {
    Decoding& d = *nb::inst_ptr<Decoding>(self);
    return numpy_view(d.*member, {d.n()}, self);
  };
}

}  // namespace

void bind_model(nb::module_& m) {
  nb::class_<Decoding>(m, "Decoding",
                       "Neurons of one (kind, layer) decoded through the final norm and LM head: row i is "
                       "neurons[i], its top k tokens best first. The arrays are views of this object.")
      .def_ro("kind", &Decoding::kind, "The vector kind decoded: up, gate or down.")
      .def_ro("layer", &Decoding::layer, "The layer decoded.")
      .def_prop_ro("neurons", vector_property(&Decoding::neurons), "[n] int64: the neuron of each row")
      .def_prop_ro("token_ids", matrix_property(&Decoding::token_ids), "[n, k] int32: top token ids, best first")
      .def_prop_ro("logits", matrix_property(&Decoding::logits), "[n, k] float64: their logits")
      .def_prop_ro("probs", matrix_property(&Decoding::probs), "[n, k] float64: their probabilities")
      .def_prop_ro("logsumexp", vector_property(&Decoding::logsumexp),
                   "[n] float64: log sum exp of the logits over the whole vocabulary")
      .def_prop_ro("entropy", vector_property(&Decoding::entropy), "[n] float64: entropy in nats")
      .def_prop_ro("topk_mass", vector_property(&Decoding::topk_mass), "[n] float64: sum of the top-k probabilities")
      .def_ro("token_texts", &Decoding::token_texts, "[n][k] the top tokens' display texts")
      .def("__len__", &Decoding::n, "Neurons decoded (rows).")
      .def("__repr__", [](const Decoding& d) {
        return "<Decoding " + d.kind + " layer " + std::to_string(d.layer) + ": " + std::to_string(d.n()) +
               " neurons, top " + std::to_string(d.k) + ">";
      });

  nb::class_<PyModel>(m, "Model",
                      "A language model: weights (memory-mapped, read in their own blocks), tokenizer and chat "
                      "template. Made by neuronlens.load(path).")
      .def(nb::init<const std::string&>(), nb::arg("path"), nb::call_guard<nb::gil_scoped_release>(),
           "Loads a GGUF file or a Hugging Face folder; raises neuronlens.Error on a bad file.")
      .def_prop_ro("path", [](const PyModel& p) { return p.model().path(); },
                   "The file or folder the model was loaded from.")
      .def_prop_ro("architecture", [](const PyModel& p) { return std::string(architecture_name(p.config().arch)); },
                   "The family: llama, qwen2, mistral, qwen3, gemma2, gemma3, olmo2 or phi3.")
      .def_prop_ro("name", [](const PyModel& p) { return p.config().name; },
                   "The model's name, from its metadata.")
      .def_prop_ro("n_layers", [](const PyModel& p) { return p.config().n_layers; },
                   "Transformer blocks.")
      .def_prop_ro("d_model", [](const PyModel& p) { return p.config().d_model; },
                   "Width of the residual stream (d).")
      .def_prop_ro("d_ffn", [](const PyModel& p) { return p.config().d_ffn; },
                   "Neurons per MLP layer (F).")
      .def_prop_ro("n_heads", [](const PyModel& p) { return p.config().n_heads; },
                   "Query heads per layer.")
      .def_prop_ro("n_kv_heads", [](const PyModel& p) { return p.config().n_kv_heads; },
                   "Key/value heads per layer (grouped-query attention).")
      .def_prop_ro("head_dim", [](const PyModel& p) { return p.config().head_dim; },
                   "Width of one attention head.")
      .def_prop_ro("vocab_size", [](const PyModel& p) { return p.config().vocab_size; },
                   "Tokens in the vocabulary (V).")
      .def_prop_ro("context_length", [](const PyModel& p) { return p.config().context_length; },
                   "Most positions the model takes.")
      .def_prop_ro("has_chat_template", [](const PyModel& p) { return p.text().chat.has_value(); },
                   "Whether generate(chat=True) and tokenize(chat=True) can render a chat template.")
      .def("tokenize", &tokenize, nb::arg("text"), nb::kw_only(), nb::arg("chat") = false,
           nb::arg("special") = false,
           "Token ids of `text`, as generate and probe feed them: BOS in front where the model wants one. "
           "chat=True renders the text as one user message of the chat template; special=True lets control "
           "tokens written in the text (\"<|im_start|>\") become their ids.")
      .def(
          "detokenize",
          [](const PyModel& p, const std::vector<int32_t>& ids) {
            const std::string bytes = p.text().tokenizer.decode(ids);
            return nb::steal<nb::str>(PyUnicode_DecodeUTF8(bytes.data(), Py_ssize_t(bytes.size()), "replace"));
          },
          nb::arg("ids"), "The text of token ids (a split UTF-8 character becomes U+FFFD).")
      .def(
          "token_text", [](const PyModel& p, int64_t id) { return p.model().vocab().token(id).display; },
          nb::arg("id"), "The display text of one token (what the CLI and the atlas show).")
      .def("vectors", &vectors, nb::arg("kind"), nb::arg("layer"), nb::kw_only(), nb::arg("read_norm") = "none",
           "The dequantised neuron vectors of a kind, [d_ffn, d_model] float32: rows of up_proj or gate_proj, or "
           "the columns of down_proj as rows (times the MLP post-norm weight in families that have one). "
           "read_norm='ffn' multiplies up/gate rows by the MLP pre-norm weight.")
      .def("decode", &decode, nb::arg("kind"), nb::arg("layer"), nb::arg("neurons") = nb::none(), nb::kw_only(),
           nb::arg("top_k") = 20, nb::arg("norm") = "final", nb::arg("read_norm") = "none",
           nb::arg("precision") = "auto",
           "Decodes neurons (default: all of the layer) through the final norm and LM head, as map does: "
           "p = softmax(W_U . norm(v)). precision is map's: the top-k ids and logits are exact either way; "
           "'auto' (bf16 where the CPU has bf16 units, as a default map) leaves logsumexp, and so the "
           "probabilities, within the bf16 bound (docs/precision.md); 'exact' gives float32 products "
           "everywhere. Returns a Decoding.")
      .def(
          "session",
          [](const PyModel& p, const std::string& weights, const std::string& kv_cache) {
            return new PySession(p, weights, kv_cache);
          },
          nb::kw_only(), nb::arg("weights") = "quantized", nb::arg("kv_cache") = "f32", nb::keep_alive<0, 1>(),
          nb::rv_policy::take_ownership, nb::call_guard<nb::gil_scoped_release>(),
          "A Session (forward pass with KV cache and hooks). weights: 'quantized' (the file's blocks read in "
          "place, K-quants with 8-bit activations as llama.cpp), 'exact' (blocks in place, float32 "
          "activations) or 'float32' (a float32 copy of every matrix); kv_cache: 'f32' or 'f16'.")
      .def("__repr__", [](const PyModel& p) {
        const ModelConfig& c = p.config();
        return "<neuronlens.Model " + std::string(architecture_name(c.arch)) + " '" + c.name + "': " +
               std::to_string(c.n_layers) + " layers, d_model " + std::to_string(c.d_model) + ", d_ffn " +
               std::to_string(c.d_ffn) + ", vocab " + std::to_string(c.vocab_size) + ">";
      });
}

}  // namespace neuronlens::python
