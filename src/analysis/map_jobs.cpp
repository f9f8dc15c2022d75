// Parsing `map --jobs` files and `--model-path` mappings.
#include "neuronlens/map_jobs.h"

#include <fstream>
#include <set>
#include <sstream>

#include "io/whole_file.h"
#include "neuronlens/error.h"

namespace neuronlens {
namespace {

// The blank-separated fields of one line; "..." keeps blanks in a field.
std::vector<std::string> split_fields(const std::string& line, const std::string& where) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
      ++i;
      continue;
    }
    std::string field;
    if (line[i] == '"') {
      const size_t close = line.find('"', i + 1);
      if (close == std::string::npos) throw bad_input(where + ": a quote is not closed");
      field = line.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') field += line[i++];
    }
    fields.push_back(field);
  }
  return fields;
}

}  // namespace

std::vector<MapJob> parse_map_jobs_text(const std::string& text, const std::string& name) {
  std::vector<MapJob> jobs;
  std::set<std::string> atlases;
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string where = name + " line " + std::to_string(number);
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const std::vector<std::string> fields = split_fields(line, where);
    for (const std::string& f : fields) {
      if (f.empty()) throw bad_input(where + ": an empty path (\"\")");
    }
    if (fields.size() != 2) {
      throw bad_input(where + ": expected 'MODEL ATLAS' (two paths), got " + std::to_string(fields.size()) +
                      " field" + (fields.size() == 1 ? "" : "s"));
    }
    if (!atlases.insert(fields[1]).second) {
      throw bad_input(where + ": atlas '" + fields[1] + "' is written by an earlier line too");
    }
    jobs.push_back(MapJob{fields[0], fields[1]});
  }
  if (jobs.empty()) throw bad_input(name + ": no job in it (expected lines of 'MODEL ATLAS')");
  return jobs;
}

std::vector<MapJob> parse_map_jobs(const std::string& path) {
  return parse_map_jobs_text(read_whole_file(path, ErrorKind::BadInput), path);
}

PathMapping parse_path_mapping(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    throw bad_input("'" + text + "' is not FROM=TO (a path prefix and what it is on the other machines)");
  }
  return PathMapping{text.substr(0, eq), text.substr(eq + 1)};
}

std::string apply_path_mappings(const std::string& path, const std::vector<PathMapping>& mappings) {
  // Both sides without trailing slashes ("/" becomes ""), so what follows
  // FROM in `path` is empty or starts with '/'.
  auto trimmed = [](std::string p) {
    while (!p.empty() && p.back() == '/') p.pop_back();
    return p;
  };
  for (const PathMapping& m : mappings) {
    const std::string from = trimmed(m.from);
    if (path.compare(0, from.size(), from) != 0) continue;
    if (path.size() > from.size() && path[from.size()] != '/') continue;
    if (path.size() == from.size() && from.empty()) continue;
    return trimmed(m.to) + path.substr(from.size());
  }
  return path;
}

}  // namespace neuronlens
