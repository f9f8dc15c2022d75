// clamp_experiment.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "neuronlens/clamp_experiment.h"

#include <pcre2.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "neuronlens/concept_search.h"
#include "neuronlens/error.h"
#include "neuronlens/sampling.h"
#include "svg.h"

namespace neuronlens {
namespace {

// A compiled, case-insensitive PCRE2 pattern.
class ConceptPattern {
 public:
  explicit ConceptPattern(const std::string& pattern) {
    if (pattern.empty()) throw bad_input("--concept: give a regular expression, e.g. '\\b(dog|puppy)'");
    int error = 0;
    PCRE2_SIZE offset = 0;
    // Byte-wise, as `grep -Ei` in the C locale matches (and an answer cut
    // inside a character is no error).
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_CASELESS, &error,
                          &offset, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw bad_input("--concept: '" + pattern + "' is not a regular expression: " +
                      reinterpret_cast<const char*>(message) + " at offset " + std::to_string(offset));
    }
    data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  ~ConceptPattern() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  ConceptPattern(const ConceptPattern&) = delete;
  ConceptPattern& operator=(const ConceptPattern&) = delete;

  bool matches(const std::string& text) const {
    return pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, data_, nullptr) >= 0;
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

void summarise(ClampRun& run) {
  std::vector<double> logprobs, repeated;
  run.concept_hits = 0;
  for (const ScoredAnswer& a : run.answers) {
    run.concept_hits += a.concept_match ? 1 : 0;
    logprobs.push_back(a.mean_logprob);
    repeated.push_back(a.repeated);
  }
  run.concept_rate = run.answers.empty() ? 0 : static_cast<double>(run.concept_hits) / static_cast<double>(run.answers.size());
  run.mean_logprob = mean(logprobs);
  run.repeated = mean(repeated);
}

}  // namespace

double answer_mean_logprob(Session& session, const std::vector<int32_t>& prompt, const std::vector<int32_t>& answer) {
  if (answer.empty()) return 0;
  if (prompt.empty()) throw bad_input("answer_mean_logprob: an empty prompt");
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), answer.begin(), answer.end());
  session.reset();
  const std::vector<float> logits = session.forward(all, LogitsFor::AllTokens);  // [n, V]
  const auto vocab = static_cast<size_t>(session.config().vocab_size);
  double total = 0;
  for (size_t i = 0; i < answer.size(); ++i) {
    // The logits at the position before answer token i predict it.
    const float* row = logits.data() + (prompt.size() - 1 + i) * vocab;
    double max = row[0];
    for (size_t v = 1; v < vocab; ++v) max = std::max(max, static_cast<double>(row[v]));
    double sum = 0;
    for (size_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - max);
    total += static_cast<double>(row[static_cast<size_t>(answer[i])]) - max - std::log(sum);
  }
  return total / static_cast<double>(answer.size());
}

double repeated_ngram_share(const std::vector<int32_t>& tokens, int n) {
  if (n < 1) throw bad_input("the n-gram length must be at least 1");
  if (tokens.size() < static_cast<size_t>(n)) return 0;
  std::map<std::vector<int32_t>, int> seen;
  int64_t repeats = 0, total = 0;
  for (size_t i = 0; i + static_cast<size_t>(n) <= tokens.size(); ++i) {
    const std::vector<int32_t> gram(tokens.begin() + static_cast<std::ptrdiff_t>(i),
                                    tokens.begin() + static_cast<std::ptrdiff_t>(i) + n);
    if (seen[gram]++ > 0) ++repeats;
    ++total;
  }
  return static_cast<double>(repeats) / static_cast<double>(total);
}

