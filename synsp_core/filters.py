"""Classical pose-sequence smoothers, the baselines SynSP is compared against.

Every filter is a callable `(T, J, D) -> (T, J, D)` over a whole sequence (poses in any unit, mm
for the bundled data), smoothing each joint coordinate independently along the frame axis. The
output dtype is the input's floating dtype (float64 for integer input). `latency_frames` is the
number of future frames a filter needs before frame t is final: 0 for the causal One-Euro filter,
the half-width for the centred ones; the evaluation table reports it.

Short sequences never crash (T >= 1): Savitzky-Golay shrinks its window to the largest odd length
<= T (and its polynomial order to window - 1 if needed), moving average and Gaussian handle the
edges as documented on each class. Build one by name with `make_filter("savgol", window=9)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter


def check_poses(poses) -> np.ndarray:
    """Validate a (T, J, D) sequence (T >= 1, finite) and return it as a float array."""
    poses = np.asarray(poses)
    if poses.ndim != 3:
        raise ValueError(f"poses must be shaped (T, J, D), got {poses.shape}")
    if poses.shape[0] == 0:
        raise ValueError("poses must have at least one frame, got T = 0")
    poses = poses.astype(np.result_type(poses.dtype, np.float32), copy=False)
    if not np.isfinite(poses).all():
        raise ValueError("poses contain NaN or infinite values")
    return poses


def check_odd_window(window: int) -> None:
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd number of frames >= 1, got {window}")


@dataclass(frozen=True)
class OneEuroFilter:
    """One-Euro filter (Casiez et al., CHI 2012): causal, adaptive-cutoff low-pass.

    Per coordinate x_t: dx_t = (x_t - xhat_{t-1}) * fps, dxhat_t = lowpass(dx_t; d_cutoff),
    cutoff_t = min_cutoff + beta * |dxhat_t|, xhat_t = lowpass(x_t; cutoff_t), with
    lowpass(v; fc) = a * v + (1 - a) * previous, a = 1 / (1 + fps / (2 pi fc)). The first frame
    passes through unchanged. min_cutoff and d_cutoff in Hz, beta in Hz per (unit/s), e.g. Hz/(mm/s);
    lower min_cutoff = less jitter, higher beta = less lag on fast motion.
    """

    fps: float
    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self):
        if not (self.fps > 0 and self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0):
            raise ValueError(f"One-Euro needs fps, min_cutoff, d_cutoff > 0 and beta >= 0, got {self}")

    @property
    def latency_frames(self) -> int:
        return 0

    def smoothing_factor(self, cutoff_hz):
        """Exponential-smoothing weight of the new sample for a cutoff in Hz."""
        return 1.0 / (1.0 + self.fps / (2.0 * math.pi * cutoff_hz))

    def __call__(self, poses) -> np.ndarray:
        poses = check_poses(poses)
        x = poses.astype(np.float64)
        out = np.empty_like(x)
        out[0] = x_hat = x[0]
        dx_hat = np.zeros_like(x[0])
        alpha_d = self.smoothing_factor(self.d_cutoff)
        for t in range(1, len(x)):
            dx = (x[t] - x_hat) * self.fps
            dx_hat = alpha_d * dx + (1.0 - alpha_d) * dx_hat
            alpha = self.smoothing_factor(self.min_cutoff + self.beta * np.abs(dx_hat))
            out[t] = x_hat = alpha * x[t] + (1.0 - alpha) * x_hat
        return out.astype(poses.dtype)


@dataclass(frozen=True)
class SavGolFilter:
    """Savitzky-Golay: least-squares polynomial of order `polyorder` over a centred odd `window`.

    scipy.signal.savgol_filter along time, mode 'interp' (the edge frames use the polynomial fit to
    the first / last window). For T < window the window shrinks to the largest odd length <= T and
    polyorder to at most window - 1 (T = 1 or 2: the output equals the input).
    """

    window: int = 9
    polyorder: int = 2

    def __post_init__(self):
        check_odd_window(self.window)
        if not 0 <= self.polyorder < self.window:
            raise ValueError(f"polyorder must be in [0, window={self.window}), got {self.polyorder}")

    @property
    def latency_frames(self) -> int:
        return self.window // 2

    def __call__(self, poses) -> np.ndarray:
        poses = check_poses(poses)
        num_frames = len(poses)
        window = min(self.window, num_frames if num_frames % 2 else num_frames - 1)
        polyorder = min(self.polyorder, window - 1)
        return savgol_filter(poses, window, polyorder, axis=0, mode="interp").astype(poses.dtype)


@dataclass(frozen=True)
class GaussianFilter:
    """Gaussian smoothing with standard deviation `sigma` frames (scipy gaussian_filter1d).

    The kernel is cut at `truncate` sigmas: half-width int(truncate * sigma + 0.5) frames.
    Edges repeat the first / last frame (mode 'nearest'), which works for any T >= 1.
    """

    sigma: float = 2.0
    truncate: float = 4.0

    def __post_init__(self):
        if not (self.sigma > 0 and self.truncate > 0):
            raise ValueError(f"sigma and truncate must be > 0, got {self.sigma}, {self.truncate}")

    @property
    def latency_frames(self) -> int:
        return int(self.truncate * self.sigma + 0.5)

    def __call__(self, poses) -> np.ndarray:
        poses = check_poses(poses)
        return gaussian_filter1d(poses, self.sigma, axis=0, mode="nearest", truncate=self.truncate)


@dataclass(frozen=True)
class MovingAverageFilter:
    """Centred moving average over an odd `window` of frames.

    At the edges the window is cut to the frames that exist: frame t averages frames
    max(0, t - window // 2) .. min(T - 1, t + window // 2), so no frame is invented.
    """

    window: int = 5

    def __post_init__(self):
        check_odd_window(self.window)

    @property
    def latency_frames(self) -> int:
        return self.window // 2

    def __call__(self, poses) -> np.ndarray:
        poses = check_poses(poses)
        num_frames, half = len(poses), self.window // 2
        cumsum = np.concatenate([np.zeros((1, *poses.shape[1:])), np.cumsum(poses, axis=0, dtype=np.float64)])
        frames = np.arange(num_frames)
        lo, hi = np.maximum(frames - half, 0), np.minimum(frames + half + 1, num_frames)
        means = (cumsum[hi] - cumsum[lo]) / (hi - lo)[:, None, None]
        return means.astype(poses.dtype)


FILTERS = {
    "one_euro": OneEuroFilter,
    "savgol": SavGolFilter,
    "gaussian": GaussianFilter,
    "moving_average": MovingAverageFilter,
}


def make_filter(name: str, **params):
    """Build a filter from FILTERS by name, e.g. make_filter("one_euro", fps=120, min_cutoff=1.0)."""
    try:
        cls = FILTERS[name]
    except KeyError:
        raise ValueError(f"unknown filter {name!r}; known: {sorted(FILTERS)}") from None
    try:
        return cls(**params)
    except TypeError as err:  # missing or unknown parameter
        raise ValueError(f"bad parameters for filter {name!r}: {err}") from None
