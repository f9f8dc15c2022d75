// Model::load: reads hyperparameters from GGUF metadata or config.json, finds
// every weight through the architecture table and checks its shape.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <variant>

#include "io/mapped_file.h"
#include "model/architecture.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/model.h"
#include "neuronlens/safetensors.h"

namespace neuronlens {

struct Model::Storage {
  std::variant<std::monostate, GgufFile, SafetensorsCheckpoint> files;
};

namespace fs = std::filesystem;
using nlohmann::json;

// Fills a Model from a config and a name -> tensor lookup.
class ModelBuilder {
 public:
  template <typename FindTensor>
  static void attach_weights(Model& model, const std::string& where, FindTensor find_tensor) {
    const ModelConfig& config = model.config_;
    model.global_weights_.assign(kWeightKindCount, nullptr);
    model.layer_weights_.assign(config.n_layers, std::vector<const TensorView*>(kWeightKindCount, nullptr));
    for (const WeightSpec& spec : weight_specs()) {
      const int64_t layers = spec.per_layer ? config.n_layers : 1;
      for (int64_t layer = 0; layer < layers; ++layer) {
        const std::string name = weight_name(spec.kind, model.format_, layer);
        const TensorView* tensor = name.empty() ? nullptr : find_tensor(name);
        if (tensor == nullptr) {
          if (weight_required(spec.kind, config)) {
            throw Error(where + ": tensor '" + name + "' is missing (needed by a " +
                        std::string(architecture_name(config.arch)) + " model with " +
                        std::to_string(config.n_layers) + " layers)");
          }
          continue;
        }
        check_shape(*tensor, expected_shape(spec.kind, config), where);
        (spec.per_layer ? model.layer_weights_[layer] : model.global_weights_)[static_cast<size_t>(spec.kind)] = tensor;
      }
    }
  }

  static void check_shape(const TensorView& tensor, const ExpectedShape& expected, const std::string& where) {
    if (tensor.shape != expected.dims) {
      throw Error(where + ": tensor '" + tensor.name + "' has shape " + tensor.shape_string() + ", expected " +
                  expected.to_string());
    }
  }

  static Model load_gguf(const std::string& path) {
    Model model;
    model.path_ = path;
    model.format_ = ModelFormat::Gguf;
    auto storage = std::make_shared<Model::Storage>();
    const GgufFile& file = storage->files.emplace<GgufFile>(GgufFile::open(path));
    model.storage_ = storage;
    model.file_bytes_ = file.file_size();

    const std::string arch_name = file.get_string("general.architecture");
    ModelConfig& c = model.config_;
    c.arch = architecture_from_name(arch_name, path);
    const std::string p = arch_name + ".";
    c.name = file.get_string_or("general.name", fs::path(path).stem().string());
    c.n_layers = static_cast<int64_t>(file.get_uint(p + "block_count"));
    c.d_model = static_cast<int64_t>(file.get_uint(p + "embedding_length"));
    c.d_ffn = static_cast<int64_t>(file.get_uint(p + "feed_forward_length"));
    c.n_heads = static_cast<int64_t>(file.get_uint(p + "attention.head_count"));
    c.n_kv_heads = static_cast<int64_t>(file.get_uint_or(p + "attention.head_count_kv", static_cast<uint64_t>(c.n_heads)));
    c.head_dim = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
    c.head_dim = static_cast<int64_t>(file.get_uint_or(p + "attention.key_length", static_cast<uint64_t>(c.head_dim)));
    c.context_length = static_cast<int64_t>(file.get_uint_or(p + "context_length", 2048));
    // llama.cpp's converter writes no window for Mistral (its llama graph has
    // none); a file that carries one gets it, as its Hugging Face model would.
    c.sliding_window = static_cast<int64_t>(file.get_uint_or(p + "attention.sliding_window", 0));
    c.rms_norm_eps = file.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5);
    c.rope_theta = file.get_float_or(p + "rope.freq_base", 10000.0);
    c.rope_scaling.type = file.get_string_or(p + "rope.scaling.type", "");
    if (c.rope_scaling.type == "none") c.rope_scaling.type.clear();
    c.rope_scaling.factor = file.get_float_or(p + "rope.scaling.factor", 1.0);
    // llama.cpp's converter keeps qwen2's q/k rows as Hugging Face has them.
    c.rope_style = c.arch == Architecture::Qwen2 ? RopeStyle::NeoX : RopeStyle::Interleaved;
    c.qkv_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
    c.tied_embeddings = file.find_tensor("output.weight") == nullptr;

