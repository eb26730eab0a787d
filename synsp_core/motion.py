"""Frame-rate conversion and small pose helpers shared by training, `synsp-refine --fps` and the nodes."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from synsp_core.skeletons import H36M17, Skeleton


def antialias_sigma(src_fps: float, dst_fps: float) -> float:
    """Std (in source frames) of the Gaussian low-pass applied before decimating: 0 when not downsampling.

    sigma = 0.5 * src_fps / dst_fps source frames. Its gain is 0.29 at the new Nyquist frequency
    dst_fps / 2, below 1e-4 above dst_fps, and 0.87 at dst_fps / 6 (5 Hz when going to 30 fps),
    where little of human motion's energy lies.
    """
    return 0.5 * src_fps / dst_fps if dst_fps < src_fps else 0.0


def resample(seq: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample a sequence (T, ...) from src_fps to dst_fps along its first (time) axis -> (T', ...).

    Output frame k is at time k / dst_fps (the first frames coincide), for every such time within
    the input, so T' = floor((T - 1) * dst_fps / src_fps) + 1. Values come from linear
    interpolation in time; when downsampling, the input is first low-passed with a Gaussian
    (see `antialias_sigma`) so that motion faster than the new Nyquist rate does not alias.
    Floating inputs keep their dtype.
    """
    seq = np.asarray(seq)
    if seq.ndim < 1 or seq.shape[0] == 0:
        raise ValueError(f"sequence must have at least one frame along axis 0, got shape {seq.shape}")
    if not (src_fps > 0 and dst_fps > 0):
        raise ValueError(f"frame rates must be positive, got src_fps={src_fps}, dst_fps={dst_fps}")
    dtype = seq.dtype if np.issubdtype(seq.dtype, np.floating) else np.float64
    x = seq.astype(np.float64)
    if src_fps == dst_fps:
        return x.astype(dtype)
    sigma = antialias_sigma(src_fps, dst_fps)
    if sigma > 0 and len(x) > 1:
        x = gaussian_filter1d(x, sigma, axis=0, mode="nearest")
    t = len(x)
    count = int(np.floor((t - 1) * dst_fps / src_fps + 1e-9)) + 1
    position = np.arange(count) * (src_fps / dst_fps)        # in source frames
    lo = np.minimum(np.floor(position).astype(np.int64), t - 1)
    hi = np.minimum(lo + 1, t - 1)
    w = (position - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return ((1.0 - w) * x[lo] + w * x[hi]).astype(dtype)


def resample_to_length(seq: np.ndarray, src_fps: float, dst_fps: float, length: int) -> np.ndarray:
    """`resample`, then cut or padded (the last frame held) to exactly `length` frames: the way
    back to a recording's own frames, whose last ones may lie past the resampled sequence's end."""
    out = resample(seq, src_fps, dst_fps)[:length]
    return np.concatenate([out, np.repeat(out[-1:], length - len(out), axis=0)]) if len(out) < length else out


def to_root_relative(poses: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """Subtract the root (pelvis) position of each frame: (..., J, D) -> (..., J, D)."""
    poses = np.asarray(poses)
    return poses - skeleton.root_position(poses)[..., None, :]
