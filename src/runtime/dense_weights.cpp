#include "runtime/dense_weights.h"

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

int64_t DenseWeights::bytes() const {
  int64_t total = float_bytes(token_embedding) + float_bytes(output_norm) + float_bytes(output) + float_bytes(rope_freqs);
  for (const DenseLayer& l : layers) {
    for (const auto* v : {&l.attn_norm, &l.attn_q, &l.attn_k, &l.attn_v, &l.attn_q_bias, &l.attn_k_bias,
                          &l.attn_v_bias, &l.attn_output, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      total += float_bytes(*v);
    }
  }
  return total;
}

DenseWeights dequantize_model(const Model& model) {
  const ModelConfig& c = model.config();
  DenseWeights w;
  w.token_embedding = dense(model.weight(WeightKind::TokenEmbedding));
  w.output_norm = dense(model.weight(WeightKind::OutputNorm));
  w.output = dense_if_present(model.find_weight(WeightKind::Output));
  w.rope_freqs = dense_if_present(model.find_weight(WeightKind::RopeFreqs));
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    DenseLayer& l = w.layers[static_cast<size_t>(i)];
    l.attn_norm = dense(model.weight(WeightKind::AttnNorm, i));
    l.attn_q = dense(model.weight(WeightKind::AttnQ, i));
    l.attn_k = dense(model.weight(WeightKind::AttnK, i));
    l.attn_v = dense(model.weight(WeightKind::AttnV, i));
    l.attn_q_bias = dense_if_present(model.find_weight(WeightKind::AttnQBias, i));
    l.attn_k_bias = dense_if_present(model.find_weight(WeightKind::AttnKBias, i));
    l.attn_v_bias = dense_if_present(model.find_weight(WeightKind::AttnVBias, i));
    l.attn_output = dense(model.weight(WeightKind::AttnOutput, i));
    l.ffn_norm = dense(model.weight(WeightKind::FfnNorm, i));
    l.ffn_gate = dense(model.weight(WeightKind::FfnGate, i));
    l.ffn_up = dense(model.weight(WeightKind::FfnUp, i));
    l.ffn_down = dense(model.weight(WeightKind::FfnDown, i));
  }
  return w;
}

}  // namespace neuronlens::runtime