    const TensorView* embedding = file.find_tensor("token_embd.weight");
    if (embedding == nullptr) throw Error(path + ": tensor 'token_embd.weight' is missing");
    c.vocab_size = embedding->shape.front();
    if (file.has(p + "vocab_size")) {
      const auto declared = static_cast<int64_t>(file.get_uint(p + "vocab_size"));
      if (declared != c.vocab_size) {
        throw Error(path + ": metadata key '" + p + "vocab_size' is " + std::to_string(declared) +
                    ", but tensor 'token_embd.weight' has " + std::to_string(c.vocab_size) + " rows");
      }
    }
    validate_config(c, path);
    attach_weights(model, path, [&](const std::string& name) { return file.find_tensor(name); });
    for (const TensorView& t : file.tensors()) model.all_tensors_.push_back(&t);
    model.vocab_ = std::make_shared<const Vocabulary>(Vocabulary::from_gguf(file));
    check_vocab(model, path);
    return model;
  }

  static json read_json_file(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(path.string() + ": cannot open");
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error(path.string() + ": not valid JSON");
    if (!j.is_object()) throw Error(path.string() + ": expected a JSON object at the top level");
    return j;
  }

  // config.json accessors with messages naming the key.
  static int64_t json_int(const json& j, const std::string& key, const std::string& where,
                          std::optional<int64_t> fallback = std::nullopt) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (fallback) return *fallback;
      throw Error(where + ": key '" + key + "' is missing");
    }
    if (!it->is_number_integer()) throw Error(where + ": key '" + key + "' is " + it->dump() + ", expected an integer");
    return it->get<int64_t>();
  }
  static double json_number(const json& j, const std::string& key, const std::string& where, double fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw Error(where + ": key '" + key + "' is " + it->dump() + ", expected a number");
    return it->get<double>();
  }
  static bool json_bool(const json& j, const std::string& key, const std::string& where, bool fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw Error(where + ": key '" + key + "' is " + it->dump() + ", expected true or false");
    return it->get<bool>();
  }

  static Model load_hf(const fs::path& folder) {
    Model model;
    model.path_ = folder.string();
    model.format_ = ModelFormat::HuggingFace;
    const fs::path config_path = folder / "config.json";
    const std::string where = config_path.string();
    const json cfg = read_json_file(config_path);

    auto model_type = cfg.find("model_type");
    if (model_type == cfg.end() || !model_type->is_string()) throw Error(where + ": key 'model_type' is missing");
    ModelConfig& c = model.config_;
    c.arch = architecture_from_name(model_type->get<std::string>(), where);
    c.name = folder.filename().string();
    if (c.name.empty()) c.name = folder.parent_path().filename().string();
    c.n_layers = json_int(cfg, "num_hidden_layers", where);
    c.d_model = json_int(cfg, "hidden_size", where);
    c.d_ffn = json_int(cfg, "intermediate_size", where);
    c.n_heads = json_int(cfg, "num_attention_heads", where);
    c.n_kv_heads = json_int(cfg, "num_key_value_heads", where, c.n_heads);
    c.head_dim = json_int(cfg, "head_dim", where, c.n_heads > 0 ? c.d_model / c.n_heads : 0);
    c.vocab_size = json_int(cfg, "vocab_size", where);
    c.context_length = json_int(cfg, "max_position_embeddings", where, 2048);
    // Mistral: config.json "sliding_window" (4096 for 7B v0.1, null from
    // v0.2 on). Qwen2 ships one too but applies it only with
    // use_sliding_window, and then only from layer max_window_layers on,
    // which we do not implement: refused rather than computed wrongly.
    if (c.arch == Architecture::Mistral) {
      c.sliding_window = json_int(cfg, "sliding_window", where, 0);
    } else if (c.arch == Architecture::Qwen2 && json_bool(cfg, "use_sliding_window", where, false)) {
      throw Error(where + ": use_sliding_window is true; sliding-window attention for qwen2 is not supported");
    }
    c.rms_norm_eps = json_number(cfg, "rms_norm_eps", where, 1e-6);
    c.rope_theta = json_number(cfg, "rope_theta", where, 10000.0);
    c.rope_style = RopeStyle::NeoX;
    c.qkv_bias = c.arch == Architecture::Qwen2 || json_bool(cfg, "attention_bias", where, false);
    auto scaling = cfg.find("rope_scaling");
    if (scaling != cfg.end() && scaling->is_object()) {
      const std::string sw = where + " (rope_scaling)";
      auto type = scaling->find("rope_type");
      if (type == scaling->end()) type = scaling->find("type");
      if (type != scaling->end() && type->is_string()) c.rope_scaling.type = type->get<std::string>();
      if (c.rope_scaling.type == "default") c.rope_scaling.type.clear();
      c.rope_scaling.factor = json_number(*scaling, "factor", sw, 1.0);
      c.rope_scaling.low_freq_factor = json_number(*scaling, "low_freq_factor", sw, 1.0);
      c.rope_scaling.high_freq_factor = json_number(*scaling, "high_freq_factor", sw, 4.0);
      c.rope_scaling.original_context = json_int(*scaling, "original_max_position_embeddings", sw, 0);
    }
    validate_config(c, where);

    auto storage = std::make_shared<Model::Storage>();
    const SafetensorsCheckpoint& checkpoint =
        storage->files.emplace<SafetensorsCheckpoint>(SafetensorsCheckpoint::open_folder(folder.string()));
    model.storage_ = storage;
    for (const SafetensorsFile& f : checkpoint.files()) model.file_bytes_ += static_cast<int64_t>(fs::file_size(f.path()));
    // Hugging Face's default is tied; a checkpoint that ships lm_head.weight
    // uses it whatever the flag says.
    const bool declared_tied = json_bool(cfg, "tie_word_embeddings", where, true);
    c.tied_embeddings = checkpoint.find_tensor("lm_head.weight") == nullptr;
    if (!declared_tied && c.tied_embeddings) {
      throw Error(folder.string() + ": tensor 'lm_head.weight' is missing and config.json says tie_word_embeddings=false");
    }
    attach_weights(model, folder.string(), [&](const std::string& name) { return checkpoint.find_tensor(name); });
    model.all_tensors_ = checkpoint.tensors();
    const fs::path tokenizer = folder / "tokenizer.json";
    if (!fs::exists(tokenizer)) throw Error(folder.string() + ": tokenizer.json is missing");
    model.vocab_ = std::make_shared<const Vocabulary>(Vocabulary::from_tokenizer_json(tokenizer.string()));
    check_vocab(model, folder.string());
    return model;
  }

  // The embedding may have more rows than the tokenizer has tokens (padding
  // for fast kernels), never fewer.
  static void check_vocab(const Model& model, const std::string& where) {
    if (model.vocab_->size() > model.config_.vocab_size) {
      throw Error(where + ": the tokenizer has " + std::to_string(model.vocab_->size()) +
                  " tokens, but the embedding has only " + std::to_string(model.config_.vocab_size) + " rows");
    }
  }
};