ClampExperiment run_clamp_experiment(const TextModel& tm, const ClampExperimentOptions& o, const Atlas* atlas,
                                     const std::function<void(int64_t, int64_t)>& on_progress) {
  const ModelConfig& c = tm.model.config();
  if (o.layer < 0 || o.layer >= c.n_layers) {
    throw bad_input("--neuron: layer " + std::to_string(o.layer) + " is out of range (the model has layers 0 to " +
                    std::to_string(c.n_layers - 1) + ")");
  }
  if (o.neuron < 0 || o.neuron >= c.d_ffn) {
    throw bad_input("--neuron: neuron " + std::to_string(o.neuron) + " is out of range (layers have neurons 0 to " +
                    std::to_string(c.d_ffn - 1) + ")");
  }
  if (o.seeds < 1 || o.seeds > 10000) throw bad_input("--seeds must be 1 to 10000");
  if (o.max_tokens < 1 || o.max_tokens > c.context_length) throw bad_input("--max-tokens is out of range");
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) throw bad_input("--temperature must be >= 0");
  if (o.ngram < 1 || o.ngram > 16) throw bad_input("--ngram must be 1 to 16");
  const ConceptPattern pattern(o.concept_regex);
  ClampExperiment out;
  std::vector<int32_t> probe_ids;
  for (const std::string& t : o.probe_tokens) {
    const std::optional<int32_t> id = find_token_by_text(tm.model.vocab(), t);
    if (!id) throw bad_input("--tokens: '" + t + "' is not a single token of this vocabulary");
    probe_ids.push_back(*id);
    out.probe_tokens.push_back(t);
  }
  const std::vector<int32_t> prompt = tm.prompt_tokens(o.prompt, o.chat);

  // The neuron's scale: the record's max |activation| where the atlas has one.
  std::optional<double> recorded;
  if (atlas != nullptr) {
    if (const std::optional<NeuronEvidence> e = atlas->neuron_evidence(o.layer, o.neuron)) recorded = e->stats.max_abs;
  }
  const int64_t values_total = o.values.empty() ? 2 * static_cast<int64_t>(o.factors.size()) : static_cast<int64_t>(o.values.size());
  const int64_t total = (1 + values_total) * o.seeds;
  int64_t done = 0;

  // The unclamped model: it generates the baseline answers and scores every
  // answer; a hook tracks the neuron's largest |activation| as it scores.
  Session plain(tm.model, SessionOptions{o.weights});
  double answers_max_abs = 0;
  plain.add_hook(HookPoint::MlpAct, o.layer, [&](int64_t, HookPoint, float* data, int64_t n, int64_t width, int64_t) {
    for (int64_t t = 0; t < n; ++t) answers_max_abs = std::max(answers_max_abs, std::fabs(static_cast<double>(data[t * width + o.neuron])));
  });
  const auto probe = [&](Session& session) {
    std::vector<double> p;
    if (probe_ids.empty()) return p;
    session.reset();
    const std::vector<float> logits = session.forward(prompt, LogitsFor::LastToken);
    const std::vector<double> probs = softmax_probabilities(logits);
    for (int32_t id : probe_ids) p.push_back(probs[static_cast<size_t>(id)]);
    return p;
  };
  const auto answer_runs = [&](Session& session, ClampRun& run) {
    for (int64_t seed = 1; seed <= o.seeds; ++seed) {
      SamplingOptions sampling;
      sampling.temperature = o.temperature;
      sampling.seed = static_cast<uint64_t>(seed);
      Sampler sampler(sampling);
      session.reset();
      ScoredAnswer a;
      a.seed = static_cast<uint64_t>(seed);
      const GenerationResult r = generate_text(session, tm, prompt, o.max_tokens, sampler,
                                               [&](int32_t id, std::string_view text) {
                                                 a.tokens.push_back(id);
                                                 a.text += text;
                                                 return true;
                                               });
      a.text += r.unfinished;
      run.answers.push_back(std::move(a));
      if (on_progress) on_progress(++done, total);
    }
    for (ScoredAnswer& a : run.answers) {
      a.concept_match = pattern.matches(a.text);
      a.mean_logprob = answer_mean_logprob(plain, prompt, a.tokens);
      a.repeated = repeated_ngram_share(a.tokens, o.ngram);
    }
    summarise(run);
  };

  answer_runs(plain, out.baseline);
  out.baseline.probe = probe(plain);
  out.max_abs = recorded ? *recorded : answers_max_abs;
  out.max_abs_source = recorded ? "record" : "answers";
  std::vector<double> values = o.values;
  if (values.empty()) {
    if (!(out.max_abs > 0)) throw bad_input("the neuron never fires here (max |activation| 0): give --values");
    for (double f : o.factors) {
      values.push_back(-f * out.max_abs);
      values.push_back(f * out.max_abs);
    }
  }
  std::sort(values.begin(), values.end());
  for (double value : values) {
    if (!std::isfinite(value)) throw bad_input("--values: every value must be a finite number");
    Session clamped(tm.model, SessionOptions{o.weights});
    clamped.clamp_neurons(o.layer, {o.neuron}, static_cast<float>(value));
    ClampRun run;
    run.value = value;
    run.factor = out.max_abs > 0 ? value / out.max_abs : 0;
    answer_runs(clamped, run);
    run.probe = probe(clamped);
    run.fluent = run.mean_logprob >= out.baseline.mean_logprob - o.logprob_margin &&
                 run.repeated <= out.baseline.repeated + o.repetition_margin;
    out.runs.push_back(std::move(run));
  }
  for (size_t i = 0; i < out.runs.size(); ++i) {
    const ClampRun& r = out.runs[i];
    if (!r.fluent || r.concept_hits <= out.baseline.concept_hits) continue;
    if (!out.best || r.concept_hits > out.runs[*out.best].concept_hits) out.best = i;
  }
  return out;
}

