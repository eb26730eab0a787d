// pybind11 binding of the C++ core (SWAA, bone-length projection) as the private module
// synsp_core._swaa. Use synsp_core.swaa and synsp_core.bones rather than this module directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bones.hpp"
#include "swaa.hpp"

namespace py = pybind11;

namespace {

std::string shape_text(const py::array& array) {
  std::string text = "(";
  for (py::ssize_t d = 0; d < array.ndim(); ++d) text += (d ? ", " : "") + std::to_string(array.shape(d));
  return text + (array.ndim() == 1 ? ",)" : ")");
}

// Shape of a C-contiguous, aligned float32/float64 (..., N, W, C) array; leading dims become S.
synsp::SwaaShape windows_shape(const py::array& windows, int64_t stride) {
  if (windows.ndim() < 3) throw py::value_error("windows must be shaped (..., N, W, C), got shape " + shape_text(windows));
  if (!(windows.flags() & py::array::c_style)) throw py::value_error("windows must be C-contiguous");
  if (reinterpret_cast<std::uintptr_t>(windows.data()) % windows.itemsize() != 0) {
    throw py::value_error("windows must be aligned to its element size");
  }
  synsp::SwaaShape shape;
  const py::ssize_t rank = windows.ndim();
  shape.num_sequences = 1;
  for (py::ssize_t d = 0; d < rank - 3; ++d) shape.num_sequences *= windows.shape(d);
  shape.num_windows = windows.shape(rank - 3);
  shape.window = windows.shape(rank - 2);
  shape.channels = windows.shape(rank - 1);
  shape.stride = stride;
  synsp::check_shape(shape);
  return shape;
}

template <typename T>
py::array swaa_cpu(const py::array& windows, int64_t stride, int num_threads) {
  const synsp::SwaaShape shape = windows_shape(windows, stride);
  std::vector<py::ssize_t> out_shape(windows.shape(), windows.shape() + windows.ndim() - 3);
  out_shape.push_back(shape.num_frames());
  out_shape.push_back(shape.channels);
  py::array_t<T> out(out_shape);
  const T* input = static_cast<const T*>(windows.data());
  T* output = out.mutable_data();
  {
    py::gil_scoped_release release;
    synsp::swaa(input, output, shape, num_threads);
  }
  return out;
}

py::array swaa(const py::array& windows, int64_t stride, int num_threads) {
  if (windows.dtype().equal(py::dtype::of<float>())) return swaa_cpu<float>(windows, stride, num_threads);
  if (windows.dtype().equal(py::dtype::of<double>())) return swaa_cpu<double>(windows, stride, num_threads);
  throw py::type_error("windows must be float32 or float64 (native byte order), got " +
                       py::str(windows.dtype()).cast<std::string>());
}

// The C++ stream plus the Python type its frames are returned as (synsp_core.swaa.FinalFrame).
struct PyStreamingSwaa {
  synsp::StreamingSwaa stream;
  py::object frame_type;
};

// The frames popped by the last push or flush: [frame_type(index, mean (C,) float64, count), ...].
py::list ready_frames(const PyStreamingSwaa& self) {
  const synsp::StreamingSwaa& stream = self.stream;
  const py::ssize_t channels = stream.channels();
  py::list frames;
  for (int64_t i = 0; i < stream.num_ready(); ++i) {
    py::array_t<double> mean(channels);
    std::copy_n(stream.ready_values() + i * channels, channels, mean.mutable_data());
    frames.append(self.frame_type(stream.first_ready() + i, mean, stream.ready_counts()[i]));
  }
  return frames;
}

py::list push(PyStreamingSwaa& self, const py::array& window_output) {
  synsp::StreamingSwaa& stream = self.stream;
  if (window_output.ndim() != 2 || window_output.shape(0) != stream.window() ||
      window_output.shape(1) != stream.channels()) {
    throw py::value_error("window output must be shaped (" + std::to_string(stream.window()) + ", " +
                          std::to_string(stream.channels()) + "), got " + shape_text(window_output));
  }
  if (window_output.dtype().equal(py::dtype::of<float>()) && (window_output.flags() & py::array::c_style) &&
      reinterpret_cast<std::uintptr_t>(window_output.data()) % sizeof(float) == 0) {
    stream.push(static_cast<const float*>(window_output.data()));
  } else {
    const py::array_t<double, py::array::c_style | py::array::forcecast> as_double(window_output);
    stream.push(as_double.data());
  }
  return ready_frames(self);
}

// poses (N, J, D) and lengths (N, B) float64, bones (B, 2) int64 (parent, child) -> projected copy of poses.
py::array_t<double> project_bone_lengths(const py::array_t<double, py::array::c_style | py::array::forcecast>& poses,
                                         const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& bones,
                                         const py::array_t<double, py::array::c_style | py::array::forcecast>& lengths,
                                         int64_t iterations) {
  if (poses.ndim() != 3) throw py::value_error("poses must be shaped (N, J, D), got " + shape_text(poses));
  if (bones.ndim() != 2 || bones.shape(1) != 2) throw py::value_error("bones must be shaped (B, 2), got " + shape_text(bones));
  if (lengths.ndim() != 2 || lengths.shape(0) != poses.shape(0) || lengths.shape(1) != bones.shape(0)) {
    throw py::value_error("lengths must be shaped (N, B) = (" + std::to_string(poses.shape(0)) + ", " +
                          std::to_string(bones.shape(0)) + "), got " + shape_text(lengths));
  }
  py::array_t<double> out({poses.shape(0), poses.shape(1), poses.shape(2)});
  std::copy_n(poses.data(), poses.size(), out.mutable_data());
  static_assert(sizeof(synsp::Bone) == 2 * sizeof(int64_t), "Bone must be two packed int64");
  const auto* bone_pairs = reinterpret_cast<const synsp::Bone*>(bones.data());
  double* data = out.mutable_data();
  {
    py::gil_scoped_release release;
    synsp::project_bone_lengths(data, poses.shape(0), poses.shape(1), poses.shape(2), bone_pairs, bones.shape(0),
                                lengths.data(), iterations);
  }
  return out;
}

#ifdef SYNSP_HAS_CUDA
void swaa_cuda(std::uintptr_t windows, std::uintptr_t out, const std::string& dtype, int64_t num_sequences,
               int64_t num_windows, int64_t window, int64_t channels, int64_t stride, std::uintptr_t stream) {
  if (dtype != "float32" && dtype != "float64") throw py::type_error("dtype must be 'float32' or 'float64', got '" + dtype + "'");
  const synsp::SwaaShape shape{num_sequences, num_windows, window, channels, stride};
  auto* cuda_stream = reinterpret_cast<void*>(stream);
  py::gil_scoped_release release;
  if (dtype == "float32") {
    synsp::swaa_cuda(reinterpret_cast<const float*>(windows), reinterpret_cast<float*>(out), shape, cuda_stream);
  } else {
    synsp::swaa_cuda(reinterpret_cast<const double*>(windows), reinterpret_cast<double*>(out), shape, cuda_stream);
  }
}
#endif

// Seconds per StreamingSwaa::push of a (window, channels) float32 output in a pure C++ loop:
// the cost without the Python binding, for benchmarks/swaa.py.
double streaming_push_seconds(int64_t window, int64_t channels, int64_t pushes) {
  if (pushes < 1) throw py::value_error("pushes must be >= 1");
  synsp::StreamingSwaa stream(window, channels, window - 1);
  std::vector<float> output(window * channels);
  for (size_t i = 0; i < output.size(); ++i) output[i] = static_cast<float>(i % 97) * 0.25f;
  volatile double sink = 0.0;  // keeps the pushes from being optimised away
  py::gil_scoped_release release;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < pushes; ++i) {
    stream.push(output.data());
    sink = stream.ready_values()[0];
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  (void)sink;
  return elapsed.count() / static_cast<double>(pushes);
}

}  // namespace

