#include "input_file.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace neuronlens::fuzz {

namespace fs = std::filesystem;

InputFile::InputFile(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  const fs::path base = tmp ? fs::path(tmp) : fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  folder_ = (base / ("neuronlens-fuzz-" + std::to_string(::getpid()))).string();
  fs::create_directories(folder_);
  path_ = (fs::path(folder_) / name).string();
}

const std::string& InputFile::write(const uint8_t* data, size_t size) const {
  std::FILE* f = std::fopen(path_.c_str(), "wb");
  if (f == nullptr) std::abort();  // the harness itself is broken: stop, do not report a finding in the code
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path_;
}

std::string fuzz_data_dir() {
  const char* dir = std::getenv("NEURONLENS_FUZZ_DATA");
  return dir ? dir : NEURONLENS_FUZZ_SOURCE_DIR;
}

void copy_into(const std::string& source, const std::string& folder, const std::string& name) {
  fs::copy_file(source, fs::path(folder) / name, fs::copy_options::overwrite_existing);
}

}  // namespace neuronlens::fuzz
