// A GGUF file as `neuronlens info` and every command read it: the GGUF
// reader, the model loader (architecture table, tensor checks), the
// tokenizer and chat template from its metadata, and the runtime's kernel
// plan. A neuronlens::Error is a correct answer; anything else escaping, a
// sanitizer report, a hang or an allocation past -rss_limit_mb is a finding.
#include <cstdint>

#include "input_file.h"
#include "neuronlens/error.h"
#include "neuronlens/runtime.h"
#include "neuronlens/text_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const neuronlens::fuzz::InputFile input("model.gguf");
  try {
    const neuronlens::TextModel tm = neuronlens::TextModel::load(input.write(data, size));
    (void)neuronlens::plan_weight_kernels(tm.model);
    (void)tm.tokenizer.encode("Hello, world! <|im_start|> 123", true);
    if (tm.chat) (void)tm.prompt_tokens("Hi", true);
  } catch (const neuronlens::Error&) {
  }
  return 0;
}
