// `neuronlens tokenize MODEL -p TEXT | --file FILE`: the model's token ids of
// a text, as the other commands feed it (the model's BOS in front where it
// wants one; --chat renders it as one user message), for scripts that need
// the same ids without a Python tokenizer (scripts/finetune_model.py).
// Unlike a prompt, a text here may be longer than the context.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "io/whole_file.h"
#include "format.h"
#include "neuronlens/error.h"
#include "neuronlens/text_model.h"
#include "option_error.h"

namespace neuronlens::cli {
namespace {

struct TokenizeCommandOptions {
  std::string model;
  std::string prompt;
  std::string file;
  bool chat = false;
  bool no_bos = false;
  bool ids_only = false;
  bool json = false;
};

int run_tokenize(const TokenizeCommandOptions& opt) {
  if (opt.prompt.empty() == opt.file.empty()) throw bad_input("give the text with exactly one of -p TEXT and --file FILE");
  std::string text = opt.prompt;
  if (!opt.file.empty()) {
    text = for_option("--file", [&] { return read_whole_file(opt.file, ErrorKind::BadInput); });
  }
  const TextModel tm = TextModel::load(opt.model);
  std::vector<int32_t> ids;
  if (opt.chat) {
    if (!tm.chat) throw bad_input("--chat: this model has no chat template neuronlens knows");
    ids = tm.tokenizer.encode(tm.chat->render({{"user", text}}), true);
  } else {
    if (!opt.no_bos && tm.tokenizer.adds_bos() && tm.tokenizer.bos_id()) ids.push_back(*tm.tokenizer.bos_id());
    const std::vector<int32_t> body = tm.tokenizer.encode(text, false);
    ids.insert(ids.end(), body.begin(), body.end());
  }
  const Vocabulary& vocab = tm.tokenizer.vocabulary();
  if (opt.json) {
    nlohmann::json j = nlohmann::json::array();
    for (int32_t id : ids) j.push_back({{"id", id}, {"text", vocab.token(id).display}});
    std::cout << j.dump() << "\n";
  } else if (opt.ids_only) {
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
    std::printf("\n");
  } else {
    for (int32_t id : ids) std::printf("%8d %s\n", id, quote_token(vocab.token(id).display).c_str());
  }
  return 0;
}

}  // namespace

Runner add_tokenize_command(CLI::App& app) {
  auto opt = std::make_shared<TokenizeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Token ids of a text, as the model reads it");
  cmd->add_option("model", opt->model, "Model (GGUF file / Hugging Face folder)")->required();
  cmd->add_option("-p,--prompt", opt->prompt, "Text to tokenize");
  cmd->add_option("--file", opt->file, "File whose text to tokenize");
  cmd->add_flag("--chat", opt->chat, "Render the text as one user message of the model's chat template");
  cmd->add_flag("--no-bos", opt->no_bos, "No BOS token in front, even where the model wants one");
  cmd->add_flag("--ids", opt->ids_only, "Print the ids only, on one line");
  cmd->add_flag("--json", opt->json, "Print JSON: [{id, text}, ...]");
  return [opt] { return run_tokenize(*opt); };
}

}  // namespace neuronlens::cli
