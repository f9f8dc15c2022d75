// libFuzzer hands a target bytes; neuronlens' readers take paths (they map
// the file). InputFile writes the bytes to a file of this process (in
// $TMPDIR, /dev/shm where it exists) and rewrites it for every input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace neuronlens::fuzz {

// A path "<dir>/neuronlens-fuzz-<pid>/<name>" holding the last bytes written.
class InputFile {
 public:
  explicit InputFile(const std::string& name);
  const std::string& write(const uint8_t* data, size_t size) const;  // returns path()
  const std::string& path() const { return path_; }
  const std::string& folder() const { return folder_; }

 private:
  std::string folder_, path_;
};

// The folder that holds the committed fuzz data (corpora, the base HF
// checkpoint): $NEURONLENS_FUZZ_DATA, else the source tree's fuzz/.
std::string fuzz_data_dir();
// Copies a file into `folder` under `name`.
void copy_into(const std::string& source, const std::string& folder, const std::string& name);

}  // namespace neuronlens::fuzz
