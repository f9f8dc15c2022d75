// Which decode backend runs: validation and dispatch in one place.
#include "decode/logit_backend.h"

#include <string>

#include "backends/cpu/logit_kernels.h"
#include "neuronlens/error.h"

namespace neuronlens {

std::vector<DecodeBackendInfo> decode_backend_names() { return decode_detail::cpu_logit_backend_names(); }

DecodeBackendChoice choose_decode_backend(const DecodeSettings& settings) {
  const std::unique_ptr<decode_detail::LogitBackend> backend =
      decode_detail::make_logit_backend(decode_detail::LmHead{}, settings);
  return {std::string(backend->name()), backend->precision(), backend->bound_definition()};
}

namespace decode_detail {
namespace {

// The backend of this name, or Error.
std::unique_ptr<LogitBackend> backend_named(const LmHead& head, const std::string& name) {
  for (const DecodeBackendInfo& b : cpu_logit_backend_names()) {
    if (b.name != name) continue;
    if (!b.runs_here) throw bad_input("decode backend " + name + " needs " + b.needs + ", which this CPU lacks");
    // "cpu-<kernel set>-<fp32|bf16|bf16emu>"
    const size_t first = name.find('-'), last = name.rfind('-');
    return make_cpu_logit_backend(head, std::string_view(name).substr(first + 1, last - first - 1), b.precision);
  }
  std::string known;
  for (const DecodeBackendInfo& b : cpu_logit_backend_names()) known += (known.empty() ? "" : ", ") + b.name;
  throw bad_input("unknown decode backend '" + name + "', expected one of " + known);
}

}  // namespace

std::unique_ptr<LogitBackend> make_logit_backend(const LmHead& head, const DecodeSettings& settings) {
  if (!settings.backend.empty()) {
    std::unique_ptr<LogitBackend> backend = backend_named(head, settings.backend);
    if (settings.precision != Precision::Auto && backend->precision() != settings.precision) {
      throw bad_input("decode backend " + settings.backend + " computes in " +
                      std::string(precision_name(backend->precision())) + " precision, not " +
                      std::string(precision_name(settings.precision)));
    }
    return backend;
  }
  const bool bf16_units = cpu::can_run(cpu::LogitKernelSet::Avx512Bf16);
  if (settings.precision == Precision::Bf16 && !bf16_units) {
    throw bad_input("precision bf16 needs a CPU with bf16 dot-product units (" +
                    std::string(cpu::required_cpu_features(cpu::LogitKernelSet::Avx512Bf16)) +
                    "), which this one lacks; use precision exact (what auto gives here), or the backend " + "cpu-" +
                    std::string(cpu::logit_kernel_set_name(cpu::fastest_f32_kernel_set())) +
                    "-bf16emu to run the bf16 method with its products emulated (slower)");
  }
  if (settings.precision != Precision::Exact && bf16_units) {
    return make_cpu_logit_backend(head, cpu::logit_kernel_set_name(cpu::LogitKernelSet::Avx512Bf16), Precision::Bf16);
  }
  return make_cpu_logit_backend(head, cpu::logit_kernel_set_name(cpu::fastest_f32_kernel_set()), Precision::Exact);
}

}  // namespace decode_detail
}  // namespace neuronlens
