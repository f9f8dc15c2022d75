// Direct logit attribution (neuronlens/attribution.h): one pass records, at
// the last position, what each part wrote (the embedding, every head's z,
// every neuron's activation, the last residual); the parts are then read
// through the frozen norms in float64, one layer's matrices at a time.
#include "neuronlens/attribution.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "analysis/logit_target.h"
#include "analysis/svg.h"
#include "model/norm_weight.h"
#include "neuronlens/error.h"
#include "neuronlens/runtime.h"
#include "neuronlens/tensor.h"
#include "runtime/scoped_hooks.h"

namespace neuronlens {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

std::vector<float> dequantized(const TensorView& t) {
  std::vector<float> out(sz(t.elements()));
  dequantize_rows(t, 0, t.rows(), out.data());
  return out;
}

// 1 / sqrt(mean(v²) + eps): the scale an RMSNorm applies to v.
template <typename T>
double rms_scale(const T* v, int64_t n, double eps) {
  double ms = 0;
  for (int64_t i = 0; i < n; ++i) ms += double(v[i]) * double(v[i]);
  return 1.0 / std::sqrt(ms / double(n) + eps);
}

// m [rows, cols] row-major, x [cols]: m · x in float64.
std::vector<double> times(const std::vector<float>& m, int64_t rows, int64_t cols, const std::vector<float>& x) {
  std::vector<double> out(sz(rows));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += double(m[sz(r * cols + j)]) * double(x[sz(j)]);
    out[sz(r)] = s;
  }
  return out;
}

// m [rows, cols] row-major, u [rows]: mᵀ · u in float64, [cols].
std::vector<double> transposed_times(const std::vector<float>& m, int64_t rows, int64_t cols,
                                     const std::vector<double>& u) {
  std::vector<double> out(sz(cols), 0.0);
  constexpr int64_t kColumnBlock = 256;
#pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < cols; c0 += kColumnBlock) {
    const int64_t c1 = std::min(cols, c0 + kColumnBlock);
    for (int64_t r = 0; r < rows; ++r) {
      const double ur = u[sz(r)];
      const float* row = m.data() + r * cols;
      for (int64_t j = c0; j < c1; ++j) out[sz(j)] += ur * double(row[j]);
    }
  }
  return out;
}

// The reading direction of a block output: u itself, or through a post-norm
// with its scale frozen, γ ⊙ u / rms(output), where output = m · x is the
// block's output before the norm.
std::vector<double> through_post_norm(const Model& model, WeightKind norm, int64_t layer, const std::vector<double>& u,
                                      const std::vector<float>& m, int64_t rows, int64_t cols,
                                      const std::vector<float>& x) {
  if (!model.config().post_norms) return u;
  const std::vector<double> output = times(m, rows, cols, x);
  const double scale = rms_scale(output.data(), rows, model.config().rms_norm_eps);
  const std::vector<float> gamma = applied_norm_weight(model, norm, layer);
  std::vector<double> read(u.size());
  for (size_t e = 0; e < u.size(); ++e) read[e] = u[e] * double(gamma[e]) * scale;
  return read;
}

}  // namespace

std::string_view component_kind_name(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::Embedding: return "embedding";
    case ComponentKind::Head: return "head";
    case ComponentKind::Neuron: return "neuron";
  }
  return "?";
}

double Attribution::sum() const {
  double s = 0;
  for (const LogitComponent& c : components) s += c.contribution;
  return s;
}

std::vector<LogitComponent> Attribution::top(int64_t n, std::optional<ComponentKind> kind) const {
  std::vector<LogitComponent> out;
  for (const LogitComponent& c : components) {
    if (!kind || c.kind == *kind) out.push_back(c);
  }
  const auto larger = [](const LogitComponent& a, const LogitComponent& b) {
    return std::fabs(a.contribution) > std::fabs(b.contribution);
  };
  if (n > 0 && sz(n) < out.size()) {
    std::partial_sort(out.begin(), out.begin() + n, out.end(), larger);
    out.resize(sz(n));
  } else {
    std::stable_sort(out.begin(), out.end(), larger);
  }
  return out;
}

