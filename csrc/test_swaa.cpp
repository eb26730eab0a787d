// Standalone test of the C++ core, SWAA and bone-length projection (no Python): run by ctest and, under ASan/UBSan, by
// scripts/ci_sanitizers.sh. Exits non-zero on the first failed check.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "bones.hpp"
#include "swaa.hpp"

namespace {

int failures = 0;

#define CHECK(condition)                                                  \
  do {                                                                    \
    if (!(condition)) {                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

template <typename Function>
bool throws_invalid_argument(Function function) {
  try {
    function();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

// The definition, as in swaa_reference: add each window offset's rows to their frames, then divide.
template <typename T>
std::vector<T> reference_swaa(const std::vector<T>& windows, const synsp::SwaaShape& shape) {
  const int64_t frames = shape.num_frames(), channels = shape.channels;
  std::vector<T> sums(shape.output_size(), T(0));
  std::vector<T> counts(frames, T(0));
  for (int64_t offset = 0; offset < shape.window; ++offset) {
    for (int64_t k = 0; k < shape.num_windows; ++k) counts[k * shape.stride + offset] += T(1);
  }
  for (int64_t s = 0; s < shape.num_sequences; ++s) {
    for (int64_t offset = 0; offset < shape.window; ++offset) {
      for (int64_t k = 0; k < shape.num_windows; ++k) {
        const int64_t frame = k * shape.stride + offset;
        for (int64_t c = 0; c < channels; ++c) {
          sums[(s * frames + frame) * channels + c] +=
              windows[((s * shape.num_windows + k) * shape.window + offset) * channels + c];
        }
      }
    }
  }
  for (int64_t i = 0; i < shape.output_size(); ++i) sums[i] /= counts[(i / channels) % frames];
  return sums;
}

template <typename T>
std::vector<T> random_windows(const synsp::SwaaShape& shape, std::mt19937& rng) {
  std::normal_distribution<double> normal(0.0, 100.0);
  std::vector<T> windows(shape.input_size());
  for (T& value : windows) value = static_cast<T>(normal(rng));
  return windows;
}

template <typename T>
void test_batched_equals_reference(std::mt19937& rng) {
  std::uniform_int_distribution<int64_t> sequences(1, 3), windows_count(1, 30), window_size(1, 12), channels(1, 7);
  std::vector<synsp::SwaaShape> shapes;
  for (int trial = 0; trial < 200; ++trial) {
    synsp::SwaaShape shape{sequences(rng), windows_count(rng), window_size(rng), channels(rng), 1};
    shape.stride = std::uniform_int_distribution<int64_t>(1, shape.window)(rng);
    shapes.push_back(shape);
  }
  shapes.push_back({2, 5000, 8, 7, 1});  // large enough for two OpenMP threads
  shapes.push_back({3, 3001, 8, 33, 3});  // two threads, a split inside a sequence and a window
  shapes.push_back({0, 4, 8, 3, 2});     // no sequences: empty output
  for (const synsp::SwaaShape& shape : shapes) {
    const std::vector<T> windows = random_windows<T>(shape, rng);
    const std::vector<T> expected = reference_swaa(windows, shape);
    for (int threads : {1, 2}) {
      std::vector<T> out(shape.output_size(), std::numeric_limits<T>::quiet_NaN());
      synsp::swaa(windows.data(), out.data(), shape, threads);
      CHECK(out == expected);  // same summation order: bit-identical
    }
  }
}

void test_bad_shapes_throw() {
  std::vector<float> buffer(64), out(64);
  for (const synsp::SwaaShape& shape : std::vector<synsp::SwaaShape>{
           {1, 0, 4, 3, 1}, {1, 2, 0, 3, 1}, {1, 2, 4, 0, 1}, {-1, 2, 4, 3, 1}, {1, 2, 4, 3, 0}, {1, 2, 4, 3, 5},
           {1, std::numeric_limits<int64_t>::max() / 2, 4, 3, 4}}) {
    CHECK(throws_invalid_argument([&] { synsp::swaa(buffer.data(), out.data(), shape); }));
  }
}

void test_nan_reaches_only_its_frame() {
  const synsp::SwaaShape shape{1, 6, 4, 3, 2};
  std::vector<double> windows(shape.input_size(), 1.0);
  const int64_t k = 2, offset = 3, channel = 1;
  windows[(k * shape.window + offset) * shape.channels + channel] = std::nan("");
  std::vector<double> out(shape.output_size());
  synsp::swaa(windows.data(), out.data(), shape);
  for (int64_t i = 0; i < shape.output_size(); ++i) {
    const bool nan_expected = i == (k * shape.stride + offset) * shape.channels + channel;
    CHECK(std::isnan(out[i]) == nan_expected);
  }
}

// Replays a stream against its definition: after pushing windows 0..k, a frame's value is the mean
// of the pushed windows covering it; frames come out once each, in order, up to k + W - 1 - delay.
void test_streaming_matches_definition(std::mt19937& rng) {
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t window = std::uniform_int_distribution<int64_t>(1, 10)(rng);
    const int64_t channels = std::uniform_int_distribution<int64_t>(1, 5)(rng);
    std::uniform_int_distribution<int64_t> delay(0, window - 1);
    synsp::StreamingSwaa stream(window, channels, delay(rng));
    std::vector<std::vector<float>> pushed;
    int64_t next_frame = 0;
    auto check_ready = [&](int64_t last_frame) {
      CHECK(stream.first_ready() == next_frame);
      CHECK(stream.num_ready() == std::max<int64_t>(0, last_frame - next_frame + 1));
      for (int64_t i = 0; i < stream.num_ready(); ++i) {
        const int64_t frame = next_frame + i;
        int64_t count = 0;
        std::vector<double> sum(channels, 0.0);
        for (int64_t k = 0; k < static_cast<int64_t>(pushed.size()); ++k) {
          if (k > frame || frame >= k + window) continue;
          ++count;
          for (int64_t c = 0; c < channels; ++c) sum[c] += pushed[k][(frame - k) * channels + c];
        }
        CHECK(stream.ready_counts()[i] == count);
        for (int64_t c = 0; c < channels; ++c) {
          CHECK(std::abs(stream.ready_values()[i * channels + c] - sum[c] / count) <= 1e-9 * (1 + std::abs(sum[c])));
        }
      }
      next_frame = std::max(next_frame, last_frame + 1);
    };
    const int64_t pushes = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    for (int64_t k = 0; k < pushes; ++k) {
      if (rng() % 4 == 0) stream.set_emit_delay(delay(rng));
      pushed.push_back(random_windows<float>({1, 1, window, channels, 1}, rng));
      stream.push(pushed.back().data());
      check_ready(k + window - 1 - stream.emit_delay());
    }
    stream.flush();
    check_ready(pushes + window - 2);
    stream.flush();
    CHECK(stream.num_ready() == 0);
  }
}

void test_streaming_flush_equals_batched(std::mt19937& rng) {
  const synsp::SwaaShape shape{1, 25, 8, 51, 1};
  const std::vector<double> windows = random_windows<double>(shape, rng);
  std::vector<double> batched(shape.output_size());
  synsp::swaa(windows.data(), batched.data(), shape);
  synsp::StreamingSwaa stream(shape.window, shape.channels, shape.window - 1);
  std::vector<double> streamed;
  auto collect = [&] {
    streamed.insert(streamed.end(), stream.ready_values(), stream.ready_values() + stream.num_ready() * shape.channels);
  };
  for (int64_t k = 0; k < shape.num_windows; ++k) {
    stream.push(windows.data() + k * shape.window * shape.channels);
    collect();
  }
  stream.flush();
  collect();
  CHECK(streamed.size() == batched.size());
  for (size_t i = 0; i < std::min(streamed.size(), batched.size()); ++i) {
    CHECK(std::abs(streamed[i] - batched[i]) <= 1e-12 * (1 + std::abs(batched[i])));
  }
}

void test_streaming_validation_and_reset() {
  CHECK(throws_invalid_argument([] { synsp::StreamingSwaa(0, 3, 0); }));
  CHECK(throws_invalid_argument([] { synsp::StreamingSwaa(4, 0, 0); }));
  CHECK(throws_invalid_argument([] { synsp::StreamingSwaa(4, 3, 4); }));
  synsp::StreamingSwaa stream(4, 2, 3);
  CHECK(throws_invalid_argument([&] { stream.set_emit_delay(-1); }));
  CHECK(stream.emit_delay() == 3);
  stream.flush();
  CHECK(stream.num_ready() == 0);
  const std::vector<double> ones(8, 1.0);
  stream.push(ones.data());
  stream.push(ones.data());
  stream.reset();
  stream.push(ones.data());
  CHECK(stream.first_ready() == 0 && stream.num_ready() == 1 && stream.ready_counts()[0] == 1);
}

}  // namespace

// A 3-joint chain with wrong bone lengths: the sweeps restore the targets, keep a zero-length bone
// as it is, and refuse bones with joints outside the pose.
void test_bone_projection() {
  const synsp::Bone bones[] = {{0, 1}, {1, 2}};
  double chain[] = {0, 0, 0, 130, 0, 0, 130, 90, 0};  // bone lengths 130 and 90
  const double targets[] = {100, 120};
  synsp::project_bone_lengths(chain, 1, 3, 3, bones, 2, targets, 50);
  for (int b = 0; b < 2; ++b) {
    const double* p = chain + bones[b].parent * 3;
    const double* c = chain + bones[b].child * 3;
    CHECK(std::fabs(std::hypot(c[0] - p[0], c[1] - p[1], c[2] - p[2]) - targets[b]) < 1e-3);
  }
  float collapsed[] = {1, 2, 3, 1, 2, 3, 5, 5, 5};
  const float collapsed_targets[] = {10, 0};
  synsp::project_bone_lengths(collapsed, 1, 3, 3, bones, 1, collapsed_targets, 3);
  CHECK(collapsed[0] == 1 && collapsed[3] == 1 && collapsed[4] == 2 && collapsed[5] == 3);
  const synsp::Bone outside[] = {{0, 3}};
  CHECK(throws_invalid_argument([&] { synsp::project_bone_lengths(chain, 1, 3, 3, outside, 1, targets, 1); }));
  const synsp::Bone loop[] = {{1, 1}};
  CHECK(throws_invalid_argument([&] { synsp::project_bone_lengths(chain, 1, 3, 3, loop, 1, targets, 1); }));
}

int main() {
  std::mt19937 rng(1234);
  test_batched_equals_reference<float>(rng);
  test_batched_equals_reference<double>(rng);
  test_bad_shapes_throw();
  test_nan_reaches_only_its_frame();
  test_streaming_matches_definition(rng);
  test_streaming_flush_equals_batched(rng);
  test_streaming_validation_and_reset();
  test_bone_projection();
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return EXIT_FAILURE;
  }
  std::printf("test_swaa: all checks passed\n");
  return EXIT_SUCCESS;
}
