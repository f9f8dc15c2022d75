// Several maps in one run (`neuronlens map --jobs FILE`): one "MODEL ATLAS"
// pair per line, e.g. every checkpoint of a training run. And where another
// machine finds a model (`--model-path FROM=TO`) when its nodes mount the
// models somewhere else.
#pragma once

#include <string>
#include <vector>

namespace neuronlens {

struct MapJob {
  std::string model;  // GGUF file or Hugging Face folder
  std::string atlas;  // atlas to write or resume
};

// Reads a jobs file: one job a line, the model path then the atlas path,
// separated by blanks; a path with blanks in it goes in double quotes. Blank
// lines and lines starting with '#' are skipped. Throws Error (bad input)
// naming the file and line: a line without exactly two paths, an unclosed
// quote, two jobs writing the same atlas, or no job at all.
std::vector<MapJob> parse_map_jobs(const std::string& path);
// The same from text; `name` is what messages call it.
std::vector<MapJob> parse_map_jobs_text(const std::string& text, const std::string& name);

// A path prefix rewritten on other machines: "FROM=TO".
struct PathMapping {
  std::string from;
  std::string to;
};
// Throws Error (bad input) unless `text` is FROM=TO with both non-empty.
PathMapping parse_path_mapping(const std::string& text);
// `path` with the first mapping whose FROM is a whole-component prefix of it
// rewritten to its TO ("/a/m=/b" maps "/a/m/x.gguf" and "/a/m", not
// "/a/mm"); unchanged when none applies.
std::string apply_path_mappings(const std::string& path, const std::vector<PathMapping>& mappings);

}  // namespace neuronlens
