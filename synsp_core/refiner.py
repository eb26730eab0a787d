"""Offline refinement of whole recordings: every stride-1 window through the model, then SWAA.

    from synsp_core import Refiner
    refiner = Refiner.from_pretrained()           # shipped weights, best available backend
    refined = refiner.refine(poses)               # (T, J, 3) or (V, T, J, 3), mm
    refined, fused = refiner.refine_views(views)  # (V, T, J, 3) -> per view and views averaged

After SWAA, in this order (the first and last offline only: online they would cost frames of
latency, and the node's emit_delay already trades latency for smoothness), each measured on the
transfer matrix (docs/training.md) and switchable for ablation:
1. smoothing (`smoothing`): a Gaussian over time whose std goes from SMOOTH_SIGMA[0] frames where
   the input is clean to SMOOTH_SIGMA[1] where it is noisy (`input_jitter_mm`, between NOISE_MM),
   so i.i.d. noise is smoothed as a tuned filter would, and nearly clean motion is not blurred
   (the jitter: the frame-to-frame part of the input's residual from the model's output, so that
   the model's own smooth error on fast motion does not count as noise);
2. 3D: the bone-length stage (synsp_core.bones: the person's bone lengths, a robust mean over
   the whole recording's fused output, with several views of their mean along the fused output's
   bones, every output pose projected onto them; the node uses a
   running estimate instead; `bone_lengths=False` turns it off); on a nearly clean recording
   (POSE_BONES_NOISE_MM: estimator-like errors measure from about 12 mm and look like pose
   dependence to the fit), each bone's length may also follow the pose where the input shows it
   does (`bones.pose_dependence`: conventions whose joints are not on rigid bones);
3. the multi-view floor (`agreement_bound`): the fused pose stays within about one expected error
   of the classical estimate (mean of views + Gaussian filter), that error measured by the views'
   own disagreement (`bound_by_view_agreement`), half of one where the views' errors are white and
   small (`agreement_k`), then projected on the bone lengths again (the classical estimate's
   bones are noisy), both projections per bone only as far as the views show it rigid
   (`bone_rigidity`). Not in the SynSP paper: learned corrections
   carry a few mm of their own error, more than a plain average has when the views agree;
4. the white-noise floor (`white_blend`, any number of views): where the input's errors are white
   (`whiteness`: each bone's length varies no more than its own white noise explains; structured
   errors, a drifting bias or swaps, stretch bones for many frames), every output is blended with
   a Gaussian filter of the views' mean, the filter's width and the model's share both chosen per
   recording by Stein's unbiased risk estimate of the root-relative error (`sure_blend`; noise
   levels per view, joint and axis, `noise_levels_mm`, as a depth-heavy estimator's are; the
   model's response from one extra pass on the input plus a draw of that noise). Under white noise
   that estimate needs no ground truth, so the blend is about as good as the better of the two,
   or better: on nearly clean, fast motion the model's own error (5-8 mm) is more than a filter leaves.
   Estimator-like errors and triangulated detections read as structured and are left to the model;
5. structured errors (`smoothing`, any number of views, offline): where the input's bones stretch
   beyond their white noise (`bone_stretch_mm`: a drifting bias, bursts, swaps), the model takes
   most of those errors out but follows some, more the larger they are; every output is smoothed
   by a Gaussian that grows with their size for the views' mean and never takes more than about a
   third of that size out of the output (`structured_sigma`; validation, 30 fps, on average: the
   transfer matrix's estimator-like errors about 1 frame on one view, none on four; the same x 2
   about 3 on one view, 1 on four). Not in the SynSP paper: at 1.5-2x those errors, one view, the
   model alone was 17-21% better than the best filter in MPJPE but 20-41% worse in Accel
   (docs/training.md).

Every frame is first centred on the root's path smoothed over ROOT_PATH_SIGMA frames (`root_path`;
the path added back after SWAA); where the input's mean noise level against that output is above
CLEAN_RECORDING_MM[0], it is refined again without, the two blended linearly up to
CLEAN_RECORDING_MM[1] (`cleanliness`; noisy input costs two passes). Measured on a fast test clip
(soccer_1) and the walk of tests/data: 5 mm of i.i.d. noise per coordinate 10.3 mm, the
estimator-like errors 15.5 (the model follows their slow parts), 20 mm 34.2.
The training motion is in the pelvis frame, so the model takes a root that moves
within its window for noise: on people walking through a room (world frame, 11 of the extra CMU
takes at 1.1 m/s, Human3.6M convention, nearly clean input, 1 view) it gave 9.14 mm against 6.43
for the best Gaussian filter; centred on the path, 6.64 (the model's own centring, a straight line
per window, leaves the body's sway); with the white-noise floor too, 5.84. Not on noisy input: the path's own
noise then jitters the output (1 view, validation: 18 of 30 cells hold with the path everywhere).
docs/training.md.

Missing joints (NaN, or confidence 0) are welcome: an optional per-joint confidence in [0, 1]
weighs the joints (`confidence=`); a missing joint goes to the model as its interpolation in time
at INTERPOLATED_CONFIDENCE, and outputs are always finite (`refine_views`).

Sequences shorter than the window are padded by repeating their last frame, refined, and cut
back. With `fps`, a recording outside the frame-rate range the checkpoint was trained on is
resampled into it, refined, and resampled back to its own frames: the output always has the
input's shape.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from math import comb, erf
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from synsp_core.bones import ROBUST_RATIO, BoneLengthPrior, bone_prior_for, pose_dependence
from synsp_core.model import SynSP
from synsp_core.motion import resample, resample_to_length
from synsp_core.skeletons import Skeleton, get_skeleton
from synsp_core.swaa import swaa

SMOOTH_SIGMA = (0.5, 2.0)   # frames: the smoothing stage's Gaussian std on clean and on noisy input
NOISE_MM = (12.0, 30.0)      # local input jitter (mm) up to which the first applies, from which the second
LOCAL_FRAMES = 4.0           # frames: the Gaussian over which the stages judge the input and the error locally
INTERPOLATED_CONFIDENCE = 0.1   # the model's confidence in a missing joint's interpolation in time
AGREEMENT_K = (0.5, 1.0)     # the fusion bound, in expected errors of the classical multi-view estimate:
                             # where the views' errors are white and small (nearly clean), elsewhere
WHITE_SPREAD = (1.2, 1.5)    # the views' spread over what their white noise explains: white up to the first
WHITE_NOISE_MM = (8.0, 12.0)   # the input's white-noise level (mm per coordinate): small up to the first
MAX_ABS_MM = 1e7   # coordinates beyond 10 km are no measurement: treated as missing joints
WHITE_BONES = (1.12, 1.22)   # bone-length jitter over its white-noise level: white up to the first
CLASSICAL_SIGMAS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)   # frames: the widths the white-noise floor chooses from
PROBE_MM = 0.5                 # the step of the white-noise floor's perturbed pass
ROOT_PATH_SIGMA = 1.0          # frames at the model's rate: the smoothing of the root path frames are centred on
CLEAN_RECORDING_MM = (11.0, 13.0)   # a recording's mean noise level (mm): up to the first, centred on the root path
POSE_BONES_NOISE_MM = (9.5, 10.5)   # the same level (mm): up to the first, bones may stretch with the pose
STRUCTURED_MM = (20.0, 5.0)    # `structured_sigma`: from the first (mm of structured error) on, 1 frame per the second
STRUCTURED_SHARE = 0.35         # ... and taking out of the output at most this share of that error (RMS)
STRUCTURED_SIGMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)   # frames: the widths it chooses from
CLASSICAL_NOISE_SHARE = 1 / (2 * np.sqrt(np.pi))   # white noise's variance left by a Gaussian of 1 frame (0.28)
TRIM_SD = 3.5   # noise levels leave out differences beyond this many robust standard deviations
# the variance of a standard normal cut at +-TRIM_SD: what the trimming keeps of a level
TRIMMED_VARIANCE = 1.0 - 2 * TRIM_SD * np.exp(-TRIM_SD ** 2 / 2) / np.sqrt(2 * np.pi) / erf(TRIM_SD / np.sqrt(2))


def check_poses(poses, num_joints: int, dims: int, name: str = "poses") -> np.ndarray:
    """Validate a (T, J, D) or (V, T, J, D) array of the model's joint count and D; return float32.

    Missing joints may be NaN (as may inf, or coordinates beyond MAX_ABS_MM: all become NaN);
    an array with no finite joint at all, or not numeric, is an error.
    """
    if isinstance(poses, (str, bytes, Path)):
        raise ValueError(f"{name}: expected an array of poses, got the {type(poses).__name__} {str(poses)!r} "
                         f"(load the file first, e.g. np.load)")
    arr = np.asarray(poses)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected numeric poses, got dtype {arr.dtype}")
    if arr.ndim not in (3, 4):
        raise ValueError(f"{name}: expected (T, J, {dims}) or (V, T, J, {dims}), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array, shape {arr.shape}")
    if arr.shape[-2:] != (num_joints, dims):
        raise ValueError(f"{name}: the model takes {num_joints} joints x {dims} dims, got shape {arr.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        arr = arr.astype(np.float64)
        plausible = (np.abs(arr) <= MAX_ABS_MM).all(axis=-1)          # False for NaN and inf too
    if not plausible.any():
        raise ValueError(f"{name}: no finite joint in the whole array (all NaN/inf or beyond {MAX_ABS_MM:g} mm)")
    return np.where(plausible[..., None], arr, np.nan).astype(np.float32)


def check_confidence(confidence, poses: np.ndarray, name: str = "confidence") -> np.ndarray:
    """Per-joint confidence shaped like poses without the last axis, finite, in [0, 1]; None: 1."""
    if confidence is None:
        return np.ones(poses.shape[:-1], dtype=np.float32)
    conf = np.asarray(confidence)
    if not np.issubdtype(conf.dtype, np.number) or conf.shape != poses.shape[:-1]:
        raise ValueError(f"{name}: expected numbers shaped {poses.shape[:-1]} (the poses' shape without the "
                         f"last axis), got {conf.dtype} {conf.shape}")
    conf = conf.astype(np.float32)
    if not (np.isfinite(conf) & (conf >= 0) & (conf <= 1)).all():
        raise ValueError(f"{name}: values must be finite and in [0, 1]")
    return conf


def means(merged: np.ndarray, j: int, d: int):
    """Weighted SWAA rows (V, T, J*D + 2) of means (refined * w, quality * w, w) -> (refined
    (V, T, J, D), NaN where the view has no weight; quality (V, T))."""
    v, t = merged.shape[:2]
    share = merged[..., -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(share[..., None] > 0, merged[..., :-2] / share[..., None], np.nan)
        return out.reshape(v, t, j, d), np.where(share > 0, merged[..., -2] / share, 0.0)


def local_rms(residual: np.ndarray) -> np.ndarray:
    """(V, T, J, D) residual (mm) -> (V, T, J): its length's RMS over about +-4 frames (a Gaussian
    of LOCAL_FRAMES), the window over which the stages judge how noisy the input is."""
    return np.sqrt(gaussian_filter1d((residual ** 2).sum(axis=-1), LOCAL_FRAMES, axis=1, mode="nearest"))


def input_noise_mm(views: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """(V, T, J, D) input and the model's refined output (unsmoothed) -> (V, T, J) local noise
    level (mm): the RMS over about +-4 frames of each joint's distance from the model's output.
    The model follows fast motion, so fast clean motion does not count as noise (a smoothed input
    as the reference did: it blurred fast motion at 20 fps). NaN entries count 0."""
    return local_rms(np.nan_to_num(views.astype(np.float64) - refined))


def input_jitter_mm(views: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """(V, T, J, D) input and the model's refined output (unsmoothed) -> (V, T, J) local level (mm)
    of the input's frame-to-frame noise: the RMS over about +-4 frames of the second difference in
    time of (input - output), over sqrt(6) (its gain on i.i.d. noise). Unlike input_noise_mm, the
    model's own error on fast motion (lag, overshoot: smooth in time) barely counts, so fast clean
    motion is not taken for noise (5 mm of i.i.d. noise at 20 fps, validation: 90th percentile
    10.1 mm here, 13.3 by input_noise_mm). NaN entries count 0."""
    residual = np.nan_to_num(views.astype(np.float64) - refined)
    padded = np.concatenate([residual[:, :1], residual, residual[:, -1:]], axis=1)
    return local_rms(np.diff(padded, n=2, axis=1) / np.sqrt(6.0))


def difference_level(series: np.ndarray, order: int, axis: int = -1) -> np.ndarray:
    """The white-noise level of series along axis: the RMS of its order-th differences over their
    gain on i.i.d. noise (sqrt(6) for 2, sqrt(70) for 4), differences beyond TRIM_SD robust
    standard deviations (median absolute value / 0.6745) left out: spikes and swaps. Motion barely
    enters a 4th difference, and a rigid bone's length barely a 2nd. Unlike the median alone, it
    reads a level that varies in time (a bone's length as the bone turns against anisotropic
    noise) and is exact for uniform noise. NaN entries (frames not observed) drop the differences
    they touch; NaN where none is left."""
    diff = np.moveaxis(np.diff(series, n=order, axis=axis), axis, -1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # series never observed
        robust = np.nanmedian(np.abs(diff), axis=-1, keepdims=True) / 0.6745
        kept = np.where(np.abs(diff) <= TRIM_SD * robust, diff, np.nan)
        return np.sqrt(np.nanmean(kept ** 2, axis=-1) / TRIMMED_VARIANCE / comb(2 * order, order))


def noise_levels_mm(views: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(V, T, J, D) input, observed (V, T, J) -> (V, J, D) white-noise level (mm) of each
    coordinate (`difference_level` of order 4 over observed frames): per joint and axis, as
    estimators err more in depth and at the hands (5 mm of i.i.d. noise at 20 and 30 fps,
    validation: a median of 4.9-5.1 mm over joints). NaN: never 5 observed frames in a row."""
    return difference_level(np.where(observed[..., None], views, np.nan), 4, axis=1)


