// ember/extension.h: what every source built by ember.utils.cpp_extension starts with.
//
// pybind11 (with numpy arrays and STL conversions), `namespace py`, and:
//   ember::array<T>        a C-contiguous array of T; numpy arrays, ember CPU tensors and
//                          lists convert to it (no copy when dtype and layout already match,
//                          so writing through mutable_data() then writes into the caller's
//                          buffer; otherwise into a converted temporary)
//   ember::empty_like(a)   a new uninitialised array of a's shape
//   ember::empty<T>(shape) a new uninitialised array of the given shape
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

namespace py = pybind11;

namespace ember {

template <typename T>
using array = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
array<T> empty_like(const array<T>& a) {
    return array<T>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

template <typename T>
array<T> empty(const std::vector<py::ssize_t>& shape) {
    return array<T>(shape);
}

}  // namespace ember
