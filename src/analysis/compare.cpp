// Neuron-by-neuron comparison of two atlases.
#include "neuronlens/compare.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "analysis/svg.h"
#include "neuronlens/error.h"

namespace neuronlens {

Comparison compare_atlases(const Atlas& a, const Atlas& b, int most_changed_limit) {
  const AtlasSettings &sa = a.settings(), &sb = b.settings();
  auto differ = [&](const std::string& what, int64_t x, int64_t y) {
    if (x != y) {
      throw bad_input("cannot compare " + a.path() + " and " + b.path() + ": " + what + " differs (" +
                      std::to_string(x) + " vs " + std::to_string(y) + ")");
    }
  };
  differ("layer count", sa.n_layers, sb.n_layers);
  differ("FFN width", sa.d_ffn, sb.d_ffn);
  differ("vocabulary size", sa.vocab_size, sb.vocab_size);
  differ("top-k", sa.top_k, sb.top_k);
  const auto done_a = a.layers_done(), done_b = b.layers_done();
  const std::set<std::pair<VectorKind, int64_t>> in_b(done_b.begin(), done_b.end());

  Comparison out;
  std::map<VectorKind, std::pair<int64_t, std::pair<double, double>>> totals;  // kind -> (n, (same, overlap))
  std::vector<ChangedNeuron> changed;
  for (const auto& [kind, layer] : done_a) {
    if (!in_b.count({kind, layer})) continue;
    const auto top_a = a.layer_topk(kind, layer), top_b = b.layer_topk(kind, layer);
    if (top_a.size() != top_b.size()) differ("neuron count of layer " + std::to_string(layer),
                                             static_cast<int64_t>(top_a.size()), static_cast<int64_t>(top_b.size()));
    LayerAgreement row{kind, layer, static_cast<int64_t>(top_a.size()), 0, 0};
    for (size_t i = 0; i < top_a.size(); ++i) {
      const auto &ta = top_a[i], &tb = top_b[i];
      if (ta.empty() || tb.empty()) continue;
      const bool same = ta.front() == tb.front();
      std::set<int32_t> sb_set(tb.begin(), tb.end());
      int64_t common = 0;
      for (int32_t t : ta) common += sb_set.count(t);
      const double overlap = static_cast<double>(common) / static_cast<double>(std::max(ta.size(), tb.size()));
      row.top1_same += same;
      row.mean_overlap += overlap;
      changed.push_back({kind, layer, static_cast<int64_t>(i), overlap, ta, tb});
    }
    auto& [n, sums] = totals[kind];
    n += row.neurons;
    sums.first += row.top1_same;
    sums.second += row.mean_overlap;
    if (row.neurons > 0) {
      row.top1_same /= static_cast<double>(row.neurons);
      row.mean_overlap /= static_cast<double>(row.neurons);
    }
    out.layers.push_back(row);
    // Keep the changed list short as we go.
    const auto keep = std::min<size_t>(changed.size(), static_cast<size_t>(std::max(most_changed_limit, 0)));
    std::partial_sort(changed.begin(), changed.begin() + static_cast<std::ptrdiff_t>(keep), changed.end(),
                      [](const ChangedNeuron& x, const ChangedNeuron& y) {
                        if (x.overlap != y.overlap) return x.overlap < y.overlap;
                        return std::tie(x.layer, x.kind, x.index) < std::tie(y.layer, y.kind, y.index);
                      });
    changed.resize(keep);
  }
  if (out.layers.empty()) {
    throw bad_input("cannot compare " + a.path() + " and " + b.path() + ": they share no mapped (kind, layer)");
  }
  for (const auto& [kind, t] : totals) {
    const double n = static_cast<double>(std::max<int64_t>(t.first, 1));
    out.kinds.push_back({kind, t.first, t.second.first / n, t.second.second / n});
  }
  out.most_changed = std::move(changed);
  return out;
}

std::string agreement_plot_svg(const Comparison& cmp, const std::string& title) {
  const double width = 720, height = 400, left = 60, right = 110, top = 40, bottom = 50;
  const double pw = width - left - right, ph = height - top - bottom;
  int64_t max_layer = 0;
  for (const auto& r : cmp.layers) max_layer = std::max(max_layer, r.layer);
  auto x_of = [&](int64_t layer) { return left + (max_layer ? pw * static_cast<double>(layer) / static_cast<double>(max_layer) : pw / 2); };
  auto y_of = [&](double share) { return top + ph * (1 - share); };
  std::string svg = svg::open(width, height, left, title);
  char buf[512];
  for (int i = 0; i <= 4; ++i) {
    const double share = i / 4.0;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" "
                  "text-anchor=\"end\">%d%%</text>\n",
                  left, y_of(share), left + pw, y_of(share), left - 6, y_of(share) + 4, i * 25);
    svg += buf;
  }
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">layer</text>\n<text x=\"%.1f\" y=\"%.1f\" "
                "text-anchor=\"start\">0</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%lld</text>\n"
                "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">same top-1 token</text>\n",
                left + pw / 2, height - 12, left, top + ph + 16, left + pw, top + ph + 16,
                static_cast<long long>(max_layer), top + ph / 2);
  svg += buf;
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c"};
  int legend = 0;
  for (VectorKind kind : {VectorKind::Up, VectorKind::Gate, VectorKind::Down}) {
    std::string points;
    for (const auto& r : cmp.layers) {
      if (r.kind != kind) continue;
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", x_of(r.layer), y_of(r.top1_same));
      points += buf;
    }
    if (points.empty()) continue;
    const char* color = colors[static_cast<int>(kind)];
    svg += std::string("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"") + color + "\" points=\"" + points + "\"/>\n";
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/><text "
                  "x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                  left + pw + 12, top + 10 + legend * 18.0, left + pw + 32, top + 10 + legend * 18.0, color,
                  left + pw + 38, top + 14 + legend * 18.0, std::string(vector_kind_name(kind)).c_str());
    svg += buf;
    ++legend;
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace neuronlens
