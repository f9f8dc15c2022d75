// `neuronlens map MODEL -o ATLAS.db`: decode every FFN neuron (and with
// --kinds ov,qk every attention head's circuits) into an atlas, then print a
// summary with example concepts.
#include <omp.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <cstdio>
#include <sstream>

#include "agreement_report.h"
#include "commands.h"
#include "concept_report.h"
#include "format.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/error.h"
#include "neuronlens/map_jobs.h"
#include "neuronlens/mpi_launch.h"
#include "neuronlens/neuron_map.h"
#ifdef NEURONLENS_WITH_MPI
#include "neuronlens/distributed_map.h"
#endif
#include "option_error.h"
#include "progress_bar.h"

namespace neuronlens::cli {
namespace {

struct MapCommandOptions {
  std::string model;
  std::string atlas;
  std::string kinds = "all";
  int head_rank = 4;
  std::string layers = "all";
  int top_k = 20;
  std::string norm = "final";
  std::string read_norm = "none";
  std::string precision = "auto";
  std::string backend;
  std::string examples = "dog,California";
  double specialised = 0.5;
  int threads = 0;
  std::string jobs;                      // --jobs FILE: "MODEL ATLAS" lines
  std::vector<std::string> model_paths;  // --model-path FROM=TO, for other ranks
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// A head direction's first tokens on one side, quoted.
std::string head_side_tokens(const Atlas& atlas, const AtlasHeadSide& side, size_t count) {
  std::string out;
  for (size_t i = 0; i < std::min(count, side.top_ids.size()); ++i) {
    out += (i ? " " : "") + quote_token(atlas.token_text(side.top_ids[i]));
  }
  return out;
}

void print_head_summary(const Atlas& atlas, const MapOptions& map_options) {
  for (HeadCircuit circuit : map_options.circuits) {
    const std::string name(head_circuit_name(circuit));
    std::printf("\n%s heads: the %d directions with the most specialised %s side (L:%s:H rank, singular value)\n",
                name.c_str(), 8, std::string(head_side_name(circuit, 0)).c_str(), name.c_str());
    for (const AtlasHeadDirection& d : atlas.sharpest_heads(circuit, 8)) {
      std::printf("  %4lld:%s:%-3lld r%d  σ %8.3f  %s %5.2f %-40s  %s %s\n", static_cast<long long>(d.layer),
                  name.c_str(), static_cast<long long>(d.head), d.rank, d.singular_value,
                  std::string(head_side_name(circuit, 0)).c_str(), d.sides[0].top_probs.empty() ? 0.0 : d.sides[0].top_probs[0],
                  head_side_tokens(atlas, d.sides[0], 3).c_str(), std::string(head_side_name(circuit, 1)).c_str(),
                  head_side_tokens(atlas, d.sides[1], 3).c_str());
    }
  }
}

void print_summary(const Model& model, const Atlas& atlas, const LmHeadDecoder& decoder, const MapOptions& map_options,
                   const MapCommandOptions& opt) {
  print_head_summary(atlas, map_options);
  if (map_options.kinds.empty()) return;
  std::printf("\nper layer: mean entropy (nats) and neurons whose top-1 token has p > %.2f\n", opt.specialised);
  std::printf("  %5s", "layer");
  for (VectorKind k : map_options.kinds) std::printf("  %8s-H %10s", std::string(vector_kind_name(k)).c_str(), "specialised");
  std::printf("\n");
  std::vector<std::vector<Atlas::LayerSummary>> per_kind;
  for (VectorKind k : map_options.kinds) per_kind.push_back(atlas.summarize(k, opt.specialised));
  for (int64_t layer : map_options.layers) {
    std::printf("  %5lld", static_cast<long long>(layer));
    for (const auto& rows : per_kind) {
      const Atlas::LayerSummary* row = nullptr;
      for (const auto& r : rows) {
        if (r.layer == layer) row = &r;
      }
      if (row) std::printf("  %10.3f %10lld", row->mean_entropy, static_cast<long long>(row->specialised));
      else std::printf("  %10s %10s", "-", "-");
    }
    std::printf("\n");
  }
  FindOptions find;
  find.kinds = map_options.kinds;
  find.layers = map_options.layers;
  find.limit = 5;
  for (const std::string& concept_text : split_commas(opt.examples)) {
    std::printf("\n");
    try {
      const ConceptTokens ct = expand_concept(model.vocab(), concept_text, false);
      const auto hits = find_concept(model, decoder, &atlas, ct, find);
      print_concept_hits(ct, hits, token_text_of(model.vocab()), true);
    } catch (const Error& e) {
      std::printf("concept '%s': %s\n", concept_text.c_str(), e.what());
    }
  }
}

// The options every map of this command shares; layers are resolved per
// model (map_options_for).
MapOptions shared_map_options(const MapCommandOptions& opt, bool announce = true) {
  MapOptions map_options;
  const MapKinds kinds = for_option("--kinds", [&] { return parse_map_kinds(opt.kinds); });
  map_options.kinds = kinds.kinds;
  map_options.circuits = kinds.circuits;
  map_options.head_rank = opt.head_rank;
  map_options.settings.top_k = opt.top_k;
  map_options.settings.norm = norm_mode_from_name(opt.norm);
  map_options.settings.read_norm = read_norm_from_name(opt.read_norm);
  map_options.settings.precision = for_option("--precision", [&] { return precision_from_name(opt.precision); });
  map_options.settings.backend = opt.backend;
  const DecodeBackendChoice backend = for_option(opt.backend.empty() ? "--precision" : "--backend", [&] {
    return choose_decode_backend(map_options.settings);
  });
  if (announce) {
    std::fprintf(stderr, "decode backend %s (%s precision)\n", backend.name.c_str(),
                 std::string(precision_name(backend.precision)).c_str());
  }
  if (!(opt.specialised > 0 && opt.specialised < 1)) throw bad_input("--specialised must be between 0 and 1");
  return map_options;
}

MapOptions map_options_for(const Model& model, MapOptions shared, const MapCommandOptions& opt) {
  shared.layers = for_option("--layers", [&] { return parse_layer_list(opt.layers, model.config().n_layers); });
  return shared;
}

void print_done(const MapProgress& done, double seconds, const std::string& atlas) {
  if (done.vectors_total == 0) {
    std::printf("%s already holds every requested layer (%lld kind-layers); nothing to do\n", atlas.c_str(),
                static_cast<long long>(done.layers_skipped));
  } else {
    std::printf("mapped %lld vectors (%lld kind-layers, %lld already done) in %s: %.0f vectors/s -> %s\n",
                static_cast<long long>(done.vectors_done), static_cast<long long>(done.layers_mapped),
                static_cast<long long>(done.layers_skipped), human_seconds(seconds).c_str(),
                static_cast<double>(done.vectors_done) / seconds, atlas.c_str());
  }
}

// The summary a map prints for one atlas: per layer, example concepts and
// the agreement with an activation record.
void print_atlas_summary(const Model& model, const Atlas& atlas, const MapOptions& map_options,
                         const MapCommandOptions& opt) {
  const LmHeadDecoder decoder(model, map_options.settings);
  print_summary(model, atlas, decoder, map_options, opt);
  print_agreement(atlas);
}

// MODEL -o ATLAS or --jobs FILE: checks which was given, without reading
// the file.
void check_job_options(const MapCommandOptions& opt) {
  if (!opt.jobs.empty() && !opt.model.empty()) throw bad_input("give either MODEL with -o ATLAS or --jobs FILE, not both");
  if (!opt.jobs.empty() && !opt.atlas.empty()) throw bad_input("-o: with --jobs each line names its atlas");
  if (opt.jobs.empty() && opt.model.empty()) throw bad_input("no model: give MODEL -o ATLAS, or --jobs FILE");
  if (opt.jobs.empty() && opt.atlas.empty()) throw bad_input("-o ATLAS is required with MODEL");
}

std::vector<MapJob> jobs_of(const MapCommandOptions& opt) {
  check_job_options(opt);
  if (!opt.jobs.empty()) return parse_map_jobs(opt.jobs);  // its messages name the file and line
  return {MapJob{opt.model, opt.atlas}};
}

// One process: the jobs one after another.
int run_map_here(const MapCommandOptions& opt) {
  const std::vector<MapJob> jobs = jobs_of(opt);
  const MapOptions shared = shared_map_options(opt);
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (jobs.size() > 1) {
      std::printf("%s== job %zu of %zu: %s -> %s\n", j ? "\n" : "", j + 1, jobs.size(), jobs[j].model.c_str(),
                  jobs[j].atlas.c_str());
      std::fflush(stdout);
    }
    const Model model = Model::load(jobs[j].model);
    const MapOptions map_options = map_options_for(model, shared, opt);
    std::fprintf(stderr, "hashing %s ...\n", model.path().c_str());
    Atlas atlas =
        Atlas::create_or_resume(jobs[j].atlas, atlas_settings_for(model, map_options.settings), model.vocab());
    ProgressBar bar("mapping", "vectors");
    const MapProgress done = run_neuron_map(model, map_options, atlas, [&](const MapProgress& p) {
      bar.update(p.vectors_done, p.vectors_total);
    });
    print_done(done, bar.finish(), jobs[j].atlas);
    print_atlas_summary(model, atlas, map_options, opt);
  }
  return 0;
}

#ifdef NEURONLENS_WITH_MPI
// Many ranks: rank 0 prints; the others say nothing (rank 0 reports their
// failures) and exit with the job's code.
int run_map_distributed(const MpiContext& mpi, const MapCommandOptions& opt) {
  const bool writer = mpi.rank() == 0;
  DistributedMapRequest request;
  MapOptions shared;
  std::exception_ptr failure;
  try {
    check_job_options(opt);
    if (opt.jobs.empty()) request.jobs = {MapJob{opt.model, opt.atlas}};
    request.jobs_file = opt.jobs;  // read by rank 0 alone
    for (const std::string& m : opt.model_paths) {
      request.model_paths.push_back(for_option("--model-path", [&] { return parse_path_mapping(m); }));
    }
    shared = shared_map_options(opt, writer);
  } catch (...) {
    failure = std::current_exception();
  }
  std::optional<ProgressBar> bar;
  DistributedMapResult result;
  try {
    agree_to_start(mpi, failure);
    request.options = shared;
    request.layers = opt.layers;
    request.layers_name = "--layers";
    if (writer) {
      std::fprintf(stderr, "mpi: %d ranks; each opens and hashes the model(s) ...\n", mpi.size());
      bar.emplace("mapping", "vectors", 10.0);
    }
    result = run_distributed_map(mpi, request, [&](const MapProgress& p) { bar->update(p.vectors_done, p.vectors_total); });
  } catch (const DistributedMapStopped&) {
    // Exit 0: the launcher ends the whole job at the first rank that exits
    // non-zero, which could be before rank 0 has said why. Rank 0's exit
    // code is the job's.
    return 0;
  }
  if (!writer) return 0;
  const double seconds = bar->finish();
  std::printf("mpi: %d ranks:", mpi.size());
  for (size_t r = 0; r < result.hosts.size(); ++r) {
    std::printf(" %zu@%s/%d thread%s", r, result.hosts[r].c_str(), result.threads[r], result.threads[r] == 1 ? "" : "s");
  }
  std::printf("\nwriter (rank 0): %lld units, %lld rows in %.2f s (%.0f rows/s), then the token index in %.2f s\n",
              static_cast<long long>(result.units_written), static_cast<long long>(result.rows_written),
              result.write_seconds,
              result.write_seconds > 0 ? static_cast<double>(result.rows_written) / result.write_seconds : 0.0,
              result.index_seconds);
  MapProgress all;
  for (const MapProgress& p : result.progress) all.vectors_done += p.vectors_done;
  for (size_t j = 0; j < result.jobs.size(); ++j) {
    if (result.jobs.size() > 1) {
      std::printf("\n== job %zu of %zu: %s -> %s\n", j + 1, result.jobs.size(), result.jobs[j].model.c_str(),
                  result.jobs[j].atlas.c_str());
    }
    // Each job's vectors/s is the whole run's rate: jobs ran side by side.
    print_done(result.progress[j], seconds * static_cast<double>(result.progress[j].vectors_done) /
                                       static_cast<double>(std::max<int64_t>(all.vectors_done, 1)),
               result.jobs[j].atlas);
    const Model model = Model::load(result.jobs[j].model);
    const Atlas atlas = Atlas::open(result.jobs[j].atlas);
    print_atlas_summary(model, atlas, map_options_for(model, shared, opt), opt);
  }
  return 0;
}
#endif

// srun started several tasks that MPI does not see as one job.
void refuse_unwired_tasks(int world_size) {
  const int tasks = slurm_step_tasks();
  if (tasks > 1 && world_size <= 1) {
    throw bad_input("srun started " + std::to_string(tasks) +
                    " tasks, but they are not one MPI job (each would map the whole model into the same atlas); "
                    "launch with srun --mpi=pmix (or pmi2), or run one task");
  }
}

int run_map(const MapCommandOptions& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const int launched = mpi_launch_size();
#ifdef NEURONLENS_WITH_MPI
  if (launched > 0) {
    const MpiContext mpi;
    if (mpi.size() > 1) return run_map_distributed(mpi, opt);
    refuse_unwired_tasks(mpi.size());
    return run_map_here(opt);
  }
  refuse_unwired_tasks(0);
#else
  refuse_unwired_tasks(launched);
  if (launched > 1) {
    throw bad_input("started as " + std::to_string(launched) +
                    " MPI ranks, but this neuronlens was built without MPI (configure with -DNEURONLENS_WITH_MPI=ON); "
                    "each rank would map the same atlas");
  }
#endif
  return run_map_here(opt);
}

}  // namespace

Runner add_map_command(CLI::App& app) {
  auto opt = std::make_shared<MapCommandOptions>();
  CLI::App* cmd = app.add_subcommand("map", "Decode every FFN neuron through the LM head into an atlas");
  cmd->add_option("model", opt->model, "GGUF file or Hugging Face model folder");
  cmd->add_option("-o,--output", opt->atlas, "Atlas file to write or resume (SQLite)");
  cmd->add_option("--jobs", opt->jobs,
                  "Map several models: a file of 'MODEL ATLAS' lines (instead of MODEL -o ATLAS); under MPI "
                  "their units are spread over all ranks");
  cmd->add_option("--model-path", opt->model_paths,
                  "Under MPI: FROM=TO, where ranks other than 0 find a model whose path starts with FROM "
                  "(nodes that mount the models elsewhere); repeatable");
  cmd->add_option("--kinds", opt->kinds,
                  "Vector kinds: up,gate,down (all: the three), and attention heads' circuits ov,qk")
      ->capture_default_str();
  cmd->add_option("--head-rank", opt->head_rank, "Singular directions kept per head and circuit (ov, qk)")
      ->capture_default_str();
  cmd->add_option("--layers", opt->layers, "Layers, e.g. 3-10 or 0,5,7-9, or all")->capture_default_str();
  cmd->add_option("--top-k", opt->top_k, "Top tokens stored per neuron")->capture_default_str();
  cmd->add_option("--norm", opt->norm, "Norm before the LM head: final (model's final RMSNorm) or none")
      ->capture_default_str();
  cmd->add_option("--read-norm", opt->read_norm,
                  "Up/gate rows as read: none (the raw row, the paper's) or ffn (times the MLP's pre-norm weight: "
                  "the direction the neuron reads through its own norm)")
      ->capture_default_str();
  cmd->add_option("--precision", opt->precision,
                  "Bulk logit product: exact (float32), bf16 (bf16 operands, float32 sums; needs AVX512_BF16) or "
                  "auto (bf16 where the CPU has it). Either way every token that could be in the top k is "
                  "re-scored in float64, so the top-k ids are exact (docs/precision.md)")
      ->capture_default_str();
  cmd->add_option("--backend", opt->backend,
                  "Force one decode backend by name, e.g. cpu-avx2-fp32, cpu-portable16-fp32 or cpu-avx2-bf16emu "
                  "(bf16 emulated, for CPUs without bf16 units); `neuronlens info MODEL` lists them");
  cmd->add_option("--examples", opt->examples, "Concepts to look up in the summary (comma separated)")
      ->capture_default_str();
  cmd->add_option("--specialised", opt->specialised, "Top-1 probability above which a neuron counts as specialised")
      ->capture_default_str();
  cmd->add_option("--threads", opt->threads,
                  "Worker threads, per rank under MPI (default: the cores this process may run on)");
  return [opt] { return run_map(*opt); };
}

}  // namespace neuronlens::cli
