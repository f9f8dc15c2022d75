// Activation patching (neuronlens/patching.h): one clean pass records every
// site, then one corrupted pass per site with that site's clean values
// written over the corrupted ones.
#include "neuronlens/patching.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "analysis/logit_target.h"
#include "analysis/svg.h"
#include "neuronlens/error.h"
#include "neuronlens/runtime.h"

namespace neuronlens {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// The clean run's activations at one point, per patched layer: [layers]
// records of [n_tokens, width].
using LayerRecords = std::vector<std::shared_ptr<ActivationRecord>>;

LayerRecords record_layers(Session& session, HookPoint point, const std::vector<int64_t>& layers) {
  LayerRecords out;
  for (int64_t l : layers) out.push_back(session.record(point, l));
  return out;
}

}  // namespace

double PatchingResult::restored(double m) const {
  const double gap = clean - corrupt;
  return gap == 0 ? 0.0 : (m - corrupt) / gap;
}

PatchingResult patch_activations(const Model& model, const std::vector<int32_t>& clean,
                                 const std::vector<int32_t>& corrupt, int32_t token, std::optional<int32_t> versus,
                                 std::vector<int64_t> layers, const PatchingProgress& progress) {
  const ModelConfig& c = model.config();
  if (clean.empty() || corrupt.empty()) throw bad_input("patch: a prompt has no tokens");
  if (clean.size() != corrupt.size()) {
    throw bad_input("patch: the clean prompt has " + std::to_string(clean.size()) + " tokens and the corrupted one " +
                    std::to_string(corrupt.size()) +
                    "; patching copies activations position by position, so both need the same count");
  }
  const LogitTarget target{token, versus};
  target.check(c, "patch");

  if (layers.empty()) {
    for (int64_t l = 0; l < c.n_layers; ++l) layers.push_back(l);
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  if (layers.front() < 0 || layers.back() >= c.n_layers) {
    const int64_t bad = layers.front() < 0 ? layers.front() : layers.back();
    throw bad_input("patch: layer " + std::to_string(bad) + " is out of range (the model has layers 0 to " +
                    std::to_string(c.n_layers - 1) + ")");
  }

  PatchingResult r;
  r.token = token;
  r.versus = versus;
  r.layers = layers;
  r.n_tokens = static_cast<int64_t>(clean.size());
  r.n_heads = c.n_heads;
  const int64_t n = r.n_tokens, hd = c.head_dim;

  // Float32 activations in every product, as attribute's pass: a restored
  // fraction is a ratio of small logit differences, which the default's
  // 8-bit activation rounding (its own noise of a few hundredths of a logit
  // and more) would blur from one pass to the next.
  Session session(model, SessionOptions{WeightFormat::Exact});
  auto metric = [&](const std::vector<int32_t>& tokens) {
    session.reset();
    return target.of(session.forward(tokens, LogitsFor::LastToken));
  };
  const LayerRecords residual = record_layers(session, HookPoint::ResidualOut, layers);
  const LayerRecords mlp = record_layers(session, HookPoint::MlpOut, layers);
  const LayerRecords z = record_layers(session, HookPoint::AttnZ, layers);
  r.clean = metric(clean);
  session.clear_hooks();
  r.corrupt = metric(corrupt);

  const auto n_rows = static_cast<int64_t>(layers.size());
  const int64_t total = patching_passes(n_rows, n, c.n_heads);
  int64_t done = 0;
  // One corrupted pass with `patch` at (point, layer); the change it makes.
  auto patched = [&](HookPoint point, int64_t layer, Hook patch) {
    const HookId id = session.add_hook(point, layer, std::move(patch));
    const double m = metric(corrupt);
    session.remove_hook(id);
    if (progress) progress(++done, total);
    return m - r.corrupt;
  };
  // Row `position` of the clean record written over the pass's row.
  auto row_from = [](const ActivationRecord& rec, int64_t position) {
    return [&rec, position](int64_t, HookPoint, float* data, int64_t, int64_t width, int64_t) {
      std::copy_n(rec.values.data() + position * width, width, data + position * width);
    };
  };
  for (const auto& [point, records, effects] :
       {std::tuple{HookPoint::ResidualOut, &residual, &r.residual_effect}, std::tuple{HookPoint::MlpOut, &mlp, &r.mlp_effect}}) {
    for (int64_t k = 0; k < n_rows; ++k) {
      for (int64_t p = 0; p < n; ++p) effects->push_back(patched(point, layers[sz(k)], row_from(*(*records)[sz(k)], p)));
    }
  }
  for (int64_t k = 0; k < n_rows; ++k) {
    const ActivationRecord& rec = *z[sz(k)];
    for (int64_t h = 0; h < c.n_heads; ++h) {
      r.heads_effect.push_back(patched(HookPoint::AttnZ, layers[sz(k)], [&rec, h, hd](int64_t, HookPoint, float* data,
                                                                          int64_t rows, int64_t width, int64_t) {
        for (int64_t t = 0; t < rows; ++t) {
          std::copy_n(rec.values.data() + t * width + h * hd, hd, data + t * width + h * hd);
        }
      }));
    }
  }
  for (const auto& [effects, shares] : {std::pair{&r.residual_effect, &r.residual}, std::pair{&r.mlp_effect, &r.mlp},
                                        std::pair{&r.heads_effect, &r.heads}}) {
    for (double e : *effects) shares->push_back(r.restored(r.corrupt + e));
  }
  return r;
}

namespace {

// Blue for restored (1), white for none (0), red for the opposite (−1).
std::string share_color(double share) {
  const double s = std::clamp(share, -1.0, 1.0);
  const auto fade = [](double t) { return static_cast<int>(std::lround(255 * (1 - t))); };
  char buf[16];
  if (s >= 0) {
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", fade(s * 0.85), fade(s * 0.55), 255);
  } else {
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", 255, fade(-s * 0.6), fade(-s * 0.75));
  }
  return buf;
}

// One grid of cells [rows, cols] at (x, y), rows = layers from 0 at the top.
void heat_grid(std::string& out, double x, double y, double cell_w, double cell_h, const std::vector<int64_t>& layers,
               int64_t cols, const std::vector<double>& shares, const std::vector<double>& effects, const std::string& title,
               const std::vector<std::string>& col_labels, const std::string& col_name) {
  svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">%s</text>\n", x, y - 8, svg::escape(title).c_str());
  const auto rows = static_cast<int64_t>(layers.size());
  for (int64_t k = 0; k < rows; ++k) {
    const long long l = layers[sz(k)];
    for (int64_t p = 0; p < cols; ++p) {
      const size_t i = sz(k * cols + p);
      svg::append(out,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>layer %lld, %s %lld: "
                  "%.1f%% restored (%+.4g)</title></rect>\n",
                  x + double(p) * cell_w, y + double(k) * cell_h, cell_w, cell_h, share_color(shares[i]).c_str(), l,
                  col_name.c_str(), static_cast<long long>(p), 100 * shares[i], effects[i]);
    }
    if (rows <= 40 || k % 5 == 0) {
      svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"9\">%lld</text>\n", x - 3,
                  y + (double(k) + 0.75) * cell_h, l);
    }
  }
  for (int64_t p = 0; p < cols; ++p) {
    const double cx = x + (double(p) + 0.5) * cell_w, cy = y + double(rows) * cell_h + 6;
    svg::append(out,
                "<text transform=\"translate(%.1f,%.1f) rotate(45)\" font-size=\"10\">%s</text>\n", cx, cy,
                svg::escape(p < static_cast<int64_t>(col_labels.size()) ? col_labels[sz(p)] : std::to_string(p)).c_str());
  }
}

}  // namespace

