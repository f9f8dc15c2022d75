// `neuronlens map MODEL -o ATLAS.db`: decode every FFN neuron (and with
// --kinds ov,qk every attention head's circuits) into an atlas, then print a
// summary with example concepts.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "agreement_report.h"
#include "commands.h"
#include "concept_report.h"
#include "format.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "option_error.h"
#include "progress_bar.h"

namespace neuronlens::cli {
namespace {

struct MapCommandOptions {
  std::string model;
  std::string atlas;
  std::string kinds = "all";
  int head_rank = 4;
  std::string layers = "all";
  int top_k = 20;
  std::string norm = "final";
  std::string read_norm = "none";
  std::string precision = "auto";
  std::string backend;
  std::string examples = "dog,California";
  double specialised = 0.5;
  int threads = 0;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// A head direction's first tokens on one side, quoted.
std::string head_side_tokens(const Atlas& atlas, const AtlasHeadSide& side, size_t count) {
  std::string out;
  for (size_t i = 0; i < std::min(count, side.top_ids.size()); ++i) {
    out += (i ? " " : "") + quote_token(atlas.token_text(side.top_ids[i]));
  }
  return out;
}

void print_head_summary(const Atlas& atlas, const MapOptions& map_options) {
  for (HeadCircuit circuit : map_options.circuits) {
    const std::string name(head_circuit_name(circuit));
    std::printf("\n%s heads: the %d directions with the most specialised %s side (L:%s:H rank, singular value)\n",
                name.c_str(), 8, std::string(head_side_name(circuit, 0)).c_str(), name.c_str());
    for (const AtlasHeadDirection& d : atlas.sharpest_heads(circuit, 8)) {
      std::printf("  %4lld:%s:%-3lld r%d  σ %8.3f  %s %5.2f %-40s  %s %s\n", static_cast<long long>(d.layer),
                  name.c_str(), static_cast<long long>(d.head), d.rank, d.singular_value,
                  std::string(head_side_name(circuit, 0)).c_str(), d.sides[0].top_probs.empty() ? 0.0 : d.sides[0].top_probs[0],
                  head_side_tokens(atlas, d.sides[0], 3).c_str(), std::string(head_side_name(circuit, 1)).c_str(),
                  head_side_tokens(atlas, d.sides[1], 3).c_str());
    }
  }
}

void print_summary(const Model& model, const Atlas& atlas, const LmHeadDecoder& decoder, const MapOptions& map_options,
                   const MapCommandOptions& opt) {
  print_head_summary(atlas, map_options);
  if (map_options.kinds.empty()) return;
  std::printf("\nper layer: mean entropy (nats) and neurons whose top-1 token has p > %.2f\n", opt.specialised);
  std::printf("  %5s", "layer");
  for (VectorKind k : map_options.kinds) std::printf("  %8s-H %10s", std::string(vector_kind_name(k)).c_str(), "specialised");
  std::printf("\n");
  std::vector<std::vector<Atlas::LayerSummary>> per_kind;
  for (VectorKind k : map_options.kinds) per_kind.push_back(atlas.summarize(k, opt.specialised));
  for (int64_t layer : map_options.layers) {
    std::printf("  %5lld", static_cast<long long>(layer));
    for (const auto& rows : per_kind) {
      const Atlas::LayerSummary* row = nullptr;
      for (const auto& r : rows) {
        if (r.layer == layer) row = &r;
      }
      if (row) std::printf("  %10.3f %10lld", row->mean_entropy, static_cast<long long>(row->specialised));
      else std::printf("  %10s %10s", "-", "-");
    }
    std::printf("\n");
  }
  FindOptions find;
  find.kinds = map_options.kinds;
  find.layers = map_options.layers;
  find.limit = 5;
  for (const std::string& concept_text : split_commas(opt.examples)) {
    std::printf("\n");
    try {
      const ConceptTokens ct = expand_concept(model.vocab(), concept_text, false);
      const auto hits = find_concept(model, decoder, &atlas, ct, find);
      print_concept_hits(ct, hits, token_text_of(model.vocab()), true);
    } catch (const Error& e) {
      std::printf("concept '%s': %s\n", concept_text.c_str(), e.what());
    }
  }
}

int run_map(const MapCommandOptions& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const Model model = Model::load(opt.model);
  MapOptions map_options;
  const MapKinds kinds = for_option("--kinds", [&] { return parse_map_kinds(opt.kinds); });
  map_options.kinds = kinds.kinds;
  map_options.circuits = kinds.circuits;
  map_options.head_rank = opt.head_rank;
  map_options.layers =
      for_option("--layers", [&] { return parse_layer_list(opt.layers, model.config().n_layers); });
  map_options.settings.top_k = opt.top_k;
  map_options.settings.norm = norm_mode_from_name(opt.norm);
  map_options.settings.read_norm = read_norm_from_name(opt.read_norm);
  map_options.settings.precision = for_option("--precision", [&] { return precision_from_name(opt.precision); });
  map_options.settings.backend = opt.backend;
  const DecodeBackendChoice backend = for_option(opt.backend.empty() ? "--precision" : "--backend", [&] {
    return choose_decode_backend(map_options.settings);
  });
  std::fprintf(stderr, "decode backend %s (%s precision)\n", backend.name.c_str(),
               std::string(precision_name(backend.precision)).c_str());
  if (!(opt.specialised > 0 && opt.specialised < 1)) throw bad_input("--specialised must be between 0 and 1");

  std::fprintf(stderr, "hashing %s ...\n", model.path().c_str());
  Atlas atlas = Atlas::create_or_resume(opt.atlas, atlas_settings_for(model, map_options.settings), model.vocab());
  ProgressBar bar("mapping", "vectors");
  const MapProgress done = run_neuron_map(model, map_options, atlas, [&](const MapProgress& p) {
    bar.update(p.vectors_done, p.vectors_total);
  });
  const double seconds = bar.finish();
  if (done.vectors_total == 0) {
    std::printf("%s already holds every requested layer (%lld kind-layers); nothing to do\n", opt.atlas.c_str(),
                static_cast<long long>(done.layers_skipped));
  } else {
    std::printf("mapped %lld vectors (%lld kind-layers, %lld already done) in %s: %.0f vectors/s -> %s\n",
                static_cast<long long>(done.vectors_done), static_cast<long long>(done.layers_mapped),
                static_cast<long long>(done.layers_skipped), human_seconds(seconds).c_str(),
                static_cast<double>(done.vectors_done) / seconds, opt.atlas.c_str());
  }
  const LmHeadDecoder decoder(model, map_options.settings);
  print_summary(model, atlas, decoder, map_options, opt);
  print_agreement(atlas);
  return 0;
}

}  // namespace

Runner add_map_command(CLI::App& app) {
  auto opt = std::make_shared<MapCommandOptions>();
  CLI::App* cmd = app.add_subcommand("map", "Decode every FFN neuron through the LM head into an atlas");
  cmd->add_option("model", opt->model, "GGUF file or Hugging Face model folder")->required();
  cmd->add_option("-o,--output", opt->atlas, "Atlas file to write or resume (SQLite)")->required();
  cmd->add_option("--kinds", opt->kinds,
                  "Vector kinds: up,gate,down (all: the three), and attention heads' circuits ov,qk")
      ->capture_default_str();
  cmd->add_option("--head-rank", opt->head_rank, "Singular directions kept per head and circuit (ov, qk)")
      ->capture_default_str();
  cmd->add_option("--layers", opt->layers, "Layers, e.g. 3-10 or 0,5,7-9, or all")->capture_default_str();
  cmd->add_option("--top-k", opt->top_k, "Top tokens stored per neuron")->capture_default_str();
  cmd->add_option("--norm", opt->norm, "Norm before the LM head: final (model's final RMSNorm) or none")
      ->capture_default_str();
  cmd->add_option("--read-norm", opt->read_norm,
                  "Up/gate rows as read: none (the raw row, the paper's) or ffn (times the MLP's pre-norm weight: "
                  "the direction the neuron reads through its own norm)")
      ->capture_default_str();
  cmd->add_option("--precision", opt->precision,
                  "Bulk logit product: exact (float32), bf16 (bf16 operands, float32 sums; needs AVX512_BF16) or "
                  "auto (bf16 where the CPU has it). Either way every token that could be in the top k is "
                  "re-scored in float64, so the top-k ids are exact (docs/precision.md)")
      ->capture_default_str();
  cmd->add_option("--backend", opt->backend,
                  "Force one decode backend by name, e.g. cpu-avx2-fp32, cpu-portable16-fp32 or cpu-avx2-bf16emu "
                  "(bf16 emulated, for CPUs without bf16 units); `neuronlens info MODEL` lists them");
  cmd->add_option("--examples", opt->examples, "Concepts to look up in the summary (comma separated)")
      ->capture_default_str();
  cmd->add_option("--specialised", opt->specialised, "Top-1 probability above which a neuron counts as specialised")
      ->capture_default_str();
  cmd->add_option("--threads", opt->threads, "Worker threads (default: all cores)");
  return [opt] { return run_map(*opt); };
}

}  // namespace neuronlens::cli
