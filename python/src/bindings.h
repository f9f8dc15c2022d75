// The parts of the extension module, one per concept, called by module.cpp.
#pragma once

#include <nanobind/nanobind.h>

namespace neuronlens::python {

void bind_model(nanobind::module_& m);    // Model, Decoding
void bind_session(nanobind::module_& m);  // Session: forward, cache, hooks, generate
void bind_atlas(nanobind::module_& m);    // the atlas, map, find, compare
void bind_record(nanobind::module_& m);   // activation records: record, evidence, agreement

}  // namespace neuronlens::python