std::string clamp_experiment_svg(const ClampExperiment& e, const std::string& title) {
  const double width = 760, height = 420, left = 64, right = 64, top = 84, bottom = 56;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double lo = 0, hi = 0, lp_lo = e.baseline.mean_logprob, lp_hi = e.baseline.mean_logprob;
  for (const ClampRun& r : e.runs) {
    lo = std::min(lo, *r.value);
    hi = std::max(hi, *r.value);
    lp_lo = std::min(lp_lo, r.mean_logprob);
    lp_hi = std::max(lp_hi, r.mean_logprob);
  }
  if (hi == lo) hi = lo + 1;
  if (lp_hi - lp_lo < 1e-9) lp_lo -= 1;
  const auto x_of = [&](double v) { return left + plot_w * (v - lo) / (hi - lo); };
  const auto y_rate = [&](double r) { return top + plot_h * (1 - r); };
  const auto y_lp = [&](double lp) { return top + plot_h * (lp_hi - lp) / (lp_hi - lp_lo); };
  std::string out = svg::open(width, height, left, title);
  svg::append(out,
              "<text x=\"%.1f\" y=\"44\" font-size=\"11\" fill=\"#d62728\">answers with the concept (left axis)</text>\n"
              "<text x=\"%.1f\" y=\"58\" font-size=\"11\" fill=\"#7f7f7f\">repeated n-grams (left axis)</text>\n"
              "<text x=\"%.1f\" y=\"72\" font-size=\"11\" fill=\"#1f77b4\">mean log-prob per token under the unclamped "
              "model (right axis); dashed lines: without the clamp</text>\n",
              left, left, left);
  for (int i = 0; i <= 4; ++i) {
    const double r = i / 4.0;
    svg::append(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", left, left + plot_w,
                y_rate(r), y_rate(r));
    svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\">%.0f%%</text>\n", left - 6,
                y_rate(r) + 3, r * 100);
    const double lp = lp_lo + (lp_hi - lp_lo) * i / 4.0;
    svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%.2f</text>\n", left + plot_w + 6, y_lp(lp) + 3, lp);
  }
  svg::append(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#1f77b4\" stroke-dasharray=\"4 3\"/>\n",
              left, left + plot_w, y_lp(e.baseline.mean_logprob), y_lp(e.baseline.mean_logprob));
  svg::append(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>\n",
              left, left + plot_w, y_rate(e.baseline.concept_rate), y_rate(e.baseline.concept_rate));
  std::string rate_points, lp_points, repeat_points;
  for (const ClampRun& r : e.runs) {
    svg::append(rate_points, "%.1f,%.1f ", x_of(*r.value), y_rate(r.concept_rate));
    svg::append(lp_points, "%.1f,%.1f ", x_of(*r.value), y_lp(r.mean_logprob));
    svg::append(repeat_points, "%.1f,%.1f ", x_of(*r.value), y_rate(r.repeated));
  }
  svg::append(out, "<polyline points=\"%s\" fill=\"none\" stroke=\"#7f7f7f\" stroke-width=\"1.5\"/>\n",
              repeat_points.c_str());
  svg::append(out, "<polyline points=\"%s\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>\n", rate_points.c_str());
  svg::append(out, "<polyline points=\"%s\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n", lp_points.c_str());
  for (size_t i = 0; i < e.runs.size(); ++i) {
    const ClampRun& r = e.runs[i];
    const bool best = e.best && *e.best == i;
    svg::append(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"#d62728\"><title>clamp %.4g: %lld/%zu</title></circle>\n",
                x_of(*r.value), y_rate(r.concept_rate), best ? 6 : 3, *r.value,
                static_cast<long long>(r.concept_hits), r.answers.size());
    svg::append(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f77b4\"><title>clamp %.4g: %.3f</title></circle>\n",
                x_of(*r.value), y_lp(r.mean_logprob), *r.value, r.mean_logprob);
    svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%.3g</text>\n", x_of(*r.value),
                top + plot_h + 14, *r.value);
  }
  svg::append(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">clamp value%s</text>\n", left + plot_w / 2,
              height - 16, e.best ? " (large dot: the best fluent value)" : "");
  out += "</svg>\n";
  return out;
}

}  // namespace neuronlens
