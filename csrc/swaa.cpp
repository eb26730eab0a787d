// CPU SWAA: batched (OpenMP over output frames) and streaming. See swaa.hpp.
#include "swaa.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#include <pthread.h>

#include <atomic>
#endif

namespace synsp {

namespace {

// Below this many input elements one thread is faster than waking a team (a few microseconds).
constexpr int64_t kMinElementsPerThread = 1 << 15;

bool product_fits(int64_t a, int64_t b) { return b == 0 || a <= std::numeric_limits<int64_t>::max() / b; }

// mean[0, Block) = sum of `count` rows, newest first, / count. The rows covering a frame lie
// `step` elements apart, going back from the newest; the Block sums stay in registers.
template <int64_t Block, typename T>
inline void average_block(const T* newest, int64_t step, int64_t count, T* mean) {
  T sums[Block];
  for (int64_t c = 0; c < Block; ++c) sums[c] = newest[c];
  const T* row = newest;
  for (int64_t k = 1; k < count; ++k) {
    row -= step;
    for (int64_t c = 0; c < Block; ++c) sums[c] += row[c];
  }
  const T divisor = static_cast<T>(count);
  for (int64_t c = 0; c < Block; ++c) mean[c] = sums[c] / divisor;
}

template <typename T>
inline void prefetch(const T* data, int64_t size) {
#if defined(__GNUC__)
  const char* bytes = reinterpret_cast<const char*>(data);
  for (int64_t offset = 0; offset < size * int64_t(sizeof(T)); offset += 64) __builtin_prefetch(bytes + offset);
#else
  (void)data;
  (void)size;
#endif
}

// Averages frames [begin, end) of one sequence, windows (N, W, C) -> out (T, C): each frame sums
// its covering windows' rows newest first, the reference's order, 16 channels at a time. The
// rows of a frame are W - 1 windows apart, so the next window is prefetched as each one starts.
template <typename T>
void average_sequence_frames(const T* windows, T* out, const SwaaShape& shape, int64_t begin, int64_t end) {
  constexpr int64_t kBlock = 16;
  const int64_t channels = shape.channels, window_size = shape.window * channels;
  const int64_t step = window_size - shape.stride * channels;  // from window k's row of a frame to window k - 1's
  WindowRange range = windows_covering(begin, shape);
  for (int64_t frame = begin; frame < end; ++frame) {
    const int64_t count = range.last - range.first + 1;
    const T* newest = windows + range.last * window_size + (frame - range.last * shape.stride) * channels;
    T* mean = out + frame * channels;
    int64_t c = 0;
    for (; c + kBlock <= channels; c += kBlock) average_block<kBlock>(newest + c, step, count, mean + c);
    for (; c < channels; ++c) average_block<1>(newest + c, step, count, mean + c);
    // Next frame: windows start and end at least one frame apart, so at most one comes and one goes.
    if (range.last + 1 < shape.num_windows && (range.last + 1) * shape.stride == frame + 1) {
      ++range.last;
      if (range.last + 1 < shape.num_windows) prefetch(windows + (range.last + 1) * window_size, window_size);
    }
    if (range.first * shape.stride + shape.window == frame + 1) ++range.first;
  }
}

// Averages rows [begin, end) of the flattened (S * T) output frames.
template <typename T>
void average_frames(const T* windows, T* out, const SwaaShape& shape, int64_t begin, int64_t end) {
  const int64_t frames = shape.num_frames();
  for (int64_t sequence = begin / frames; sequence * frames < end; ++sequence) {
    const int64_t first = std::max(begin - sequence * frames, int64_t(0));
    const int64_t last = std::min(end - sequence * frames, frames);
    average_sequence_frames(windows + sequence * shape.num_windows * shape.window * shape.channels,
                            out + sequence * frames * shape.channels, shape, first, last);
  }
}

#ifdef _OPENMP
// GNU OpenMP's thread pool does not survive fork(): a forked child (a torch DataLoader worker, a
// multiprocessing pool) that opens a parallel region after its parent did hangs. Children run on
// one thread, without any OpenMP call.
std::atomic<bool> in_forked_child{false};
const int fork_handler_registered = pthread_atfork(nullptr, nullptr, [] { in_forked_child = true; });
#endif

int threads_for(int requested, int64_t input_elements) {
#ifdef _OPENMP
  if (in_forked_child) return 1;
  const int64_t available = requested > 0 ? requested : omp_get_max_threads();
  const int64_t useful = input_elements / kMinElementsPerThread;
  return static_cast<int>(std::max<int64_t>(1, std::min(available, useful)));
#else
  (void)requested;
  (void)input_elements;
  return 1;
#endif
}

template <typename T>
void swaa_cpu(const T* windows, T* out, const SwaaShape& shape, int num_threads) {
  check_shape(shape);
  const int64_t rows = shape.num_sequences * shape.num_frames();
  const int threads = threads_for(num_threads, shape.input_size());
  if (threads == 1) {  // no OpenMP region at all: cheap for small inputs
    average_frames(windows, out, shape, 0, rows);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const int64_t team = omp_get_num_threads(), id = omp_get_thread_num();
    average_frames(windows, out, shape, rows * id / team, rows * (id + 1) / team);
  }
#endif
}

}  // namespace

void check_shape(const SwaaShape& shape) {
  if (shape.num_sequences < 0 || shape.num_windows < 1 || shape.window < 1 || shape.channels < 1) {
    throw std::invalid_argument("SWAA needs at least one window of at least one frame and channel, got S=" +
                                std::to_string(shape.num_sequences) + " N=" + std::to_string(shape.num_windows) +
                                " W=" + std::to_string(shape.window) + " C=" + std::to_string(shape.channels));
  }
  if (shape.stride < 1 || shape.stride > shape.window) {
    throw std::invalid_argument("stride must be in [1, W=" + std::to_string(shape.window) +
                                "] so every frame is covered, got " + std::to_string(shape.stride));
  }
  const bool fits = product_fits(shape.num_windows - 1, shape.stride) &&
                    product_fits(shape.num_sequences, shape.num_windows) &&
                    product_fits(shape.num_sequences * shape.num_windows, shape.window) &&
                    product_fits(shape.num_sequences * shape.num_windows * shape.window, shape.channels) &&
                    product_fits(shape.num_sequences, shape.num_frames()) &&
                    product_fits(shape.num_sequences * shape.num_frames(), shape.channels);
  if (!fits) throw std::invalid_argument("SWAA shape too large: element counts overflow int64");
}

void swaa(const float* windows, float* out, const SwaaShape& shape, int num_threads) {
  swaa_cpu(windows, out, shape, num_threads);
}

void swaa(const double* windows, double* out, const SwaaShape& shape, int num_threads) {
  swaa_cpu(windows, out, shape, num_threads);
}

StreamingSwaa::StreamingSwaa(int64_t window, int64_t channels, int64_t emit_delay)
    : window_(window), channels_(channels), emit_delay_(0) {
  if (window < 1 || channels < 1) {
    throw std::invalid_argument("window and channels must be >= 1, got " + std::to_string(window) + ", " +
                                std::to_string(channels));
  }
  set_emit_delay(emit_delay);
  sums_.resize(window * channels);
  counts_.resize(window);
  ready_values_.reserve(window * channels);
  ready_counts_.reserve(window);
  reset();
}

void StreamingSwaa::set_emit_delay(int64_t emit_delay) {
  if (emit_delay < 0 || emit_delay > window_ - 1) {
    throw std::invalid_argument("emit_delay must be in [0, " + std::to_string(window_ - 1) + "] frames, got " +
                                std::to_string(emit_delay));
  }
  emit_delay_ = emit_delay;
}

void StreamingSwaa::reset() {
  std::fill(sums_.begin(), sums_.end(), 0.0);
  std::fill(counts_.begin(), counts_.end(), 0);
  pushed_ = 0;
  next_frame_ = 0;
  first_ready_ = 0;
  ready_values_.clear();
  ready_counts_.clear();
}

template <typename T>
void StreamingSwaa::push(const T* window_output) {
  const int64_t newest = pushed_ + window_ - 1;
  const int64_t freed = newest % window_;  // held frame pushed_ - 1, which no later window covers
  std::fill(sums_.begin() + freed * channels_, sums_.begin() + (freed + 1) * channels_, 0.0);
  counts_[freed] = 0;
  for (int64_t offset = 0; offset < window_; ++offset) {
    const int64_t slot = (pushed_ + offset) % window_;
    double* sum = sums_.data() + slot * channels_;
    const T* row = window_output + offset * channels_;
    for (int64_t c = 0; c < channels_; ++c) sum[c] += static_cast<double>(row[c]);
    counts_[slot] += 1;
  }
  pushed_ += 1;
  pop_until(newest - emit_delay_);
}

template void StreamingSwaa::push<float>(const float*);
template void StreamingSwaa::push<double>(const double*);

void StreamingSwaa::flush() {
  ready_values_.clear();
  ready_counts_.clear();
  first_ready_ = next_frame_;
  if (pushed_ > 0) pop_until(pushed_ + window_ - 2);
}

void StreamingSwaa::pop_until(int64_t last_frame) {
  ready_values_.clear();
  ready_counts_.clear();
  first_ready_ = next_frame_;
  for (int64_t frame = next_frame_; frame <= last_frame; ++frame) {
    const int64_t slot = frame % window_;
    const double count = static_cast<double>(counts_[slot]);
    const double* sum = sums_.data() + slot * channels_;
    for (int64_t c = 0; c < channels_; ++c) ready_values_.push_back(sum[c] / count);
    ready_counts_.push_back(counts_[slot]);
  }
  next_frame_ = std::max(next_frame_, last_frame + 1);
}

}  // namespace synsp
