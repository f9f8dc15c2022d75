// `neuronlens show ATLAS L:KIND:I`: one neuron's decoded tokens; with KIND
// ov or qk, one attention head's singular directions, both sides decoded.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "neuronlens/atlas.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/neuron_record.h"
#include "server/evidence_json.h"

namespace neuronlens::cli {
namespace {

struct ShowOptions {
  std::string atlas;
  std::vector<std::string> neurons;
  bool json = false;
  int64_t contexts = 5;
};

// Text for a terminal: control characters escaped as quote_token does.
std::string escaped(const std::string& text) {
  const std::string quoted = quote_token(text);
  return quoted.substr(1, quoted.size() - 2);
}

// A neuron's recorded statistics and its top contexts, the firing token in
// [[ ]] with its activation.
void print_evidence(const Atlas& atlas, const NeuronEvidence& e, int64_t contexts) {
  const std::optional<RecordInfo> info = atlas.record_info();
  std::printf("  activations over %lld corpus tokens: mean %.4f, std %.4f, max |a| %.4f, density %.4f (|a| > %g)\n",
              static_cast<long long>(info ? info->tokens_recorded : 0), e.stats.mean, e.stats.std, e.stats.max_abs,
              e.stats.density, info ? info->density_threshold : 0.0);
  for (int side = 0; side < 2; ++side) {
    const std::vector<NeuronContext>& list = side == 0 ? e.positive : e.negative;
    std::printf("  top %s contexts:%s\n", side == 0 ? "positive" : "negative", list.empty() ? " none" : "");
    for (size_t i = 0; i < list.size() && static_cast<int64_t>(i) < contexts; ++i) {
      std::string line;
      for (const ContextToken& t : context_window(atlas, list[i])) {
        line += t.fired ? "[[" + escaped(t.text) + "]]" : escaped(t.text);
      }
      std::printf("  %9.3f  %s\n", list[i].activation, line.c_str());
    }
  }
}

struct NeuronRef {
  int64_t layer;
  VectorKind kind;
  int64_t index;
};

NeuronRef parse_neuron_ref(const std::string& text) {
  const size_t a = text.find(':'), b = text.rfind(':');
  if (a == std::string::npos || a == b) {
    throw bad_input("neuron '" + text + "' is not of the form LAYER:KIND:INDEX (e.g. 16:up:4031, or 12:ov:3 for a head)");
  }
  auto number = [&](const std::string& s, const char* what) {
    return parse_nonnegative_integer(s, "neuron '" + text + "': " + what);
  };
  return {number(text.substr(0, a), "layer"), vector_kind_from_name(text.substr(a + 1, b - a - 1)),
          number(text.substr(b + 1), "index")};
}

nlohmann::json side_json(const Atlas& atlas, HeadCircuit circuit, int side, const AtlasHeadSide& s) {
  nlohmann::json top = nlohmann::json::array();
  for (size_t i = 0; i < s.top_ids.size(); ++i) {
    top.push_back({{"rank", i + 1}, {"id", s.top_ids[i]}, {"text", atlas.token_text(s.top_ids[i])},
                   {"logit", s.top_logits[i]}, {"prob", s.top_probs[i]}});
  }
  return {{"side", head_side_name(circuit, side)}, {"logsumexp", s.logsumexp}, {"entropy", s.entropy},
          {"topk_mass", s.topk_mass}, {"top_tokens", std::move(top)}};
}

// LAYER:ov:HEAD or LAYER:qk:HEAD.
void show_head(const Atlas& atlas, const std::string& ref_text, HeadCircuit circuit, int64_t layer, int64_t head,
               bool json, nlohmann::json& all) {
  const std::string name(head_circuit_name(circuit));
  const std::vector<AtlasHeadDirection> dirs = atlas.head(circuit, layer, head);
  if (dirs.empty()) {
    if (atlas.head_layer_done(circuit, layer)) {
      throw bad_input("'" + ref_text + "': head " + std::to_string(head) + " is out of range (layer " +
                      std::to_string(layer) + " has fewer heads)");
    }
    throw bad_input(atlas.path() + ": layer " + std::to_string(layer) + "'s " + name +
                    " circuits are not mapped in this atlas (map --kinds " + name + ")");
  }
  if (json) {
    nlohmann::json directions = nlohmann::json::array();
    for (const AtlasHeadDirection& d : dirs) {
      directions.push_back({{"rank", d.rank},
                            {"singular_value", d.singular_value},
                            {"sides", {side_json(atlas, circuit, 0, d.sides[0]), side_json(atlas, circuit, 1, d.sides[1])}}});
    }
    all.push_back({{"layer", layer}, {"kind", name}, {"head", head}, {"directions", std::move(directions)}});
    return;
  }
  const char* side0_text = circuit == HeadCircuit::Ov ? "what the head writes (final norm, LM head)"
                                                 : "the query direction (token embedding)";
  const char* side1_text = circuit == HeadCircuit::Ov ? "what it reads where it attends (token embedding)"
                                                  : "the key direction it looks for (token embedding)";
  std::printf("%lld:%s:%lld   %s circuit of head %lld in layer %lld, top %zu singular directions (%s)\n",
              static_cast<long long>(layer), name.c_str(), static_cast<long long>(head),
              circuit == HeadCircuit::Ov ? "OV" : "QK", static_cast<long long>(head), static_cast<long long>(layer),
              dirs.size(), atlas.settings().model_name.c_str());
  for (const AtlasHeadDirection& d : dirs) {
    std::printf("  r%d  singular value %.4f\n", d.rank, d.singular_value);
    for (int side = 0; side < 2; ++side) {
      const AtlasHeadSide& s = d.sides[side];
      std::printf("    %-5s %s, entropy %.3f nats:\n     ", std::string(head_side_name(circuit, side)).c_str(),
                  side == 0 ? side0_text : side1_text, s.entropy);
      for (size_t i = 0; i < std::min<size_t>(8, s.top_ids.size()); ++i) {
        std::printf(" %s %.3f", quote_token(atlas.token_text(s.top_ids[i])).c_str(), s.top_probs[i]);
      }
      std::printf("\n");
    }
  }
}

int run_show(const ShowOptions& opt) {
  const Atlas atlas = Atlas::open(opt.atlas);
  const AtlasSettings& s = atlas.settings();
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& ref_text : opt.neurons) {
    const size_t a = ref_text.find(':'), b = ref_text.rfind(':');
    const std::string kind = a != std::string::npos && b > a ? ref_text.substr(a + 1, b - a - 1) : "";
    if (kind == "ov" || kind == "qk") {
      auto number = [&](const std::string& t, const char* what) {
        return parse_nonnegative_integer(t, "head '" + ref_text + "': " + what);
      };
      const int64_t layer = number(ref_text.substr(0, a), "layer");
      if (layer >= s.n_layers) {
        throw bad_input("layer " + std::to_string(layer) + " is out of range (the atlas's model has layers 0 to " +
                        std::to_string(s.n_layers - 1) + ")");
      }
      show_head(atlas, ref_text, head_circuit_from_name(kind), layer, number(ref_text.substr(b + 1), "head"),
                opt.json, all);
      continue;
    }
    const NeuronRef ref = parse_neuron_ref(ref_text);
    if (ref.layer >= s.n_layers) {
      throw bad_input("layer " + std::to_string(ref.layer) + " is out of range (the atlas's model has layers 0 to " +
                      std::to_string(s.n_layers - 1) + ")");
    }
    if (ref.index >= s.d_ffn) {
      throw bad_input("neuron " + std::to_string(ref.index) + " is out of range (layers have neurons 0 to " +
                      std::to_string(s.d_ffn - 1) + ")");
    }
    const std::optional<AtlasNeuron> n = atlas.neuron(ref.kind, ref.layer, ref.index);
    // The evidence belongs to the neuron (its activation), whatever the kind.
    const std::optional<NeuronEvidence> evidence = atlas.neuron_evidence(ref.layer, ref.index);
    if (!n && evidence) {
      if (opt.json) {
        all.push_back({{"layer", ref.layer}, {"kind", vector_kind_name(ref.kind)}, {"neuron", ref.index},
                       {"top_tokens", nullptr}, {"evidence", server::evidence_json(atlas, *evidence, opt.contexts)}});
      } else {
        std::printf("%lld:%s:%lld   (layer not mapped in this atlas; recorded activations only)\n",
                    static_cast<long long>(ref.layer), std::string(vector_kind_name(ref.kind)).c_str(),
                    static_cast<long long>(ref.index));
        print_evidence(atlas, *evidence, opt.contexts);
      }
      continue;
    }
    if (!n) {
      throw bad_input(opt.atlas + ": layer " + std::to_string(ref.layer) + " of kind " +
                      std::string(vector_kind_name(ref.kind)) + " is not mapped in this atlas");
    }
    if (opt.json) {
      nlohmann::json top = nlohmann::json::array();
      for (size_t i = 0; i < n->top_ids.size(); ++i) {
        top.push_back({{"rank", i + 1}, {"id", n->top_ids[i]}, {"text", atlas.token_text(n->top_ids[i])},
                       {"logit", n->top_logits[i]}, {"prob", n->top_probs[i]}});
      }
      all.push_back({{"layer", ref.layer}, {"kind", vector_kind_name(ref.kind)}, {"neuron", ref.index},
                     {"logsumexp", n->logsumexp}, {"entropy", n->entropy}, {"topk_mass", n->topk_mass},
                     {"top_tokens", top},
                     {"evidence", evidence ? server::evidence_json(atlas, *evidence, opt.contexts) : nullptr}});
      continue;
    }
    std::printf("%lld:%s:%lld   entropy %.3f nats, top-%zu mass %.3f, logsumexp %.3f  (%s, norm %s)\n",
                static_cast<long long>(ref.layer), std::string(vector_kind_name(ref.kind)).c_str(),
                static_cast<long long>(ref.index), n->entropy, n->top_ids.size(), n->topk_mass, n->logsumexp,
                s.model_name.c_str(), std::string(norm_mode_name(s.norm)).c_str());
    for (size_t i = 0; i < n->top_ids.size(); ++i) {
      const int bar = static_cast<int>(n->top_probs[i] * 40 + 0.5);
      std::printf("  %3zu %7d %-24s %8.3f %7.4f %s\n", i + 1, n->top_ids[i],
                  quote_token(atlas.token_text(n->top_ids[i])).c_str(), n->top_logits[i], n->top_probs[i],
                  std::string(static_cast<size_t>(bar), '#').c_str());
    }
    if (evidence) print_evidence(atlas, *evidence, opt.contexts);
  }
  if (opt.json) std::cout << all.dump(2) << "\n";
  return 0;
}

}  // namespace

Runner add_show_command(CLI::App& app) {
  auto opt = std::make_shared<ShowOptions>();
  CLI::App* cmd = app.add_subcommand("show", "Show neurons' (or heads') top tokens, probabilities and entropy");
  cmd->add_option("atlas", opt->atlas, "Atlas file")->required();
  cmd->add_option("neurons", opt->neurons,
                  "Neurons as LAYER:KIND:INDEX, e.g. 16:up:4031; heads as LAYER:ov:HEAD or LAYER:qk:HEAD")
      ->required();
  cmd->add_flag("--json", opt->json, "Print JSON");
  cmd->add_option("--contexts", opt->contexts, "Recorded contexts shown per sign, where the atlas has a record")
      ->capture_default_str();
  return [opt] { return run_show(*opt); };
}

}  // namespace neuronlens::cli
