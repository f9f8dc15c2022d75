// Activation patching (causal tracing, Meng et al.'s "Locating and editing
// factual associations"): which activations of a clean run carry what makes
// the clean prediction, found by copying them one at a time into a run on a
// corrupted prompt and measuring how much of the clean prediction comes back.
// What `neuronlens patch` prints.
//
// The metric m is the logit of `token` (minus that of `versus`) at the last
// position. For each site, restored = (m_patched − m_corrupt) / (m_clean −
// m_corrupt): 0 when the site carries none of the difference, 1 when it
// carries all of it. The sites:
//   - the residual stream leaving each layer (HookPoint::ResidualOut), one
//     position at a time: [layers, n_tokens];
//   - each layer's MLP output (MlpOut), one position at a time;
//   - each attention head's output z (its slice of AttnZ), at every position
//     at once: [layers, n_heads].
// `layers` are every layer, or the ones asked for (a big model's patching
// costs 2 · layers · n_tokens + layers · n_heads passes).
// Each patch is one forward pass of the corrupted prompt; patching the last
// layer's residual at the last position gives exactly the clean logits.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/model.h"

namespace neuronlens {

struct PatchingResult {
  int32_t token = 0;
  std::optional<int32_t> versus;
  std::vector<int64_t> layers;  // the patched layers, ascending: the grids' rows
  int64_t n_tokens = 0, n_heads = 0;
  double clean = 0;    // m on the clean prompt
  double corrupt = 0;  // m on the corrupted prompt
  // The share restored, [layers.size() * n_tokens] (row k is layers[k]) for
  // residual and mlp, [layers.size() * n_heads] for heads. When clean == corrupt there is
  // nothing to restore and every share is 0; the raw changes are in the
  // *_effect arrays (m_patched − m_corrupt, in logits) either way.
  std::vector<double> residual, mlp, heads;
  std::vector<double> residual_effect, mlp_effect, heads_effect;
  double restored(double m) const;
};

// The patched forward passes of a run over `layers` layers of an
// `n_tokens`-token prompt (the clean and corrupted passes not counted).
inline int64_t patching_passes(int64_t layers, int64_t n_tokens, int64_t n_heads) {
  return 2 * layers * n_tokens + layers * n_heads;
}

// Called after each patched pass with (done, total) passes.
using PatchingProgress = std::function<void(int64_t done, int64_t total)>;

// Patches the sites of `layers` (empty: every layer). Throws Error (bad
// input) when the prompts' token counts differ (naming both), a prompt is
// empty, a token id is outside the vocabulary, versus == token, or a layer
// is outside the model.
PatchingResult patch_activations(const Model& model, const std::vector<int32_t>& clean,
                                 const std::vector<int32_t>& corrupt, int32_t token,
                                 std::optional<int32_t> versus = std::nullopt, std::vector<int64_t> layers = {},
                                 const PatchingProgress& progress = nullptr);

// An SVG heat map of the residual and MLP shares (layer × position, the
// prompt's tokens along the bottom) and the heads' (layer × head).
std::string patching_heatmap_svg(const PatchingResult& result, const std::vector<std::string>& token_texts,
                                 const std::string& title);

}  // namespace neuronlens
