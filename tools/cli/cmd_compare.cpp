// `neuronlens compare A B`: how two neuron maps of the same shape agree, per
// layer and kind (e.g. base vs instruct: the paper's share of up_proj neurons
// that keep their top token).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "memory_atlas.h"
#include "model_or_atlas.h"
#include "neuronlens/compare.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "option_error.h"
#include "progress_bar.h"

namespace neuronlens::cli {
namespace {

struct CompareOptions {
  std::string a, b;
  std::string kinds = "up";
  int top_k = 20;
  std::string norm = "final";
  int changed = 10;
  bool json = false;
  std::string csv;
  std::string plot;
};

// An atlas as given, or a model mapped into an in-memory atlas.
Atlas atlas_for(const std::string& path, const CompareOptions& opt) {
  if (is_sqlite_file(path)) return Atlas::open(path);
  const Model model = Model::load(path);
  MapOptions map;
  map.kinds = for_option("--kinds", [&] { return parse_kind_list(opt.kinds); });
  map.settings.top_k = opt.top_k;
  map.settings.norm = norm_mode_from_name(opt.norm);
  return map_into_memory(model, map, "mapping " + model.config().name);
}

std::string top_tokens_text(const Atlas& atlas, const std::vector<int32_t>& ids, size_t n) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < n; ++i) s += (i ? " " : "") + quote_token(atlas.token_text(ids[i]));
  return s;
}

int run_compare(const CompareOptions& opt) {
  if (opt.changed < 0 || opt.changed > 100000) throw bad_input("--changed must be 0 to 100000");
  const Atlas a = atlas_for(opt.a, opt);
  const Atlas b = atlas_for(opt.b, opt);
  const Comparison cmp = compare_atlases(a, b, opt.changed);

  if (!opt.csv.empty()) {
    std::ofstream out(opt.csv);
    if (!out) throw bad_input(opt.csv + ": cannot write");
    out << "kind,layer,neurons,top1_same,mean_topk_overlap\n";
    for (const auto& r : cmp.layers) {
      out << vector_kind_name(r.kind) << "," << r.layer << "," << r.neurons << "," << r.top1_same << ","
          << r.mean_overlap << "\n";
    }
  }
  if (!opt.plot.empty()) {
    std::ofstream out(opt.plot);
    if (!out) throw bad_input(opt.plot + ": cannot write");
    // Name each side by model, and by norm where that is what differs.
    auto label = [&](const Atlas& x) {
      const bool norms_differ = a.settings().norm != b.settings().norm;
      return x.settings().model_name +
             (norms_differ ? " (norm " + std::string(norm_mode_name(x.settings().norm)) + ")" : std::string());
    };
    out << agreement_plot_svg(cmp, label(a) + " vs " + label(b));
  }
  if (opt.json) {
    nlohmann::json j;
    j["a"] = {{"path", opt.a}, {"model", a.settings().model_name}};
    j["b"] = {{"path", opt.b}, {"model", b.settings().model_name}};
    for (const auto& k : cmp.kinds) {
      j["kinds"].push_back({{"kind", vector_kind_name(k.kind)}, {"neurons", k.neurons}, {"top1_same", k.top1_same},
                            {"mean_topk_overlap", k.mean_overlap}});
    }
    for (const auto& r : cmp.layers) {
      j["layers"].push_back({{"kind", vector_kind_name(r.kind)}, {"layer", r.layer}, {"neurons", r.neurons},
                             {"top1_same", r.top1_same}, {"mean_topk_overlap", r.mean_overlap}});
    }
    j["most_changed"] = nlohmann::json::array();
    for (const auto& c : cmp.most_changed) {
      j["most_changed"].push_back({{"kind", vector_kind_name(c.kind)}, {"layer", c.layer}, {"neuron", c.index},
                                   {"topk_overlap", c.overlap}, {"top_a", c.top_a}, {"top_b", c.top_b}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("A: %s (%s)\nB: %s (%s)\n\n", opt.a.c_str(), a.settings().model_name.c_str(), opt.b.c_str(),
              b.settings().model_name.c_str());
  std::printf("  %-5s %5s %8s %10s %12s\n", "kind", "layer", "neurons", "same top-1", "top-k overlap");
  for (const auto& r : cmp.layers) {
    std::printf("  %-5s %5lld %8lld %9.1f%% %11.1f%%\n", std::string(vector_kind_name(r.kind)).c_str(),
                static_cast<long long>(r.layer), static_cast<long long>(r.neurons), 100 * r.top1_same,
                100 * r.mean_overlap);
  }
  std::printf("\n");
  for (const auto& k : cmp.kinds) {
    std::printf("  %-5s %5s %8lld %9.1f%% %11.1f%%\n", std::string(vector_kind_name(k.kind)).c_str(), "all",
                static_cast<long long>(k.neurons), 100 * k.top1_same, 100 * k.mean_overlap);
  }
  if (!cmp.most_changed.empty()) {
    std::printf("\nmost changed neurons (lowest top-k overlap):\n");
    for (const auto& c : cmp.most_changed) {
      std::printf("  %lld:%s:%lld overlap %.0f%%\n    A: %s\n    B: %s\n", static_cast<long long>(c.layer),
                  std::string(vector_kind_name(c.kind)).c_str(), static_cast<long long>(c.index), 100 * c.overlap,
                  top_tokens_text(a, c.top_a, 6).c_str(), top_tokens_text(b, c.top_b, 6).c_str());
    }
  }
  if (!opt.plot.empty()) std::printf("\nplot written to %s\n", opt.plot.c_str());
  return 0;
}

}  // namespace

Runner add_compare_command(CLI::App& app) {
  auto opt = std::make_shared<CompareOptions>();
  CLI::App* cmd = app.add_subcommand("compare", "Compare two neuron maps (atlases or models) neuron by neuron");
  cmd->add_option("a", opt->a, "First atlas or model (e.g. base)")->required();
  cmd->add_option("b", opt->b, "Second atlas or model (e.g. instruct)")->required();
  cmd->add_option("--kinds", opt->kinds, "Kinds to map when given models")->capture_default_str();
  cmd->add_option("--top-k", opt->top_k, "Top-k when mapping models")->capture_default_str();
  cmd->add_option("--norm", opt->norm, "Norm when mapping models: final or none")->capture_default_str();
  cmd->add_option("--changed", opt->changed, "How many most-changed neurons to list")->capture_default_str();
  cmd->add_option("--csv", opt->csv, "Write the per-layer table as CSV to this file");
  cmd->add_option("--plot", opt->plot, "Write an SVG plot of agreement by layer to this file");
  cmd->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_compare(*opt); };
}

}  // namespace neuronlens::cli