Model Model::load(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) throw Error(path + ": no such file or folder");
  if (fs::is_directory(p, ec)) {
    if (!fs::exists(p / "config.json")) {
      throw Error(path + ": a folder, but it has no config.json (expected a Hugging Face model folder or a .gguf file)");
    }
    return ModelBuilder::load_hf(p);
  }
  const std::string name = p.filename().string();
  if (name == "config.json" || p.extension() == ".safetensors") return ModelBuilder::load_hf(p.parent_path());
  return ModelBuilder::load_gguf(path);
}

const TensorView* Model::find_weight(WeightKind kind, int64_t layer) const {
  const WeightSpec& spec = weight_spec(kind);
  if (!spec.per_layer) return global_weights_[static_cast<size_t>(kind)];
  if (layer < 0 || layer >= config_.n_layers) {
    throw Error("layer " + std::to_string(layer) + " is out of range (the model has layers 0 to " +
                std::to_string(config_.n_layers - 1) + ")");
  }
  return layer_weights_[layer][static_cast<size_t>(kind)];
}

const TensorView& Model::weight(WeightKind kind, int64_t layer) const {
  const TensorView* t = find_weight(kind, layer);
  if (t == nullptr) {
    throw Error(path_ + ": the model has no " + std::string(weight_kind_name(kind)) + " weight" +
                (weight_spec(kind).per_layer ? " in layer " + std::to_string(layer) : std::string()));
  }
  return *t;
}

const TensorView& Model::lm_head() const {
  return config_.tied_embeddings ? weight(WeightKind::TokenEmbedding) : weight(WeightKind::Output);
}

}  // namespace neuronlens
