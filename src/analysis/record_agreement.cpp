// record_agreement.h.
#include "neuronlens/record_agreement.h"

#include <algorithm>
#include <unordered_set>

#include "neuronlens/error.h"
#include "svg.h"

namespace neuronlens {

ContextAgreementReport record_agreement(const Atlas& atlas, VectorKind kind) {
  const std::optional<RecordInfo> info = atlas.record_info();
  if (!info || info->chunks_done == 0) {
    throw bad_input(atlas.path() + ": the atlas holds no activation record (run `neuronlens record`)");
  }
  const AtlasSettings& s = atlas.settings();
  ContextAgreementReport report;
  report.kind = kind;
  report.top_k = s.top_k;
  // Corpus frequency of each token as a next token (offsets >= 2: the
  // tokens that follow a recorded position), over the chunks done.
  std::vector<std::vector<int32_t>> chunks;
  std::vector<double> frequency(static_cast<size_t>(s.vocab_size), 0.0);
  double next_tokens = 0;
  for (int64_t c = 0; c < info->chunks_done; ++c) {
    chunks.push_back(atlas.corpus_chunk(c));
    for (size_t t = 2; t < chunks.back().size(); ++t) {
      frequency[static_cast<size_t>(chunks.back()[t])] += 1;
      next_tokens += 1;
    }
  }
  if (next_tokens > 0) {
    for (double& f : frequency) f /= next_tokens;
  }
  for (int64_t layer = 0; layer < s.n_layers; ++layer) {
    if (!atlas.layer_done(kind, layer)) continue;
    const std::vector<std::vector<int32_t>> topk = atlas.layer_topk(kind, layer);
    LayerContextAgreement row;
    row.layer = layer;
    int64_t above = 0;
    for (int64_t j = 0; j < s.d_ffn; ++j) {
      const std::optional<NeuronEvidence> e = atlas.neuron_evidence(layer, j);
      if (!e) continue;
      const std::vector<int32_t>& top = topk.at(static_cast<size_t>(j));
      const std::unordered_set<int32_t> top_set(top.begin(), top.end());
      NeuronContextAgreement a;
      a.layer = layer;
      a.index = j;
      for (int32_t id : top_set) a.chance += frequency.at(static_cast<size_t>(id));
      for (const NeuronContext& c : e->positive) {
        if (c.chunk < 0 || c.chunk >= static_cast<int64_t>(chunks.size())) {
          throw bad_file(atlas.path() + ": corrupt atlas: a context names chunk " + std::to_string(c.chunk));
        }
        const std::vector<int32_t>& chunk = chunks[static_cast<size_t>(c.chunk)];
        if (c.offset + 1 >= static_cast<int32_t>(chunk.size())) continue;  // the chunk's last token
        ++a.contexts;
        if (top_set.count(chunk[static_cast<size_t>(c.offset) + 1])) ++a.hits;
      }
      if (a.contexts == 0) {
        report.neurons.push_back(a);
        continue;
      }
      a.rate = static_cast<double>(a.hits) / static_cast<double>(a.contexts);
      ++row.neurons;
      row.mean_rate += a.rate;
      row.mean_chance += a.chance;
      if (a.rate > a.chance) ++above;
      report.neurons.push_back(a);
    }
    if (row.neurons > 0) {
      row.mean_rate /= static_cast<double>(row.neurons);
      row.mean_chance /= static_cast<double>(row.neurons);
      row.above_chance = static_cast<double>(above) / static_cast<double>(row.neurons);
    }
    report.layers.push_back(row);
  }
  if (report.layers.empty()) {
    throw bad_input(atlas.path() + ": no layer of kind " + std::string(vector_kind_name(kind)) +
                    " is mapped in this atlas (run `neuronlens map --kinds " + std::string(vector_kind_name(kind)) +
                    "`)");
  }
  return report;
}

std::string agreement_svg(const ContextAgreementReport& report, const std::string& title) {
  const double width = 760, height = 380, left = 64, right = 24, top = 48, bottom = 52;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double y_max = 0;
  for (const LayerContextAgreement& l : report.layers) y_max = std::max({y_max, l.mean_rate, l.mean_chance});
  y_max = y_max <= 0 ? 1 : std::min(1.0, y_max * 1.15);
  const int64_t first = report.layers.front().layer, last = report.layers.back().layer;
  const auto x_of = [&](int64_t layer) {
    return left + (last == first ? plot_w / 2 : plot_w * static_cast<double>(layer - first) / static_cast<double>(last - first));
  };
  const auto y_of = [&](double v) { return top + plot_h * (1 - v / y_max); };
  std::string out = svg::open(width, height, left, title);
  for (int i = 0; i <= 4; ++i) {
    const double v = y_max * i / 4;
    svg::append(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, left + plot_w,
                y_of(v), y_of(v));
    svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\">%.1f%%</text>\n", left - 6,
                y_of(v) + 3, v * 100);
  }
  const auto line = [&](auto value, const char* color) {
    std::string points;
    for (const LayerContextAgreement& l : report.layers) svg::append(points, "%.1f,%.1f ", x_of(l.layer), y_of(value(l)));
    svg::append(out, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", points.c_str(),
                color);
    for (const LayerContextAgreement& l : report.layers) {
      svg::append(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>layer %lld: %.1f%%</title></circle>\n",
                  x_of(l.layer), y_of(value(l)), color, static_cast<long long>(l.layer), value(l) * 100);
    }
  };
  line([](const LayerContextAgreement& l) { return l.mean_rate; }, "#1f77b4");
  line([](const LayerContextAgreement& l) { return l.mean_chance; }, "#999");
  for (const LayerContextAgreement& l : report.layers) {
    if (report.layers.size() > 16 && l.layer % 2 != 0) continue;
    svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%lld</text>\n",
                x_of(l.layer), top + plot_h + 14, static_cast<long long>(l.layer));
  }
  svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">layer</text>\n", left + plot_w / 2,
              height - 12);
  svg::append(out,
              "<text x=\"%.1f\" y=\"40\" font-size=\"11\" fill=\"#1f77b4\">next token after a top positive context is "
              "in the %s decode's top %d</text>\n",
              left, std::string(vector_kind_name(report.kind)).c_str(), report.top_k);
  svg::append(out, "<text x=\"%.1f\" y=\"40\" font-size=\"11\" fill=\"#999\" text-anchor=\"end\">chance</text>\n",
              left + plot_w);
  out += "</svg>\n";
  return out;
}

}  // namespace neuronlens
