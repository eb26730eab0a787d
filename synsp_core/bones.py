"""The bone-length stage: a person's bones keep their length; an estimator's bones do not.

After SWAA, every output pose (the fused pose and each view's) is projected onto an estimate of
the person's bone lengths: online (StreamingRefiner) a running one, offline (Refiner) one from the
whole recording.
The constrained joint pairs are the layout's bones and the hip width (left to right hip: the
pelvis is rigid, whether or not the layout's tree links the hips; CMU validation takes, previous weights: 4 views
17.21 -> 17.20 mm, 18.10 -> 17.98 on a second error draw, one view 32.42 -> 32.13).

- estimate, online (`update`): per bone, the mean length of the fused output so far (several
  views: below), an exponential average over about `horizon_frames` frames (normalized, so the
  first estimate is the first frame's own lengths), then left and right twins averaged. Causal: frame t uses
  frames <= t. Robust: only frames where some view saw both joints count (`update`'s weights),
  and after ROBUST_AFTER_FRAMES an observed length is clipped to ROBUST_RATIO of the estimate,
  so an outlier cannot drag it;
- several views, both estimates: the lengths of the views' mean measured along the fused output's
  bones (`bone_lengths(mean, along=fused)`), not the fused output's own: the views' independent
  errors average out, where the fused output's bones run short on fast limbs (smoothed) and the
  mean's noisy ones run long (transfer matrix, 2026-12-05, triangulated, 4 views, test split,
  Human3.6M: 11.80 -> 11.60 mm; docs/training.md);
- estimate, offline (`recording_lengths`): per bone, the mean over the recording's frames where
  some view saw both joints, each clipped to ROBUST_RATIO of the bone's median, twins averaged.
  Every frame gets the whole recording's evidence (transfer matrix, 2026-12-04, estimator-like
  errors, 1 view, Human3.6M: validation 37.70 -> 36.28 mm, test 40.63 -> 40.05; docs/training.md);
- projection: Gauss-Seidel sweeps over the bones (parents first), each moving both ends of a
  bone by half its length error, along the bone. The root moves too: pinning it was worse
  (the root's own error shifts every root-relative joint, and the bones around it tell).

Measured on the CMU validation takes (`python training/evaluate.py --cmu-dir ../shared/data/cmu
--fps 30 --views 4 --split val --synsp synsp_core/weights/synsp_h36m17_3d.safetensors`, realistic
errors; the weights of 2026-12-01, before the robust estimate): 4 views fused 19.27 -> 16.08 mm
MPJPE, one view 35.52 -> 29.62, Accel lower in both. With the weights of 2026-12-02, per cell of
the transfer matrix: the "without stage" columns of docs/training.md. Settings chosen there with the previous weights
(development runs, error draws 0 and 1): 5 sweeps as good as 10, a
30-60 s horizon as good as an unbounded one (10 s: slightly worse), left/right averaging and a
moving root better; the true lengths would give 15.8 mm for 4 views. 3D only: in 2D, bone lengths change with foreshortening.
A stream restart (gap, backwards stamp) starts a new estimate: it may be another person.
"""
from __future__ import annotations

import warnings

import numpy as np

from synsp_core.skeletons import Skeleton, get_skeleton

try:
    from synsp_core import _swaa
except ImportError:  # not built: the numpy reference projection
    _swaa = None


def project_bone_lengths_reference(poses: np.ndarray, bones: np.ndarray, lengths: np.ndarray,
                                   iterations: int) -> np.ndarray:
    """(N, J, D) poses, (B, 2) bones (parent, child), (N, B) lengths -> projected float64 copy.

    The definition csrc/bones.cpp computes: per sweep, per bone in order, both ends move by half
    the length error along the bone; bones shorter than 1e-9 are left as they are.
    """
    q = np.array(poses, dtype=np.float64)
    for _ in range(iterations):
        for b, (parent, child) in enumerate(bones):
            v = q[:, child] - q[:, parent]
            length = np.sqrt((v * v).sum(axis=-1))
            ok = length > 1e-9
            half_error = np.where(ok, 0.5 - 0.5 * lengths[:, b] / np.where(ok, length, 1.0), 0.0)
            step = half_error[:, None] * v
            q[:, child] -= step
            q[:, parent] += step
    return q


