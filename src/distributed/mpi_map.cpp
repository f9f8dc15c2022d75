// The neuron map across MPI ranks: startup (jobs, models, hashes, atlases),
// then rank 0 hands out units and writes the results. Every path out of the
// work loop goes through the final broadcast of the exit code, so no rank is
// left waiting on one that has given up.
#include "neuronlens/distributed_map.h"

#include <mpi.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "distributed/atlas_writer_thread.h"
#include "neuronlens/atlas.h"
#include "neuronlens/map_units.h"
#include "neuronlens/model.h"

namespace neuronlens {
namespace {

// Message tags, worker -> rank 0 unless noted.
enum Tag : int {
  kReady = 1,     // empty: give me a unit
  kResult = 2,    // i64 unit number, then a serialized MappedUnit
  kProgress = 3,  // i64 unit number, i64 vectors done in it
  kFailure = 4,   // i32 ErrorKind, then the message
  kAssign = 5,    // rank 0 -> worker: i64[5] unit number, job, heads, kind or circuit, layer; unit number -1: stop
  kStart = 6,     // agree_to_start: i32 ErrorKind or -1 for none, then the message
};

using Clock = std::chrono::steady_clock;

int exit_code_for(ErrorKind kind) { return kind == ErrorKind::Internal ? 1 : 2; }

// --- small byte helpers for the startup messages ---

void put_string(std::string& out, const std::string& s) {
  const uint64_t n = s.size();
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  out += s;
}

std::string get_string(const std::string& in, size_t& at) {
  uint64_t n = 0;
  if (in.size() - at < sizeof n) throw internal_error("mpi: a startup message is truncated");
  std::memcpy(&n, in.data() + at, sizeof n);
  at += sizeof n;
  if (in.size() - at < n) throw internal_error("mpi: a startup message is truncated");
  std::string s = in.substr(at, n);
  at += n;
  return s;
}

int checked_count(size_t bytes) {
  if (bytes > static_cast<size_t>(INT_MAX)) {
    throw internal_error("mpi: a message of " + std::to_string(bytes) + " bytes is over MPI's 2 GiB count");
  }
  return static_cast<int>(bytes);
}

void send_bytes(const std::string& bytes, int to, int tag) {
  MPI_Send(bytes.data(), checked_count(bytes.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD);
}

std::string receive_bytes(const MPI_Status& probed) {
  int count = 0;
  MPI_Get_count(&probed, MPI_BYTE, &count);
  std::string bytes(static_cast<size_t>(count), '\0');
  MPI_Recv(bytes.data(), count, MPI_BYTE, probed.MPI_SOURCE, probed.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return bytes;
}

std::string receive_bytes_from(int from, int tag) {
  MPI_Status status;
  MPI_Probe(from, tag, MPI_COMM_WORLD, &status);
  return receive_bytes(status);
}

// Rank 0's bytes to everyone.
void broadcast_bytes(std::string& bytes) {
  uint64_t n = bytes.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  bytes.resize(n);
  MPI_Bcast(bytes.data(), checked_count(n), MPI_BYTE, 0, MPI_COMM_WORLD);
}

// A status (0 go, else an exit code) and a message, from rank 0 to all.
struct Verdict {
  int code = 0;
  ErrorKind kind = ErrorKind::Internal;
  std::string message;
};

Verdict broadcast_verdict(Verdict v) {
  int head[2] = {v.code, static_cast<int>(v.kind)};
  MPI_Bcast(head, 2, MPI_INT, 0, MPI_COMM_WORLD);
  v.code = head[0];
  v.kind = static_cast<ErrorKind>(head[1]);
  broadcast_bytes(v.message);
  return v;
}

Verdict verdict_from(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return {exit_code_for(error->kind()), error->kind(), e.what()};
  if (dynamic_cast<const std::bad_alloc*>(&e)) return {1, ErrorKind::Internal, "out of memory"};
  return {1, ErrorKind::Internal, e.what()};
}

// After a verdict: rank 0 throws its Error, the others stop quietly.
[[noreturn]] void stop_on(const Verdict& v, int rank) {
  if (rank == 0) throw Error(v.kind, v.message);
  throw DistributedMapStopped{v.code};
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

// A test-only fault: NEURONLENS_TEST_FAIL_RANK=R:N[:kill] makes rank R fail
// in the middle of the unit after its first N, by throwing (as a failing
// rank would) or with :kill by SIGKILL (as a node lost would).
struct FaultSwitch {
  int rank = -1;
  int64_t after_units = 0;
  bool kill = false;
  static FaultSwitch from_environment() {
    FaultSwitch f;
    const char* text = std::getenv("NEURONLENS_TEST_FAIL_RANK");
    if (text == nullptr) return f;
    char mode[8] = {};
    long long units = 0;
    if (std::sscanf(text, "%d:%lld:%7s", &f.rank, &units, mode) < 2) return FaultSwitch{};
    f.after_units = units;
    f.kill = std::strcmp(mode, "kill") == 0;
    return f;
  }
  void check(int my_rank, int64_t units_done) const {
    if (my_rank != rank || units_done != after_units) return;
    if (kill) std::raise(SIGKILL);
    throw internal_error("test fault switch NEURONLENS_TEST_FAIL_RANK: rank " + std::to_string(rank) +
                         " fails after " + std::to_string(after_units) + " units");
  }
};

// What each rank holds of every job: the model (from its own path) and,
// made on first use, a UnitMapper for the job it is working on.
struct LoadedJobs {
  std::vector<MapJob> jobs;
  std::vector<std::string> model_paths;  // this rank's
  std::vector<Model> models;
  std::vector<std::string> sha256;
  std::optional<UnitMapper> mapper;
  int64_t mapper_job = -1;

  const UnitMapper& mapper_for(int64_t job, const MapOptions& options) {
    if (mapper_job != job) {
      mapper.reset();  // one LM head copy at a time
      mapper.emplace(models[static_cast<size_t>(job)], options);
      mapper_job = job;
    }
    return *mapper;
  }
};

struct Assignment {
  int64_t number = -1;  // -1: stop
  int64_t job = 0;
  MapUnit unit;
};

void send_assignment(const Assignment& a, int to) {
  const int64_t words[5] = {a.number, a.job, a.unit.heads ? 1 : 0,
                            a.unit.heads ? static_cast<int64_t>(a.unit.circuit) : static_cast<int64_t>(a.unit.kind),
                            a.unit.layer};
  MPI_Send(words, 5, MPI_INT64_T, to, kAssign, MPI_COMM_WORLD);
}

Assignment receive_assignment() {
  int64_t words[5];
  MPI_Recv(words, 5, MPI_INT64_T, 0, kAssign, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  Assignment a;
  a.number = words[0];
  a.job = words[1];
  a.unit.heads = words[2] != 0;
  if (a.unit.heads) {
    a.unit.circuit = static_cast<HeadCircuit>(words[3]);
  } else {
    a.unit.kind = static_cast<VectorKind>(words[3]);
  }
  a.unit.layer = words[4];
  return a;
}

// --- startup ---

// Rank 0 reads the jobs; everyone gets them.
std::vector<MapJob> agree_on_jobs(const MpiContext& mpi, const DistributedMapRequest& request) {
  Verdict verdict;
  std::string bytes;
  if (mpi.rank() == 0) {
    try {
      const std::vector<MapJob> jobs =
          request.jobs_file.empty() ? request.jobs : parse_map_jobs(request.jobs_file);
      if (jobs.empty()) throw bad_input("no model to map");
      for (const MapJob& j : jobs) {
        put_string(bytes, j.model);
        put_string(bytes, j.atlas);
      }
    } catch (const std::exception& e) {
      verdict = verdict_from(e);
    }
  }
  verdict = broadcast_verdict(verdict);
  if (verdict.code != 0) stop_on(verdict, mpi.rank());
  broadcast_bytes(bytes);
  std::vector<MapJob> jobs;
  for (size_t at = 0; at < bytes.size();) {
    MapJob j;
    j.model = get_string(bytes, at);
    j.atlas = get_string(bytes, at);
    jobs.push_back(j);
  }
  return jobs;
}

// Each rank loads every model from its own path and hashes it (rank 0 via
// its atlas settings); rank 0 collects the hashes, compares them with its
// own, opens the atlases and plans the units. One verdict for all.
struct Plan {
  std::vector<Atlas> atlases;
  std::vector<MapProgress> progress;
  std::vector<Assignment> units;  // in the order handed out
  std::vector<int64_t> unit_vectors;
  std::vector<std::unique_ptr<Atlas::BulkWrite>> bulk_writes;  // one per atlas with units to write: its index is built at the end
};

Plan start(const MpiContext& mpi, const DistributedMapRequest& request, LoadedJobs& loaded,
           DistributedMapResult& result) {
  const int rank = mpi.rank();
  std::optional<Verdict> mine;
  try {
    for (const MapJob& job : loaded.jobs) {
      const std::string path = rank == 0 ? job.model : apply_path_mappings(job.model, request.model_paths);
      loaded.model_paths.push_back(path);
      loaded.models.push_back(Model::load(path));
      if (rank != 0) loaded.sha256.push_back(model_sha256(loaded.models.back()));
    }
  } catch (const std::exception& e) {
    mine = verdict_from(e);
  }
  Plan plan;
  if (rank != 0) {
    std::string report;
    put_string(report, host_name());
    put_string(report, std::to_string(omp_get_max_threads()));
    put_string(report, mine ? std::to_string(static_cast<int>(mine->kind)) : "");
    put_string(report, mine ? mine->message : "");
    for (size_t j = 0; j < loaded.sha256.size(); ++j) {
      put_string(report, loaded.model_paths[j]);
      put_string(report, loaded.sha256[j]);
    }
    send_bytes(report, 0, kReady);
    const Verdict v = broadcast_verdict({});
    if (v.code != 0) stop_on(v, rank);
    return plan;
  }

  // Rank 0: its own failure first, then the first other rank's, then a hash
  // that differs; then the atlases.
  result.hosts.assign(static_cast<size_t>(mpi.size()), "");
  result.threads.assign(static_cast<size_t>(mpi.size()), 0);
  result.hosts[0] = host_name();
  result.threads[0] = omp_get_max_threads();
  std::vector<std::string> reports(static_cast<size_t>(mpi.size()));
  for (int r = 1; r < mpi.size(); ++r) reports[static_cast<size_t>(r)] = receive_bytes_from(r, kReady);
  Verdict verdict;
  try {
    if (mine) throw Error(mine->kind, mine->message);
    std::vector<AtlasSettings> settings;
    for (const Model& model : loaded.models) settings.push_back(atlas_settings_for(model, request.options.settings));
    for (int r = 1; r < mpi.size(); ++r) {
      const std::string& report = reports[static_cast<size_t>(r)];
      size_t at = 0;
      const std::string host = get_string(report, at);
      result.hosts[static_cast<size_t>(r)] = host;
      result.threads[static_cast<size_t>(r)] = std::stoi(get_string(report, at));
      const std::string kind = get_string(report, at), message = get_string(report, at);
      const std::string who = "rank " + std::to_string(r) + " (host " + host + ")";
      if (!kind.empty()) throw Error(static_cast<ErrorKind>(std::stoi(kind)), who + ": " + message);
      for (size_t j = 0; j < loaded.jobs.size(); ++j) {
        const std::string path = get_string(report, at), sha = get_string(report, at);
        if (sha != settings[j].model_sha256) {
          throw bad_input(who + " reads " + path + " with sha256 " + sha + ", but rank 0 reads " +
                          loaded.model_paths[j] + " with sha256 " + settings[j].model_sha256 +
                          ": every rank must read the same model (--model-path FROM=TO says where other nodes "
                          "find it)");
        }
      }
    }
    for (size_t j = 0; j < loaded.jobs.size(); ++j) {
      const Model& model = loaded.models[j];
      MapOptions options = request.options;
      try {
        options.layers = parse_layer_list(request.layers, model.config().n_layers);
      } catch (const Error& e) {
        throw Error(e.kind(), request.layers_name + ": " + e.what());
      }
      plan.atlases.push_back(Atlas::create_or_resume(loaded.jobs[j].atlas, settings[j], model.vocab()));
      const MapPlan job_plan = plan_neuron_map(model, options, plan.atlases.back());
      MapProgress p;
      p.layers_skipped = job_plan.units_skipped;
      p.vectors_total = job_plan.vectors_total;
      plan.progress.push_back(p);
      for (const MapUnit& unit : job_plan.todo) {
        plan.units.push_back(Assignment{static_cast<int64_t>(plan.units.size()), static_cast<int64_t>(j), unit});
        plan.unit_vectors.push_back(map_unit_vectors(model.config(), options, unit));
      }
    }
    // After every atlas is open (the vector no longer moves them), and only
    // where there is something to write: rebuilding a finished atlas's index
    // would cost minutes for nothing.
    for (size_t j = 0; j < plan.atlases.size(); ++j) {
      if (plan.progress[j].vectors_total > 0) {
        plan.bulk_writes.push_back(std::make_unique<Atlas::BulkWrite>(plan.atlases[j]));
      }
    }
  } catch (const std::exception& e) {
    verdict = verdict_from(e);
  }
  verdict = broadcast_verdict(verdict);
  if (verdict.code != 0) stop_on(verdict, rank);
  return plan;
}

// --- the work loop ---

// A worker: asks, maps, sends, until told to stop. A failure is reported
// to rank 0, which then stops it with the others.
void work(const MpiContext& mpi, const DistributedMapRequest& request, LoadedJobs& loaded,
          DistributedMapResult& result, const FaultSwitch& fault) {
  send_bytes("", 0, kReady);
  for (;;) {
    const Assignment a = receive_assignment();
    if (a.number < 0) return;
    try {
      const UnitMapper& mapper = loaded.mapper_for(a.job, request.options);
      auto last_sent = Clock::now();
      const MappedUnit mapped = mapper.map(a.unit, [&](int64_t done) {
        fault.check(mpi.rank(), result.units_decoded_here);
        if (Clock::now() - last_sent < std::chrono::milliseconds(250)) return;
        last_sent = Clock::now();
        const int64_t words[2] = {a.number, done};
        MPI_Send(words, 2, MPI_INT64_T, 0, kProgress, MPI_COMM_WORLD);
      });
      std::string bytes(sizeof a.number, '\0');
      std::memcpy(bytes.data(), &a.number, sizeof a.number);
      bytes += serialize_mapped_unit(mapped);
      ++result.units_decoded_here;
      send_bytes(bytes, 0, kResult);
    } catch (const std::exception& e) {
      const Verdict v = verdict_from(e);
      std::string bytes(sizeof(int32_t), '\0');
      const auto kind = static_cast<int32_t>(v.kind);
      std::memcpy(bytes.data(), &kind, sizeof kind);
      bytes += map_unit_name(a.unit) + " of " + loaded.model_paths[static_cast<size_t>(a.job)] + ": " + v.message;
      send_bytes(bytes, 0, kFailure);
    }
  }
}

// Rank 0: hands out units as ranks ask, writes what they send, and maps
// units itself in between (polling for messages at each of its own progress
// steps). After a failure it hands out no more, writes what is still in
// flight and stops every rank.
class Coordinator {
 public:
  Coordinator(const MpiContext& mpi, const DistributedMapRequest& request, LoadedJobs& loaded, Plan& plan,
              DistributedMapResult& result, const DistributedProgress& on_progress, const FaultSwitch& fault)
      : mpi_(mpi), request_(request), loaded_(loaded), plan_(plan), result_(result), on_progress_(on_progress),
        fault_(fault), in_flight_(static_cast<size_t>(mpi.size())), active_workers_(mpi.size() - 1),
        writer_(plan.atlases) {
    for (const MapProgress& p : plan.progress) {
      total_.vectors_total += p.vectors_total;
      total_.layers_skipped += p.layers_skipped;
    }
  }

  // Returns the failure, if any, once every rank has stopped.
  std::optional<Verdict> run() {
    report();
    // Every rank's first unit before rank 0 starts one of its own: rank 0
    // answers only between the rounds of its own decode.
    for (int first_requests = mpi_.size() - 1; first_requests > 0; --first_requests) {
      MPI_Status status;
      MPI_Probe(MPI_ANY_SOURCE, kReady, MPI_COMM_WORLD, &status);
      handle(status);
    }
    for (;;) {
      poll();
      check_writer();
      if (!failure_ && next_ < plan_.units.size()) {
        map_one_here(plan_.units[next_++]);
      } else if (active_workers_ > 0) {
        MPI_Status status;
        MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
        handle(status);
      } else {
        writer_.finish();
        check_writer();
        result_.units_written = writer_.units();
        result_.rows_written = writer_.rows();
        result_.write_seconds = writer_.seconds();
        return failure_;
      }
    }
  }

 private:
  struct InFlight {
    int64_t number = -1;
    int64_t done = 0;
  };

  void poll() {
    for (;;) {
      int waiting = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &waiting, &status);
      if (!waiting) break;
      handle(status);
    }
  }

  void handle(const MPI_Status& status) {
    const int from = status.MPI_SOURCE;
    std::string bytes = receive_bytes(status);
    InFlight& flight = in_flight_[static_cast<size_t>(from)];
    switch (status.MPI_TAG) {
      case kProgress: {
        int64_t words[2] = {};
        if (bytes.size() == sizeof words) std::memcpy(words, bytes.data(), sizeof words);
        if (words[0] == flight.number) flight.done = words[1];
        report();
        return;
      }
      case kResult: {
        int64_t number = -1;
        if (bytes.size() >= sizeof number) std::memcpy(&number, bytes.data(), sizeof number);
        try {
          if (number != flight.number) throw internal_error("a result for a unit it was not given");
          MappedUnit mapped = deserialize_mapped_unit(std::string_view(bytes).substr(sizeof number));
          if (!(mapped.unit == plan_.units[static_cast<size_t>(number)].unit)) {
            throw internal_error("a result for another unit than the one it was given");
          }
          write(plan_.units[static_cast<size_t>(number)], std::move(mapped));
        } catch (const std::exception& e) {
          fail(verdict_from(e), "rank 0, writing what rank " + std::to_string(from) + " sent: ");
        }
        flight = {};
        break;
      }
      case kFailure: {
        int32_t kind = static_cast<int32_t>(ErrorKind::Internal);
        if (bytes.size() >= sizeof kind) std::memcpy(&kind, bytes.data(), sizeof kind);
        const std::string message = bytes.size() >= sizeof kind ? bytes.substr(sizeof kind) : bytes;
        fail(Verdict{exit_code_for(static_cast<ErrorKind>(kind)), static_cast<ErrorKind>(kind), message},
             "rank " + std::to_string(from) + " (host " + result_.hosts[static_cast<size_t>(from)] + ") failed on ");
        flight = {};
        break;
      }
      case kReady:
        break;
      default:
        fail(Verdict{1, ErrorKind::Internal, "message with unknown tag " + std::to_string(status.MPI_TAG)},
             "rank " + std::to_string(from) + ": ");
        return;
    }
    assign(from);  // a result, a failure or a first request: it is free
  }

  void assign(int worker) {
    if (failure_ || next_ >= plan_.units.size()) {
      send_assignment(Assignment{}, worker);
      --active_workers_;
      return;
    }
    const Assignment& a = plan_.units[next_++];
    in_flight_[static_cast<size_t>(worker)] = InFlight{a.number, 0};
    send_assignment(a, worker);
  }

  void map_one_here(const Assignment& a) {
    try {
      const UnitMapper& mapper = loaded_.mapper_for(a.job, request_.options);
      InFlight& flight = in_flight_[0];
      flight = InFlight{a.number, 0};
      MappedUnit mapped = mapper.map(a.unit, [&](int64_t done) {
        fault_.check(0, result_.units_decoded_here);
        flight.done = done;
        poll();  // hand out work and write results while this unit runs
        report();
      });
      ++result_.units_decoded_here;
      flight = {};
      write(a, std::move(mapped));
    } catch (const std::exception& e) {
      in_flight_[0] = {};
      fail(verdict_from(e), "rank 0 (host " + result_.hosts[0] + ") failed on " + map_unit_name(a.unit) + " of " +
                                loaded_.model_paths[static_cast<size_t>(a.job)] + ": ");
    }
  }

  // Queues the unit for the writer thread; counts it as done (a write that
  // fails stops the job, whose counts are then not reported).
  void write(const Assignment& a, MappedUnit mapped) {
    writer_.push(static_cast<size_t>(a.job), std::move(mapped));
    MapProgress& p = plan_.progress[static_cast<size_t>(a.job)];
    const int64_t vectors = plan_.unit_vectors[static_cast<size_t>(a.number)];
    p.vectors_done += vectors;
    ++p.layers_mapped;
    total_.vectors_done += vectors;
    ++total_.layers_mapped;
    report();
  }

  void check_writer() {
    if (failure_) return;
    if (const std::exception_ptr e = writer_.failure()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& error) {
        fail(verdict_from(error), "rank 0, writing the atlas: ");
      }
    }
  }

  void fail(Verdict v, const std::string& prefix) {
    if (failure_) return;  // the first failure is the one reported
    v.message = prefix + v.message;
    failure_ = v;
  }

  void report() const {
    if (!on_progress_) return;
    MapProgress shown = total_;
    for (const InFlight& f : in_flight_) shown.vectors_done += f.number >= 0 ? f.done : 0;
    on_progress_(shown);
  }

  const MpiContext& mpi_;
  const DistributedMapRequest& request_;
  LoadedJobs& loaded_;
  Plan& plan_;
  DistributedMapResult& result_;
  const DistributedProgress& on_progress_;
  const FaultSwitch& fault_;
  std::vector<InFlight> in_flight_;  // by rank; [0] is rank 0's own
  int active_workers_;
  size_t next_ = 0;
  MapProgress total_;
  std::optional<Verdict> failure_;
  AtlasWriterThread writer_;  // last: its thread stops (destructor) before the members it reads go
};

// When a rank dies outright (a node lost, SIGKILL) the launcher ends the
// job with SIGTERM before rank 0 can hear of it: rank 0 still says what that
// leaves. Only async-signal-safe calls: the text is made beforehand.
std::string& stopped_by_launcher_text() {
  static std::string text;
  return text;
}

extern "C" void on_launcher_stop(int) {
  const std::string& text = stopped_by_launcher_text();
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
  ::_exit(143);  // an atlas transaction in progress rolls back at the next open
}

void say_so_when_the_launcher_stops_the_job(const std::vector<MapJob>& jobs) {
  std::string atlases;
  for (const MapJob& j : jobs) atlases += (atlases.empty() ? "" : ", ") + j.atlas;
  stopped_by_launcher_text() =
      "neuronlens: error: rank 0: the MPI launcher stopped the job (interrupted, or a rank died: see the launcher's "
      "message); " + atlases + " keep" + (jobs.size() == 1 ? "s" : "") +
      " every unit finished before it; the same command, with any number of ranks, completes it\n";
  std::signal(SIGTERM, on_launcher_stop);
}

}  // namespace

MpiContext::MpiContext() {
  int provided = 0;
  // Funneled: only the main thread calls MPI (progress callbacks run on it,
  // between the decoder's OpenMP rounds).
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiContext::~MpiContext() { MPI_Finalize(); }

void agree_to_start(const MpiContext& mpi, const std::exception_ptr& failure) {
  std::optional<Verdict> mine;
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      mine = verdict_from(e);
    }
  }
  if (mpi.rank() != 0) {
    std::string report(sizeof(int32_t), '\0');
    const int32_t kind = mine ? static_cast<int32_t>(mine->kind) : -1;
    std::memcpy(report.data(), &kind, sizeof kind);
    put_string(report, host_name());
    put_string(report, mine ? mine->message : "");
    send_bytes(report, 0, kStart);
  } else {
    for (int r = 1; r < mpi.size(); ++r) {
      const std::string report = receive_bytes_from(r, kStart);
      int32_t kind = -1;
      if (report.size() >= sizeof kind) std::memcpy(&kind, report.data(), sizeof kind);
      size_t at = sizeof kind;
      const std::string host = get_string(report, at), message = get_string(report, at);
      if (!mine && kind >= 0) {
        const auto k = static_cast<ErrorKind>(kind);
        mine = Verdict{exit_code_for(k), k, "rank " + std::to_string(r) + " (host " + host + "): " + message};
      }
    }
  }
  const Verdict v = broadcast_verdict(mine.value_or(Verdict{}));
  if (v.code != 0) stop_on(v, mpi.rank());
}

DistributedMapResult run_distributed_map(const MpiContext& mpi, const DistributedMapRequest& request,
                                         const DistributedProgress& on_progress) {
  DistributedMapResult result;
  LoadedJobs loaded;
  loaded.jobs = agree_on_jobs(mpi, request);
  Plan plan = start(mpi, request, loaded, result);
  const FaultSwitch fault = FaultSwitch::from_environment();

  Verdict verdict;
  if (mpi.rank() == 0) {
    say_so_when_the_launcher_stops_the_job(loaded.jobs);
    try {
      Coordinator coordinator(mpi, request, loaded, plan, result, on_progress, fault);
      if (const std::optional<Verdict> failure = coordinator.run()) {
        verdict = *failure;
        verdict.message += " (the atlas keeps every unit finished before it; the same command, with any number of "
                           "ranks, completes it)";
      }
    } catch (const std::exception& e) {
      // The coordinator itself failed (not a unit): the others may be
      // waiting on it, so stop the whole job.
      std::fprintf(stderr, "neuronlens: internal error: rank 0: %s\n", verdict_from(e).message.c_str());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    // Every rank has stopped; build the token indexes (the others wait at
    // the final verdict).
    const auto started = Clock::now();
    for (auto& bulk : plan.bulk_writes) {
      try {
        bulk->finish();
      } catch (const std::exception& e) {
        if (verdict.code == 0) verdict = verdict_from(e);
      }
    }
    result.index_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::signal(SIGTERM, SIG_DFL);
    result.jobs = loaded.jobs;
    result.progress = plan.progress;
  } else {
    work(mpi, request, loaded, result, fault);
  }
  verdict = broadcast_verdict(verdict);
  if (verdict.code != 0) stop_on(verdict, mpi.rank());
  return result;
}

}  // namespace neuronlens