def rms_level(levels: np.ndarray) -> float:
    """The RMS of noise levels (mm, e.g. `noise_levels_mm`), NaN entries left out; NaN where all
    are: the input's white-noise level (mm per coordinate)."""
    return float(np.sqrt(np.nanmean(levels ** 2))) if np.isfinite(levels).any() else float("nan")


def observed_mean(views: np.ndarray, observed: np.ndarray):
    """(V, T, J, D), observed (V, T, J) -> (count (T, J) of views seeing each joint, their mean
    (T, J, D); 0 where none does)."""
    count = observed.sum(axis=0)
    return count, np.where(observed[..., None], views, 0.0).sum(axis=0) / np.maximum(count, 1)[..., None]


def view_variance(views: np.ndarray, observed: np.ndarray):
    """(V, T, J, D), observed (V, T, J) -> (count (T, J), their mean (T, J, D) as `observed_mean`, the
    sample variance (T, J) of the observed views about it, summed over the axes, mm^2; 0 where
    fewer than 2 views see a joint)."""
    count, mean = observed_mean(views, observed)
    squares = (np.where(observed[..., None], views - mean, 0.0) ** 2).sum(axis=(0, -1))
    return count, mean, squares / np.maximum(count - 1, 1)


def view_spread(views: np.ndarray, observed: np.ndarray, levels: np.ndarray) -> float:
    """(V, T, J, D), observed (V, T, J), their `noise_levels_mm` (V, J, D) -> the views' spread
    about their mean over what their white noise explains: the sum of squares about the mean
    of the views seeing each joint, over its expectation under white errors. About 1 for white
    errors of any per-view, per-joint or per-axis level; NaN where no joint is seen twice."""
    count, mean = observed_mean(views, observed)
    squares = (np.where(observed[..., None], views - mean, 0.0) ** 2).sum(axis=(0, 1))       # (J, D)
    dof = np.maximum(count - 1, 0).sum(axis=0)                                              # (J,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # joints never seen
        expected = dof[:, None] * np.nanmean(levels ** 2, axis=0)
    seen = np.isfinite(expected) & (dof[:, None] > 0)
    return float(np.sqrt(squares[seen].sum() / expected[seen].sum())) if seen.any() else float("nan")


