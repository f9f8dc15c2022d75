// `neuronlens find MODEL|ATLAS CONCEPT...`: the neurons that most strongly
// stand for a concept.
#include <cstdio>
#include <iostream>
#include <optional>

#include "commands.h"
#include "concept_report.h"
#include "memory_atlas.h"
#include "model_or_atlas.h"
#include "neuronlens/activation_search.h"
#include "neuronlens/atlas_weights.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "option_error.h"
#include "progress_bar.h"

namespace neuronlens::cli {
namespace {

struct FindCommandOptions {
  std::string source;
  std::vector<std::string> concepts;
  std::string model_override;
  std::string kinds = "all";
  std::string layers = "all";
  std::string by = "prob";
  int limit = 10;
  int show_top = 8;
  bool exact = false;
  bool json = false;
  std::string norm = "final";
  std::string read_norm = "none";
};

// A neuron's down decode's first tokens, where the atlas maps that layer.
std::string down_tokens(const Atlas& atlas, int64_t layer, int64_t index, int count) {
  if (!atlas.layer_done(VectorKind::Down, layer)) return "";
  const std::optional<AtlasNeuron> n = atlas.neuron(VectorKind::Down, layer, index);
  std::string out;
  for (int i = 0; n && i < count && i < static_cast<int>(n->top_ids.size()); ++i) {
    out += (i ? " " : "") + quote_token(atlas.token_text(n->top_ids[static_cast<size_t>(i)]));
  }
  return out;
}

// `find ATLAS CONCEPT --by activation`: the neurons whose mean activation on
// the concept's tokens in the atlas's recorded corpus stands highest above
// their corpus mean (neuronlens/activation_search.h).
int run_find_by_activation(const FindCommandOptions& opt) {
  if (!is_sqlite_file(opt.source)) {
    throw bad_input("--by activation reads a recorded corpus: give an atlas with a record (`neuronlens record`)");
  }
  if (opt.limit < 1 || opt.limit > 10000) throw bad_input("--limit must be 1 to 10000");
  const Atlas atlas = Atlas::open(opt.source);
  if (!atlas.record_info()) {
    throw bad_input(opt.source + ": --by activation needs an activation record in the atlas (`neuronlens record`)");
  }
  AtlasWeights weights = load_atlas_weights(atlas, opt.model_override);
  if (!weights.model) throw bad_input("--by activation runs the model: " + weights.why_missing);
  const Model& model = *weights.model;
  const std::vector<int64_t> layers =
      for_option("--layers", [&] { return parse_layer_list(opt.layers, model.config().n_layers); });
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& concept_text : opt.concepts) {
    const ConceptTokens ct = expand_concept(model.vocab(), concept_text, opt.exact);
    ProgressBar bar("running", "chunks");
    const ActivationSearch found = find_by_activation(model, atlas, ct, layers, opt.limit,
                                                      [&](int64_t done, int64_t total) { bar.update(done, total); });
    bar.finish();
    if (opt.json) {
      nlohmann::json hits = nlohmann::json::array();
      for (const ActivationHit& h : found.hits) {
        hits.push_back({{"layer", h.layer}, {"neuron", h.index}, {"mean", h.mean}, {"corpus_mean", h.corpus_mean},
                        {"corpus_std", h.corpus_std}, {"z", h.z}});
      }
      all.push_back({{"concept", concept_text}, {"variants", ct.variants}, {"positions", found.positions},
                     {"chunks_run", found.chunks_run}, {"hits", hits}});
      continue;
    }
    std::string variants;
    for (const std::string& v : ct.variants) variants += (variants.empty() ? "" : ", ") + quote_token(v);
    std::printf("concept '%s' -> tokens %s: %lld occurrences in the recorded corpus (%lld chunks run)\n",
                concept_text.c_str(), variants.c_str(), static_cast<long long>(found.positions),
                static_cast<long long>(found.chunks_run));
    std::printf("  %5s %6s %10s %11s %10s %7s  %s\n", "layer", "neuron", "mean act", "corpus mean", "corpus std", "z",
                "down decode");
    for (const ActivationHit& h : found.hits) {
      std::printf("  %5lld %6lld %10.4f %11.4f %10.4f %7.2f  %s\n", static_cast<long long>(h.layer),
                  static_cast<long long>(h.index), h.mean, h.corpus_mean, h.corpus_std, h.z,
                  down_tokens(atlas, h.layer, h.index, 5).c_str());
    }
    std::printf("\n");
  }
  if (opt.json) std::cout << all.dump(2) << "\n";
  return 0;
}

int run_find(const FindCommandOptions& opt) {
  if (opt.by == "activation") return run_find_by_activation(opt);
  FindOptions find;
  // "all" takes the mapped heads too; naming kinds takes those only.
  MapKinds kinds = for_option("--kinds", [&] { return parse_map_kinds(opt.kinds); });
  if (opt.kinds == "all") kinds.circuits = {HeadCircuit::Ov, HeadCircuit::Qk};
  find.kinds = kinds.kinds;
  find.rank_by = rank_by_from_name(opt.by);
  if (opt.limit < 1 || opt.limit > 10000) throw bad_input("--limit must be 1 to 10000");
  if (opt.show_top < 0 || opt.show_top > 100) throw bad_input("--show-top must be 0 to 100");
  find.limit = opt.limit;
  find.show_top = opt.show_top;

  std::optional<Atlas> atlas;
  std::optional<Model> model;
  std::string why_inexact;
  DecodeSettings settings;
  settings.norm = norm_mode_from_name(opt.norm);
  settings.read_norm = read_norm_from_name(opt.read_norm);
  if (is_sqlite_file(opt.source)) {
    atlas.emplace(Atlas::open(opt.source));
    settings.norm = atlas->settings().norm;
    settings.read_norm = atlas->settings().read_norm;
    settings.top_k = atlas->settings().top_k;
    // The exact ranking needs the weights the atlas was made from.
    AtlasWeights weights = load_atlas_weights(*atlas, opt.model_override);
    model = std::move(weights.model);
    why_inexact = weights.why_missing;
  } else {
    model.emplace(Model::load(opt.source));
  }
  const int64_t n_layers = model ? model->config().n_layers : atlas->settings().n_layers;
  find.layers = for_option("--layers", [&] { return parse_layer_list(opt.layers, n_layers); });
  if (!atlas) {
    // A model alone: map the chosen kinds and layers once, into memory, so
    // every concept reuses the same logsumexp values.
    MapOptions map;
    map.kinds = find.kinds;
    map.layers = find.layers;
    map.settings = settings;
    atlas.emplace(map_into_memory(*model, map, "mapping"));
  }

  nlohmann::json all = nlohmann::json::array();
  // Head directions rank within the stored top-k (there are few of them,
  // and a sharp one keeps its concept tokens there).
  const bool search_heads = atlas && atlas->head_rank() > 0 && !kinds.circuits.empty();
  auto add_heads = [&](const ConceptTokens& ct, const TokenText& text, nlohmann::json* j) {
    if (!search_heads) return;
    const auto head_hits = find_concept_in_heads(*atlas, ct, kinds.circuits, find);
    if (j != nullptr) (*j)["heads"] = head_concept_hits_json(head_hits, text);
    else print_head_concept_hits(head_hits, text);
  };
  for (const std::string& concept_text : opt.concepts) {
    if (model) {
      const ConceptTokens ct = expand_concept(model->vocab(), concept_text, opt.exact);
      const LmHeadDecoder decoder(*model, settings);
      ProgressBar bar("searching", "kind-layers");
      const auto hits = find_concept(*model, decoder, atlas ? &*atlas : nullptr, ct, find,
                                     [&](int64_t done, int64_t total) { bar.update(done, total); });
      bar.finish();
      if (opt.json) {
        nlohmann::json j = concept_hits_json(ct, hits, token_text_of(model->vocab()), true);
        add_heads(ct, token_text_of(model->vocab()), &j);
        all.push_back(std::move(j));
      } else {
        print_concept_hits(ct, hits, token_text_of(model->vocab()), true);
        add_heads(ct, token_text_of(model->vocab()), nullptr);
      }
    } else {
      // Without weights there is no vocabulary object: match the concept's
      // variants against the atlas's token texts.
      if (!opt.json) std::fprintf(stderr, "note: %s\n", why_inexact.c_str());
      const Vocabulary vocab = atlas->vocabulary();
      const ConceptTokens ct = expand_concept(vocab, concept_text, opt.exact);
      const auto hits = find_concept_in_atlas(*atlas, ct, find);
      if (opt.json) {
        auto j = concept_hits_json(ct, hits, token_text_of(*atlas), false);
        j["note"] = why_inexact;
        add_heads(ct, token_text_of(*atlas), &j);
        all.push_back(j);
      } else {
        print_concept_hits(ct, hits, token_text_of(*atlas), false);
        add_heads(ct, token_text_of(*atlas), nullptr);
      }
    }
    if (!opt.json) std::printf("\n");
  }
  if (opt.json) std::cout << all.dump(2) << "\n";
  return 0;
}

}  // namespace

