"""Sliding-window average (SWAA, Fig. 4 of SynSP): merge overlapping window predictions.

A model refines windows of W frames taken every `stride` frames; window k covers frames
k*stride .. k*stride + W - 1 of a sequence of T = (N - 1) * stride + W frames. Each frame's
output is the mean of the predictions of every window that covers it.

`swaa_reference` is the plain numpy/torch definition every faster backend is tested against.
`StreamingSWAA` is the online form used by the node: push one window's output per new frame,
get back the frames that are ready.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:
    import torch
except ImportError:  # numpy-only use
    torch = None


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


@dataclass
class FinalFrame:
    """A frame popped by StreamingSWAA: its index in the stream, mean prediction and window count."""

    index: int
    value: np.ndarray  # (C,)
    count: int


class StreamingSWAA:
    """Online SWAA for stride-1 windows.

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
