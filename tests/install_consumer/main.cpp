// Loads a model through the installed neuronlens::core and prints what the
// install_consumer test checks: "neuronlens <version>" and "n_layers <n>".
// Usage: neuronlens_consumer MODEL
#include <cstdio>
#include <string>

#include <neuronlens/error.h>
#include <neuronlens/model.h>
#include <neuronlens/version.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL\n", argv[0]);
    return 2;
  }
  static_assert(NEURONLENS_VERSION_MAJOR >= 0 && NEURONLENS_VERSION_MINOR >= 0 && NEURONLENS_VERSION_PATCH >= 0);
  try {
    const neuronlens::Model model = neuronlens::Model::load(argv[1]);
    std::printf("neuronlens %s\n", std::string(neuronlens::kVersion).c_str());
    std::printf("architecture %s\n", std::string(neuronlens::architecture_name(model.config().arch)).c_str());
    std::printf("n_layers %lld\n", static_cast<long long>(model.config().n_layers));
  } catch (const neuronlens::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