Attribution attribute_logit(const Model& model, const std::vector<int32_t>& prompt, int32_t token,
                            std::optional<int32_t> versus, const Interventions& interventions) {
  const ModelConfig& c = model.config();
  if (prompt.empty()) throw bad_input("attribute: the prompt has no tokens");
  const LogitTarget target{token, versus};
  target.check(c, "attribute");
  const int64_t d = c.d_model, f = c.d_ffn, hd = c.head_dim, qw = c.n_heads * hd, n_layers = c.n_layers;

  // What each part wrote at the last position: x entering layer 0 (the
  // embedding), every layer's z [qw] and activations [F], and x leaving the
  // last layer [d]. Registered after the interventions, so they see their
  // effect.
  Session session(model, SessionOptions{WeightFormat::Exact});
  apply_interventions(session, interventions);
  std::vector<float> embedding(sz(d)), x_final(sz(d)), lm_head_input(sz(d));
  std::vector<std::vector<float>> z(sz(n_layers)), act(sz(n_layers));
  auto last_row_into = [](std::vector<float>& dst) {
    return [&dst](int64_t, HookPoint, float* data, int64_t n, int64_t width, int64_t) {
      dst.assign(data + (n - 1) * width, data + n * width);
    };
  };
  ScopedHooks recording(session);
  recording.add(session.add_hook(HookPoint::ResidualIn, 0, last_row_into(embedding)));
  recording.add(session.add_hook(HookPoint::ResidualOut, n_layers - 1, last_row_into(x_final)));
  recording.add(session.add_hook(HookPoint::FinalNorm, n_layers, last_row_into(lm_head_input)));
  for (int64_t l = 0; l < n_layers; ++l) {
    recording.add(session.add_hook(HookPoint::AttnZ, l, last_row_into(z[sz(l)])));
    recording.add(session.add_hook(HookPoint::MlpAct, l, last_row_into(act[sz(l)])));
  }
  const std::vector<float> logits = session.forward(prompt, LogitsFor::LastToken);
  Attribution a;
  a.token = token;
  a.versus = versus;
  a.position = static_cast<int64_t>(prompt.size()) - 1;

  // u = γ ⊙ (W_U[T] − W_U[T2]) / rms(x): the direction every part is read along.
  const TensorView& head = model.lm_head();
  std::vector<float> row(sz(d));
  std::vector<double> u(sz(d));
  dequantize_rows(head, token, 1, row.data());
  for (int64_t e = 0; e < d; ++e) u[sz(e)] = row[sz(e)];
  if (versus) {
    dequantize_rows(head, *versus, 1, row.data());
    for (int64_t e = 0; e < d; ++e) u[sz(e)] -= row[sz(e)];
  }
  // The model's logit. Behind a final soft-cap (Gemma 2) it is read before
  // the cap, from the LM head's own input: inverting the float32 capped value
  // would lose digits where tanh flattens.
  a.logit = target.of(logits);
  if (c.final_softcap > 0) {
    a.logit = 0;
    for (int64_t e = 0; e < d; ++e) a.logit += u[sz(e)] * double(lm_head_input[sz(e)]);
  }
  a.final_scale = rms_scale(x_final.data(), d, c.rms_norm_eps);
  const std::vector<float> gamma = applied_norm_weight(model, WeightKind::OutputNorm);
  for (int64_t e = 0; e < d; ++e) u[sz(e)] *= double(gamma[sz(e)]) * a.final_scale;

  a.components.reserve(sz(1 + n_layers * (c.n_heads + f)));
  for (int64_t e = 0; e < d; ++e) a.embedding += u[sz(e)] * double(embedding[sz(e)]);
  a.components.push_back({ComponentKind::Embedding, -1, -1, a.embedding});
  a.layers.resize(sz(n_layers));
  for (int64_t l = 0; l < n_layers; ++l) {
    LayerContribution& total = a.layers[sz(l)];
    const std::vector<float> w_o = dequantized(model.weight(WeightKind::AttnOutput, l));  // [d, qw]
    const std::vector<double> read_o =
        transposed_times(w_o, d, qw, through_post_norm(model, WeightKind::AttnPostNorm, l, u, w_o, d, qw, z[sz(l)]));
    for (int64_t h = 0; h < c.n_heads; ++h) {
      double part = 0;
      for (int64_t j = h * hd; j < (h + 1) * hd; ++j) part += read_o[sz(j)] * double(z[sz(l)][sz(j)]);
      a.components.push_back({ComponentKind::Head, l, h, part});
      total.attention += part;
    }
    const std::vector<float> w_down = dequantized(model.weight(WeightKind::FfnDown, l));  // [d, F]
    const std::vector<double> read_down = transposed_times(
        w_down, d, f, through_post_norm(model, WeightKind::FfnPostNorm, l, u, w_down, d, f, act[sz(l)]));
    for (int64_t i = 0; i < f; ++i) {
      const double part = read_down[sz(i)] * double(act[sz(l)][sz(i)]);
      a.components.push_back({ComponentKind::Neuron, l, i, part});
      total.mlp += part;
    }
  }
  recording.remove_all();

  // The frozen-norm reading checked on its largest head: ablate it and
  // see how far the logit really moves.
  const std::vector<LogitComponent> top_head = a.top(1, ComponentKind::Head);
  a.top_head_check.layer = top_head[0].layer;
  a.top_head_check.head = top_head[0].index;
  a.top_head_check.attributed = top_head[0].contribution;
  session.ablate_heads(top_head[0].layer, {top_head[0].index});
  session.reset();
  const std::vector<float> ablated = session.forward(prompt, LogitsFor::LastToken);
  // Compared on the model's final logits (capped where the family caps).
  a.top_head_check.change = target.of(logits) - target.of(ablated);
  return a;
}