def agreement_k(views: np.ndarray, observed: np.ndarray) -> float:
    """The fusion bound for a recording, in expected errors of the classical estimate: AGREEMENT_K[0]
    where the views' errors are white (their spread is what the white noise explains, WHITE_SPREAD)
    and small (WHITE_NOISE_MM), AGREEMENT_K[1] otherwise, linear between. Model-free: on every
    validation recording the ratio reads 0.84-1.00 for i.i.d. errors (`view_spread`), 1.46-1.84
    for triangulated detections, 3.0-4.0 for estimator-like errors; views that agree that well
    leave a learned correction little to add (docs/training.md)."""
    levels = noise_levels_mm(views, observed)
    white = views_white(views, observed, levels) * cleanliness(rms_level(levels), WHITE_NOISE_MM)
    return AGREEMENT_K[1] - np.nan_to_num(white) * (AGREEMENT_K[1] - AGREEMENT_K[0])


def views_white(views: np.ndarray, observed: np.ndarray, levels: np.ndarray) -> float:
    """1 where the views' errors are white (their spread about their mean is what their white
    noise, `levels` from `noise_levels_mm`, explains: WHITE_SPREAD), 0 where they are not or it
    cannot be told (`agreement_k`)."""
    ratio = view_spread(views, observed, levels)
    return float(cleanliness(ratio, WHITE_SPREAD)) if np.isfinite(ratio) else 0.0


