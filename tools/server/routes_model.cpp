// The endpoints that run the model: a neuron's activations on a text, and
// generation and next-token probabilities with and without interventions.
// They share one Session and run one at a time: a request that finds the
// model busy gets 429 with Retry-After rather than waiting in a queue.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "json_reply.h"
#include "json_views.h"
#include "model_requests.h"
#include "neuronlens/probe.h"
#include "request_error.h"
#include "request_params.h"
#include "routes.h"

namespace neuronlens::server {
namespace {

constexpr size_t kMaxProbeTokens = 16;
constexpr double kMaxTemperature = 100.0;

// Leaves the shared session as it found it (no hooks, empty cache), however
// the request ends.
class CleanSession {
 public:
  explicit CleanSession(Session& session) : session_(session) { clean(); }
  ~CleanSession() { clean(); }
  CleanSession(const CleanSession&) = delete;
  CleanSession& operator=(const CleanSession&) = delete;
  Session& operator*() { return session_; }
  Session* operator->() { return &session_; }

 private:
  void clean() {
    session_.clear_hooks();
    session_.reset();
  }
  Session& session_;
};

// Reads `name` with `read`, naming the entry ("clamps[2].layer: ...") in the
// message when it fails.
template <typename Read>
auto in_entry(const std::string& list, size_t i, Read read) {
  try {
    return read();
  } catch (const RequestError& e) {
    bad_request(list + "[" + std::to_string(i) + "]." + e.what());
  }
}

}  // namespace

std::unique_lock<std::mutex> lock_model_or_refuse(ServerContext& context) {
  std::unique_lock<std::mutex> lock(context.model_mutex(), std::try_to_lock);
  if (!lock.owns_lock()) {
    throw RequestError(429, "the model is busy with another request (one runs at a time); try again shortly");
  }
  return lock;
}

// "clamps" [{layer, index, value}], "ablate" [{layer, index}] on neurons and
// "heads" [{layer, head, factor}] on attention heads (factor 0 ablates).
Interventions read_interventions(const nlohmann::json& body, const ModelConfig& config) {
  const nlohmann::json& clamps = json_array(body, "clamps", kMaxInterventions);
  const nlohmann::json& ablate = json_array(body, "ablate", kMaxInterventions);
  const nlohmann::json& heads = json_array(body, "heads", kMaxInterventions);
  if (clamps.size() + ablate.size() + heads.size() > kMaxInterventions) {
    bad_request("clamps + ablate + heads: at most " + std::to_string(kMaxInterventions) + " interventions in all");
  }
  Interventions out;
  for (const auto* list : {&clamps, &ablate}) {
    const std::string name = list == &clamps ? "clamps" : "ablate";
    for (size_t i = 0; i < list->size(); ++i) {
      const nlohmann::json& entry = (*list)[i];
      if (!entry.is_object()) {
        bad_request(name + "[" + std::to_string(i) + "]: must be an object like {\"layer\": 3, \"index\": 17" +
                    (list == &clamps ? ", \"value\": 10}" : "}"));
      }
      NeuronIntervention iv;
      iv.layer = in_entry(name, i, [&] { return json_integer(entry, "layer", std::nullopt, 0, config.n_layers - 1); });
      iv.neuron = in_entry(name, i, [&] { return json_integer(entry, "index", std::nullopt, 0, config.d_ffn - 1); });
      if (list == &clamps) {
        if (!entry.contains("value")) bad_request(name + "[" + std::to_string(i) + "].value: required");
        iv.clamp_value = static_cast<float>(
            in_entry(name, i, [&] { return json_number(entry, "value", 0.0, -kMaxClampValue, kMaxClampValue); }));
      }
      out.neurons.push_back(iv);
    }
  }
  for (size_t i = 0; i < heads.size(); ++i) {
    const nlohmann::json& entry = heads[i];
    if (!entry.is_object()) {
      bad_request("heads[" + std::to_string(i) + "]: must be an object like {\"layer\": 3, \"head\": 2, \"factor\": 0}");
    }
    HeadIntervention iv;
    iv.layer = in_entry("heads", i, [&] { return json_integer(entry, "layer", std::nullopt, 0, config.n_layers - 1); });
    iv.head = in_entry("heads", i, [&] { return json_integer(entry, "head", std::nullopt, 0, config.n_heads - 1); });
    iv.factor = static_cast<float>(
        in_entry("heads", i, [&] { return json_number(entry, "factor", 0.0, -kMaxClampValue, kMaxClampValue); }));
    out.heads.push_back(iv);
  }
  return out;
}

int32_t read_single_token(const TextModel& tm, const std::string& text, const std::string& where) {
  if (text.empty() || text.size() > kMaxQueryBytes) {
    bad_request(where + ": must be 1 to " + std::to_string(kMaxQueryBytes) + " bytes");
  }
  try {
    return single_token_id(tm.tokenizer, text);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::BadInput) throw;
    bad_request(where + ": " + e.what());
  }
}

