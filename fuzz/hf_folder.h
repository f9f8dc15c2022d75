// The Hugging Face folder targets: a copy of the committed base checkpoint
// (fuzz/hf_base: config.json, model.safetensors, tokenizer.json, a tiny
// llama) with one of its files replaced by the fuzzer's bytes, loaded as
// every command loads a folder.
#pragma once

#include <cstdint>
#include <string>

#include "input_file.h"
#include "neuronlens/error.h"
#include "neuronlens/text_model.h"

namespace neuronlens::fuzz {

inline int load_hf_folder_with(const std::string& fuzzed_name, const uint8_t* data, size_t size) {
  static const InputFile input = [&] {
    InputFile file(fuzzed_name);
    for (const char* name : {"config.json", "model.safetensors", "tokenizer.json"}) {
      if (fuzzed_name != name) copy_into(fuzz_data_dir() + "/hf_base/" + name, file.folder(), name);
    }
    return file;
  }();
  input.write(data, size);
  try {
    const TextModel tm = TextModel::load(input.folder());
    (void)tm.tokenizer.encode("Hello, world! 123", true);
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace neuronlens::fuzz
