// The CLI's name for a core parser's error: the core's messages name the text
// and what is wrong with it but no option, so the command puts the option in
// front ("--layers: layer 'x' is not a number").
#pragma once

#include <string>

#include "neuronlens/error.h"

namespace neuronlens::cli {

// Returns parse(), or rethrows its Error as "OPTION: message".
template <typename Parse>
auto for_option(const std::string& option, Parse parse) {
  try {
    return parse();
  } catch (const Error& e) {
    throw Error(e.kind(), option + ": " + e.what());
  }
}

}  // namespace neuronlens::cli
