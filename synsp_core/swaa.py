"""Sliding-window average (SWAA, Fig. 4 of SynSP): merge overlapping window predictions.

A model refines windows of W frames taken every `stride` frames; window k covers frames
k*stride .. k*stride + W - 1 of a sequence of T = (N - 1) * stride + W frames. Each frame's
output is the mean of the predictions of every window that covers it.

`swaa` is the fast entry point: it dispatches to the compiled extension synsp_core._swaa
(C++ with OpenMP, or the CUDA kernel for CUDA tensors; see docs/swaa.md).
`swaa_reference` is the plain numpy/torch definition every faster backend is tested against.
`StreamingSWAA` is the online form used by the node: push one window's output per new frame,
get back the frames that are ready. It runs in C++ when the extension is built and is then
equal, frame by frame, to the pure-Python `StreamingSWAAReference`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

try:
    import torch
except ImportError:  # numpy-only use
    torch = None

try:
    from synsp_core import _swaa
except ImportError:  # not built (e.g. PYTHONPATH use of a source tree): pure-Python fallbacks
    _swaa = None

BACKENDS = ("auto", "cpu", "cuda", "numpy")


def check_windows(windows, stride: int) -> tuple[int, int, int]:
    """Validate a (..., N, W, C) window stack and stride; return (N, W, C)."""
    if windows.ndim < 3:
        raise ValueError(f"windows must be shaped (..., N, W, C), got shape {tuple(windows.shape)}")
    n, w, c = windows.shape[-3:]
    if n == 0 or w == 0 or c == 0:
        raise ValueError(f"windows must be non-empty, got shape {tuple(windows.shape)}")
    if not 1 <= stride <= w:
        raise ValueError(f"stride must be in [1, W={w}] so every frame is covered, got {stride}")
    return n, w, c


def num_frames(num_windows: int, window: int, stride: int) -> int:
    """T = (N - 1) * stride + W."""
    return (num_windows - 1) * stride + window


def swaa_reference(windows, stride: int = 1):
    """(..., N, W, C) numpy array or torch tensor -> (..., T, C) of the same type and dtype.

    For each offset w in the window, every window's w-th frame is added to the frames
    w, w + stride, ...; counts follow the same pattern, so any stride and any N >= 1 work.
    """
    n, w, c = check_windows(windows, stride)
    t = num_frames(n, w, stride)
    lead = windows.shape[:-3]
    if torch is not None and isinstance(windows, torch.Tensor):
        sums = windows.new_zeros(*lead, t, c)
        counts = windows.new_zeros(t, 1)
    else:
        windows = np.asarray(windows)
        sums = np.zeros((*lead, t, c), dtype=np.result_type(windows.dtype, np.float32))
        counts = np.zeros((t, 1), dtype=sums.dtype)
    last = (n - 1) * stride + 1
    for offset in range(w):
        sums[..., offset:offset + last:stride, :] += windows[..., :, offset, :]
        counts[offset:offset + last:stride] += 1
    return sums / counts


def swaa(windows, stride: int = 1, backend: str = "auto"):
    """(..., N, W, C) numpy array or torch tensor -> (..., T, C) of the same type, dtype and device.

    backend:
      "cpu"   C++ with OpenMP threads (OMP_NUM_THREADS) on numpy arrays and CPU tensors.
      "cuda"  the CUDA kernel on CUDA tensors, enqueued on the current torch stream.
      "numpy" swaa_reference: any dtype and device, differentiable.
      "auto"  "cuda" for CUDA tensors, "cpu" otherwise; "numpy" for tensors that need gradients,
              for dtypes other than float32/float64, and, with one warning, when the extension
              (or its CUDA part, for CUDA tensors) is not built.
    "cpu" and "cuda" take float32 or float64 only (TypeError otherwise) and are not differentiable
    (ValueError for a tensor that requires grad while grad mode is on). C-contiguous input is used
    without a copy; other layouts are copied to C order first. Results equal swaa_reference bit for
    bit; NaN and inf propagate to exactly the frames their window rows cover.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    is_tensor = torch is not None and isinstance(windows, torch.Tensor)
    if not is_tensor:
        windows = np.asarray(windows)
    n, w, c = check_windows(windows, stride)
    if backend == "auto":
        backend = _auto_backend(windows, is_tensor)
    if backend == "numpy":
        return swaa_reference(windows, stride)
    if _swaa is None:
        raise RuntimeError(f"backend={backend!r} needs the compiled extension synsp_core._swaa, which is not built: "
                           "run `pip install --no-build-isolation -e .` (see docs/swaa.md)")
    if is_tensor and windows.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"backend={backend!r} is not differentiable; use backend='numpy' or torch.no_grad()")
    if not _is_float32_or_64(windows, is_tensor):
        raise TypeError(f"backend={backend!r} takes float32 or float64 windows, got {windows.dtype}")
    if backend == "cuda":
        if not (is_tensor and windows.is_cuda):
            where = f"a tensor on {windows.device}" if is_tensor else "a numpy array"
            raise ValueError(f"backend='cuda' needs a CUDA tensor, got {where}")
        if not _swaa.has_cuda:
            raise RuntimeError("synsp_core._swaa was built without CUDA (no nvcc at build time, or SYNSP_CUDA=0)")
        return _swaa_cuda(windows.detach().contiguous(), n, w, c, stride)
    if is_tensor:
        if windows.device.type != "cpu":
            raise ValueError(f"backend='cpu' needs a numpy array or a CPU tensor, got a tensor on {windows.device}")
        return torch.from_numpy(_swaa.swaa(windows.detach().contiguous().numpy(), stride))
    return _swaa.swaa(np.require(windows, requirements=("C_CONTIGUOUS", "ALIGNED")), stride)