std::string patching_heatmap_svg(const PatchingResult& r, const std::vector<std::string>& token_texts,
                                 const std::string& title) {
  const auto n_rows = static_cast<double>(r.layers.size());
  const double cell_h = std::clamp(360.0 / n_rows, 6.0, 18.0);
  const double cell_w = std::clamp(240.0 / double(r.n_tokens), 14.0, 40.0);
  const double head_w = std::clamp(240.0 / double(r.n_heads), 6.0, 30.0);
  const double top = 64, left = 40, gap = 50;
  const double grid_h = cell_h * n_rows;
  const double width = left + 2 * (cell_w * double(r.n_tokens) + gap) + head_w * double(r.n_heads) + 120;
  const double height = top + grid_h + 110;
  std::string out = svg::open(width, height, left, title);
  svg::append(out,
              "<text x=\"%.1f\" y=\"42\" font-size=\"11\" fill=\"#555\">share of the clean − corrupted logit "
              "difference restored (%.4g → %.4g); rows are layers, the first at the top</text>\n",
              left, r.corrupt, r.clean);
  std::vector<std::string> heads;
  for (int64_t h = 0; h < r.n_heads; ++h) heads.push_back(std::to_string(h));
  double x = left;
  heat_grid(out, x, top, cell_w, cell_h, r.layers, r.n_tokens, r.residual, r.residual_effect, "residual stream",
            token_texts, "position");
  x += cell_w * double(r.n_tokens) + gap;
  heat_grid(out, x, top, cell_w, cell_h, r.layers, r.n_tokens, r.mlp, r.mlp_effect, "MLP output", token_texts,
            "position");
  x += cell_w * double(r.n_tokens) + gap;
  heat_grid(out, x, top, head_w, cell_h, r.layers, r.n_heads, r.heads, r.heads_effect, "heads (all positions)",
            heads, "head");
  // Legend: −100% .. 100%.
  const double lx = x + head_w * double(r.n_heads) + 20;
  for (int i = 0; i <= 10; ++i) {
    const double s = 1.0 - i / 5.0;
    svg::append(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"12\" fill=\"%s\"/>\n", lx, top + i * 12.0,
                share_color(s).c_str());
    if (i % 5 == 0) {
      svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%+.0f%%</text>\n", lx + 18, top + i * 12.0 + 10,
                  100 * s);
    }
  }
  out += "</svg>\n";
  return out;
}

}  // namespace neuronlens
