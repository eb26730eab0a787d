"""Pose-sequence error metrics: MPJPE, PA-MPJPE, Accel error and worst-1% MPJPE.

Inputs are numpy-convertible arrays shaped (T, J, D) (one sequence) or (N, T, J, D) (N sequences
of equal length), D in {2, 3}, pred and gt of the same shape, all values finite. Errors come out in
the input's unit: mm for 3D poses in mm (the bundled data), pixels for 2D poses.

Root-relative: MPJPE, Accel and worst-1% first subtract, per frame, the root position (the mean of
the joints in `root`, default (0,) = H36M pelvis; COCO17 uses the hip mid-point (11, 12)) from
every joint of pred and of gt. A translation of a whole frame of pred therefore changes none of them.

Definitions, with e[t, j] = || (pred[t, j] - root_pred[t]) - (gt[t, j] - root_gt[t]) ||_2:

- MPJPE (mm): mean of e[t, j] over all frames t and all J joints (the root joints included;
  their error is 0 for a single-joint root).
- PA-MPJPE (mm): per frame, pred is aligned to gt by the similarity transform
  s * R @ x + t (R a proper rotation, det R = +1; s > 0 a uniform scale; t a translation) that
  minimises the squared joint distances (Umeyama / orthogonal Procrustes; a reflection found by the
  SVD is turned into the nearest rotation by flipping the sign of the weakest singular direction).
  PA-MPJPE is then MPJPE of the aligned pred, over all frames and joints. Alignment absorbs any
  translation, so the root does not matter here.
- Accel error (mm/frame^2): a[t, j] = || A_pred[t, j] - A_gt[t, j] ||_2 with the second difference
  A[t] = P[t] - 2 P[t + 1] + P[t + 2] of the root-relative poses, t = 0 .. T - 3. The value is the
  mean of a over its (T - 2) frames and J joints. With pad_like_smoothnet=True the T - 2 per-frame
  values get a zero at each end and the mean is taken over T frames (the SmoothNet evaluation code),
  i.e. padded = unpadded * (T - 2) / T. Needs T >= 3 frames.
- Worst-1% MPJPE (mm): per-frame MPJPE m[t] = mean_j e[t, j]; the mean of the k = ceil(0.01 * F)
  largest m[t] over all F frames (at least one frame, so F < 100 gives the maximum). This is
  SmoothNet's "MPJPE-1%" (the largest 1% of per-frame MPJPE).

For (N, T, J, D) inputs every metric pools the N * T frames (N * (T - 2) for Accel).
`evaluate_sequences` pools sequences of different lengths the same way: MPJPE and PA-MPJPE are
frame-weighted means, Accel is weighted by each sequence's T - 2 frames, and worst-1% ranks the
frames of all sequences together.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from synsp_core.skeletons import Skeleton, get_skeleton

WORST_FRACTION = 0.01
METRIC_NAMES = ("mpjpe", "pa_mpjpe", "accel", "worst1_mpjpe")


def check_pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """Validate pred/gt and return them as float64 arrays shaped (N, T, J, D)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: {pred.shape} vs {gt.shape}")
    if pred.ndim not in (3, 4):
        raise ValueError(f"poses must be shaped (T, J, D) or (N, T, J, D), got {pred.shape}")
    if pred.shape[-1] not in (2, 3):
        raise ValueError(f"poses must have D = 2 or 3 coordinates, got D = {pred.shape[-1]}")
    if 0 in pred.shape:
        raise ValueError(f"poses must be non-empty, got shape {pred.shape}")
    for name, poses in (("pred", pred), ("gt", gt)):
        if not np.isfinite(poses).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if pred.ndim == 3:
        pred, gt = pred[None], gt[None]
    return pred, gt


def root_relative(poses: np.ndarray, root: Sequence[int] = (0,)) -> np.ndarray:
    """Subtract, per frame, the mean of the `root` joints from every joint of (..., J, D) poses."""
    num_joints = poses.shape[-2]
    root = tuple(int(r) for r in root)
    if not root or any(not 0 <= r < num_joints for r in root):
        raise ValueError(f"root joints must be a non-empty tuple of indices in [0, {num_joints}), got {root}")
    return poses - poses[..., list(root), :].mean(axis=-2, keepdims=True)