def _is_float32_or_64(windows, is_tensor: bool) -> bool:
    if is_tensor:
        return windows.dtype in (torch.float32, torch.float64)
    return windows.dtype in (np.dtype(np.float32), np.dtype(np.float64))  # native byte order only


_warned = set()


def _fall_back_to_reference(reason: str) -> str:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"synsp_core.swaa: {reason}; using the slower swaa_reference (see docs/swaa.md)",
                      RuntimeWarning, stacklevel=3)
    return "numpy"


def _auto_backend(windows, is_tensor: bool) -> str:
    if is_tensor and windows.requires_grad and torch.is_grad_enabled():
        return "numpy"  # the reference is differentiable
    if not _is_float32_or_64(windows, is_tensor) or (is_tensor and windows.device.type not in ("cpu", "cuda")):
        return "numpy"
    if _swaa is None:
        return _fall_back_to_reference("the extension synsp_core._swaa is not built")
    if is_tensor and windows.is_cuda:
        return "cuda" if _swaa.has_cuda else _fall_back_to_reference("synsp_core._swaa was built without CUDA")
    return "cpu"


def _swaa_cuda(windows, n: int, w: int, c: int, stride: int):
    """The kernel on a contiguous CUDA tensor, on its device's current stream; no copies."""
    out = torch.empty((*windows.shape[:-3], num_frames(n, w, stride), c), dtype=windows.dtype, device=windows.device)
    with torch.cuda.device(windows.device):
        stream = torch.cuda.current_stream().cuda_stream
        _swaa.swaa_cuda(windows.data_ptr(), out.data_ptr(), str(windows.dtype).removeprefix("torch."),
                        windows.numel() // (n * w * c), n, w, c, stride, stream)
    return out


@dataclass
class FinalFrame:
    """A frame popped by StreamingSWAA: its index in the stream, mean prediction and window count."""

    index: int
    value: np.ndarray  # (C,)
    count: int


class StreamingSWAAReference:
    """Online SWAA for stride-1 windows, in Python: the definition StreamingSWAA is tested against.

    Window k (the k-th push, from 0) covers frames k .. k + W - 1. After pushing window k,
    frames up to k + W - 1 - emit_delay are popped, each once, averaged over the windows seen
    so far: emit_delay = W - 1 waits until every window covering a frame is in (best quality,
    W - 1 frames of latency); emit_delay = 0 emits the newest frame at once (causal, one window).
    emit_delay may change between pushes: a smaller delay pops the frames it skipped over at
    once, a larger one pauses output until the stream catches up. Nothing is lost either way.
    """

    def __init__(self, window: int, channels: int, emit_delay: int | None = None):
        if window < 1 or channels < 1:
            raise ValueError(f"window and channels must be >= 1, got {window}, {channels}")
        self.window, self.channels = window, channels
        self.emit_delay = window - 1 if emit_delay is None else emit_delay
        self.reset()

    @property
    def emit_delay(self) -> int:
        return self._emit_delay

    @emit_delay.setter
    def emit_delay(self, value: int) -> None:
        if not 0 <= value <= self.window - 1:
            raise ValueError(f"emit_delay must be in [0, {self.window - 1}] frames, got {value}")
        self._emit_delay = int(value)

    def reset(self) -> None:
        """Forget the stream; the next push is window 0."""
        self._sums = np.zeros((self.window, self.channels), dtype=np.float64)  # ring, slot = frame % W
        self._counts = np.zeros(self.window, dtype=np.int64)
        self._pushed = 0      # windows pushed so far
        self._next_frame = 0  # first frame not yet popped

    def push(self, window_output) -> list[FinalFrame]:
        """Add one window's (W, C) output; return the frames that became ready, oldest first."""
        out = np.asarray(window_output, dtype=np.float64)
        if out.shape != (self.window, self.channels):
            raise ValueError(f"window output must be shaped {(self.window, self.channels)}, got {out.shape}")
        k, w = self._pushed, self.window
        newest = k + w - 1
        slot = newest % w                 # held frame k - 1, which no later window covers
        self._sums[slot] = 0.0
        self._counts[slot] = 0
        slots = (k + np.arange(w)) % w
        self._sums[slots] += out
        self._counts[slots] += 1
        self._pushed += 1
        return self._pop_until(newest - self._emit_delay)

    def flush(self) -> list[FinalFrame]:
        """Pop every frame still held (end of a sequence)."""
        if self._pushed == 0:
            return []
        return self._pop_until(self._pushed + self.window - 2)

    def _pop_until(self, last: int) -> list[FinalFrame]:
        ready = []
        for f in range(self._next_frame, last + 1):
            slot = f % self.window
            ready.append(FinalFrame(f, self._sums[slot] / self._counts[slot], int(self._counts[slot])))
        self._next_frame = max(self._next_frame, last + 1)
        return ready


class StreamingSWAACpp:
    """StreamingSWAAReference's API and semantics, computed in C++ (synsp_core._swaa).

    Sums are float64 as in the reference, so every frame, value and count is equal; a push costs
    a few microseconds (docs/swaa.md). emit_delay takes integers only.
    """

    def __init__(self, window: int, channels: int, emit_delay: int | None = None):
        if _swaa is None:
            raise RuntimeError("StreamingSWAACpp needs the compiled extension synsp_core._swaa, which is not built")
        delay = window - 1 if emit_delay is None else emit_delay
        self._stream = _swaa.StreamingSwaa(window, channels, delay, FinalFrame)

    @property
    def window(self) -> int:
        return self._stream.window

    @property
    def channels(self) -> int:
        return self._stream.channels

    @property
    def emit_delay(self) -> int:
        return self._stream.emit_delay

    @emit_delay.setter
    def emit_delay(self, value: int) -> None:
        self._stream.emit_delay = value

    def reset(self) -> None:
        """Forget the stream; the next push is window 0."""
        self._stream.reset()

    def push(self, window_output) -> list[FinalFrame]:
        """Add one window's (W, C) output; return the frames that became ready, oldest first."""
        return self._stream.push(np.asarray(window_output))

    def flush(self) -> list[FinalFrame]:
        """Pop every frame still held (end of a sequence)."""
        return self._stream.flush()


# The node's streaming SWAA: C++ when the extension is built, else the Python reference.
StreamingSWAA = StreamingSWAACpp if _swaa is not None else StreamingSWAAReference
