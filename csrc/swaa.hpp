// Sliding-window average (SWAA, Fig. 4 of SynSP): merge overlapping window predictions.
//
// Window k of a sequence covers frames k*stride .. k*stride + W - 1, so N windows cover
// T = (N - 1) * stride + W frames; each frame's output is the mean of the rows of every window
// covering it. Plain C++17 with no Python: the pybind11 module synsp_core._swaa (bindings.cpp)
// and the standalone test (test_swaa.cpp) both build on this header.
#pragma once

#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define SYNSP_HOST_DEVICE __host__ __device__
#else
#define SYNSP_HOST_DEVICE
#endif

namespace synsp {

// A batch of S sequences of N windows of W frames x C channels, windows taken every `stride` frames.
// Input is contiguous (S, N, W, C), output contiguous (S, T, C).
struct SwaaShape {
  int64_t num_sequences = 1;  // S
  int64_t num_windows = 1;    // N
  int64_t window = 1;         // W, frames per window
  int64_t channels = 1;       // C, e.g. 17 joints x 3 = 51
  int64_t stride = 1;         // frames between window starts, in [1, W]

  SYNSP_HOST_DEVICE int64_t num_frames() const { return (num_windows - 1) * stride + window; }
  SYNSP_HOST_DEVICE int64_t input_size() const { return num_sequences * num_windows * window * channels; }
  SYNSP_HOST_DEVICE int64_t output_size() const { return num_sequences * num_frames() * channels; }
};

// Throws std::invalid_argument naming the problem: a dimension < 1 (S may be 0), a stride outside
// [1, W] (frames would be left uncovered), or sizes that overflow int64.
void check_shape(const SwaaShape& shape);

// The windows k = first..last (inclusive) that cover `frame`: k*stride <= frame < k*stride + W.
struct WindowRange {
  int64_t first;
  int64_t last;
};

SYNSP_HOST_DEVICE inline WindowRange windows_covering(int64_t frame, const SwaaShape& shape) {
  const int64_t first_start = frame + 1 - shape.window;  // earliest start of a covering window
  const int64_t first = first_start <= 0 ? 0 : (first_start + shape.stride - 1) / shape.stride;
  const int64_t last = frame / shape.stride;
  return {first, last < shape.num_windows - 1 ? last : shape.num_windows - 1};
}

// Batched SWAA on the CPU, parallel over output frames with OpenMP (each frame computes its own
// window range: no atomics, every input row is read once). Rows are summed newest window first,
// the order of swaa_reference, then divided by the count, so results equal the reference bit
// for bit. NaN or inf in a window propagates to exactly the frames that window covers.
// num_threads: 0 = OpenMP's default (OMP_NUM_THREADS or all cores); small inputs run on one thread.
void swaa(const float* windows, float* out, const SwaaShape& shape, int num_threads = 0);
void swaa(const double* windows, double* out, const SwaaShape& shape, int num_threads = 0);

// Batched SWAA on the GPU (swaa_cuda.cu, only when built with CUDA: SYNSP_HAS_CUDA).
// windows and out are device pointers on the current device, stream is a cudaStream_t
// (nullptr = legacy default stream). Same summation order as the CPU. Asynchronous; throws
// std::invalid_argument for a bad shape or host pointers, std::runtime_error on a CUDA error.
void swaa_cuda(const float* windows, float* out, const SwaaShape& shape, void* stream);
void swaa_cuda(const double* windows, double* out, const SwaaShape& shape, void* stream);

// Online SWAA for stride-1 windows, the node's per-frame path; the same semantics as
// StreamingSWAAReference in synsp_core/swaa.py (equal frame by frame, tested).
//
// Window k (the k-th push, from 0) covers frames k .. k + W - 1. After pushing window k, frames up
// to k + W - 1 - emit_delay are popped, each once, averaged over the windows seen so far.
// emit_delay = W - 1 waits for every covering window (W - 1 frames of latency); 0 emits the newest
// frame at once. A smaller delay pops the skipped frames at once, a larger one pauses output.
// Sums are float64 whatever the input type. No allocation after construction.
class StreamingSwaa {
 public:
  StreamingSwaa(int64_t window, int64_t channels, int64_t emit_delay);

  int64_t window() const { return window_; }
  int64_t channels() const { return channels_; }
  int64_t emit_delay() const { return emit_delay_; }
  void set_emit_delay(int64_t emit_delay);  // throws std::invalid_argument outside [0, W - 1]

  // Forget the stream; the next push is window 0.
  void reset();
  // Add one window's output, (W, C) row-major; the frames that became ready are then in ready_*.
  template <typename T>
  void push(const T* window_output);
  // Pop every frame still held (end of a sequence).
  void flush();

  // Frames popped by the last push or flush: indices first_ready() .. first_ready() + num_ready() - 1,
  // their means (num_ready x C, row-major) and how many windows each averaged.
  int64_t first_ready() const { return first_ready_; }
  int64_t num_ready() const { return static_cast<int64_t>(ready_counts_.size()); }
  const double* ready_values() const { return ready_values_.data(); }
  const int64_t* ready_counts() const { return ready_counts_.data(); }

 private:
  void pop_until(int64_t last_frame);

  int64_t window_, channels_, emit_delay_;
  std::vector<double> sums_;     // ring of W frames x C, slot = frame % W
  std::vector<int64_t> counts_;  // windows summed into each slot
  int64_t pushed_ = 0;           // windows pushed so far
  int64_t next_frame_ = 0;       // first frame not yet popped
  int64_t first_ready_ = 0;
  std::vector<double> ready_values_;
  std::vector<int64_t> ready_counts_;
};

}  // namespace synsp
