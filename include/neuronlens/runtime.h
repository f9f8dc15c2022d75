// The forward pass of a decoder-only transformer (every family of
// model.h's Architecture) on the CPU, with a KV cache and
// hook points where a caller can read or change the activations.
//
// A Session reads the model's weight matrices where they lie in the mapped
// file (see WeightFormat), so it costs about the file's size (the pages the
// OS keeps in memory) plus small float32 copies of the norms and biases plus
// the KV cache, 2 * n_layers * positions * n_kv_heads * head_dim floats (or
// halves: KvCacheType::F16), grown as tokens arrive. With WeightFormat::Float32, every matrix is dequantised
// into a copy instead: 4 bytes per parameter. Activations are float32 either
// way. It keeps the Model's files mapped for as long as it lives.
//
// One block, for x [n_tokens, d] at positions p0 .. p0+n_tokens-1:
//   x += post_a(attn(pre_a(x)))          causal, grouped-query, RoPE
//   x += post_m(down(act(gate(h)) * up(h))),  h = pre_m(x)
// then logits = cap(W_U · (rmsnorm(x) * output_norm)). Per family
// (ModelConfig): pre_a/pre_m are the attn_norm/ffn_norm RMSNorms (identity for
// OLMo 2), post_a/post_m the post-norms of Gemma 2/3 and OLMo 2 (identity
// elsewhere); act is SiLU or tanh-GELU; q and k may be RMS-normed before
// RoPE; local layers attend through a sliding window with their own RoPE
// base; Gemma scales the embedding by sqrt(d); cap is Gemma 2's final
// soft-cap (identity elsewhere), and its attention scores are soft-capped too.
//
// Hooks. Every layer has named points; a hook registered at one receives the
// activations there, [n_tokens, width] row-major, and may change them in place
// (the change flows on into the rest of the pass). A point with no hook costs
// one branch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/model.h"

