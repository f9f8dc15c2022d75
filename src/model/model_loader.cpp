// Model::load: reads hyperparameters from GGUF metadata or config.json, finds
// every weight through the architecture table and checks its shape.
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <variant>

#include "io/json_input.h"
#include "io/mapped_file.h"
#include "model/architecture.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/model.h"
#include "neuronlens/safetensors.h"

namespace neuronlens {

struct Model::Storage {
  std::variant<std::monostate, GgufFile, SafetensorsCheckpoint> files;
  // Row ranges of fused tensors (Phi-3's qkv and gate_up), viewed as the
  // weights they hold; a deque, so the pointers to them stay valid.
  std::deque<TensorView> slices;
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
    const bool fused = architecture_traits(config.arch).fused_projections;
    if (fused) attach_fused_weights(model, where, find_tensor);
    for (const WeightSpec& spec : weight_specs()) {
      const int64_t layers = spec.per_layer ? config.n_layers : 1;
      for (int64_t layer = 0; layer < layers; ++layer) {
        auto& slot = (spec.per_layer ? model.layer_weights_[layer] : model.global_weights_)[static_cast<size_t>(spec.kind)];
        if (slot != nullptr) continue;  // a view of a fused tensor, attached above
        const std::string name = weight_name(spec.kind, model.format_, layer, config.arch);
        const TensorView* tensor = name.empty() ? nullptr : find_tensor(name);
        if (tensor == nullptr) {
          if (weight_required(spec.kind, config)) {
            throw bad_file(where + ": tensor '" + name + "' is missing (needed by a " +
                           std::string(architecture_name(config.arch)) + " model with " +
                           std::to_string(config.n_layers) + " layers)");
          }
          continue;
        }
        check_shape(*tensor, expected_shape(spec.kind, config), where);
        slot = tensor;
      }
    }
  }

  // Rows [first, first + rows) of `tensor` as a tensor of its own.
  static const TensorView* row_slice(Model& model, const TensorView& tensor, int64_t first, int64_t rows,
                                     const std::string& what) {
    TensorView view;
    view.name = tensor.name + " (" + what + ", rows " + std::to_string(first) + ".." +
                std::to_string(first + rows - 1) + ")";
    view.type = tensor.type;
    view.shape = {rows, tensor.row_length()};
    view.data = tensor.data + first * tensor.row_bytes();
    view.nbytes = rows * tensor.row_bytes();
    return &model.storage_->slices.emplace_back(std::move(view));
  }

