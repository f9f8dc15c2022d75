#include "runtime/session_weights.h"

#include <algorithm>

#include "backends/cpu/kernel_path.h"
#include "model/norm_weight.h"
#include "neuronlens/runtime.h"
#include "neuronlens/tensor.h"

namespace neuronlens::runtime {
namespace {

std::vector<float> dense(const TensorView& tensor) {
  std::vector<float> out(static_cast<size_t>(tensor.elements()));
  dequantize_rows(tensor, 0, tensor.rows(), out.data());
  return out;
}

std::vector<float> dense_if_present(const TensorView* tensor) { return tensor ? dense(*tensor) : std::vector<float>{}; }

int64_t float_bytes(const std::vector<float>& v) { return static_cast<int64_t>(v.size() * sizeof(float)); }

}  // namespace

std::vector<const WeightMatrix*> SessionWeights::matrices() const {
  std::vector<const WeightMatrix*> all{&token_embedding, &output};
  for (const LayerWeights& l : layers) {
    for (const auto* m : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      all.push_back(m);
    }
  }
  return all;
}

// The float32 vectors, all copied.
static int64_t vector_bytes(const SessionWeights& w) {
  int64_t total = float_bytes(w.output_norm) + float_bytes(w.rope_freqs);
  for (const LayerWeights& l : w.layers) {
    for (const auto* v : {&l.attn_norm, &l.attn_q_norm, &l.attn_k_norm, &l.attn_post_norm, &l.attn_q_bias,
                          &l.attn_k_bias, &l.attn_v_bias, &l.ffn_norm, &l.ffn_post_norm}) {
      total += float_bytes(*v);
    }
  }
  return total;
}

int64_t SessionWeights::bytes() const {
  int64_t total = vector_bytes(*this);
  for (const WeightMatrix* m : matrices()) total += m->bytes();
  return total;
}

int64_t SessionWeights::copied_bytes() const {
  int64_t total = vector_bytes(*this);
  for (const WeightMatrix* m : matrices()) total += m->copied_bytes();
  return total;
}

SessionWeights load_session_weights(const Model& model, WeightFormat format) {
  const ModelConfig& c = model.config();
  const bool keep_blocks = format != WeightFormat::Float32, float_activations = format == WeightFormat::Exact;
  const auto matrix = [&](WeightKind kind, int64_t layer) {
    return WeightMatrix(model.weight(kind, layer), keep_blocks, float_activations);
  };
  SessionWeights w;
  w.model = model;
  w.token_embedding = WeightMatrix(model.weight(WeightKind::TokenEmbedding), keep_blocks, float_activations);
  const auto norm = [&](WeightKind kind, int64_t layer) { return applied_norm_weight(model, kind, layer); };
  w.output_norm = norm(WeightKind::OutputNorm, -1);
  if (const TensorView* output = model.find_weight(WeightKind::Output)) w.output = WeightMatrix(*output, keep_blocks, float_activations);
  w.rope_freqs = dense_if_present(model.find_weight(WeightKind::RopeFreqs));
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    l.attn_norm = norm(WeightKind::AttnNorm, i);
    l.attn_q_norm = norm(WeightKind::AttnQNorm, i);
    l.attn_k_norm = norm(WeightKind::AttnKNorm, i);
    l.attn_post_norm = norm(WeightKind::AttnPostNorm, i);
    l.ffn_post_norm = norm(WeightKind::FfnPostNorm, i);
    l.attn_q = matrix(WeightKind::AttnQ, i);
    l.attn_k = matrix(WeightKind::AttnK, i);
    l.attn_v = matrix(WeightKind::AttnV, i);
    l.attn_q_bias = dense_if_present(model.find_weight(WeightKind::AttnQBias, i));
    l.attn_k_bias = dense_if_present(model.find_weight(WeightKind::AttnKBias, i));
    l.attn_v_bias = dense_if_present(model.find_weight(WeightKind::AttnVBias, i));
    l.attn_output = matrix(WeightKind::AttnOutput, i);
    l.ffn_norm = norm(WeightKind::FfnNorm, i);
    l.ffn_gate = matrix(WeightKind::FfnGate, i);
    l.ffn_up = matrix(WeightKind::FfnUp, i);
    l.ffn_down = matrix(WeightKind::FfnDown, i);
  }
  return w;
}

}  // namespace neuronlens::runtime

namespace neuronlens {

std::string_view runtime_kernel_path() { return cpu::kernel_path_name(cpu::best_kernel_path()); }

std::vector<WeightKernelUse> plan_weight_kernels(const Model& model, WeightFormat format) {
  std::vector<const TensorView*> tensors{&model.weight(WeightKind::TokenEmbedding)};
  if (const TensorView* output = model.find_weight(WeightKind::Output)) tensors.push_back(output);
  for (int64_t i = 0; i < model.config().n_layers; ++i) {
    for (WeightKind kind : {WeightKind::AttnQ, WeightKind::AttnK, WeightKind::AttnV, WeightKind::AttnOutput,
                            WeightKind::FfnGate, WeightKind::FfnUp, WeightKind::FfnDown}) {
      tensors.push_back(&model.weight(kind, i));
    }
  }
  std::vector<WeightKernelUse> uses;
  for (const TensorView* t : tensors) {
    const runtime::WeightChoice choice =
        runtime::WeightMatrix::choose(*t, format != WeightFormat::Float32, format == WeightFormat::Exact);
    const std::string kernel = choice.kernel == runtime::WeightKernel::KQuant       ? "kquant"
                               : choice.kernel == runtime::WeightKernel::Int8Blocks ? "int8blocks"
                               : choice.kernel == runtime::WeightKernel::Blocks     ? "blocks"
                               : choice.kernel == runtime::WeightKernel::Tiles      ? "tiles"
                                                                                    : "float32";
    const std::string type(dtype_name(t->type));
    auto it = std::find_if(uses.begin(), uses.end(), [&](const WeightKernelUse& u) {
      return u.file_type == type && u.kernel == kernel && u.in_place == choice.in_place;
    });
    if (it == uses.end()) {
      it = uses.insert(uses.end(), {type, kernel, choice.in_place, 0, 0, 0, choice.fallback_reason});
    }
    ++it->matrices;
    it->bytes += t->nbytes;
    if (!choice.in_place) it->copied_bytes += t->elements() * static_cast<int64_t>(sizeof(float));
  }
  return uses;
}

}  // namespace neuronlens