ROBUST_AFTER_FRAMES = 10.0   # frames of evidence before observed lengths are clipped
ROBUST_RATIO = 1.5           # observed lengths are clipped to [1/1.5, 1.5] x the estimate


class BoneLengthPrior:
    """Running bone-length estimate of one stream, and the projection onto it (module docstring).

    horizon_frames: frames the running mean spans (its exponential time constant), e.g. 1800 =
    60 s at 30 fps; iterations: Gauss-Seidel sweeps of the projection.
    """

    def __init__(self, skeleton: Skeleton, horizon_frames: float = 1800.0, iterations: int = 5):
        if not horizon_frames >= 1:
            raise ValueError(f"horizon_frames must be >= 1 frame, got {horizon_frames}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        self.skeleton, self.horizon_frames, self.iterations = skeleton, float(horizon_frames), int(iterations)
        pairs = list(skeleton.bones)
        if {"l_hip", "r_hip"} <= set(skeleton.joint_names):
            pairs.append(skeleton.left_right_pair("hip"))
        self.bones = np.array(pairs, dtype=np.int64).reshape(-1, 2)   # (B, 2) pairs; "bones" below
        self.parents, self.children = self.bones[:, 0].copy(), self.bones[:, 1].copy()
        mirror = skeleton.mirror_permutation
        index = {(int(p), int(c)): b for b, (p, c) in enumerate(self.bones)}
        # each bone's left/right twin (itself on the midline, and for the hip width)
        self.twin = np.array([index.get((int(mirror[p]), int(mirror[c])), b) for b, (p, c) in enumerate(self.bones)])
        self.decay = float(np.exp(-1.0 / self.horizon_frames))
        self.reset()

    def reset(self) -> None:
        """Forget the estimate (a new stream, maybe another person)."""
        self.length_sum = np.zeros(len(self.bones))   # decayed sums of observed lengths, mm
        self.weight_sum = np.zeros(len(self.bones))   # decayed count of frames, per bone

    def bone_lengths(self, poses: np.ndarray, along: np.ndarray | None = None) -> np.ndarray:
        """(..., J, D) -> (..., B) lengths, in the poses' units. along (..., J, D), e.g. refined
        poses: the poses' bone vectors projected on along's bone directions instead of their norms.
        Zero-mean errors of poses then average out over frames, where the norm of a noisy vector
        is longer than the bone (poses = the mean of several views: `Refiner.bound_stages`)."""
        v = poses[..., self.children, :] - poses[..., self.parents, :]
        if along is None:
            return np.sqrt((v * v).sum(axis=-1))
        direction = along[..., self.children, :] - along[..., self.parents, :]
        return (v * direction).sum(axis=-1) / np.maximum(np.sqrt((direction * direction).sum(axis=-1)), 1e-9)

    def update(self, poses: np.ndarray, weights: np.ndarray | None = None,
               along: np.ndarray | None = None) -> np.ndarray:
        """Observe consecutive frames (T, J, D) of the stream; return the estimate after each, (T, B).
        along (T, J, D): lengths measured along its bones (`bone_lengths`); where that gives no
        positive length (a joint of poses missing), along's own.

        weights (T, B) in [0, 1] (None: 1): how much each frame's bone counts, e.g. 0 where one
        of its joints was not observed (predicted, not measured). Robust: once the estimate
        rests on ROBUST_AFTER_FRAMES frames, an observed length is clipped to
        [1 / ROBUST_RATIO, ROBUST_RATIO] x the estimate, so an outlier cannot drag it away.
        A bone never observed yet takes its current length (the estimate follows the output).
        """
        poses = np.asarray(poses, dtype=np.float64)
        if along is None:
            observed = self.bone_lengths(poses)
        else:
            along = np.asarray(along, dtype=np.float64)
            projected = self.bone_lengths(poses, along)
            with np.errstate(invalid="ignore"):
                observed = np.where(projected > 0, projected, self.bone_lengths(along))
        weights = np.ones_like(observed) if weights is None else np.broadcast_to(weights, observed.shape)
        estimates = np.empty_like(observed)
        for t, (lengths, w) in enumerate(zip(observed, weights)):   # frame by frame: the clip needs the estimate
            known = self.weight_sum > 0
            estimate = np.where(known, self.length_sum / np.where(known, self.weight_sum, 1.0), lengths)
            robust = self.weight_sum >= ROBUST_AFTER_FRAMES
            lengths = np.where(robust, np.clip(lengths, estimate / ROBUST_RATIO, estimate * ROBUST_RATIO), lengths)
            self.length_sum = self.decay * self.length_sum + w * lengths
            self.weight_sum = self.decay * self.weight_sum + w
            known = self.weight_sum > 0
            estimate = np.where(known, self.length_sum / np.where(known, self.weight_sum, 1.0), lengths)
            estimates[t] = 0.5 * (estimate + estimate[self.twin])
        return estimates

    def stream_lengths(self, poses: np.ndarray, weights: np.ndarray | None = None,
                       along: np.ndarray | None = None) -> np.ndarray:
        """One whole stream (T, J, D) from a fresh estimate -> the estimate after each frame, (T, B)."""
        self.reset()
        return self.update(poses, weights, along)

    def recording_lengths(self, poses: np.ndarray, weights: np.ndarray | None = None,
                          along: np.ndarray | None = None) -> np.ndarray:
        """One whole recording (T, J, D), offline -> its bone lengths (B,): per bone the mean over
        the frames where weights (T, B) >= 0.5 (None: all), each frame's length clipped to
        ROBUST_RATIO of the bone's median first (an outlier cannot drag it), then left and right
        twins averaged (a twin never seen: its partner's); NaN for a bone seen in no frame.

        along (T, J, D): lengths measured along its bones (`bone_lengths`).

        Not causal: every frame gets the whole recording's evidence, where `stream_lengths`' first
        frames rest on a few frames only (the node's running estimate must be causal). A mean,
        not the median: under estimator-like errors on one view the median was better on the
        validation takes and worse on the test split, the mean better than the running estimate
        on both (docs/training.md)."""
        lengths = self.bone_lengths(np.asarray(poses, dtype=np.float64),
                                    None if along is None else np.asarray(along, dtype=np.float64))
        if weights is not None:
            lengths = np.where(np.asarray(weights) >= 0.5, lengths, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # bones never seen
            median = np.nanmedian(lengths, axis=0)
            mean = np.nanmean(np.clip(lengths, median / ROBUST_RATIO, median * ROBUST_RATIO), axis=0)
            return np.nanmean(np.stack([mean, mean[self.twin]]), axis=0)

    def project(self, poses: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Poses (..., J, D) onto lengths (..., B) (broadcast to the poses' leading shape); same dtype."""
        poses = np.asarray(poses)
        lead = poses.shape[:-2]
        flat = poses.reshape(-1, *poses.shape[-2:])
        flat_lengths = np.broadcast_to(lengths, (*lead, len(self.bones))).reshape(-1, len(self.bones))
        if _swaa is not None:
            out = _swaa.project_bone_lengths(flat, self.bones, flat_lengths, self.iterations)
        else:
            _warn_reference_once()
            out = project_bone_lengths_reference(flat, self.bones, flat_lengths, self.iterations)
        return out.reshape(poses.shape).astype(poses.dtype, copy=False)


POSE_SHRINK = 6.0            # pose_dependence: James-Stein shrinkage, this x its usual strength
POSE_MIN_FRAMES = 60         # pose_dependence: frames a bone needs (both joints seen) to be fitted
POSE_OUTLIER_MADS = 4.0      # pose_dependence: frames whose fit residual is this many MADs off are left out


def bone_cosines(prior: BoneLengthPrior, poses: np.ndarray) -> np.ndarray:
    """(T, J, D) -> (T, B, B): the cosine of the angle between every two bones in every frame."""
    v = poses[:, prior.children] - poses[:, prior.parents]
    u = v / np.maximum(np.linalg.norm(v, axis=-1), 1e-9)[..., None]
    return np.einsum("tbd,tkd->tbk", u, u)


def pose_dependence(prior: BoneLengthPrior, poses: np.ndarray, views: np.ndarray, observed: np.ndarray,
                    weights: np.ndarray) -> np.ndarray:
    """How each bone's length changes with the pose, offline: (T, B) mm to add to the lengths.

    Skeleton conventions other than the data's own define some joints off the bones (a pelvis at
    the hip midpoint, joint centres moved in the body frame, keypoints on the surface), so some
    of their "bones" stretch with the pose: the CMU test takes in the COCO-derived convention,
    worst bone 19.3 mm std over time, the rigid projection then costs on nearly clean input.
    Per bone, its length in the input views (mean over the views that saw both joints) is fitted
    by least squares on the cosines between it and every other bone of `poses` (the model's
    output: the pose, with less noise), refitted without the frames whose residual is beyond
    POSE_OUTLIER_MADS, and the fit shrunk as James-Stein (x POSE_SHRINK) by its own residual
    noise: a rigid bone, or a fit to noise, gets ~0. On the ground truth of those takes the same features explain all but 1.7 mm
    of the worst bone. The input, not the output, is fitted: the model's own length errors
    depend on the pose too, and fitting them kept them (CMU validation, estimator-like errors,
    1 view: 37.8 -> 42.6 mm). Structured errors (drifting bias, swaps) look like pose dependence
    too: the Refiner applies this only to nearly clean input (synsp_core/refiner.py).

    poses (T, J, D); views (V, T, J, D), observed (V, T, J); weights (T, B): > 0.5 where the
    bone counts (some view saw both joints).
    """
    cosines = bone_cosines(prior, poses)                                           # (T, B, B)
    lengths = np.linalg.norm(views[:, :, prior.children] - views[:, :, prior.parents], axis=-1)   # (V, T, B)
    both = observed[:, :, prior.children] & observed[:, :, prior.parents]
    seen = both.sum(axis=0)
    measured = np.where(both, np.nan_to_num(lengths), 0.0).sum(axis=0) / np.maximum(seen, 1)
    out = np.zeros(weights.shape)
    features = len(prior.bones) - 1
    for b in range(len(prior.bones)):
        use = (seen[:, b] > 0) & (weights[:, b] > 0.5)
        if use.sum() < POSE_MIN_FRAMES:
            continue
        x, y = np.delete(cosines[:, b], b, axis=1), measured[use, b]
        centre = x[use].mean(axis=0)
        a = np.concatenate([x[use] - centre, np.ones((len(y), 1))], axis=1)
        beta = np.linalg.lstsq(a, y, rcond=None)[0]
        residual = y - a @ beta                      # refitted without the outliers of this fit
        deviation = np.abs(residual - np.median(residual))
        inlier = deviation <= POSE_OUTLIER_MADS * 1.4826 * np.median(deviation) + 1e-6
        beta = np.linalg.lstsq(a[inlier], y[inlier], rcond=None)[0]
        residual = y[inlier] - a[inlier] @ beta
        noise = residual @ residual / max(len(residual) - features - 1, 1)
        fitted = a[inlier, :-1] @ beta[:-1]
        shrink = max(0.0, 1.0 - POSE_SHRINK * features * noise / max(fitted @ fitted, 1e-12))
        out[:, b] = shrink * ((x - centre) @ beta[:-1])
    return out


_warned = False


def _warn_reference_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("synsp_core.bones: the extension synsp_core._swaa is not built; using the slower "
                      "numpy projection", RuntimeWarning, stacklevel=3)


def bone_prior_for(config, enabled: bool = True, horizon_frames: float = 1800.0) -> BoneLengthPrior | None:
    """The bone-length stage for a model config (its `skeleton` and `dims`): None when disabled or 2D."""
    if not enabled or config.dims != 3:
        return None
    return BoneLengthPrior(get_skeleton(config.skeleton), horizon_frames)
