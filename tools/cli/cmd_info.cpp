// `neuronlens info MODEL`: what a model is and what mapping it will cost.
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "neuronlens/decode.h"
#include "neuronlens/map_estimate.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"

namespace neuronlens::cli {
namespace {

struct InfoOptions {
  std::string model;
  bool json = false;
  bool measure = true;
};

struct TypeUsage {
  int64_t tensors = 0;
  int64_t bytes = 0;
};

int run_info(const InfoOptions& opt) {
  const Model model = Model::load(opt.model);
  const ModelConfig& c = model.config();
  std::map<std::string, TypeUsage> by_type;
  for (const TensorView* t : model.all_tensors()) {
    TypeUsage& u = by_type[std::string(dtype_name(t->type))];
    ++u.tensors;
    u.bytes += t->nbytes;
  }
  const MapEstimate estimate = estimate_neuron_map(c, 3, opt.measure);
  const std::vector<WeightKernelUse> runtime_weights = plan_weight_kernels(model);
  int64_t copied_bytes = 0;
  for (const WeightKernelUse& u : runtime_weights) copied_bytes += u.copied_bytes;
  const std::string format = model.format() == ModelFormat::Gguf ? "gguf" : "huggingface";
  const std::string encoding =
      model.vocab().encoding() == VocabEncoding::ByteLevelBpe ? "byte-level BPE" : "SentencePiece";

  if (opt.json) {
    nlohmann::json j;
    j["path"] = model.path();
    j["format"] = format;
    j["name"] = c.name;
    j["architecture"] = architecture_name(c.arch);
    j["layers"] = c.n_layers;
    j["hidden_size"] = c.d_model;
    j["ffn_size"] = c.d_ffn;
    j["heads"] = c.n_heads;
    j["kv_heads"] = c.n_kv_heads;
    j["head_dim"] = c.head_dim;
    j["vocab_size"] = c.vocab_size;
    j["tokenizer_tokens"] = model.vocab().size();
    j["tokenizer"] = encoding;
    j["tied_embeddings"] = c.tied_embeddings;
    j["context_length"] = c.context_length;
    j["rope_theta"] = c.rope_theta;
    j["rotary_dim"] = c.rotated_dims();
    j["rope_scaling"] = c.rope_scaling.type.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.rope_scaling.type);
    j["rms_norm_eps"] = c.rms_norm_eps;
    j["block"] = describe_block(c);
    j["activation"] = mlp_activation_name(c.activation);
    j["sliding_window"] = c.sliding_window;
    j["local_layers"] = nlohmann::json::array();
    for (int64_t l = 0; l < c.n_layers; ++l) {
      if (c.is_local_layer(l)) j["local_layers"].push_back(l);
    }
    j["final_softcap"] = c.final_softcap;
    j["attn_softcap"] = c.attn_softcap;
    j["file_bytes"] = model.file_bytes();
    j["tensor_count"] = model.all_tensors().size();
    for (const auto& [type, u] : by_type) j["tensor_types"][type] = {{"tensors", u.tensors}, {"bytes", u.bytes}};
    j["neuron_map"] = {{"kinds", 3},
                       {"vectors", estimate.vectors},
                       {"flops", estimate.flops},
                       {"peak_bytes", estimate.peak_bytes}};
    if (opt.measure) {
      j["neuron_map"]["gemm_gflops"] = estimate.gemm_gflops;
      j["neuron_map"]["seconds"] = estimate.seconds;
    }
    const DecodeBackendChoice chosen = choose_decode_backend(DecodeSettings{});
    j["neuron_map"]["backend"] = chosen.name;
    j["neuron_map"]["backends"] = nlohmann::json::array();
    for (const DecodeBackendInfo& b : decode_backend_names()) {
      j["neuron_map"]["backends"].push_back(
          {{"name", b.name}, {"precision", precision_name(b.precision)}, {"runs_here", b.runs_here}, {"needs", b.needs}});
    }
    nlohmann::json& rt = j["runtime_weights"];
    rt["copied_bytes"] = copied_bytes;
    rt["kernel_path"] = runtime_kernel_path();
    rt["matrices"] = nlohmann::json::array();
    for (const WeightKernelUse& u : runtime_weights) {
      rt["matrices"].push_back({{"file_type", u.file_type}, {"kernel", u.kernel}, {"in_place", u.in_place},
                                {"count", u.matrices}, {"bytes", u.bytes}, {"copied_bytes", u.copied_bytes},
                                {"note", u.note}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::printf("model          %s\n", c.name.c_str());
  std::printf("file           %s (%s, %s)\n", model.path().c_str(), format.c_str(),
              human_bytes(static_cast<double>(model.file_bytes())).c_str());
  std::printf("architecture   %s\n", std::string(architecture_name(c.arch)).c_str());
  std::printf("layers         %lld\n", static_cast<long long>(c.n_layers));
  std::printf("hidden size    %lld (d)\n", static_cast<long long>(c.d_model));
  std::printf("FFN size       %lld (F, neurons per layer)\n", static_cast<long long>(c.d_ffn));
  std::printf("heads          %lld query, %lld key-value, head dim %lld\n", static_cast<long long>(c.n_heads),
              static_cast<long long>(c.n_kv_heads), static_cast<long long>(c.head_dim));
  std::printf("vocabulary     %lld (%s tokenizer, %lld tokens)\n", static_cast<long long>(c.vocab_size),
              encoding.c_str(), static_cast<long long>(model.vocab().size()));
  std::printf("LM head        %s\n", c.tied_embeddings ? "tied to the token embedding" : "separate output.weight");
  std::printf("context        %lld tokens, rope theta %g\n", static_cast<long long>(c.context_length), c.rope_theta);
  std::printf("block          %s\n", describe_block(c).c_str());
  std::printf("tensors        %zu\n", model.all_tensors().size());
  for (const auto& [type, u] : by_type) {
    std::printf("  %-6s %5lld tensors %12s\n", type.c_str(), static_cast<long long>(u.tensors),
                human_bytes(static_cast<double>(u.bytes)).c_str());
  }
  std::printf("neuron map     3 kinds x %lld layers x %lld neurons = %lld vectors, %.2f TFLOP\n",
              static_cast<long long>(c.n_layers), static_cast<long long>(c.d_ffn),
              static_cast<long long>(estimate.vectors), estimate.flops / 1e12);
  std::printf("               peak memory about %s", human_bytes(static_cast<double>(estimate.peak_bytes)).c_str());
  if (opt.measure) {
    std::printf("; about %s at this machine's float32 GEMM rate (%.0f GFLOP/s, measured)", 
                human_seconds(estimate.seconds).c_str(), estimate.gemm_gflops);
  }
  std::printf("\n");
  // The decode backends (`map --backend`), the default's marked.
  const DecodeBackendChoice chosen = choose_decode_backend(DecodeSettings{});
  std::printf("map backends   (* the default here; --backend NAME forces one)\n");
  for (const DecodeBackendInfo& b : decode_backend_names()) {
    std::printf("  %c %-22s %-5s %s\n", b.name == chosen.name ? '*' : ' ', b.name.c_str(),
                std::string(precision_name(b.precision)).c_str(),
                b.runs_here ? "runs here" : ("needs " + b.needs).c_str());
  }
  // What `generate` and the other runtime commands will hold.
  std::printf("runtime        matrices read in place from the file; %s copied; %s kernels\n",
              human_bytes(static_cast<double>(copied_bytes)).c_str(), std::string(runtime_kernel_path()).c_str());
  for (const WeightKernelUse& u : runtime_weights) {
    const std::string how = u.kernel == "kquant"       ? "8-bit integer kernel (activations per 256), in place"
                            : u.kernel == "int8blocks" ? "8-bit integer kernel (activations per 32), in place"
                            : u.kernel == "blocks"     ? "block kernel, float32 activations, in place"
                            : u.kernel == "tiles"      ? "dequantised a tile at a time, float32 activations, in place"
                            : u.in_place           ? "float32 BLAS, in place"
                                                   : "float32 BLAS on a copy (" +
                                                         human_bytes(static_cast<double>(u.copied_bytes)) + ")";
    std::printf("  %-6s %5lld matrices  %s%s%s\n", u.file_type.c_str(), static_cast<long long>(u.matrices), how.c_str(),
                u.note.empty() ? "" : ": ", u.note.c_str());
  }
  return 0;
}

}  // namespace

Runner add_info_command(CLI::App& app) {
  auto opt = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a model and estimate the cost of its neuron map");
  cmd->add_option("model", opt->model, "GGUF file or Hugging Face model folder")->required();
  cmd->add_flag("--json", opt->json, "Print JSON");
  cmd->add_flag("!--no-timing", opt->measure, "Skip the GEMM speed measurement behind the time estimate");
  return [opt] { return run_info(*opt); };
}

}  // namespace neuronlens::cli
