"""SWAA speed: C++ (1 and 2 threads) vs the numpy reference vs the official conv2d trick vs a
plain Python loop, against the machine's measured memory bandwidth; streaming push cost; the
CUDA kernel when a GPU is present. Figures go into docs/swaa.md.

    python benchmarks/swaa.py                  # T = 100,000 frames, W = 8, C = 51, stride 1

Times are medians over --repeats runs. GB/s counts the bytes SWAA must move at least: every
window element read once plus every output element written once.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from synsp_core import _swaa
from synsp_core.swaa import StreamingSWAA, StreamingSWAAReference, num_frames, swaa_reference


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up: page faults, caches, thread pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_bandwidth_gbs(num_bytes: int, repeats: int) -> dict[str, float]:
    """Memory bandwidth as a large copy moves it, (read + write bytes) / s: numpy (1 core), torch (2 threads)."""
    source = np.random.default_rng(0).random(num_bytes // 8)
    target = np.empty_like(source)
    results = {"numpy copy, 1 thread": 2 * num_bytes / median_seconds(lambda: np.copyto(target, source), repeats) / 1e9}
    torch.set_num_threads(2)
    source_t, target_t = torch.from_numpy(source), torch.from_numpy(target)
    results["torch copy_, 2 threads"] = 2 * num_bytes / median_seconds(lambda: target_t.copy_(source_t), repeats) / 1e9
    return results


def conv2d_swaa(windows: torch.Tensor) -> torch.Tensor:
    """The official SynSP code's trick: SWAA sums as a conv2d with an anti-diagonal W x W kernel.

    Each channel becomes a (1, N, W) image; padding the N axis by W - 1 makes output row t the sum
    of windows[t - j, j] over j, the frame's window predictions. The counts are then assumed to be
    1, 2, .., W - 1 at the ends and W in the middle, so this is only correct for stride 1 and at
    least W - 1 windows (checked against the reference in main()).
    """
    n, w, c = windows.shape
    image = windows.permute(2, 0, 1).unsqueeze(1)  # (C, 1, N, W)
    kernel = torch.eye(w, dtype=windows.dtype).flip(0)[None, None]  # (1, 1, W, W), ones where i + j = W - 1
    sums = F.conv2d(image, kernel, padding=(w - 1, 0))[:, 0, :, 0].T  # (T, C)
    counts = torch.full((n + w - 1, 1), float(w), dtype=windows.dtype)
    ramp = torch.arange(1, w, dtype=windows.dtype)[:, None]
    counts[: w - 1], counts[n:] = ramp, ramp.flip(0)
    return sums / counts


def python_loop_swaa(windows: np.ndarray) -> np.ndarray:
    """Stride-1 SWAA frame by frame in a Python loop, adding the covering windows' rows one by one."""
    n, w, c = windows.shape
    out = np.empty((n + w - 1, c), dtype=windows.dtype)
    for t in range(n + w - 1):
        first, last = max(0, t - w + 1), min(n - 1, t)
        total = np.zeros(c, dtype=windows.dtype)
        for k in range(last, first - 1, -1):
            total += windows[k, t - k]
        out[t] = total / (last - first + 1)
    return out


def push_seconds(stream, outputs: np.ndarray, repeats: int) -> float:
    """Seconds per push of one (W, C) window output, through the stream's Python API."""
    def run():
        stream.reset()
        for output in outputs:
            stream.push(output)
    return median_seconds(run, repeats) / len(outputs)


