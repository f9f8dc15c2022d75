// Row edits of up/gate projections and their GGUF copy
// (include/neuronlens/model_edit.h).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "neuronlens/decode.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/gguf_writer.h"
#include "neuronlens/model_edit.h"
#include "neuronlens/quantize.h"

namespace neuronlens {
namespace {

WeightKind weight_of(VectorKind kind) {
  switch (kind) {
    case VectorKind::Up: return WeightKind::FfnUp;
    case VectorKind::Gate: return WeightKind::FfnGate;
    case VectorKind::Down: return WeightKind::FfnDown;
  }
  return WeightKind::FfnUp;
}

// The neuron's vector as stored: its up/gate row [d], or its down column [d].
std::vector<float> vector_of(const Model& model, VectorKind kind, int64_t layer, int64_t neuron) {
  const TensorView& w = model.weight(weight_of(kind), layer);
  const int64_t d = model.config().d_model;
  std::vector<float> out(static_cast<size_t>(d));
  if (kind != VectorKind::Down) {
    dequantize_rows(w, neuron, 1, out.data());
    return out;
  }
  std::vector<float> matrix(static_cast<size_t>(w.elements()));  // [d, F]
  dequantize_rows(w, 0, w.rows(), matrix.data());
  for (int64_t r = 0; r < d; ++r) out[r] = matrix[r * w.row_length() + neuron];
  return out;
}

void check_neuron(const Model& model, const FfnNeuron& n) {
  const ModelConfig& c = model.config();
  if (n.layer < 0 || n.layer >= c.n_layers || n.neuron < 0 || n.neuron >= c.d_ffn) {
    throw bad_input("neuron " + std::to_string(n.layer) + ":" + std::to_string(n.neuron) + " is not in the model (layers 0 to " +
                    std::to_string(c.n_layers - 1) + ", neurons 0 to " + std::to_string(c.d_ffn - 1) + ")");
  }
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// The GGUF tensor holding `view`'s data, and the row of it where the view's
// row 0 lies (a Phi-3 ffn_up is the second half of gate_up_proj's rows).
std::pair<const TensorView*, int64_t> file_tensor_of(const GgufFile& file, const TensorView& view) {
  for (const TensorView& t : file.tensors()) {
    if (view.data >= t.data && view.data < t.data + t.nbytes && t.row_length() == view.row_length()) {
      return {&t, (view.data - t.data) / t.row_bytes()};
    }
  }
  throw internal_error("tensor '" + view.name + "' is not inside " + file.path());
}

}  // namespace

std::string_view edit_method_name(EditMethod method) { return method == EditMethod::Tars ? "tars" : "zero"; }

EditMethod edit_method_from_name(std::string_view name) {
  if (name == "tars") return EditMethod::Tars;
  if (name == "zero") return EditMethod::Zero;
  throw bad_input("'" + std::string(name) + "' is not an edit method (tars or zero)");
}

std::vector<EditTarget> rank_edit_targets(const Model& model, const std::vector<float>& direction,
                                          const std::vector<VectorKind>& kinds, const std::vector<int64_t>& layers,
                                          int64_t max_edits) {
  const ModelConfig& c = model.config();
  if (static_cast<int64_t>(direction.size()) != c.d_model) {
    throw bad_input("the targeting vector has " + std::to_string(direction.size()) + " values; the model's d_model is " +
                    std::to_string(c.d_model));
  }
  std::vector<int64_t> searched = layers;
  if (searched.empty()) {
    for (int64_t l = 0; l < c.n_layers; ++l) searched.push_back(l);
  }
  for (int64_t l : searched) {
    if (l < 0 || l >= c.n_layers) {
      throw bad_input("layer " + std::to_string(l) + " is out of range (the model has layers 0 to " +
                      std::to_string(c.n_layers - 1) + ")");
    }
  }
  const int64_t rows = static_cast<int64_t>(searched.size() * kinds.size()) * c.d_ffn;
  if (max_edits < 1 || max_edits > rows) {
    throw bad_input("max edits is " + std::to_string(max_edits) + "; it must be 1 to " + std::to_string(rows) +
                    " (the vectors searched)");
  }
  double direction_norm = 0;
  for (float x : direction) direction_norm += static_cast<double>(x) * x;
  direction_norm = std::sqrt(direction_norm);

  std::vector<EditTarget> all;
  all.reserve(static_cast<size_t>(rows));
  std::vector<float> matrix;
  for (int64_t layer : searched) {
    for (VectorKind kind : kinds) {
      // [F, d]: up/gate rows as stored, down columns as they reach the
      // residual stream (decode.h).
      load_neuron_vectors(model, kind, layer, matrix, ReadNorm::None);
      std::vector<double> cosine(static_cast<size_t>(c.d_ffn));
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < c.d_ffn; ++i) {
        const float* row = matrix.data() + i * c.d_model;
        double dot = 0, norm = 0;
        for (int64_t j = 0; j < c.d_model; ++j) {
          dot += static_cast<double>(row[j]) * direction[j];
          norm += static_cast<double>(row[j]) * row[j];
        }
        cosine[i] = norm > 0 ? dot / (std::sqrt(norm) * direction_norm) : 0.0;
      }
      for (int64_t i = 0; i < c.d_ffn; ++i) all.push_back({kind, layer, i, cosine[i]});
    }
  }
  auto better = [](const EditTarget& a, const EditTarget& b) {
    return std::tie(b.cosine, a.layer, a.kind, a.neuron) < std::tie(a.cosine, b.layer, b.kind, b.neuron);
  };
  std::partial_sort(all.begin(), all.begin() + max_edits, all.end(), better);
  all.resize(static_cast<size_t>(max_edits));
  return all;
}

VectorEdit reversal_edit(const Model& model, const EditTarget& target, const std::vector<float>& direction,
                      EditMethod method) {
  check_neuron(model, {target.layer, target.neuron});
  std::vector<float> row = vector_of(model, target.kind, target.layer, target.neuron);
  if (direction.size() != row.size()) throw bad_input("the targeting vector does not have the model's d_model values");
  VectorEdit edit{target.kind, target.layer, target.neuron, {}, std::string(edit_method_name(method)) + " cos " +
                                                              format_number(target.cosine)};
  if (method == EditMethod::Zero) {
    edit.values.assign(row.size(), 0.0f);
    return edit;
  }
  double row_norm = 0, direction_norm = 0;
  for (size_t j = 0; j < row.size(); ++j) {
    row_norm += static_cast<double>(row[j]) * row[j];
    direction_norm += static_cast<double>(direction[j]) * direction[j];
  }
  const double scale = -std::sqrt(row_norm) / std::sqrt(direction_norm);
  edit.values.resize(row.size());
  for (size_t j = 0; j < row.size(); ++j) edit.values[j] = static_cast<float>(scale * direction[j]);
  return edit;
}

VectorEdit ablation_edit(const Model& model, const FfnNeuron& neuron) {
  check_neuron(model, neuron);
  return {VectorKind::Up, neuron.layer, neuron.neuron, std::vector<float>(static_cast<size_t>(model.config().d_model), 0.0f),
          "ablate"};
}

VectorEdit scale_edit(const Model& model, const FfnNeuron& neuron, float factor) {
  check_neuron(model, neuron);
  if (!std::isfinite(factor)) throw bad_input("a scale factor must be a finite number");
  VectorEdit edit{VectorKind::Up, neuron.layer, neuron.neuron, vector_of(model, VectorKind::Up, neuron.layer, neuron.neuron),
               "scale " + format_number(factor)};
  for (float& x : edit.values) x *= factor;
  return edit;
}

std::string vector_edit_name(const VectorEdit& edit) {
  return std::string(vector_kind_name(edit.kind)) + " " + std::to_string(edit.layer) + ":" + std::to_string(edit.neuron);
}

void check_edit_target(const Model& model, const std::string& out_path) {
  if (model.gguf() == nullptr) {
    throw bad_input("'" + model.path() + "' is a Hugging Face folder; edit writes a GGUF copy of a GGUF model "
                    "(convert the folder with llama.cpp's convert_hf_to_gguf.py first)");
  }
  if (same_file(out_path, model.gguf()->path())) {
    throw bad_input("the output '" + out_path + "' is the model file itself; write the edit to another path");
  }
}

std::vector<EditedTensor> write_edited_gguf(const Model& model, const std::vector<VectorEdit>& edits,
                                            const std::string& description, const std::string& out_path) {
  check_edit_target(model, out_path);
  const GgufFile* file = model.gguf();
  // Group the edits by file tensor; each vector at most once. An up/gate
  // edit is a row of its tensor; a down edit is a column of ffn_down [d, F].
  struct Pending {
    const TensorView* tensor = nullptr;
    std::map<int64_t, const VectorEdit*> rows;     // file row -> edit
    std::map<int64_t, const VectorEdit*> columns;  // column -> edit
  };
  std::map<std::string, Pending> by_tensor;
  for (const VectorEdit& e : edits) {
    check_neuron(model, {e.layer, e.neuron});
    const std::string what = vector_edit_name(e);
    if (static_cast<int64_t>(e.values.size()) != model.config().d_model) {
      throw bad_input("an edit of " + what + " has " + std::to_string(e.values.size()) + " values, not d_model = " +
                      std::to_string(model.config().d_model));
    }
    const TensorView& view = model.weight(weight_of(e.kind), e.layer);
    const auto [tensor, first_row] = file_tensor_of(*file, view);
    Pending& p = by_tensor[tensor->name];
    p.tensor = tensor;
    auto& slot = e.kind == VectorKind::Down ? p.columns : p.rows;
    const int64_t index = e.kind == VectorKind::Down ? e.neuron : first_row + e.neuron;
    if (!slot.emplace(index, &e).second) {
      throw bad_input(what + " is edited twice (" + slot[index]->reason + "; " + e.reason + ")");
    }
  }

  GgufCopyChanges changes;
  std::vector<EditedTensor> report;
  for (const auto& [name, p] : by_tensor) {
    const TensorView& t = *p.tensor;
    GgufTensorData data;
    if (can_quantize(t.type)) {
      data.type = t.type;
      data.bytes.assign(t.data, t.data + t.nbytes);
    } else {
      // No quantiser for this type (the K-quants): the tensor becomes F16,
      // its unedited values the F16 rounding of their dequantised values.
      data.type = DType::F16;
      std::vector<float> values(static_cast<size_t>(t.elements()));
      dequantize_rows(t, 0, t.rows(), values.data());
      data.bytes.resize(static_cast<size_t>(dtype_bytes_for(DType::F16, t.elements())));
      quantize(DType::F16, values.data(), t.elements(), data.bytes.data());
    }
    const int64_t row_bytes = dtype_bytes_for(data.type, t.row_length());
    for (const auto& [row, edit] : p.rows) {
      quantize(data.type, edit->values.data(), t.row_length(), data.bytes.data() + row * row_bytes);
    }
    // A column changes one block in every row: that block is dequantised,
    // given the new value and quantised again; the row's other blocks keep
    // their bytes.
    const DTypeTraits& traits = dtype_traits(data.type);
    std::vector<float> block(static_cast<size_t>(traits.block_elements));
    for (const auto& [column, edit] : p.columns) {
      const int64_t b = column / traits.block_elements;
      for (int64_t r = 0; r < t.rows(); ++r) {
        uint8_t* at = data.bytes.data() + r * row_bytes + b * traits.block_bytes;
        dequantize(data.type, at, traits.block_elements, block.data());
        block[static_cast<size_t>(column % traits.block_elements)] = edit->values[static_cast<size_t>(r)];
        quantize(data.type, block.data(), traits.block_elements, at);
      }
    }
    report.push_back({name, t.type, data.type, static_cast<int64_t>(p.rows.size()), static_cast<int64_t>(p.columns.size())});
    changes.tensors.emplace(name, std::move(data));
  }
  changes.strings.push_back({"neuronlens.edit", description});
  write_gguf_copy(*file, changes, out_path);
  return report;
}

}  // namespace neuronlens