  // Phi-3: gate_up [2F, d] is always fused (GGUF names it ffn_up); qkv
  // [(H+2K)*h, d] is fused in Hugging Face checkpoints and in llama.cpp's
  // GGUFs, which also allow separate q/k/v (then the table's names apply).
  template <typename FindTensor>
  static void attach_fused_weights(Model& model, const std::string& where, FindTensor find_tensor) {
    const ModelConfig& c = model.config_;
    const bool gguf = model.format_ == ModelFormat::Gguf;
    const int64_t q_rows = c.n_heads * c.head_dim, kv_rows = c.n_kv_heads * c.head_dim;
    auto layer_name = [](const char* pattern, int64_t layer) {
      std::string name(pattern);
      name.replace(name.find("{}"), 2, std::to_string(layer));
      return name;
    };
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
      auto& slots = model.layer_weights_[static_cast<size_t>(layer)];
      const std::string qkv_name =
          layer_name(gguf ? "blk.{}.attn_qkv.weight" : "model.layers.{}.self_attn.qkv_proj.weight", layer);
      if (const TensorView* qkv = find_tensor(qkv_name)) {
        check_shape(*qkv, {{q_rows + 2 * kv_rows, c.d_model}, {"(heads+2*kv_heads)*head_dim", "d"}}, where);
        slots[static_cast<size_t>(WeightKind::AttnQ)] = row_slice(model, *qkv, 0, q_rows, "q");
        slots[static_cast<size_t>(WeightKind::AttnK)] = row_slice(model, *qkv, q_rows, kv_rows, "k");
        slots[static_cast<size_t>(WeightKind::AttnV)] = row_slice(model, *qkv, q_rows + kv_rows, kv_rows, "v");
      } else if (layer > 0 && model.layer_weights_[0][static_cast<size_t>(WeightKind::AttnQ)] != nullptr) {
        throw bad_file(where + ": tensor '" + qkv_name + "' is missing (layer 0 has a fused qkv)");
      }
      const std::string gate_up_name =
          layer_name(gguf ? "blk.{}.ffn_up.weight" : "model.layers.{}.mlp.gate_up_proj.weight", layer);
      const TensorView* gate_up = find_tensor(gate_up_name);
      if (gate_up == nullptr) {
        throw bad_file(where + ": tensor '" + gate_up_name + "' is missing (needed by a phi3 model with " +
                       std::to_string(c.n_layers) + " layers)");
      }
      check_shape(*gate_up, {{2 * c.d_ffn, c.d_model}, {"2*F", "d"}}, where);
      slots[static_cast<size_t>(WeightKind::FfnGate)] = row_slice(model, *gate_up, 0, c.d_ffn, "gate");
      slots[static_cast<size_t>(WeightKind::FfnUp)] = row_slice(model, *gate_up, c.d_ffn, c.d_ffn, "up");
    }
  }

  static void check_shape(const TensorView& tensor, const ExpectedShape& expected, const std::string& where) {
    if (tensor.shape != expected.dims) {
      throw bad_file(where + ": tensor '" + tensor.name + "' has shape " + tensor.shape_string() + ", expected " +
                     expected.to_string());
    }
  }

  // The family's fixed behaviour; the files' keys refine it afterwards.
  static void apply_traits(ModelConfig& c, const ArchitectureTraits& traits) {
    c.activation = traits.activation;
    c.qk_norm = traits.qk_norm;
    c.pre_norms = traits.pre_norms;
    c.post_norms = traits.post_norms;
    if (traits.gemma_style) c.embedding_scale = std::sqrt(static_cast<double>(c.d_model));
  }

  static void check_softcap(double cap, const std::string& key, const std::string& where) {
    if (!(cap > 0) || !std::isfinite(cap)) {
      throw bad_file(where + ": key '" + key + "' is " + std::to_string(cap) + ", expected a positive soft-cap");
    }
  }

  // Gemma's attention scale when the file gives none, as llama.cpp derives
  // it (gemma_pytorch's config): 1/sqrt(head_dim), except the 27B models,
  // whose query_pre_attn_scalar is d_model / n_heads.
  static double gemma_attention_scale(const ModelConfig& c) {
    const bool is_27b = (c.arch == Architecture::Gemma2 && c.n_layers == 46) ||
                        (c.arch == Architecture::Gemma3 && c.n_layers == 62);
    const double scalar = is_27b ? static_cast<double>(c.d_model / c.n_heads) : static_cast<double>(c.head_dim);
    return 1.0 / std::sqrt(scalar);
  }

  // Sliding-window pattern, local RoPE base, soft-caps and attention scale,
  // under llama.cpp's key names and with its defaults.
  static void read_gguf_family_keys(const GgufFile& file, const std::string& p, const ArchitectureTraits& traits,
                                    ModelConfig& c) {
    const std::string& where = file.path();
    if (c.sliding_window > 0 && traits.default_sliding_pattern > 0) {
      const std::string key = p + "attention.sliding_window_pattern";
      const GgufValue* pattern = file.find(key);
      if (const GgufArray* items = pattern != nullptr ? pattern->array() : nullptr) {
        if (static_cast<int64_t>(items->size()) != c.n_layers) {
          throw bad_file(where + ": key '" + key + "' has " + std::to_string(items->size()) + " entries, the model " +
                         std::to_string(c.n_layers) + " layers");
        }
        if (items->element_type() != GgufValueType::BOOL) {
          throw bad_file(where + ": key '" + key + "' is not an array of booleans");
        }
        for (size_t i = 0; i < items->size(); ++i) c.sliding_layers.push_back(std::get<bool>(items->at(i).value) ? 1 : 0);
      } else {
        const auto period = static_cast<int64_t>(file.get_uint_or(key, static_cast<uint64_t>(traits.default_sliding_pattern)));
        if (period <= 0 || (file.has(key) && period > c.n_layers)) {  // the family's default may exceed a tiny model
          throw bad_file(where + ": key '" + key + "' is " + std::to_string(period) +
                         ", expected 1 to the layer count " + std::to_string(c.n_layers));
        }
        c.sliding_layers = sliding_layers_from_period(period, c.n_layers);
      }
    }
    if (c.sliding_window > c.context_length) {
      throw bad_file(where + ": key '" + p + "attention.sliding_window' is " + std::to_string(c.sliding_window) +
                     ", larger than the context length " + std::to_string(c.context_length));
    }
    c.rope_theta_local =
        file.get_float_or(p + "rope.freq_base_swa", c.arch == Architecture::Gemma3 ? 10000.0 : c.rope_theta);
    if (c.arch == Architecture::Gemma2) {
      c.attn_softcap = file.get_float_or(p + "attn_logit_softcapping", 50.0);
      check_softcap(c.attn_softcap, p + "attn_logit_softcapping", where);
    }
    if (c.arch == Architecture::Gemma2 || file.has(p + "final_logit_softcapping")) {
      c.final_softcap = file.get_float_or(p + "final_logit_softcapping", 30.0);
      check_softcap(c.final_softcap, p + "final_logit_softcapping", where);
    }
    if (traits.gemma_style && c.n_heads > 0 && c.head_dim > 0) c.attention_scale = gemma_attention_scale(c);
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
    // Gemma 2's window defaults to its 4096, as llama.cpp's does.
    c.sliding_window = static_cast<int64_t>(
        file.get_uint_or(p + "attention.sliding_window", c.arch == Architecture::Gemma2 ? 4096 : 0));
    c.rms_norm_eps = file.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5);
    c.rope_theta = file.get_float_or(p + "rope.freq_base", 10000.0);
    c.rope_scaling.type = file.get_string_or(p + "rope.scaling.type", "");
    if (c.rope_scaling.type == "none") c.rope_scaling.type.clear();
    c.rope_scaling.factor = file.get_float_or(p + "rope.scaling.factor", 1.0);
    const ArchitectureTraits& traits = architecture_traits(c.arch);
    apply_traits(c, traits);
    c.rope_style = traits.gguf_rope_style;
    c.qkv_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
    c.tied_embeddings = file.find_tensor("output.weight") == nullptr;
    drop_window_wider_than_context(c);
    read_gguf_family_keys(file, p, traits, c);
    if (file.has(p + "rope.dimension_count")) {
      c.rotary_dim = static_cast<int64_t>(file.get_uint(p + "rope.dimension_count"));
      if (c.rotary_dim <= 0 || c.rotary_dim > c.head_dim || c.rotary_dim % 2 != 0) {
        throw bad_file(path + ": key '" + p + "rope.dimension_count' is " + std::to_string(c.rotary_dim) +
                       ", expected an even number from 2 to the head dimension " + std::to_string(c.head_dim));
      }
    }
    read_gguf_longrope(file, p, c);

    const TensorView* embedding = file.find_tensor("token_embd.weight");
    if (embedding == nullptr) throw bad_file(path + ": tensor 'token_embd.weight' is missing");
    c.vocab_size = embedding->shape.front();
    if (file.has(p + "vocab_size")) {
      const auto declared = static_cast<int64_t>(file.get_uint(p + "vocab_size"));
      if (declared != c.vocab_size) {
        throw bad_file(path + ": metadata key '" + p + "vocab_size' is " + std::to_string(declared) +
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

  static json read_json_object(const fs::path& path) {
    json j = neuronlens::read_json_file(path.string());
    if (!j.is_object()) throw bad_file(path.string() + ": expected a JSON object at the top level");
    return j;
  }

  // config.json accessors with messages naming the key.
  static int64_t json_int(const json& j, const std::string& key, const std::string& where,
                          std::optional<int64_t> fallback = std::nullopt) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (fallback) return *fallback;
      throw bad_file(where + ": key '" + key + "' is missing");
    }
    if (!it->is_number_integer()) throw bad_file(where + ": key '" + key + "' is " + json_excerpt(*it) + ", expected an integer");
    return it->get<int64_t>();
  }
  static double json_number(const json& j, const std::string& key, const std::string& where, double fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw bad_file(where + ": key '" + key + "' is " + json_excerpt(*it) + ", expected a number");
    return it->get<double>();
  }
  static bool json_bool(const json& j, const std::string& key, const std::string& where, bool fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw bad_file(where + ": key '" + key + "' is " + json_excerpt(*it) + ", expected true or false");
    return it->get<bool>();
  }

  // config.json's activation, where it names one, must be the family's.
  static void read_hf_activation(const json& cfg, const ArchitectureTraits& traits, const std::string& where) {
    for (const char* key : {"hidden_activation", "hidden_act"}) {
      auto it = cfg.find(key);
      if (it == cfg.end() || !it->is_string()) continue;
      const std::string name = it->get<std::string>();
      const bool ok = traits.activation == MlpActivation::GeluTanh ? (name == "gelu_pytorch_tanh" || name == "gelu_tanh")
                                                                   : name == "silu";
      if (!ok) {
        throw bad_file(where + ": key '" + key + "' is '" + name + "'; a " + traits.name + " model here uses " +
                       std::string(mlp_activation_name(traits.activation)));
      }
      return;  // hidden_activation, where present, is what Gemma's MLP uses
    }
  }

  // LongRoPE as llama.cpp's converter writes it (Phi3MiniModel): the factor
  // lists as tensors rope_factors_short/long.weight [rotary_dim/2], the
  // attention factor and the original context as keys. No rope.scaling.type
  // key is written; the tensors are the sign.
  static void read_gguf_longrope(const GgufFile& file, const std::string& p, ModelConfig& c) {
    const TensorView* short_factors = file.find_tensor("rope_factors_short.weight");
    const TensorView* long_factors = file.find_tensor("rope_factors_long.weight");
    if (short_factors == nullptr && long_factors == nullptr) return;
    const std::string& where = file.path();
    if (short_factors == nullptr || long_factors == nullptr) {
      throw bad_file(where + ": tensor '" + std::string(short_factors ? "rope_factors_long.weight" : "rope_factors_short.weight") +
                     "' is missing; LongRoPE needs both factor tensors");
    }
    if (!c.rope_scaling.type.empty()) {
      throw bad_file(where + ": key '" + p + "rope.scaling.type' is '" + c.rope_scaling.type +
                     "', but the file has LongRoPE factor tensors");
    }
    if (file.find_tensor("rope_freqs.weight") != nullptr) {
      throw bad_file(where + ": tensor 'rope_freqs.weight' beside LongRoPE factor tensors: two frequency scalings");
    }
    const std::string orig_key = p + "rope.scaling.original_context_length";
    if (!file.has(orig_key)) throw bad_file(where + ": key '" + orig_key + "' is missing; LongRoPE needs it");
    RopeScaling& s = c.rope_scaling;
    s.type = "longrope";
    s.original_context = static_cast<int64_t>(file.get_uint(orig_key));
    s.attention_factor = file.get_float_or(p + "rope.scaling.attn_factor", 1.0);
    for (const auto& [view, out] : {std::pair{short_factors, &s.short_factor}, std::pair{long_factors, &s.long_factor}}) {
      if (view->shape.size() != 1 || view->shape[0] > (int64_t{1} << 12)) {
        throw bad_file(where + ": tensor '" + view->name + "' has shape " + view->shape_string() +
                       ", expected [rotary_dim/2]");
      }
      std::vector<float> values(static_cast<size_t>(view->shape[0]));
      dequantize_rows(*view, 0, 1, values.data());
      out->assign(values.begin(), values.end());
    }
  }

  // One rope_scaling / rope_parameters object: its base and its scaling.
  static void read_rope_object(const json& rope, const std::string& where, double& theta, RopeScaling& scaling) {
    theta = json_number(rope, "rope_theta", where, theta);
    auto type = rope.find("rope_type");
    if (type == rope.end()) type = rope.find("type");
    if (type != rope.end() && type->is_string()) scaling.type = type->get<std::string>();
    if (scaling.type == "default") scaling.type.clear();
    scaling.factor = json_number(rope, "factor", where, 1.0);
    scaling.low_freq_factor = json_number(rope, "low_freq_factor", where, 1.0);
    scaling.high_freq_factor = json_number(rope, "high_freq_factor", where, 4.0);
    scaling.original_context = json_int(rope, "original_max_position_embeddings", where, 0);
  }

  // Phi-3 128k ships a window (262144) twice its context: it can never bind,
  // so it is no window (the one family where real checkpoints do this; for
  // the others a window wider than the context stays a refused inconsistency).
  static void drop_window_wider_than_context(ModelConfig& c) {
    if (c.arch == Architecture::Phi3 && c.sliding_window >= c.context_length) c.sliding_window = 0;
  }

  // A window wider than the context, named by its config.json key (the
  // Gemma and Qwen windows; Phi-3's is dropped instead, see above).
  static void check_window_fits(const ModelConfig& c, const std::string& where) {
    if (c.sliding_window > c.context_length) {
      throw bad_file(where + ": key 'sliding_window' is " + std::to_string(c.sliding_window) +
                     ", larger than max_position_embeddings " + std::to_string(c.context_length));
    }
  }

  // config.json's layer_types: one "sliding_attention" or "full_attention"
  // per layer; 1 for a sliding (windowed) layer.
  static std::vector<uint8_t> read_layer_types(const json& layer_types, const std::string& where, int64_t n_layers) {
    if (static_cast<int64_t>(layer_types.size()) != n_layers) {
      throw bad_file(where + ": key 'layer_types' has " + std::to_string(layer_types.size()) + " entries, the model " +
                     std::to_string(n_layers) + " layers");
    }
    std::vector<uint8_t> sliding;
    for (const json& t : layer_types) {
      if (t != "sliding_attention" && t != "full_attention") {
        throw bad_file(where + ": key 'layer_types' has " + json_excerpt(t) +
                       ", expected \"sliding_attention\" or \"full_attention\"");
      }
      sliding.push_back(t == "sliding_attention" ? 1 : 0);
    }
    return sliding;
  }

  // Qwen2/3 with use_sliding_window: the window on the layers layer_types
  // marks "sliding_attention", else on layers max_window_layers and above.
  static void read_qwen_window(const json& cfg, const std::string& where, ModelConfig& c) {
    c.sliding_window = json_int(cfg, "sliding_window", where);
    if (c.sliding_window <= 0) {
      throw bad_file(where + ": use_sliding_window is true but key 'sliding_window' is " +
                     std::to_string(c.sliding_window) + ", expected a positive window");
    }
    auto layer_types = cfg.find("layer_types");
    if (layer_types != cfg.end() && layer_types->is_array()) {
      c.sliding_layers = read_layer_types(*layer_types, where, c.n_layers);
    } else {
      const int64_t first = json_int(cfg, "max_window_layers", where, 28);  // Qwen2Config's default
      if (first < 0) {
        throw bad_file(where + ": key 'max_window_layers' is " + std::to_string(first) + ", expected >= 0");
      }
      for (int64_t l = 0; l < c.n_layers; ++l) c.sliding_layers.push_back(l >= first ? 1 : 0);
    }
    check_window_fits(c, where);
  }

  // A LongRoPE factor list: an array of positive numbers.
  static std::vector<double> json_factor_list(const json& rope, const std::string& key, const std::string& where) {
    auto it = rope.find(key);
    if (it == rope.end() || !it->is_array()) {
      throw bad_file(where + ": LongRoPE needs '" + key + "', an array of numbers" +
                     (it == rope.end() ? std::string(" (missing)") : ", found " + json_excerpt(*it)));
    }
    std::vector<double> out;
    for (const json& x : *it) {
      if (!x.is_number()) throw bad_file(where + ": '" + key + "' holds " + json_excerpt(x) + ", expected numbers");
      out.push_back(x.get<double>());
    }
    return out;
  }

  // LongRoPE as Hugging Face's _compute_longrope_parameters reads it: the
  // factor lists from the rope object; the original context from it or from
  // config.json's top level, and then factor = max_position_embeddings /
  // original; the attention factor as given, else sqrt(1 + ln(factor) /
  // ln(original)) (1 when factor <= 1).
  static void read_hf_longrope(const json& cfg, const json& rope, const std::string& where, ModelConfig& c) {
    RopeScaling& s = c.rope_scaling;
    s.type = "longrope";
    s.short_factor = json_factor_list(rope, "short_factor", where);
    s.long_factor = json_factor_list(rope, "long_factor", where);
    int64_t original = json_int(rope, "original_max_position_embeddings", where, 0);
    if (original == 0) original = json_int(cfg, "original_max_position_embeddings", where, 0);
    double factor = json_number(rope, "factor", where, 1.0);
    if (original > 0) {
      factor = static_cast<double>(c.context_length) / static_cast<double>(original);
    } else {
      original = c.context_length;
    }
    s.original_context = original;
    s.factor = factor;
    const double fallback =
        factor <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(factor) / std::log(static_cast<double>(original)));
    s.attention_factor = json_number(rope, "attention_factor", where, fallback);
  }

  // RoPE: rope_theta + rope_scaling (transformers 4), or rope_parameters
  // (transformers 5), which Gemma 3 splits into full_attention and
  // sliding_attention; its local layers take rope_local_base_freq and no
  // scaling. partial_rotary_factor (top level or in the rope object): the
  // first int(head_dim * factor) dimensions of each head rotate.
  static void read_hf_rope(const json& cfg, const std::string& where, ModelConfig& c) {
    const json* rope = nullptr;  // the object the scaling was read from
    std::string rope_where;
    auto scaling = cfg.find("rope_scaling");
    if (scaling != cfg.end() && scaling->is_object()) {
      rope = &*scaling;
      rope_where = where + " (rope_scaling)";
      read_rope_object(*rope, rope_where, c.rope_theta, c.rope_scaling);
    }
    auto params = cfg.find("rope_parameters");
    if (params != cfg.end() && params->is_object()) {
      if (params->contains("full_attention")) {
        rope = &(*params)["full_attention"];
        rope_where = where + " (rope_parameters.full_attention)";
        read_rope_object(*rope, rope_where, c.rope_theta, c.rope_scaling);
        if (params->contains("sliding_attention")) {
          RopeScaling local_scaling;
          read_rope_object((*params)["sliding_attention"], where + " (rope_parameters.sliding_attention)",
                           c.rope_theta_local, local_scaling);
        }
      } else {
        rope = &*params;
        rope_where = where + " (rope_parameters)";
        read_rope_object(*rope, rope_where, c.rope_theta, c.rope_scaling);
      }
    }
    double partial = json_number(cfg, "partial_rotary_factor", where, 1.0);
    if (rope != nullptr) partial = json_number(*rope, "partial_rotary_factor", rope_where, partial);
    if (!(partial > 0 && partial <= 1)) {
      throw bad_file(where + ": partial_rotary_factor is " + std::to_string(partial) + ", expected (0, 1]");
    }
    if (partial != 1.0) c.rotary_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * partial);
    if (c.rope_scaling.type == "longrope" || c.rope_scaling.type == "su") read_hf_longrope(cfg, *rope, rope_where, c);
    if (c.arch == Architecture::Gemma3 && c.rope_theta_local == 0.0) {
      c.rope_theta_local = json_number(cfg, "rope_local_base_freq", where, 10000.0);
    }
  }

  // Sliding windows. Mistral: "sliding_window" on every layer (4096 for 7B
  // v0.1, null from v0.2 on); Phi-3 likewise (2047 for mini-4k; llama.cpp
  // turns Phi-3's window off, transformers applies it: we do too). Qwen2/3
  // ship one too but apply it only with use_sliding_window, and then (as
  // transformers' Qwen2Config builds layer_types) on the layers from
  // max_window_layers on, unless layer_types says otherwise. Gemma: local
  // layers from "layer_types" (transformers 5) or "sliding_window_pattern",
  // else the family's period.
  static void read_hf_window(const json& cfg, const ArchitectureTraits& traits, const std::string& where,
                             ModelConfig& c) {
    if (c.arch == Architecture::Mistral || c.arch == Architecture::Phi3) {
      c.sliding_window = json_int(cfg, "sliding_window", where, 0);
      drop_window_wider_than_context(c);
      return;
    }
    if ((c.arch == Architecture::Qwen2 || c.arch == Architecture::Qwen3) &&
        json_bool(cfg, "use_sliding_window", where, false)) {
      read_qwen_window(cfg, where, c);
      return;
    }
    auto layer_types = cfg.find("layer_types");
    const bool has_layer_types = layer_types != cfg.end() && layer_types->is_array();
    if (traits.default_sliding_pattern == 0) {
      if (has_layer_types) {
        for (const json& t : *layer_types) {
          if (t != "full_attention") {
            throw bad_file(where + ": layer_types has " + json_excerpt(t) + "; sliding-window layers in a " + traits.name +
                        " model are not supported");
          }
        }
      }
      return;
    }
    c.sliding_window = json_int(cfg, "sliding_window", where, 0);
    if (c.sliding_window <= 0) return;
    if (has_layer_types) {
      c.sliding_layers = read_layer_types(*layer_types, where, c.n_layers);
    } else {
      const int64_t period = json_int(cfg, "sliding_window_pattern", where, traits.default_sliding_pattern);
      if (period <= 0 || (cfg.contains("sliding_window_pattern") && period > c.n_layers)) {
        throw bad_file(where + ": key 'sliding_window_pattern' is " + std::to_string(period) +
                       ", expected 1 to the layer count " + std::to_string(c.n_layers));
      }
      c.sliding_layers = sliding_layers_from_period(period, c.n_layers);
    }
    check_window_fits(c, where);
  }

  static Model load_hf(const fs::path& folder) {
    Model model;
    model.path_ = folder.string();
    model.format_ = ModelFormat::HuggingFace;
    const fs::path config_path = folder / "config.json";
    const std::string where = config_path.string();
    const json cfg = read_json_object(config_path);

    auto model_type = cfg.find("model_type");
    if (model_type == cfg.end() || !model_type->is_string()) throw bad_file(where + ": key 'model_type' is missing");
    ModelConfig& c = model.config_;
    c.arch = architecture_from_name(model_type->get<std::string>(), where);
    if (cfg.contains("text_config")) {
      throw bad_file(where +
                     ": a multimodal checkpoint (config.json has text_config); neuronlens reads the text-only "
                     "model (for Gemma 3: model_type gemma3_text, Gemma3ForCausalLM)");
    }
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
    c.rms_norm_eps = json_number(cfg, "rms_norm_eps", where, 1e-6);
    c.rope_theta = json_number(cfg, "rope_theta", where, 10000.0);
    c.rope_style = RopeStyle::NeoX;
    const ArchitectureTraits& traits = architecture_traits(c.arch);
    apply_traits(c, traits);
    c.qkv_bias = traits.qkv_bias || json_bool(cfg, "attention_bias", where, false);
    read_hf_activation(cfg, traits, where);
    read_hf_rope(cfg, where, c);
    read_hf_window(cfg, traits, where, c);
    if (traits.gemma_style) {
      c.norm_weight_offset = 1.0f;  // Gemma's RMSNorm multiplies by (1 + weight)
      const double scalar = json_number(cfg, "query_pre_attn_scalar", where, static_cast<double>(c.head_dim));
      if (!(scalar > 0))
        throw bad_file(where + ": key 'query_pre_attn_scalar' is " + std::to_string(scalar) + ", expected > 0");
      c.attention_scale = 1.0 / std::sqrt(scalar);
    }
    for (const auto& [key, cap] : {std::pair{"attn_logit_softcapping", &c.attn_softcap},
                                   std::pair{"final_logit_softcapping", &c.final_softcap}}) {
      auto it = cfg.find(key);
      if (it == cfg.end() || it->is_null()) continue;
      *cap = json_number(cfg, key, where, 0.0);
      check_softcap(*cap, key, where);
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
      throw bad_file(folder.string() +
                     ": tensor 'lm_head.weight' is missing and config.json says tie_word_embeddings=false");
    }
    attach_weights(model, folder.string(), [&](const std::string& name) { return checkpoint.find_tensor(name); });
    model.all_tensors_ = checkpoint.tensors();
    const fs::path tokenizer = folder / "tokenizer.json";
    if (!fs::exists(tokenizer)) throw bad_file(folder.string() + ": tokenizer.json is missing");
    model.vocab_ = std::make_shared<const Vocabulary>(Vocabulary::from_tokenizer_json(tokenizer.string()));
    check_vocab(model, folder.string());
    return model;
  }

  // The embedding may have more rows than the tokenizer has tokens (padding
  // for fast kernels), never fewer.
  static void check_vocab(const Model& model, const std::string& where) {
    if (model.vocab_->size() > model.config_.vocab_size) {
      throw bad_file(where + ": the tokenizer has " + std::to_string(model.vocab_->size()) +
                     " tokens, but the embedding has only " + std::to_string(model.config_.vocab_size) + " rows");
    }
  }
};

Model Model::load(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) throw bad_file(path + ": no such file or folder");
  if (fs::is_directory(p, ec)) {
    if (!fs::exists(p / "config.json")) {
      throw bad_file(path +
                     ": a folder, but it has no config.json (expected a Hugging Face model folder or a .gguf file)");
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
    throw bad_input("layer " + std::to_string(layer) + " is out of range (the model has layers 0 to " +
                    std::to_string(config_.n_layers - 1) + ")");
  }
  return layer_weights_[layer][static_cast<size_t>(kind)];
}

const TensorView& Model::weight(WeightKind kind, int64_t layer) const {
  const TensorView* t = find_weight(kind, layer);
  if (t == nullptr) {
    throw bad_file(path_ + ": the model has no " + std::string(weight_kind_name(kind)) + " weight" +
                   (weight_spec(kind).per_layer ? " in layer " + std::to_string(layer) : std::string()));
  }
  return *t;
}

const GgufFile* Model::gguf() const {
  return storage_ ? std::get_if<GgufFile>(&storage_->files) : nullptr;
}

const TensorView& Model::lm_head() const {
  return config_.tied_embeddings ? weight(WeightKind::TokenEmbedding) : weight(WeightKind::Output);
}

}  // namespace neuronlens
