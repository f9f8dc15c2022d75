// Sub-commands of the `neuronlens` CLI. Each registers its options on the
// CLI11 app and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace neuronlens::cli {

using Runner = std::function<int()>;

Runner add_info_command(CLI::App& app);
Runner add_map_command(CLI::App& app);
Runner add_record_command(CLI::App& app);
Runner add_find_command(CLI::App& app);
Runner add_show_command(CLI::App& app);
Runner add_compare_command(CLI::App& app);
Runner add_generate_command(CLI::App& app);
Runner add_probe_command(CLI::App& app);
Runner add_lens_command(CLI::App& app);
Runner add_attribute_command(CLI::App& app);
Runner add_patch_command(CLI::App& app);
Runner add_serve_command(CLI::App& app);
Runner add_experiment_command(CLI::App& app);
Runner add_edit_command(CLI::App& app);
Runner add_tokenize_command(CLI::App& app);

}  // namespace neuronlens::cli
