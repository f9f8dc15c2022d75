// NumPy arrays over the library's std::vectors, without copying: the vector
// is moved into a capsule that the array owns, so it lives as long as the
// array (and any view of it) does.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace neuronlens::python {

namespace nb = nanobind;

template <class T>
using NumpyArray = nb::ndarray<nb::numpy, T>;

// Takes `values` (moved from) as the storage of an array of `shape`; the
// shape's product must equal values.size().
template <class T>
NumpyArray<T> numpy_from_vector(std::vector<T>&& values, std::initializer_list<size_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return NumpyArray<T>(owned->data(), shape, owner);
}

// A view of `values` owned by the Python object `owner` (the array keeps
// `owner` alive).
template <class T>
NumpyArray<T> numpy_view(const std::vector<T>& values, std::initializer_list<size_t> shape, nb::handle owner) {
  return NumpyArray<T>(const_cast<T*>(values.data()), shape, owner);
}

}  // namespace neuronlens::python