namespace neuronlens {

enum class HookPoint {
  ResidualIn,    // x entering the layer                          [n, d]
  AttnZ,         // each head's attention output before o_proj: head h is
                 // columns h*head_dim .. (h+1)*head_dim-1   [n, n_heads * head_dim]
  AttnOut,       // attention output after o_proj (and post_a), before x +=  [n, d]
  MlpGate,       // gate_proj(h), before the activation            [n, F]
  MlpUp,         // up_proj(h)                                     [n, F]
  MlpAct,        // act(gate) * up: the neuron activations         [n, F]
  MlpOut,        // down_proj(act) (and post_m), before x +=         [n, d]
  ResidualOut,   // x leaving the layer                            [n, d]
  FinalNorm,     // rmsnorm(x) * output_norm, the LM head's input  [n, d]
};
inline constexpr int kHookPointCount = 9;
std::string_view hook_point_name(HookPoint point);  // "residual_in", "mlp_act", ...

// Called with the layer (FinalNorm: n_layers), the point, the activations
// data [n_tokens, width], and the position of row 0 in the sequence.
using Hook = std::function<void(int64_t layer, HookPoint point, float* data, int64_t n_tokens, int64_t width,
                                int64_t first_position)>;
using HookId = uint64_t;
// Register at every layer (FinalNorm: its one place).
inline constexpr int64_t kEveryLayer = -1;

// Activations captured by Session::record: one row per processed token, in the
// order they were processed.
struct ActivationRecord {
  int64_t width = 0;
  std::vector<int64_t> positions;  // [rows]
  std::vector<float> values;       // [rows, width]
  int64_t rows() const { return static_cast<int64_t>(positions.size()); }
};

// Attention weights captured by Session::record_attention, one entry per
// forward call: the softmax over the keys of each head and new token.
struct AttentionPattern {
  int64_t first_position = 0;  // position of the call's first token
  int64_t n_tokens = 0;        // the call's tokens (queries)
  int64_t n_keys = 0;          // first_position + n_tokens: every cached position
  // [n_heads, n_tokens, n_keys] row-major: weights[(h * n_tokens + t) * n_keys + j]
  // is how much head h of the token at first_position + t attends to
  // position j; 0 for keys it cannot see (later ones, or outside a sliding
  // window). Each (h, t) row sums to 1.
  std::vector<float> weights;
};
struct AttentionRecord {
  int64_t n_heads = 0;
  std::vector<AttentionPattern> calls;
};

enum class LogitsFor { AllTokens, LastToken };

// How a Session holds the weight matrices.
enum class WeightFormat {
  // Matrices are multiplied in the file's own blocks, in place:
  //   - K-quants (Q2_K..Q6_K) in 8-bit integer arithmetic, the activations
  //     quantised 256 at a time as llama.cpp does (backends/cpu/kquant.h);
  //   - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 likewise, the activations quantised 32
  //     at a time as llama.cpp does for them (backends/cpu/block_q8.h);
  //   - F16 and BF16 with float32 activations (block_matvec.h);
  //   - F32 through BLAS.
  // A type without a kernel is dequantised to a float32 copy, and
  // Session::weight_kernels() says so.
  Quantized,
  // As Quantized, but every product with float32 activations: K-quant
  // blocks are dequantised a tile at a time (never all at once) and
  // multiplied in float32, Q4_0..Q8_0 go through the float-activation block
  // kernels. The logits of Float32 in the memory of Quantized,
  // slower per token; for when the 8-bit activations' rounding matters
  // (Gemma's large activations: tests/unit/test_gemma3_real.cpp).
  Exact,
  // Every weight dequantised to float32, products through OpenBLAS.
  Float32,
};
std::string_view weight_format_name(WeightFormat format);  // "quantized", "exact", "float32"
// Throws Error on a name other than those.
WeightFormat parse_weight_format(std::string_view name);

// How the KV cache holds keys and values: float32 (exact), or IEEE half
// precision (half the memory; each key and value rounded to 11 significant
// bits, llama.cpp's default). Attention itself runs in float32 either way.
enum class KvCacheType { F32, F16 };
std::string_view kv_cache_type_name(KvCacheType type);  // "f32", "f16"
// Throws Error on a name other than those.
KvCacheType parse_kv_cache_type(std::string_view name);

struct SessionOptions {
  WeightFormat weights = WeightFormat::Quantized;
  KvCacheType kv_cache = KvCacheType::F32;
};

// How a Session holds the matrices of one file type: the kernel ("kquant",
// "int8blocks", "blocks", "tiles", "float32"), whether read in place, and why not.
struct WeightKernelUse {
  std::string file_type;     // "Q4_K", ...
  std::string kernel;        // "kquant" (8-bit products over 256), "int8blocks" (8-bit products over 32),
                             // "blocks" (float activations), "tiles" (dequantised
                             // tile by tile, float activations), "float32" (BLAS)
  bool in_place = true;      // read from the mapped file; false: a float32 copy
  int64_t matrices = 0;
  int64_t bytes = 0;         // of the file's tensors
  int64_t copied_bytes = 0;  // of the float32 copies, when not in place
  std::string note;          // why a quantised type was copied, else ""
};
// Decided from the tensors' types alone: nothing is read or allocated.
std::vector<WeightKernelUse> plan_weight_kernels(const Model& model, WeightFormat format = WeightFormat::Quantized);
// The instruction set the runtime's block and K-quant kernels use in this
// process: "avx512vnni", "avx2" or "portable", the fastest this CPU runs
// unless NEURONLENS_KERNEL_PATH names another (throws Error if it names one
// this CPU lacks, or none).
std::string_view runtime_kernel_path();

class Session {
 public:
  // Copies the model's weights (see the memory note above). Throws Error on a
  // bad tensor.
  explicit Session(const Model& model, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const ModelConfig& config() const;
  // Tokens in the KV cache: the position the next token gets.
  int64_t position() const;
  // Forgets the cached tokens (the hooks stay).
  void reset();
  // Bytes of the weights the forward pass reads, in the mapped file or in
  // copies; of those, the bytes the session owns (copies); and the bytes of
  // the KV cache as allocated now.
  int64_t weight_bytes() const;
  int64_t copied_weight_bytes() const;
  int64_t cache_bytes() const;

  // Runs `tokens` at positions position() .. position()+n-1 in one batch and
  // appends them to the cache. Returns logits [n, V] (AllTokens) or [1, V] for
  // the last token. Throws Error, leaving the session unchanged, if `tokens`
  // is empty, an id is outside [0, V), or the positions would pass the
  // model's context length. A LongRoPE model (ModelConfig::rope_scaling)
  // whose sequence first grows past the original context runs the cached
  // tokens again with the new ones, as Hugging Face's Phi-3 does: the hooks
  // see those positions a second time.
  std::vector<float> forward(const std::vector<int32_t>& tokens, LogitsFor which = LogitsFor::AllTokens);

  // A hook at `point` of `layer` (or kEveryLayer). Throws Error on a bad layer.
  HookId add_hook(HookPoint point, int64_t layer, Hook hook);
  // Throws Error if `id` is not registered.
  void remove_hook(HookId id);
  void clear_hooks();

  // Interventions, each a hook (remove it with remove_hook). They throw Error
  // on a layer outside [0, n_layers), a neuron outside [0, d_ffn), or a
  // vector whose size is not d_model.
  // Fixes the post-activation act(gate)*up of the neurons to `value`.
  HookId clamp_neurons(int64_t layer, const std::vector<int64_t>& neurons, float value);
  // Sets them to 0.
  HookId ablate_neurons(int64_t layer, const std::vector<int64_t>& neurons);
  // Multiplies them by `factor`.
  HookId scale_neurons(int64_t layer, const std::vector<int64_t>& neurons, float factor);
  // Adds `vector` [d] to every row at a residual-width point of `layer`
  // (ResidualIn, AttnOut, MlpOut or ResidualOut; default: steering the
  // residual stream leaving the layer).
  HookId add_to_residual(int64_t layer, const std::vector<float>& vector, HookPoint point = HookPoint::ResidualOut);
  // Head interventions, at AttnZ (before o_proj, so a post-norm still
  // applies; no supported family has an o_proj bias): multiply the outputs of `heads` by
  // `factor`; ablate sets them to 0. They throw Error on a layer outside
  // [0, n_layers), a head outside [0, n_heads), no heads, or a factor that
  // is not finite.
  HookId scale_heads(int64_t layer, const std::vector<int64_t>& heads, float factor);
  HookId ablate_heads(int64_t layer, const std::vector<int64_t>& heads);
  // Copies the activations at `point` of one `layer` (FinalNorm: n_layers or
  // kEveryLayer) into the returned record on every forward call, rows appended.
  std::shared_ptr<ActivationRecord> record(HookPoint point, int64_t layer, HookId* id = nullptr);
  // Records the attention weights of every head of `layer` on every forward
  // call (remove it with remove_hook, like a hook). Costs n_heads * n_tokens *
  // n_keys floats a call; a layer without a record computes no pattern.
  // Throws Error on a bad layer.
  std::shared_ptr<AttentionRecord> record_attention(int64_t layer, HookId* id = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neuronlens
