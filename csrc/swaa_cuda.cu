// GPU SWAA: one thread per output element (sequence, frame, channel). Neighbouring threads read
// neighbouring channels of the same window row, so loads and stores are coalesced. See swaa.hpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "swaa.hpp"

namespace synsp {

namespace {

constexpr int kThreadsPerBlock = 256;
constexpr int64_t kMaxBlocks = 1 << 20;  // the grid-stride loop covers larger outputs

template <typename T>
__global__ void swaa_kernel(const T* __restrict__ windows, T* __restrict__ out, SwaaShape shape) {
  const int64_t total = shape.output_size(), frames = shape.num_frames(), channels = shape.channels;
  const int64_t window_size = shape.window * channels;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t channel = i % channels, row = i / channels;
    const int64_t frame = row % frames, sequence = row / frames;
    const T* column = windows + sequence * shape.num_windows * window_size + channel;
    const WindowRange range = windows_covering(frame, shape);
    T sum = column[range.last * window_size + (frame - range.last * shape.stride) * channels];
    for (int64_t k = range.last - 1; k >= range.first; --k) {
      sum += column[k * window_size + (frame - k * shape.stride) * channels];
    }
    out[i] = sum / static_cast<T>(range.last - range.first + 1);
  }
}

void throw_on_error(cudaError_t error, const char* what) {
  if (error != cudaSuccess) throw std::runtime_error(std::string("swaa_cuda: ") + what + ": " + cudaGetErrorString(error));
}

// Rejects host pointers and pointers to another device: the kernel would fault and poison the context.
void check_device_pointer(const void* pointer, const char* name) {
  cudaPointerAttributes attributes{};
  throw_on_error(cudaPointerGetAttributes(&attributes, pointer), "cudaPointerGetAttributes");
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    throw std::invalid_argument(std::string("swaa_cuda: ") + name + " is not CUDA device memory");
  }
  int device = 0;
  throw_on_error(cudaGetDevice(&device), "cudaGetDevice");
  if (attributes.device != device) {
    throw std::invalid_argument(std::string("swaa_cuda: ") + name + " is on device " +
                                std::to_string(attributes.device) + ", the current device is " + std::to_string(device));
  }
}

template <typename T>
void launch(const T* windows, T* out, const SwaaShape& shape, void* stream) {
  check_shape(shape);
  const int64_t total = shape.output_size();
  if (total == 0) return;  // S = 0: nothing to launch
  check_device_pointer(windows, "windows");
  check_device_pointer(out, "out");
  const int64_t blocks = std::min<int64_t>((total + kThreadsPerBlock - 1) / kThreadsPerBlock, kMaxBlocks);
  swaa_kernel<T><<<static_cast<unsigned>(blocks), kThreadsPerBlock, 0, static_cast<cudaStream_t>(stream)>>>(
      windows, out, shape);
  throw_on_error(cudaGetLastError(), "kernel launch");
}

}  // namespace

void swaa_cuda(const float* windows, float* out, const SwaaShape& shape, void* stream) {
  launch(windows, out, shape, stream);
}

void swaa_cuda(const double* windows, double* out, const SwaaShape& shape, void* stream) {
  launch(windows, out, shape, stream);
}

}  // namespace synsp