PYBIND11_MODULE(_swaa, m) {
  m.doc() = "C++/CUDA core behind synsp_core.swaa (SWAA) and synsp_core.bones (bone-length projection); private.";
#ifdef SYNSP_HAS_CUDA
  m.attr("has_cuda") = true;
  m.def("swaa_cuda", &swaa_cuda, py::arg("windows_ptr"), py::arg("out_ptr"), py::arg("dtype"),
        py::arg("num_sequences"), py::arg("num_windows"), py::arg("window"), py::arg("channels"), py::arg("stride"),
        py::arg("stream"),
        "Batched SWAA on raw device pointers: windows (S, N, W, C) -> out (S, T, C), C-contiguous, "
        "on the current device, enqueued on the cudaStream_t `stream` (an int; 0 = default stream).");
#else
  m.attr("has_cuda") = false;
#endif
  m.def("swaa", &swaa, py::arg("windows"), py::arg("stride") = 1, py::arg("num_threads") = 0,
        "Batched SWAA on the CPU: C-contiguous float32/float64 (..., N, W, C) -> new (..., T, C) array. "
        "num_threads: 0 = OpenMP default.");
  m.def("project_bone_lengths", &project_bone_lengths, py::arg("poses"), py::arg("bones"), py::arg("lengths"),
        py::arg("iterations"),
        "Gauss-Seidel bone-length projection: poses (N, J, D), bones (B, 2) (parent, child), lengths (N, B) "
        "-> projected float64 copy of poses (see csrc/bones.hpp).");
  m.def("streaming_push_seconds", &streaming_push_seconds, py::arg("window"), py::arg("channels"),
        py::arg("pushes"), "Seconds per streaming push in a pure C++ loop (benchmark hook).");

  py::class_<PyStreamingSwaa>(m, "StreamingSwaa",
                              "Online stride-1 SWAA; push and flush return [frame_type(index, mean, count), ...].")
      .def(py::init([](int64_t window, int64_t channels, int64_t emit_delay, py::object frame_type) {
             return PyStreamingSwaa{synsp::StreamingSwaa(window, channels, emit_delay), std::move(frame_type)};
           }),
           py::arg("window"), py::arg("channels"), py::arg("emit_delay"), py::arg("frame_type"))
      .def_property_readonly("window", [](const PyStreamingSwaa& self) { return self.stream.window(); })
      .def_property_readonly("channels", [](const PyStreamingSwaa& self) { return self.stream.channels(); })
      .def_property(
          "emit_delay", [](const PyStreamingSwaa& self) { return self.stream.emit_delay(); },
          [](PyStreamingSwaa& self, int64_t emit_delay) { self.stream.set_emit_delay(emit_delay); })
      .def("reset", [](PyStreamingSwaa& self) { self.stream.reset(); })
      .def("push", &push, py::arg("window_output"))
      .def("flush", [](PyStreamingSwaa& self) {
        self.stream.flush();
        return ready_frames(self);
      });
}