Runner add_find_command(CLI::App& app) {
  auto opt = std::make_shared<FindCommandOptions>();
  CLI::App* cmd = app.add_subcommand("find", "Find the neurons that stand for a concept (e.g. dog, California)");
  cmd->add_option("source", opt->source, "Atlas (SQLite) or model (GGUF file / Hugging Face folder)")->required();
  cmd->add_option("concepts", opt->concepts, "Concepts to look up")->required();
  cmd->add_option("--model", opt->model_override, "Weights for an atlas, if not at the path it records");
  cmd->add_option("--kinds", opt->kinds,
                  "Vector kinds: up,gate,down, head circuits ov,qk (from an atlas that mapped them), or all")
      ->capture_default_str();
  cmd->add_option("--layers", opt->layers, "Layers, e.g. 3-10, or all")->capture_default_str();
  cmd->add_option("--by", opt->by, "Ranking: prob (p of the concept tokens), logit, rank, or activation (mean activation on the "
                  "concept's tokens in the atlas's recorded corpus, in units of the neuron's corpus std above its "
                  "corpus mean; runs the model)")->capture_default_str();
  cmd->add_option("-n,--limit", opt->limit, "Neurons to list")->capture_default_str();
  cmd->add_option("--show-top", opt->show_top, "Top tokens to show per neuron")->capture_default_str();
  cmd->add_option("--norm", opt->norm, "Norm for a model without an atlas: final or none")->capture_default_str();
  cmd->add_option("--read-norm", opt->read_norm, "Up/gate rows for a model without an atlas: none or ffn")
      ->capture_default_str();
  cmd->add_flag("--exact", opt->exact, "Use the concept text as given (no space/case/plural variants)");
  cmd->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_find(*opt); };
}

}  // namespace neuronlens::cli
