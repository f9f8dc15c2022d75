// Reading and chunking a corpus for `record` (neuronlens/neuron_record.h).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "io/json_input.h"
#include "io/sha256.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_record.h"

namespace neuronlens {
namespace {

std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw bad_input("--corpus: " + path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw bad_input("--corpus: " + path + ": cannot be read");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw bad_input("--corpus: " + path + ": read failed");
  return bytes;
}

bool is_jsonl(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jsonl";
}

// The documents of a JSONL file: each non-blank line's "text".
std::vector<std::string> jsonl_documents(const std::string& bytes, const std::string& path) {
  std::vector<std::string> out;
  size_t line_number = 0;
  for (size_t at = 0; at < bytes.size();) {
    size_t end = bytes.find('\n', at);
    if (end == std::string::npos) end = bytes.size();
    const std::string_view line(bytes.data() + at, end - at);
    ++line_number;
    at = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = "--corpus: " + path + " line " + std::to_string(line_number);
    const nlohmann::json value = parse_json_input(line, where, ErrorKind::BadInput);
    if (!value.is_object() || !value.contains("text") || !value["text"].is_string()) {
      throw bad_input(where + ": expected an object with a string \"text\", got " + json_excerpt(value));
    }
    out.push_back(value["text"].get<std::string>());
  }
  return out;
}

}  // namespace

int64_t TokenCorpus::tokens() const {
  int64_t n = 0;
  for (const auto& c : chunks) n += static_cast<int64_t>(c.size());
  return n;
}

int64_t TokenCorpus::recorded_tokens() const {
  int64_t n = 0;
  for (const auto& c : chunks) n += std::max<int64_t>(0, static_cast<int64_t>(c.size()) - 1);
  return n;
}

TokenCorpus tokenize_corpus(const std::vector<std::string>& paths, const Tokenizer& tokenizer,
                            const CorpusOptions& options) {
  if (paths.empty()) throw bad_input("--corpus: no corpus file given");
  if (options.seq_len < 2 || options.seq_len > kMaxRecordSeqLen) {
    throw bad_input("--seq-len must be between 2 (a chunk's first token is not recorded) and " +
                    std::to_string(kMaxRecordSeqLen));
  }
  if (options.max_tokens < 0) throw bad_input("--max-tokens must not be negative");
  const std::optional<int32_t> bos = tokenizer.bos_id();
  TokenCorpus corpus;
  corpus.seq_len = options.seq_len;
  int64_t total = 0;
  const auto full = [&] { return options.max_tokens > 0 && total >= options.max_tokens; };
  for (const std::string& path : paths) {
    if (full()) break;
    const std::string bytes = read_whole_file(path);
    CorpusFile file;
    file.name = std::filesystem::path(path).filename().string();
    Sha256 hash;
    hash.update(bytes.data(), bytes.size());
    file.sha256 = hash.hex_digest();
    file.bytes = static_cast<int64_t>(bytes.size());
    const std::vector<std::string> documents = is_jsonl(path) ? jsonl_documents(bytes, path)
                                                              : std::vector<std::string>{bytes};
    file.documents = static_cast<int64_t>(documents.size());
    const auto file_index = static_cast<int32_t>(corpus.files.size());
    corpus.files.push_back(file);
    for (const std::string& text : documents) {
      if (full()) break;
      // Special-token text in a corpus is text, not control tokens.
      const std::vector<int32_t> ids = tokenizer.encode(text, /*parse_special=*/false);
      // Each chunk: [BOS] + up to seq_len - 1 text tokens, or seq_len text
      // tokens where the model has no BOS.
      const auto text_per_chunk = static_cast<size_t>(options.seq_len - (bos ? 1 : 0));
      for (size_t at = 0; at < ids.size() && !full(); at += text_per_chunk) {
        size_t n = std::min(text_per_chunk, ids.size() - at);
        if (options.max_tokens > 0) {
          n = std::min<size_t>(n, static_cast<size_t>(options.max_tokens - total) - (bos ? 1 : 0));
        }
        std::vector<int32_t> chunk;
        chunk.reserve(n + 1);
        if (bos) chunk.push_back(*bos);
        chunk.insert(chunk.end(), ids.begin() + static_cast<std::ptrdiff_t>(at),
                     ids.begin() + static_cast<std::ptrdiff_t>(at + n));
        total += static_cast<int64_t>(chunk.size());
        if (chunk.size() < 2) continue;  // nothing in it would be recorded
        corpus.chunks.push_back(std::move(chunk));
        corpus.chunk_file.push_back(file_index);
      }
    }
  }
  if (corpus.chunks.empty()) {
    throw bad_input("--corpus: the corpus has no text to record (empty files, or --max-tokens too small)");
  }
  return corpus;
}

}  // namespace neuronlens
