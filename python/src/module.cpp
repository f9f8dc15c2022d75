// neuronlens._neuronlens: the extension module behind `import neuronlens`.
// Errors the library raises (neuronlens::Error) arrive in Python as
// neuronlens.Error, a ValueError, with the library's message.
#include <nanobind/nanobind.h>

#include "bindings.h"
#include "neuronlens/error.h"
#include "neuronlens/version.h"

NB_MODULE(_neuronlens, m) {
  namespace nb = nanobind;
  m.doc() = "neuronlens' C++ library; use the package neuronlens, which wraps this module.";
  m.attr("__version__") = NEURONLENS_VERSION_STRING;  // CMake's project version, as the CLI's
  nb::exception<neuronlens::Error> error(m, "Error", PyExc_ValueError);
  error.attr("__doc__") =
      "An error the library raises for bad input: a model file, a layer, kind, neuron or token, an option. The "
      "message says what was expected and what was found.";
  neuronlens::python::bind_model(m);
  neuronlens::python::bind_session(m);
  neuronlens::python::bind_atlas(m);
}
