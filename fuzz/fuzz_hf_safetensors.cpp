// A Hugging Face folder whose model.safetensors is the fuzzer's bytes (hf_folder.h).
#include "hf_folder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return neuronlens::fuzz::load_hf_folder_with("model.safetensors", data, size);
}