def cuda_section(n: int, w: int, c: int, repeats: int) -> None:
    """Kernel time and GB/s for one sequence and for 100 at once, vs a device-to-device copy."""
    def gpu_seconds(function):
        function()
        torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            function()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times)

    big = torch.empty(2**30 // 4, device="cuda")
    copy_gbs = 2 * big.numel() * 4 / gpu_seconds(lambda: big.clone()) / 1e9
    del big
    print(f"\nCUDA ({torch.cuda.get_device_name()}): device copy bandwidth {copy_gbs:.0f} GB/s")
    for sequences in (1, 100):
        windows = torch.randn(sequences, n, w, c, device="cuda")
        t = num_frames(n, w, 1)
        out = torch.empty(sequences, t, c, device="cuda")
        stream = torch.cuda.current_stream().cuda_stream
        seconds = gpu_seconds(lambda: _swaa.swaa_cuda(windows.data_ptr(), out.data_ptr(), "float32",
                                                      sequences, n, w, c, 1, stream))
        moved = (windows.numel() + out.numel()) * 4
        print(f"  kernel, {sequences:3d} x {t:,} frames: {seconds * 1e3:8.3f} ms  {moved / seconds / 1e9:7.0f} GB/s "
              f"({moved / seconds / 1e9 / copy_gbs:.0%} of copy)")
        del windows, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100_000, help="T, output frames")
    parser.add_argument("--window", type=int, default=8, help="W, frames per window")
    parser.add_argument("--channels", type=int, default=51, help="C, 17 joints x 3")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--loop-frames", type=int, default=2_000, help="frames for the (slow) Python loop; scaled to T")
    parser.add_argument("--pushes", type=int, default=20_000, help="pushes per streaming measurement")
    args = parser.parse_args()

    w, c = args.window, args.channels
    n = args.frames - w + 1
    windows = np.random.default_rng(0).normal(size=(n, w, c)).astype(np.float32)
    moved = (windows.size + args.frames * c) * 4
    print(f"SWAA of N = {n:,} windows, W = {w}, C = {c}, stride 1 -> T = {args.frames:,} frames, float32; "
          f"{moved / 1e6:.1f} MB to move")
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"extension CUDA: {_swaa.has_cuda}")

    bandwidth = copy_bandwidth_gbs(256 * 2**20, args.repeats)
    for name, gbs in bandwidth.items():
        print(f"memory bandwidth ({name}, 256 MiB): {gbs:.1f} GB/s")
    bound_gbs = max(bandwidth.values())

    reference = swaa_reference(windows, 1)
    for threads in (1, 2):
        np.testing.assert_array_equal(_swaa.swaa(windows, 1, threads), reference)
    as_tensor = torch.from_numpy(windows)
    np.testing.assert_allclose(conv2d_swaa(as_tensor).numpy(), reference, rtol=1e-5, atol=1e-5)
    loop_windows = windows[: args.loop_frames - w + 1]
    np.testing.assert_allclose(python_loop_swaa(loop_windows), swaa_reference(loop_windows, 1), rtol=1e-6)

    timings = {}
    for threads in (1, 2):
        timings[f"C++ (_swaa), {threads} thread{'s' * (threads > 1)}"] = median_seconds(
            lambda: _swaa.swaa(windows, 1, threads), args.repeats)
    timings["numpy reference (swaa_reference)"] = median_seconds(lambda: swaa_reference(windows, 1), args.repeats)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        timings[f"conv2d trick (torch), {threads} thread{'s' * (threads > 1)}"] = median_seconds(
            lambda: conv2d_swaa(as_tensor), args.repeats)
    loop_seconds = median_seconds(lambda: python_loop_swaa(loop_windows), max(1, args.repeats // 3))
    timings[f"Python loop (timed on {args.loop_frames:,} frames, scaled)"] = loop_seconds * args.frames / args.loop_frames

    numpy_seconds = timings["numpy reference (swaa_reference)"]
    print(f"\n{'method':52s} {'median ms':>10s} {'vs numpy':>9s} {'GB/s':>7s} {'of bound':>9s}")
    for name, seconds in timings.items():
        gbs = moved / seconds / 1e9
        print(f"{name:52s} {seconds * 1e3:10.2f} {numpy_seconds / seconds:8.2f}x {gbs:7.2f} {gbs / bound_gbs:8.0%}")
    print(f"memory-bandwidth bound: {moved / (bound_gbs * 1e9) * 1e3:.2f} ms at {bound_gbs:.1f} GB/s")

    outputs = np.random.default_rng(1).normal(size=(args.pushes, w, c)).astype(np.float32)
    print(f"\nstreaming, W = {w}, C = {c}, emit_delay = W - 1, float32 window outputs, per push:")
    streams = {
        "StreamingSWAA (C++ through pybind11)": StreamingSWAA(w, c),
        "StreamingSWAAReference (pure Python)": StreamingSWAAReference(w, c),
    }
    for name, stream in streams.items():
        print(f"  {name:48s} {push_seconds(stream, outputs, args.repeats) * 1e6:7.2f} us")
    pure = statistics.median(_swaa.streaming_push_seconds(w, c, 200_000) for _ in range(args.repeats))
    print(f"  {'pure C++ loop (no Python)':48s} {pure * 1e6:7.2f} us")

    if torch.cuda.is_available() and _swaa.has_cuda:
        cuda_section(n, w, c, args.repeats)
    else:
        print("\nCUDA: skipped (no CUDA device here, or the extension was built without CUDA)")


if __name__ == "__main__":
    main()
