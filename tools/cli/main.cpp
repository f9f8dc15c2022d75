// neuronlens: read a language model's neurons straight from its weights.
// Exit codes: 0 success, 2 bad input (model file, argument), 1 internal error.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "commands.h"
#include "neuronlens/error.h"
#include "neuronlens/version.h"

int main(int argc, char** argv) {
  CLI::App app{"neuronlens: read a language model's neurons straight from its weights"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "neuronlens " + std::string(neuronlens::kVersion));
  std::vector<std::pair<CLI::App*, neuronlens::cli::Runner>> commands;
  auto add = [&](neuronlens::cli::Runner (*add_command)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    neuronlens::cli::Runner run = add_command(app);
    commands.emplace_back(app.get_subcommands({})[before], std::move(run));
  };
  add(neuronlens::cli::add_info_command);
  add(neuronlens::cli::add_map_command);
  add(neuronlens::cli::add_record_command);
  add(neuronlens::cli::add_find_command);
  add(neuronlens::cli::add_show_command);
  add(neuronlens::cli::add_compare_command);
  add(neuronlens::cli::add_generate_command);
  add(neuronlens::cli::add_probe_command);
  add(neuronlens::cli::add_lens_command);
  add(neuronlens::cli::add_attribute_command);
  add(neuronlens::cli::add_patch_command);
  add(neuronlens::cli::add_serve_command);
  add(neuronlens::cli::add_experiment_command);
  add(neuronlens::cli::add_edit_command);
  add(neuronlens::cli::add_tokenize_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  try {
    for (auto& [sub, run] : commands) {
      if (sub->parsed()) return run();
    }
  } catch (const neuronlens::Error& e) {
    // Exit 2: the caller can fix it (an argument or a file); exit 1: our fault.
    if (e.kind() == neuronlens::ErrorKind::Internal) {
      std::fprintf(stderr, "neuronlens: internal error: %s\n", e.what());
      return 1;
    }
    std::fprintf(stderr, "neuronlens: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "neuronlens: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "neuronlens: internal error: %s\n", e.what());
    return 1;
  }
  return 1;
}