std::string attribution_plot_svg(const Attribution& a, const std::string& title) {
  const double width = 760, height = 420, left = 70, right = 120, top = 44, bottom = 50;
  const double pw = width - left - right, ph = height - top - bottom;
  const auto n_layers = static_cast<int64_t>(a.layers.size());
  double largest = std::fabs(a.embedding);
  for (const LayerContribution& l : a.layers) largest = std::max({largest, std::fabs(l.attention), std::fabs(l.mlp)});
  if (largest <= 0) largest = 1;
  // Slots: the embedding, then one per layer, each two bars wide.
  const double slot = pw / double(n_layers + 1);
  const double bar = std::max(1.0, slot * 0.4);
  auto y_of = [&](double v) { return top + ph / 2 - (ph / 2) * v / largest; };

  std::string out = svg::open(width, height, left, title);
  for (int i = -2; i <= 2; ++i) {
    const double v = largest * i / 2.0;
    svg::append(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/><text x=\"%.1f\" y=\"%.1f\" "
                "text-anchor=\"end\">%.3g</text>\n",
                left, y_of(v), left + pw, y_of(v), i == 0 ? "#888" : "#ddd", left - 6, y_of(v) + 4, v);
  }
  auto bar_at = [&](double x, double v, const char* color, const std::string& label) {
    const double y0 = y_of(0), y1 = y_of(v);
    svg::append(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s</title></rect>\n",
                x, std::min(y0, y1), bar, std::fabs(y1 - y0), color, svg::escape(label).c_str());
  };
  const char* kAttention = "#1f77b4";
  const char* kMlp = "#ff7f0e";
  bar_at(left + slot * 0.3, a.embedding, "#7f7f7f", "embedding: " + std::to_string(a.embedding));
  for (int64_t l = 0; l < n_layers; ++l) {
    const double x = left + slot * double(l + 1);
    const LayerContribution& c = a.layers[sz(l)];
    bar_at(x + slot * 0.1, c.attention, kAttention, "layer " + std::to_string(l) + " attention: " + std::to_string(c.attention));
    bar_at(x + slot * 0.1 + bar, c.mlp, kMlp, "layer " + std::to_string(l) + " MLP: " + std::to_string(c.mlp));
    if (n_layers <= 40 || l % 5 == 0) {
      svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%lld</text>\n",
                  x + slot * 0.1 + bar, top + ph + 14, static_cast<long long>(l));
    }
  }
  svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">emb</text>\n",
              left + slot * 0.3 + bar / 2, top + ph + 14);
  svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">layer</text>\n", left + pw / 2, height - 12);
  svg::append(out,
              "<text transform=\"translate(18,%.1f) rotate(-90)\" text-anchor=\"middle\">contribution to the "
              "logit</text>\n",
              top + ph / 2);
  int legend = 0;
  for (const auto& [color, name] : {std::pair{kAttention, "attention"}, std::pair{kMlp, "MLP"}}) {
    const double y = top + 10 + legend * 18.0;
    svg::append(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                left + pw + 12, y - 8, color, left + pw + 32, y + 1, name);
    ++legend;
  }
  svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">logit %.4g</text>\n", left + pw + 12,
              top + 10 + legend * 18.0 + 8, a.logit);
  out += "</svg>\n";
  return out;
}

}  // namespace neuronlens
