// neuronlens._neuronlens: the extension module behind `import neuronlens`.
// Errors the library raises (neuronlens::Error) arrive in Python as
// neuronlens.Error, a ValueError, with the library's message and its kind
// ("bad_input", "bad_file" or "internal") as the attribute `kind`.
#include <nanobind/nanobind.h>

#include "bindings.h"
#include "neuronlens/error.h"
#include "neuronlens/version.h"

namespace {

const char* error_kind_name(neuronlens::ErrorKind kind) {
  switch (kind) {
    case neuronlens::ErrorKind::BadInput: return "bad_input";
    case neuronlens::ErrorKind::BadFile: return "bad_file";
    case neuronlens::ErrorKind::Internal: return "internal";
  }
  return "internal";
}

}  // namespace

NB_MODULE(_neuronlens, m) {
  namespace nb = nanobind;
  m.doc() = "neuronlens' C++ library; use the package neuronlens, which wraps this module.";
  m.attr("__version__") = NEURONLENS_VERSION_STRING;  // CMake's project version, as the CLI's
  nb::exception<neuronlens::Error> error(m, "Error", PyExc_ValueError);
  error.attr("__doc__") =
      "An error the library raises for bad input: a model file, a layer, kind, neuron or token, an option. The "
      "message says what was expected and what was found. `kind` says whose fault it is: 'bad_input' (an "
      "argument), 'bad_file' (a model, atlas or vocabulary file) or 'internal' (neuronlens itself).";
  error.attr("kind") = "bad_input";  // the class default; every raised instance sets its own
  // Registered after nb::exception's own translator, so it is tried first.
  nb::register_exception_translator(
      [](const std::exception_ptr& thrown, void* type_ptr) {
        try {
          std::rethrow_exception(thrown);
        } catch (const neuronlens::Error& e) {
          auto* type = static_cast<PyObject*>(type_ptr);
          nb::object instance = nb::steal(PyObject_CallFunction(type, "s", e.what()));
          if (!instance.is_valid()) return;  // the constructor's own Python error stands
          instance.attr("kind") = error_kind_name(e.kind());
          PyErr_SetObject(type, instance.ptr());
        }
      },
      error.ptr());
  neuronlens::python::bind_model(m);
  neuronlens::python::bind_session(m);
  neuronlens::python::bind_atlas(m);
  neuronlens::python::bind_record(m);
}
