// Running a model on text, as the CLI's generate/probe/lens and the server
// do it: the model with its tokenizer and chat template, a prompt turned into
// token ids, neuron interventions (neuronlens/interventions.h), and the
// generation loop.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/chat_template.h"
#include "neuronlens/interventions.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "neuronlens/sampling.h"
#include "neuronlens/tokenizer.h"

namespace neuronlens {

struct TextModel {
  Model model;
  Tokenizer tokenizer;
  std::optional<ChatTemplate> chat;  // nullopt: no template neuronlens knows

  // Loads the weights, tokenizer and chat template at `path` (GGUF file or
  // Hugging Face folder). The file is parsed once: the tokenizer and the chat
  // template read the metadata the Model parsed, and the tokenizer shares the
  // Model's vocabulary (tokenizer.vocabulary() is model.vocab()). Throws Error.
  static TextModel load(const std::string& path);
  // The same around weights already loaded, reusing what `model` parsed (its
  // GGUF metadata, or its folder's tokenizer.json vocabulary).
  static TextModel with_model(Model model);
  // The same around weights already loaded from `path`: what `model` parsed
  // where `path` is model.path(), else the tokenizer and chat template are
  // read from `path` anew.
  static TextModel with_model(Model model, const std::string& path);

  // The prompt's token ids: the chat rendering of one user message with
  // `use_chat`, else the text (with BOS in front where the model wants one).
  // Throws Error on chat without a template, an empty prompt, or a prompt
  // that leaves no room in the context.
  std::vector<int32_t> prompt_tokens(const std::string& text, bool use_chat) const;

  // Tokens that end generation: the chat template's end-of-turn and EOS, or
  // EOS alone.
  std::vector<int32_t> stop_tokens() const;
};

// How many leading bytes of `text` can be shown without splitting a UTF-8
// sequence that later bytes will complete: all but an unfinished one at the end.
size_t complete_utf8_prefix(std::string_view text);

enum class GenerationStop { Length, EndOfTurn, Context, Cancelled };
std::string_view generation_stop_name(GenerationStop stop);  // "length", "eos", "context", "cancelled"

struct GenerationResult {
  int64_t tokens = 0;        // generated tokens, not counting a stop token
  GenerationStop stop = GenerationStop::Length;
  std::string unfinished;    // trailing bytes of a character the text never completed
};

// Called for every generated token with the text it completes (UTF-8: the
// bytes of a character split across tokens arrive with the token that ends
// it). Return false to stop generating.
using OnGeneratedToken = std::function<bool(int32_t id, std::string_view text)>;

// Feeds `prompt` to `session` (from its current position) and samples up to
// `max_tokens` tokens, stopping early at a stop token of `text_model` or when
// the context is full. Throws Error from the forward pass or the sampler.
GenerationResult generate_text(Session& session, const TextModel& text_model, const std::vector<int32_t>& prompt,
                               int64_t max_tokens, Sampler& sampler, const OnGeneratedToken& on_token);

}  // namespace neuronlens