namespace {

void activations(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const TextModel& tm = context.require_model();
  const ModelConfig& config = tm.model.config();
  const nlohmann::json body = parse_json_object(request.body);
  const std::string text = json_string(body, "text", 1, kMaxPromptBytes);
  const int64_t layer = json_integer(body, "layer", std::nullopt, 0, config.n_layers - 1);
  const int64_t index = json_integer(body, "index", std::nullopt, 0, config.d_ffn - 1);
  const std::vector<int32_t> prompt = tm.prompt_tokens(text, json_bool(body, "chat", false));

  const std::unique_lock<std::mutex> lock = lock_model_or_refuse(context);
  CleanSession session(context.session_locked());
  const auto gate = session->record(HookPoint::MlpGate, layer);
  const auto up = session->record(HookPoint::MlpUp, layer);
  const auto act = session->record(HookPoint::MlpAct, layer);
  session->forward(prompt, LogitsFor::LastToken);

  nlohmann::json tokens = nlohmann::json::array();
  for (int32_t id : prompt) tokens.push_back(token_json(context, id));
  auto column = [&](const ActivationRecord& record) {
    std::vector<float> values;
    for (int64_t r = 0; r < record.rows(); ++r) values.push_back(record.values[static_cast<size_t>(r * record.width + index)]);
    return values;
  };
  const std::vector<float> acts = column(*act);
  double max_abs = 0;
  for (float a : acts) max_abs = std::max(max_abs, std::fabs(static_cast<double>(a)));
  send_json(response, {{"layer", layer},
                       {"index", index},
                       {"tokens", std::move(tokens)},
                       {"act", acts},
                       {"gate", column(*gate)},
                       {"up", column(*up)},
                       {"max_abs", max_abs}});
}

void probe(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const TextModel& tm = context.require_model();
  const nlohmann::json body = parse_json_object(request.body);
  const std::string text = json_string(body, "prompt", 1, kMaxPromptBytes);
  const bool chat = json_bool(body, "chat", false);
  const auto top = json_integer(body, "top", 10, 1, 100);
  const Interventions interventions = read_interventions(body, tm.model.config());
  const nlohmann::json& token_texts = json_array(body, "tokens", kMaxProbeTokens);
  std::vector<std::pair<std::string, int32_t>> probed;
  for (size_t i = 0; i < token_texts.size(); ++i) {
    const std::string where = "tokens[" + std::to_string(i) + "]";
    if (!token_texts[i].is_string()) bad_request(where + ": must be a string, got " + token_texts[i].type_name());
    const auto& token = token_texts[i].get_ref<const std::string&>();
    probed.emplace_back(token, read_single_token(tm, token, where));
  }
  const std::vector<int32_t> prompt = tm.prompt_tokens(text, chat);

  const std::unique_lock<std::mutex> lock = lock_model_or_refuse(context);
  CleanSession session(context.session_locked());
  const ProbeResult result = probe_next_token(*session, prompt, interventions);
  const std::vector<double>& before = result.without;
  const std::vector<double>& after = result.with;

  nlohmann::json tokens = nlohmann::json::array();
  for (const auto& [token, id] : probed) {
    const auto at = static_cast<size_t>(id);
    tokens.push_back({{"text", token}, {"id", id}, {"baseline", before[at]}, {"clamped", after[at]}});
  }
  auto top_json = [&](const std::vector<double>& p) {
    nlohmann::json list = nlohmann::json::array();
    for (int32_t id : top_token_ids(p, top)) {
      list.push_back(token_json(context, id, std::nullopt, p[static_cast<size_t>(id)]));
    }
    return list;
  };
  send_json(response, {{"prompt_tokens", prompt.size()},
                       {"tokens", std::move(tokens)},
                       {"baseline_top", top_json(before)},
                       {"clamped_top", top_json(after)}});
}

// What one POST /api/generate asks for, checked before the stream starts.
struct GenerationPlan {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 64;
  SamplingOptions sampling;
  Interventions interventions;
  bool baseline = true;
};

// Streams the runs as NDJSON lines; stops early when the client leaves or
// the server stops.
void stream_generation(ServerContext& context, const GenerationPlan& plan, httplib::DataSink& sink) {
  bool connected = true;
  auto send = [&](const nlohmann::json& event) {
    const std::string line = json_text(event) + "\n";
    if (connected) connected = sink.write(line.data(), line.size());
    return connected;
  };
  try {
    const TextModel& tm = context.require_model();
    CleanSession session(context.session_locked());
    for (const char* run : {"baseline", "clamped"}) {
      const bool clamped = std::string(run) == "clamped";
      if (!clamped && !plan.baseline) continue;
      session->clear_hooks();
      session->reset();
      if (clamped) apply_interventions(*session, plan.interventions);
      if (!send({{"run", run}, {"event", "start"}, {"prompt_tokens", plan.prompt.size()}})) return;
      Sampler sampler(plan.sampling);
      std::string text;
      const auto started = std::chrono::steady_clock::now();
      const GenerationResult result =
          generate_text(*session, tm, plan.prompt, plan.max_tokens, sampler, [&](int32_t id, std::string_view piece) {
            text += piece;
            return send({{"run", run}, {"event", "token"}, {"id", id}, {"text", std::string(piece)}}) &&
                   !context.stopping();
          });
      if (!connected) return;
      const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - started;
      send({{"run", run},
            {"event", "done"},
            {"tokens", result.tokens},
            {"stop", std::string(generation_stop_name(result.stop))},
            {"seconds", seconds.count()},
            {"text", text + result.unfinished}});
      if (result.stop == GenerationStop::Cancelled) return;
    }
    send({{"event", "end"}});
  } catch (...) {
    // The status line has gone: the failure is the stream's last line.
    const ErrorReply failed = error_reply(std::current_exception(), context.paths());
    send({{"event", "error"}, {"status", failed.status}, {"error", failed.message}});
  }
}

void generate(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const TextModel& tm = context.require_model();
  const nlohmann::json body = parse_json_object(request.body);
  auto plan = std::make_shared<GenerationPlan>();
  const std::string text = json_string(body, "prompt", 1, kMaxPromptBytes);
  const bool chat = json_bool(body, "chat", false);
  plan->max_tokens = json_integer(body, "max_tokens", 64, 1, kMaxTokens);
  plan->sampling.seed = json_unsigned(body, "seed", 0);
  plan->sampling.temperature = json_number(body, "temperature", 0.0, 0.0, kMaxTemperature);
  plan->sampling.top_k = json_integer(body, "top_k", 0, 0, tm.model.config().vocab_size);
  plan->sampling.top_p = json_number(body, "top_p", 1.0, 0.0, 1.0);
  if (plan->sampling.top_p <= 0.0) bad_request("top_p: must be in (0, 1]");
  plan->interventions = read_interventions(body, tm.model.config());
  plan->baseline = json_bool(body, "baseline", true);
  plan->prompt = tm.prompt_tokens(text, chat);

  auto lock = std::make_shared<std::unique_lock<std::mutex>>(lock_model_or_refuse(context));
  // The provider runs after this handler returns, on the same worker thread;
  // it owns the model lock until the stream ends (or the client leaves).
  response.set_chunked_content_provider(
      "application/x-ndjson", [&context, plan, lock](size_t, httplib::DataSink& sink) {
        stream_generation(context, *plan, sink);
        lock->unlock();
        sink.done();
        return true;
      },
      [lock](bool) {
        if (lock->owns_lock()) lock->unlock();
      });
}

}  // namespace

void add_model_routes(Router& router, ServerContext& context) {
  router.add("POST", "/api/activations", [&context](const auto& request, auto& response, const auto&) {
    activations(context, request, response);
  });
  router.add("POST", "/api/probe", [&context](const auto& request, auto& response, const auto&) {
    probe(context, request, response);
  });
  router.add("POST", "/api/generate", [&context](const auto& request, auto& response, const auto&) {
    generate(context, request, response);
  });
}

}  // namespace neuronlens::server
