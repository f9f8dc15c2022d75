#include "runtime/session_weights.h"

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

int64_t SessionWeights::bytes() const {
  int64_t total = token_embedding.bytes() + float_bytes(output_norm) + output.bytes() + float_bytes(rope_freqs);
  for (const LayerWeights& l : layers) {
    for (const auto* v : {&l.attn_norm, &l.attn_q_bias, &l.attn_k_bias, &l.attn_v_bias, &l.ffn_norm}) {
      total += float_bytes(*v);
    }
    for (const auto* m : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      total += m->bytes();
    }
  }
  return total;
}

SessionWeights load_session_weights(const Model& model, bool keep_blocks) {
  const ModelConfig& c = model.config();
  const auto matrix = [&](WeightKind kind, int64_t layer) { return WeightMatrix(model.weight(kind, layer), keep_blocks); };
  SessionWeights w;
  w.token_embedding = WeightMatrix(model.weight(WeightKind::TokenEmbedding), keep_blocks);
  w.output_norm = dense(model.weight(WeightKind::OutputNorm));
  if (const TensorView* output = model.find_weight(WeightKind::Output)) w.output = WeightMatrix(*output, keep_blocks);
  w.rope_freqs = dense_if_present(model.find_weight(WeightKind::RopeFreqs));
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    l.attn_norm = dense(model.weight(WeightKind::AttnNorm, i));
    l.attn_q = matrix(WeightKind::AttnQ, i);
    l.attn_k = matrix(WeightKind::AttnK, i);
    l.attn_v = matrix(WeightKind::AttnV, i);
    l.attn_q_bias = dense_if_present(model.find_weight(WeightKind::AttnQBias, i));
    l.attn_k_bias = dense_if_present(model.find_weight(WeightKind::AttnKBias, i));
    l.attn_v_bias = dense_if_present(model.find_weight(WeightKind::AttnVBias, i));
    l.attn_output = matrix(WeightKind::AttnOutput, i);
    l.ffn_norm = dense(model.weight(WeightKind::FfnNorm, i));
    l.ffn_gate = matrix(WeightKind::FfnGate, i);
    l.ffn_up = matrix(WeightKind::FfnUp, i);
    l.ffn_down = matrix(WeightKind::FfnDown, i);
  }
  return w;
}

}  // namespace neuronlens::runtime