def bound_by_view_agreement(fused: np.ndarray, views: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """The multi-view floor: fused (T, J, D) kept within `agreement_k` x the expected error of the
    classical estimate (the mean of the observed views smoothed by a Gaussian of 1 frame) of it.

    That error is estimated from the views' own disagreement: their spread about their mean over
    sqrt(views), x 0.55 for the smoothing (its gain on i.i.d. noise), over about +-2 frames. Views
    that agree (nearly clean input, independent errors) bound the model tightly to the classical
    estimate, which then cannot be beaten by much; views that disagree leave it free. The bound
    scales the correction (fused - classical) down, with the scale smoothed over 2 frames so it
    adds no jitter. Joints seen by fewer than 2 views are left as they are.
    """
    count, mean, variance = view_variance(views, observed)                          # (T, J), (T, J, D), (T, J)
    spread = np.sqrt(variance)
    classical = gaussian_filter1d(mean, 1.0, axis=0, mode="nearest")
    expected = 0.55 * gaussian_filter1d(spread, 2.0, axis=0, mode="nearest") / np.sqrt(np.maximum(count, 1))
    correction = fused - classical
    size = np.linalg.norm(correction, axis=-1)
    k = agreement_k(views, observed)
    scale = np.where(count >= 2, np.minimum(1.0, k * expected / np.maximum(size, 1e-9)), 1.0)
    return classical + correction * gaussian_filter1d(scale, 2.0, axis=0, mode="nearest")[..., None]


def cleanliness(noise_mm, band_mm: tuple[float, float]):
    """1 where a noise level (mm, or a ratio) is under band_mm[0], 0 above band_mm[1], linear
    between: how far a rule for clean (or white) input applies."""
    return np.clip((band_mm[1] - noise_mm) / (band_mm[1] - band_mm[0]), 0.0, 1.0)


def bone_jitter(views: np.ndarray, observed: np.ndarray, bones: np.ndarray) -> float:
    """(V, T, J, D) input, observed (V, T, J), bones (B, 2) joint pairs -> how much its bones change
    length, over what white noise explains: per bone and view, the RMS over time of its length
    about its median (frames where both joints are observed) over the white-noise level of that
    length (`difference_level` of order 2); the median over bones and views. White errors read
    about 1 whatever their level per joint and axis (i.i.d. Gaussian, uniform, 3x in a depth
    direction, 2x on z, 1-3x per joint; validation at 20 fps and test at 30 fps: 0.94-1.09);
    structured ones more, as a drifting bias or a swap stretches bones for many frames
    (triangulated detections 1.28-1.72, estimator-like errors 2.0-3.8). NaN: nothing to measure."""
    lengths = observed_bone_lengths(views, observed, bones)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # bones never seen
        spread = np.sqrt(np.nanmean((lengths - np.nanmedian(lengths, axis=1, keepdims=True)) ** 2, axis=1))
        return float(np.nanmedian(spread / difference_level(lengths, 2, axis=1)))


def observed_bone_lengths(views: np.ndarray, observed: np.ndarray, bones: np.ndarray) -> np.ndarray:
    """(V, T, J, D), observed (V, T, J), bones (B, 2) joint pairs -> (V, T, B) lengths, NaN where
    either joint is not observed."""
    lengths = np.linalg.norm(views[:, :, bones[:, 1]] - views[:, :, bones[:, 0]], axis=-1)
    return np.where(observed[:, :, bones[:, 1]] & observed[:, :, bones[:, 0]], lengths, np.nan)


def bone_stretch_mm(views: np.ndarray, observed: np.ndarray, bones: np.ndarray) -> float:
    """(V, T, J, D) input, observed (V, T, J), bones (B, 2) -> how far its bones stretch beyond what
    their white noise explains (mm): per view and bone, the variance over time of the length less
    its white-noise variance (`difference_level` of order 2), the median over bones and views,
    square-rooted. Structured errors stretch bones (a drifting bias, a burst, a swap), motion
    does not, so fast motion reads no more than slow. Validation, 30 fps, Human3.6M, per view:
    white noise 0-2 mm, triangulated detections 14, estimator-like errors 25 (test split: 24),
    the same x 1.5 38, x 2 53. 0 where nothing can be measured."""
    lengths = observed_bone_lengths(views, observed, bones)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # bones never seen
        excess = np.nanvar(lengths, axis=1) - difference_level(lengths, 2, axis=1) ** 2       # (V, B)
        stretch = np.nanmedian(np.maximum(excess, 0.0))
    return float(np.sqrt(stretch)) if np.isfinite(stretch) else 0.0


def structured_sigma(fused: np.ndarray, stretch_mm: float, views: int) -> float:
    """Stage 5: the Gaussian (std, frames) for an output (T, J, D) of `views` views whose input's
    bones stretch by stretch_mm (`bone_stretch_mm`). The model takes out most of a structured error
    but follows some of it, more where it is large: on 1 view, estimator-like errors x 1.5 and x 2
    left Accel above the best filter's. The error's size for the views' mean is stretch_mm /
    sqrt(views) (independent views); from STRUCTURED_MM[0] mm of it on, every STRUCTURED_MM[1] mm
    allow 1 frame more, while the smoothing takes out of the output no more than STRUCTURED_SHARE
    of that size (RMS of the joints' displacement), so fast motion is not blurred. The largest of
    STRUCTURED_SIGMAS within both; 0: none."""
    size = stretch_mm / np.sqrt(views)
    most = (size - STRUCTURED_MM[0]) / STRUCTURED_MM[1]
    sigma = 0.0
    for candidate in STRUCTURED_SIGMAS:
        if candidate > most:
            break
        smoothed = gaussian_filter1d(fused, candidate, axis=0, mode="nearest")
        if np.sqrt(((smoothed - fused) ** 2).sum(axis=-1).mean()) > STRUCTURED_SHARE * size:
            break
        sigma = candidate
    return sigma


def whiteness(views: np.ndarray, observed: np.ndarray, bones: np.ndarray) -> float:
    """How far the input's errors are white (1) or structured (0), model-free: `bone_jitter` in
    WHITE_BONES, and for several views their spread about their mean in WHITE_SPREAD."""
    ratio = bone_jitter(views, observed, bones)
    white = float(cleanliness(ratio, WHITE_BONES)) if np.isfinite(ratio) else 0.0
    return white * (views_white(views, observed, noise_levels_mm(views, observed)) if len(views) > 1 else 1.0)


def classical_mean(views: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(V, T, J, D), observed (V, T, J) -> (T, J, D): the mean of the observed views, interpolated
    in time where none saw a joint, NaN for a joint no view ever saw. Linear in the views."""
    count, mean = observed_mean(views, observed)
    return interpolate_missing(mean[None], (count > 0)[None])[0]


def bone_rigidity(prior: BoneLengthPrior, views: np.ndarray, observed: np.ndarray, mean: np.ndarray,
                  bone_seen: np.ndarray) -> np.ndarray:
    """Several views, offline: per bone (B,), in [0, 1], how far projecting on one length for the
    whole recording is right: the share n / (n + s^2) of the length's noise n in the error of a
    constant, s^2 the variance over time of the bone's true length. Both from the views alone: the
    length of their mean varies by s^2 + about the noise of the mean along the bone, which their
    disagreement measures frame by frame (independent errors of any structure in time); the
    refined output's directions are not used, their own errors would read as stretch. n is that
    noise as the classical estimate (a Gaussian of 1 frame) keeps it
    (CLASSICAL_NOISE_SHARE). A rigid bone reads 1, a bone that stretches with the pose more than
    the noise (conventions with joints off the bones) less; left and right twins averaged; 1 where
    a bone is not seen twice.

    views (V, T, J, D), observed (V, T, J), mean (T, J, D) their `classical_mean`, bone_seen (T, B):
    > 0.5 where some view saw both joints."""
    count, _, variance = view_variance(views, observed)
    variance = variance / np.maximum(count, 1) / views.shape[-1]                  # (T, J): the mean's, per axis
    twice = (count[:, prior.parents] >= 2) & (count[:, prior.children] >= 2) & (bone_seen > 0.5)
    lengths = np.where(twice, prior.bone_lengths(mean), np.nan)
    noise = np.where(twice, variance[:, prior.parents] + variance[:, prior.children], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # bones not seen twice
        median = np.nanmedian(lengths, axis=0)
        lengths = np.clip(lengths, median / ROBUST_RATIO, median * ROBUST_RATIO)
        stretch = np.maximum(np.nanvar(lengths, axis=0) - np.nanmean(noise, axis=0), 0.0)
        stretch = 0.5 * (stretch + stretch[prior.twin])
        kept = CLASSICAL_NOISE_SHARE * np.nanmean(noise, axis=0)
        share = kept / (kept + stretch)
    return np.where(np.isfinite(share), share, 1.0)


def sure_blend(estimate: np.ndarray, probed: np.ndarray, views: np.ndarray, probe: np.ndarray, step: float,
               observed: np.ndarray, root_joints, white: float) -> np.ndarray:
    """The white-noise floor: estimate (T, J, D) -> classical + share * (estimate - classical).

    classical: `classical_mean` of the views (V, T, J, D) smoothed by the Gaussian of
    CLASSICAL_SIGMAS (frames) whose mean error norm (the metric's form) is estimated least;
    share = 1 - white * (1 - alpha), alpha in [0, 1] the model's share of least squared error.
    Both estimates are Stein's (SURE), of the root-relative error (the metric's: root = mean of
    root_joints) under white noise of any level per view, joint and axis: for an output f of the
    views' mean m, per entry |f - m|^2 - |n|^2 + 2 n . df(n), n a draw of the noise of m and df(n)
    f's response to it. The draw is probe (V, T, J, D, mm), a draw of the input's white noise on
    the observed entries (`Refiner.probe_pass`) as it reaches the mean; the model's response is
    (probed - estimate) / step, probed being the same pipeline's estimate from views + step * probe.
    The filter's width: the per-joint estimate averaged over LOCAL_FRAMES, square-rooted and summed.
    The squared error alone is dominated by the fastest frames: it chose narrower filters than the
    metric does, and the blend's Accel went over the floor's (validation, 20 fps, 20 mm, 1 view,
    CMU: 3.60 against 3.58; now 3.42). The model's share: the squared error, quadratic in alpha,
    so in closed form (estimating the model's response per frame is too noisy with one probe).
    Not in the SynSP paper.

    Filters under 1 frame left Accel above the best filter's (4 views, 20 fps, validation: 3.66
    against 2.77 mm/frame^2), hence CLASSICAL_SIGMAS from 1 frame (docs/training.md)."""
    def relative(x):
        return x - x[:, list(root_joints)].mean(axis=1, keepdims=True)
    if white <= 0:
        return estimate
    mean = classical_mean(views, observed)
    mean = np.where(np.isfinite(mean), mean, estimate)          # a joint no view ever saw: the model's
    noise = np.nan_to_num(classical_mean(probe, observed))      # the probe as it reaches the mean
    noise_relative = relative(noise)
    noise_squares = (noise_relative ** 2).sum(axis=-1)          # (T, J)
    best = None
    for sigma in CLASSICAL_SIGMAS:
        classical = gaussian_filter1d(mean, sigma, axis=0, mode="nearest")
        residual = relative(classical - mean)
        response = (noise_relative * relative(gaussian_filter1d(noise, sigma, axis=0, mode="nearest"))).sum(axis=-1)
        squares = gaussian_filter1d((residual ** 2).sum(axis=-1) - noise_squares + 2 * response, LOCAL_FRAMES,
                                    axis=0, mode="nearest")
        # a local estimate can dip under 0 by the draw's own noise: held at 1% of the noise's
        norm = np.sqrt(np.maximum(squares, 0.01 * noise_squares.mean())).sum()
        if best is None or norm < best[0]:
            best = (norm, classical, residual, response.sum())
    _, classical, residual, divergence = best
    gap = relative(estimate - classical)
    model_divergence = (noise_relative * relative((probed - estimate) / step)).sum()
    alpha = -((gap * residual).sum() + model_divergence - divergence) / max((gap ** 2).sum(), 1e-9)
    share = 1.0 - white * (1.0 - float(np.clip(alpha, 0.0, 1.0)))
    return classical + share * (estimate - classical)


def root_path(views: np.ndarray, observed: np.ndarray, root_joints) -> np.ndarray:
    """(V, T, J, D) views, observed (V, T, J) -> (T, D): per frame the root (mean of root_joints)
    over the views that saw it, interpolated in time where none did (no root ever seen: the mean
    of the observed joints), smoothed by a Gaussian of ROOT_PATH_SIGMA frames (see Refiner)."""
    roots = list(root_joints)
    seen = observed[:, :, roots].all(axis=2)                                              # (V, T)
    if not seen.any():
        roots, seen = slice(None), observed.any(axis=2)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_view = np.nanmean(np.where(observed[..., None], views, np.nan)[:, :, roots], axis=2)   # (V, T, D)
        path = np.nanmean(np.where(seen[..., None], per_view, np.nan), axis=0)                  # (T, D)
    path = interpolate_missing(path[None, :, None], np.isfinite(path).all(axis=-1)[None, :, None])[0, :, 0]
    return gaussian_filter1d(path, ROOT_PATH_SIGMA, axis=0, mode="nearest")


def interpolate_missing(views: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(V, T, J, D) with each unobserved entry (observed (V, T, J) False) linearly interpolated in
    time from the view's observed frames of that joint (held at the ends); a joint a view never
    observed stays NaN. Only for resampling and for frames no window can refine."""
    out = np.array(views, dtype=np.float64)
    frames = np.arange(views.shape[1])
    for v, j in zip(*np.nonzero(~observed.all(axis=1))):
        seen = observed[v, :, j]
        out[v, :, j] = np.nan
        if seen.any():
            for d in range(views.shape[-1]):
                out[v, :, j, d] = np.interp(frames, frames[seen], views[v, seen, j, d])
    return out


@dataclass
class ModelPass:
    """One recording through the model, before the final stages (`Refiner.model_pass`)."""
    views: np.ndarray      # (V, T, J, D) input, missing joints interpolated in time (NaN: never seen)
    observed: np.ndarray   # (V, T, J) joints seen (finite, confidence > 0)
    refined: np.ndarray    # (V, T, J, D) per view
    fused: np.ndarray      # (T, J, D) the views' refined outputs averaged
    quality: np.ndarray    # (T, J) in [0, 1]: best over views of PQE quality x confidence


class Refiner:
    """Refines recorded sequences with a window model (SynSP, or anything with the same call)."""

    def __init__(self, infer, window: int, num_joints: int, dims: int, max_views: int, skeleton: Skeleton,
                 fps_range: tuple[float, float] | None = None, batch_size: int = 1024,
                 bone_prior: BoneLengthPrior | None = None, smoothing: bool = True, agreement_bound: bool = True,
                 white_blend: bool = True, root_joints: tuple[int, ...] | None = None):
        """infer(poses (B, V, W, J*D) tensor mm, view_mask (B, V), confidence (B, V, W, J)) ->
        (refined tensor shaped like poses, quality (B, V, W)); skeleton: the joint layout (bones
        and root, for the white-noise floor); bone_prior: the bone-length stage (None: off);
        smoothing, agreement_bound, white_blend: the stages of the module docstring; root_joints:
        centre every frame on the smoothed root path before the model (`root_path`, the module
        docstring; None: off)."""
        self.root_joints, self.skeleton = root_joints, skeleton
        self.bones = np.array(skeleton.bones, dtype=np.int64).reshape(-1, 2)   # (B, 2) for `whiteness`
        self.infer, self.window, self.num_joints, self.dims = infer, window, num_joints, dims
        self.max_views, self.fps_range, self.batch_size = max_views, fps_range, batch_size
        self.bone_prior, self.smoothing = bone_prior, smoothing
        self.agreement_bound, self.white_blend = agreement_bound, white_blend

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path | None = None, backend: str = "auto",
                        batch_size: int = 1024, bone_lengths: bool = True, smoothing: bool = True,
                        agreement_bound: bool = True, white_blend: bool = True) -> "Refiner":
        """Load a SynSP checkpoint (None: the shipped weights) behind a runtime backend."""
        from synsp_core.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint_info
        from synsp_core.runtime import create_backend
        engine = create_backend(checkpoint, backend)
        info = read_checkpoint_info(checkpoint or DEFAULT_CHECKPOINT)
        fps_range = info.get("meta", {}).get("train_config", {}).get("fps_range")
        c = engine.config
        return cls(engine, c.window, c.num_joints, c.dims, c.max_views, get_skeleton(c.skeleton),
                   tuple(fps_range) if fps_range else None, batch_size, bone_prior_for(c, bone_lengths),
                   smoothing, agreement_bound, white_blend, c.root_joints)

    @classmethod
    def from_model(cls, model: torch.nn.Module, batch_size: int = 1024, max_views: int = 8,
                   bone_lengths: bool = True, smoothing: bool = True, agreement_bound: bool = True,
                   white_blend: bool = True) -> "Refiner":
        """Wrap an in-memory model (SynSP or SmoothNet) in eval mode, e.g. during evaluation."""
        model.eval()
        c = model.cfg

        @torch.inference_mode()
        def infer(poses, mask, confidence):
            if isinstance(model, SynSP):
                out = model(poses, mask, confidence)
                return out.refined, out.quality
            # SmoothNet takes no missing joints: they hold their interpolated input (nan: 0)
            return model(poses.nan_to_num(), mask), torch.ones(poses.shape[:3])
        return cls(infer, c.window, c.num_joints, c.dims, getattr(c, "max_views", max_views),
                   get_skeleton(c.skeleton), None, batch_size, bone_prior_for(c, bone_lengths), smoothing,
                   agreement_bound, white_blend, c.root_joints if isinstance(model, SynSP) else None)

    def refine(self, poses, fps: float | None = None, name: str = "poses", confidence=None) -> np.ndarray:
        """(T, J, D) -> refined (T, J, D); (V, T, J, D) -> refined (V, T, J, D), all views at once.
        NaN joints are missing; confidence (poses' shape without D) weighs the joints (None: 1)."""
        arr = check_poses(poses, self.num_joints, self.dims, name)
        refined = self.refine_views(arr, fps, name, confidence)[0]
        return refined[0] if arr.ndim == 3 else refined

    def refine_views(self, views, fps: float | None = None, name: str = "poses", confidence=None,
                     return_quality: bool = False):
        """(V, T, J, D) views of one motion in one frame -> (refined (V, T, J, D), fused (T, J, D)),
        plus joint_quality (T, J) in [0, 1] with return_quality.

        Joints that are NaN (or have confidence 0) are missing: the model weighs every joint by its
        confidence and predicts missing ones from the rest. fused is the mean of the views refined
        around each frame (a view with no observation near a frame gets the fused pose there);
        with the bone-length stage, all are then projected onto the lengths estimated from fused.
        joint_quality is the best over views of PQE quality x the joint's confidence: 0 for a
        joint no view saw. Outputs are finite and have the input's frames at any fps.
        """
        arr = check_poses(views, self.num_joints, self.dims, name)
        conf = check_confidence(confidence, arr, f"{name} confidence")
        if arr.ndim == 3:
            arr, conf = arr[None], conf[None]
        if len(arr) > self.max_views:
            raise ValueError(f"{name}: {len(arr)} views, but the model takes at most {self.max_views}")
        raw = self.model_pass(arr, conf, fps, name)
        probe = self.probe_pass(arr, conf, raw, fps, name) if self.white_blend else None
        refined, fused = self.final_stages(raw, probe, self.bone_prior, self.agreement_bound)
        return (refined, fused, raw.quality.astype(np.float32)) if return_quality else (refined, fused)

    def model_pass(self, arr: np.ndarray, conf: np.ndarray, fps: float | None = None,
                   name: str = "poses") -> ModelPass:
        """Checked views (V, T, J, D) float32, NaN = missing, and confidence (V, T, J) -> the model's
        outputs before the final stages (see refine_views)."""
        observed = np.isfinite(arr).all(axis=-1) & (conf > 0)
        if not observed.any():
            raise ValueError(f"{name}: no joint is observed (every joint is NaN or has confidence 0)")
        filled = interpolate_missing(arr, observed)
        # a missing joint goes to the model as its interpolation in time, at a low confidence
        interpolated = np.isfinite(filled).all(axis=-1)
        model_conf = np.where(observed, conf, INTERPOLATED_CONFIDENCE * interpolated)
        centred = self.root_joints is not None
        refined, quality = self._refine(filled, model_conf, interpolated, fps, centre_on_path=centred)
        clean = float(cleanliness(input_noise_mm(filled, refined)[observed].mean(), CLEAN_RECORDING_MM)) \
            if centred else 0.0
        if clean < 1:   # not nearly clean: (also) without the root path, see the module docstring
            plain, plain_quality = self._refine(filled, model_conf, interpolated, fps, centre_on_path=False)
            refined, quality = plain + clean * (refined - plain), plain_quality + clean * (quality - plain_quality)
        joint_quality = (quality[..., None] * conf * observed).max(axis=0)          # (T, J)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # frames no view covers: filled below
            fused = np.nanmean(refined, axis=0)
        fused = interpolate_missing(fused[None], np.isfinite(fused).all(axis=-1)[None])[0]
        if not np.isfinite(fused).all():
            raise ValueError(f"{name}: could not refine: a joint has no estimate in any frame")
        refined = np.where(np.isfinite(refined), refined, fused[None])
        return ModelPass(filled, observed, refined, fused, joint_quality)

    def probe_pass(self, arr: np.ndarray, conf: np.ndarray, raw: ModelPass, fps: float | None = None,
                   name: str = "poses"):
        """For the white-noise floor: (probe, step, whiteness, the model pass on arr + step * probe),
        probe a fixed draw of the input's white noise (standard normal x `noise_levels_mm`, mm) on
        the observed entries, step such that the perturbation's RMS is PROBE_MM; None where the
        input's errors read as structured (`whiteness` 0: no extra pass)."""
        white = whiteness(raw.views, raw.observed, self.bones)
        if white <= 0:
            return None
        levels = noise_levels_mm(raw.views, raw.observed)
        rms = rms_level(levels)
        if not rms > 0:   # under 5 frames: no level to probe at
            return None
        levels = np.where(np.isfinite(levels), levels, rms)[:, None]                    # (V, 1, J, D)
        probe = np.random.default_rng(0).standard_normal(arr.shape) * levels * raw.observed[..., None]
        step = PROBE_MM / rms
        return probe, step, white, self.model_pass((arr + step * probe).astype(np.float32), conf, fps, name)

    def final_stages(self, raw: ModelPass, probe, prior: BoneLengthPrior | None, agreement_bound: bool):
        """The bone-length stage and the multi-view floor (`bound_stages`), then, with probe (from
        `probe_pass`), the white-noise floor on fused and on each view's output against its own
        input, then with `smoothing` the structured-error smoothing (stage 5), one width for all
        outputs -> float32 (refined, fused)."""
        refined, fused = self.bound_stages(raw, prior, agreement_bound)
        if probe is not None:
            noise, step, white, raw_probed = probe
            refined_probed, fused_probed = self.bound_stages(raw_probed, prior, agreement_bound)
            views, observed, root = raw.views, raw.observed, self.skeleton.root
            fused = sure_blend(fused, fused_probed, views, noise, step, observed, root, white)
            refined = np.stack([sure_blend(r, rp, v[None], n[None], step, o[None], root, white)
                                for r, rp, v, n, o in zip(refined, refined_probed, views, noise, observed)])
        if self.smoothing:   # structured errors the output follows: smoothed as far as they are large (stage 5)
            white = probe[2] if probe is not None else whiteness(raw.views, raw.observed, self.bones)
            stretch = bone_stretch_mm(raw.views, raw.observed, self.bones)
            sigma = (1.0 - white) * structured_sigma(fused, stretch, len(raw.views))
            if sigma > 0:
                fused = gaussian_filter1d(fused, sigma, axis=0, mode="nearest")
                refined = gaussian_filter1d(refined, sigma, axis=1, mode="nearest")
        return refined.astype(np.float32), fused.astype(np.float32)

    @staticmethod
    def bound_stages(raw: ModelPass, prior: BoneLengthPrior | None, agreement_bound: bool):
        """The bone-length stage, then the multi-view floor, on a model pass -> (refined, fused).

        Bone lengths are estimated over the whole recording (one recording = one person:
        `recording_lengths`, a robust mean), learning only from bones whose two joints some view
        saw, and only those bones are projected. One view: fused's own lengths. Several views: the
        views' mean bone vectors projected on fused's bone directions. Fused's lengths run short
        where it smooths a fast limb (a smoothed rotating segment is shorter) and the mean's are
        lengthened by noise; its projection keeps neither bias (validation, 30 fps, 4 views,
        triangulated, Human3.6M: 10.69 -> 10.56 mm; true lengths 10.48). On one view the model's
        directions follow that view's own errors: worse there (estimator-like, H36M: 36.28 -> 37.13).
        Where the input is nearly clean (`cleanliness` of its mean noise level,
        POSE_BONES_NOISE_MM), the lengths get their pose dependence too. `bound_by_view_agreement`
        (V > 1) comes after, on fused, and then fused is projected on the same lengths once more: the
        bound moves joints toward the classical estimate, whose bones are as noisy as its mean.
        Several views: both projections go only part of the way, per bone by `bone_rigidity`, as
        bones that stretch with the pose beyond the noise are not held to one length (docs/training.md:
        without it the second projection cost 0.9 mm on the test split, triangulated, COCO).
        """
        refined, fused, views, observed = raw.refined, raw.fused, raw.views, raw.observed
        if prior is not None:
            noise = input_noise_mm(views, refined)   # the input's noise level: against the model's output
            seen = observed.any(axis=0).astype(np.float64)
            bone_seen = seen[:, prior.parents] * seen[:, prior.children]                # (T, B)
            current = prior.bone_lengths(fused)
            rigid = 1.0
            if len(views) > 1:   # the views' mean, along fused: the views' independent errors average out
                mean = classical_mean(views.astype(np.float64), observed)
                lengths = prior.recording_lengths(mean, bone_seen, along=fused)
                rigid = bone_rigidity(prior, views, observed, mean, bone_seen)
            else:
                lengths = prior.recording_lengths(fused, bone_seen)
            lengths = np.where(np.isfinite(lengths) & (lengths > 0), lengths, current)   # (T, B)
            clean = float(cleanliness(noise[observed].mean(), POSE_BONES_NOISE_MM)) if observed.any() else 0.0
            if clean > 0:   # nearly clean input: bones may stretch with the pose (pose_dependence)
                lengths = lengths + clean * pose_dependence(prior, fused, views, observed, bone_seen)
            # a bone with a predicted (unseen) joint keeps its length: projecting it would pull the
            # seen joint toward the prediction; faded in and out over ~2 frames, so that a joint
            # going missing or coming back gives no jolt
            fade = gaussian_filter1d(bone_seen, 2.0, axis=0, mode="nearest")
            lengths = current + fade * (lengths - current)
            projected = prior.project(np.concatenate([refined, fused[None]]), current + rigid * (lengths - current))
            refined, fused = projected[:-1], projected[-1]
        if agreement_bound and len(views) > 1:
            fused = bound_by_view_agreement(fused, views, observed)
            if prior is not None:   # the bound pulls joints toward the noisy mean: its bones, back to length
                bounded = prior.bone_lengths(fused)
                fused = prior.project(fused, bounded + rigid * (lengths - bounded))
        return refined, fused

    def _refine(self, filled: np.ndarray, confidence: np.ndarray, observed: np.ndarray, fps: float | None,
                centre_on_path: bool):
        """_refine_at_model_rate at the input's frames: with fps outside the trained range, every
        view to the model's rate and back."""
        rate = self._model_rate(fps)
        if rate is None:
            return self._refine_at_model_rate(filled, confidence, observed, centre_on_path)

        def per_view(x, src, dst, frames=None):
            return np.stack([resample(v, src, dst) if frames is None else resample_to_length(v, src, dst, frames)
                             for v in x])
        inner_observed = per_view(observed.astype(np.float64), fps, rate) > 1 - 1e-6
        inner_conf = per_view(confidence, fps, rate) * inner_observed
        refined, quality = self._refine_at_model_rate(per_view(filled, fps, rate), inner_conf, inner_observed,
                                                      centre_on_path)
        return tuple(per_view(x, rate, fps, filled.shape[1]) for x in (refined, quality))

    def _model_rate(self, fps: float | None) -> float | None:
        """The rate to refine at when fps lies outside the trained range, else None (no resampling)."""
        if fps is None or self.fps_range is None:
            return None
        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive finite frame rate, got {fps}")
        lo, hi = self.fps_range
        return None if lo <= fps <= hi else float(np.clip(fps, lo, hi))

    def _refine_at_model_rate(self, views: np.ndarray, confidence: np.ndarray, observed: np.ndarray,
                              centre_on_path: bool = False):
        """views (V, T, J, D) with missing joints interpolated (NaN where a view never saw the
        joint), confidence and observed (V, T, J) -> (refined (V, T, J, D), quality (V, T)), NaN
        where no window saw the view (see refine_views).

        Every stride-1 window in which a view observed any joint runs the model with that view
        live; a window where no view observed anything is skipped. SWAA merges the windows per
        view, weighted by the view's liveness, so a view's output comes from the windows that saw it.
        """
        v, t, j, d = views.shape
        w = self.window
        pad = max(0, w - t)
        path = root_path(views, observed, self.root_joints) if centre_on_path else np.zeros((t, d))
        views = views - path[None, :, None]

        def padded(x):   # short sequences: repeat the last frame up to one window
            return np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)
        poses = torch.from_numpy(np.where(padded(observed)[..., None], padded(views), np.nan)
                                 .astype(np.float32).reshape(v, t + pad, j * d))
        conf = torch.from_numpy(padded(confidence).astype(np.float32))
        windows = poses.unfold(1, w, 1).permute(1, 0, 3, 2)                 # (N, V, W, J*D)
        conf_windows = conf.unfold(1, w, 1).permute(1, 0, 3, 2)             # (N, V, W, J)
        live = (conf_windows > 0).any(dim=3).any(dim=2)                     # (N, V)
        ok = torch.nonzero(live.any(dim=1)).flatten()
        refined = torch.zeros(*windows.shape)
        quality = torch.zeros(*windows.shape[:3])
        for i in range(0, len(ok), self.batch_size):
            idx = ok[i:i + self.batch_size]
            out, q = self.infer(windows[idx].contiguous(), live[idx].contiguous(), conf_windows[idx].contiguous())
            refined[idx], quality[idx] = out.float().cpu(), q.float().cpu()
        weight = live[:, :, None, None].float().expand(-1, -1, w, 1)        # (N, V, W, 1)
        rows = torch.cat([torch.where(weight > 0, refined, 0.0), quality[..., None] * weight, weight], dim=-1)
        merged = swaa(rows.permute(1, 0, 2, 3).contiguous()).numpy()[:, :t]   # (V, T, J*D + 2): means
        if not self.smoothing:
            refined, quality = means(merged, j, d)
            return refined + path[None, :, None], quality
        # the smoothing stage: both Gaussians normalized where a view is absent, blended by the noise
        low, high = (means(gaussian_filter1d(merged.astype(np.float64), sigma, axis=1, mode="nearest")
                           if sigma > 0 else merged, j, d) for sigma in SMOOTH_SIGMA)
        noise = input_jitter_mm(views, means(merged, j, d)[0])
        noisy = np.clip((noise - NOISE_MM[0]) / (NOISE_MM[1] - NOISE_MM[0]), 0.0, 1.0)   # (V, T, J)
        # the path gets the same smoothing, so the stage smooths the whole output as before
        low_path, high_path = (gaussian_filter1d(path, sigma, axis=0, mode="nearest") if sigma > 0 else path
                               for sigma in SMOOTH_SIGMA)
        low_out, high_out = low[0] + low_path[None, :, None], high[0] + high_path[None, :, None]
        return low_out + noisy[..., None] * (high_out - low_out), low[1]