def mpjpe_per_frame(pred, gt, root: Sequence[int] = (0,)) -> np.ndarray:
    """Root-relative mean joint error of each frame: (N, T) in the input unit (mm)."""
    pred, gt = check_pair(pred, gt)
    return np.linalg.norm(root_relative(pred, root) - root_relative(gt, root), axis=-1).mean(axis=-1)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each frame of pred (..., J, D) to gt by the best rotation, uniform scale and translation."""
    pred_mean, gt_mean = pred.mean(axis=-2, keepdims=True), gt.mean(axis=-2, keepdims=True)
    x, y = pred - pred_mean, gt - gt_mean
    # maximise trace(R^T x^T y) over rotations R (row vectors: aligned = s * x @ R + gt_mean)
    u, sing, vt = np.linalg.svd(np.swapaxes(x, -1, -2) @ y)
    sign = np.sign(np.linalg.det(u @ vt))
    sign = np.where(sign == 0, 1.0, sign)  # det is +-1 up to rounding; 0 never happens, guard anyway
    flip = np.ones(sing.shape)
    flip[..., -1] = sign                    # reflection -> nearest rotation
    rotation = (u * flip[..., None, :]) @ vt
    x_norm2 = (x ** 2).sum(axis=(-2, -1))
    scale = (sing * flip).sum(axis=-1) / np.where(x_norm2 > 0, x_norm2, 1.0)  # 0 for a collapsed pred
    return scale[..., None, None] * (x @ rotation) + gt_mean


def pa_mpjpe_per_frame(pred, gt) -> np.ndarray:
    """Mean joint error of each frame after similarity Procrustes alignment: (N, T) in mm."""
    pred, gt = check_pair(pred, gt)
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(axis=-1)


def accel_error_per_frame(pred, gt, root: Sequence[int] = (0,)) -> np.ndarray:
    """Mean joint acceleration error of each second-difference frame: (N, T - 2) in mm/frame^2."""
    pred, gt = check_pair(pred, gt)
    if pred.shape[1] < 3:
        raise ValueError(f"Accel error needs at least 3 frames, got T = {pred.shape[1]}")
    accel_pred = np.diff(root_relative(pred, root), n=2, axis=1)
    accel_gt = np.diff(root_relative(gt, root), n=2, axis=1)
    return np.linalg.norm(accel_pred - accel_gt, axis=-1).mean(axis=-1)


def worst_fraction_mean(values, fraction: float = WORST_FRACTION) -> float:
    """Mean of the ceil(fraction * n) largest values (at least one) of any-shaped `values`."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("worst_fraction_mean needs at least one value")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    k = max(1, math.ceil(fraction * values.size))
    return float(np.partition(values, values.size - k)[values.size - k:].mean())


def mpjpe(pred, gt, root: Sequence[int] = (0,)) -> float:
    """Root-relative MPJPE (mm) over all frames and joints."""
    return float(mpjpe_per_frame(pred, gt, root).mean())


def pa_mpjpe(pred, gt) -> float:
    """Procrustes-aligned MPJPE (mm) over all frames and joints."""
    return float(pa_mpjpe_per_frame(pred, gt).mean())


def accel_error(pred, gt, root: Sequence[int] = (0,), pad_like_smoothnet: bool = False) -> float:
    """Root-relative Accel error (mm/frame^2); pad_like_smoothnet averages over T instead of T - 2."""
    per_frame = accel_error_per_frame(pred, gt, root)
    if pad_like_smoothnet:
        num_frames = per_frame.shape[1] + 2
        return float(per_frame.sum(axis=1).mean() / num_frames)
    return float(per_frame.mean())


def worst_mpjpe(pred, gt, root: Sequence[int] = (0,), fraction: float = WORST_FRACTION) -> float:
    """Mean of the worst `fraction` of per-frame root-relative MPJPE values (mm)."""
    return worst_fraction_mean(mpjpe_per_frame(pred, gt, root), fraction)


def resolve_root(skeleton: Skeleton | str | None, num_joints: int) -> tuple[int, ...]:
    """Root joints of a layout (checked against the pose's joint count); None means joint 0."""
    if skeleton is None:
        return (0,)
    if isinstance(skeleton, str):
        skeleton = get_skeleton(skeleton)
    if skeleton.num_joints != num_joints:
        raise ValueError(f"skeleton {skeleton.name!r} has {skeleton.num_joints} joints, poses have {num_joints}")
    return skeleton.root


def evaluate_sequences(pairs: Iterable[tuple[np.ndarray, np.ndarray]],
                       skeleton: Skeleton | str | None = None) -> dict[str, float]:
    """Pool (pred, gt) pairs of any lengths (each (T, J, D) or (N, T, J, D), T >= 3) into one score.

    Returns {"mpjpe", "pa_mpjpe", "accel", "worst1_mpjpe"} as floats: frame-weighted means, and
    the worst 1% ranked over the frames of all sequences together. skeleton gives the root joints.
    """
    per_frame = {"mpjpe": [], "pa_mpjpe": [], "accel": []}
    for pred, gt in pairs:
        pred, gt = check_pair(pred, gt)
        root = resolve_root(skeleton, pred.shape[2])
        per_frame["mpjpe"].append(mpjpe_per_frame(pred, gt, root).ravel())
        per_frame["pa_mpjpe"].append(pa_mpjpe_per_frame(pred, gt).ravel())
        per_frame["accel"].append(accel_error_per_frame(pred, gt, root).ravel())
    if not per_frame["mpjpe"]:
        raise ValueError("evaluate_sequences needs at least one (pred, gt) pair")
    pooled = {name: np.concatenate(values) for name, values in per_frame.items()}
    return {
        "mpjpe": float(pooled["mpjpe"].mean()),
        "pa_mpjpe": float(pooled["pa_mpjpe"].mean()),
        "accel": float(pooled["accel"].mean()),
        "worst1_mpjpe": worst_fraction_mean(pooled["mpjpe"]),
    }


def evaluate_sequence(pred, gt, skeleton: Skeleton | str | None = None) -> dict[str, float]:
    """All four metrics of one (T, J, D) or (N, T, J, D) pair (T >= 3), root from `skeleton`."""
    return evaluate_sequences([(pred, gt)], skeleton)
