"""Synthetic pose-estimator errors, drawn ONCE per frame of a whole sequence.

No data set here pairs real estimator output with ground truth, so training and evaluation add
errors to clean motion capture. Every model here corrupts a whole sequence in one call; windows
are cut from the result afterwards, so a frame seen by W overlapping windows carries the same
error in all of them (drawing fresh noise per window would let a sliding-window average also
average W noise draws per frame and inflate the measured gain).

Units: magnitudes are in data units, i.e. millimetres for 3D poses (the `_mm` fields; for 2D
pixel data read them as pixels). Times are in seconds and rates in events per second, so a model
means the same thing at any frame rate; per-frame jitter and the i.i.d. noises are per frame.

Config: `error_model_from_config({"name": "realistic", "scale": 1.5})` (or a plain name string)
builds a model from a YAML mapping; every other key is a dataclass field of that model.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import lfilter

from synsp_core.skeletons import H36M17, Skeleton


def _check_sequence(gt: np.ndarray, fps: float) -> np.ndarray:
    gt = np.asarray(gt)
    if gt.ndim != 3 or gt.shape[0] == 0:
        raise ValueError(f"poses must be shaped (T, J, D) with T > 0, got {gt.shape}")
    if not np.all(np.isfinite(gt)):
        raise ValueError("poses contain NaN or inf")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return gt


def random_directions(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """n unit vectors in R^dims, uniform on the sphere -> (n, dims)."""
    v = rng.standard_normal((n, dims))
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


@dataclass
class ErrorModel:
    """Base class: `apply` returns a corrupted copy of a whole sequence (T, J, D)."""

    def apply(self, gt: np.ndarray, fps: float, rng: np.random.Generator,
              skeleton: Skeleton = H36M17) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement apply")


@dataclass
class NoErrors(ErrorModel):
    """The identity: returns the ground truth (for clean-input baselines)."""

    def apply(self, gt, fps, rng, skeleton=H36M17):
        return _check_sequence(gt, fps).astype(np.float32, copy=True)


@dataclass
class GaussianNoise(ErrorModel):
    """i.i.d. Gaussian noise per coordinate and frame, standard deviation std_mm.

    The SynSP paper (Tab. 3/4, after GFPose) writes N(0, sigma) and calls sigma a variance; its
    noisy-input numbers grow with sqrt(sigma), so sigma is a variance in some normalised unit.
    Here the parameter is the standard deviation in mm (docs/data.md gives the std that matches
    the paper's noisy-input MPJPE).

    With depth_ratio != 1 the noise is anisotropic, as a monocular estimator's is: depth_ratio x
    std_mm along one direction per sequence (a camera's depth axis: horizontal in 3D, z up).
    """

    std_mm: float = 20.0
    depth_ratio: float = 1.0

    def apply(self, gt, fps, rng, skeleton=H36M17):
        gt = _check_sequence(gt, fps)
        noise = self.std_mm * rng.standard_normal(gt.shape)
        if self.depth_ratio != 1.0:
            depth = random_directions(rng, 1, gt.shape[-1])[0]
            if gt.shape[-1] == 3:
                depth = np.array([depth[0], depth[1], 0.0]) / max(np.hypot(depth[0], depth[1]), 1e-12)
            noise += (self.depth_ratio - 1.0) * (noise @ depth)[..., None] * depth
        return (gt + noise).astype(np.float32)


@dataclass
class UniformNoise(ErrorModel):
    """i.i.d. uniform noise per coordinate and frame in [-max_mm, max_mm] (zero mean)."""

    max_mm: float = 50.0

    def apply(self, gt, fps, rng, skeleton=H36M17):
        gt = _check_sequence(gt, fps)
        return (gt + rng.uniform(-self.max_mm, self.max_mm, gt.shape)).astype(np.float32)


@lru_cache(maxsize=None)
def _tree(skeleton: Skeleton) -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    """Per-joint depth in the parent tree (root = 0) and each joint's subtree (itself + descendants)."""
    ancestors = skeleton.ancestors
    depth = np.array(skeleton.depths, dtype=np.float64)
    subtrees = tuple(tuple(k for k in range(skeleton.num_joints) if k == j or j in ancestors[k])
                     for j in range(skeleton.num_joints))
    return depth, subtrees


def _event_starts(rng: np.random.Generator, rate_hz: float, num_frames: int, fps: float) -> np.ndarray:
    """Frames where Poisson events with rate_hz (per second) start."""
    count = rng.poisson(max(rate_hz, 0.0) * num_frames / fps)
    return rng.integers(0, num_frames, count)


def _duration_frames(rng: np.random.Generator, range_s: tuple[float, float], fps: float) -> int:
    return max(1, int(round(rng.uniform(*range_s) * fps)))


def drifting_bias(rng: np.random.Generator, shape: tuple, fps: float, std: float, time_s: float) -> np.ndarray:
    """Ornstein-Uhlenbeck offsets shaped (T, ...), stationary std `std`, correlation time time_s."""
    a = np.exp(-1.0 / (max(time_s, 1e-6) * fps))
    white = rng.standard_normal(shape)
    white[1:] *= np.sqrt(1.0 - a * a)                 # white[0] is the stationary first state
    return std * lfilter([1.0], [1.0, -a], white, axis=0)


@dataclass
class RealisticErrors(ErrorModel):
    """Errors of a mid-quality single-image 3D pose estimator, all drawn once per frame.

    - jitter: i.i.d. per frame, std growing with the joint's depth in the skeleton tree from
      jitter_root_mm (pelvis) to jitter_extremity_mm (wrists; head and ankles in between);
    - bias: per joint and coordinate, a slowly drifting offset (Ornstein-Uhlenbeck process with
      stationary std bias_std_mm and correlation time bias_time_s): SmoothNet's biased error S;
    - occlusion bursts: Poisson with occlusion_rate_hz; a limb (a joint and its descendants, at
      most 3 joints: e.g. forearm+hand, shin+foot, head) is pushed off by a constant offset of
      occlusion_offset_mm for occlusion_duration_s, with raised-cosine ramps of occlusion_ramp_s;
    - outliers: Poisson with outlier_rate_hz (whole skeleton); one joint jumps by
      outlier_offset_mm for exactly one frame;
    - left/right confusions: Poisson with swap_rate_hz; a left/right joint pair and their
      subtrees (e.g. both whole legs, or both hands) trade places for swap_duration_s.

    Each call (a sequence, or one view of it) draws a quality factor exp(N(0, quality_log_std))
    multiplying every magnitude. `scale` multiplies every magnitude and every event rate:
    scale=0 returns the ground truth, 2 gives a much worse estimator.
    """

    scale: float = 1.0
    quality_log_std: float = 0.25
    jitter_root_mm: float = 2.0
    jitter_extremity_mm: float = 8.0
    bias_std_mm: float = 22.0
    bias_time_s: float = 1.0
    occlusion_rate_hz: float = 0.3
    occlusion_duration_s: tuple[float, float] = (0.1, 0.5)
    occlusion_offset_mm: tuple[float, float] = (50.0, 150.0)
    occlusion_ramp_s: float = 0.05
    outlier_rate_hz: float = 0.5
    outlier_offset_mm: tuple[float, float] = (100.0, 300.0)
    swap_rate_hz: float = 0.1
    swap_duration_s: tuple[float, float] = (0.05, 0.2)

    def apply(self, gt, fps, rng, skeleton=H36M17):
        gt = _check_sequence(gt, fps)
        t, j, d = gt.shape
        if j != skeleton.num_joints:
            raise ValueError(f"poses have {j} joints but layout {skeleton.name} has {skeleton.num_joints}")
        noisy = gt.astype(np.float64, copy=True)
        if self.scale <= 0:
            return noisy.astype(np.float32)
        gain = self.scale * np.exp(self.quality_log_std * rng.standard_normal())
        depth, subtrees = _tree(skeleton)

        self._swap_left_right(noisy, rng, fps, skeleton, subtrees)
        # per-frame jitter, larger on joints far from the root
        level = depth / max(depth.max(), 1)
        jitter_std = self.jitter_root_mm + (self.jitter_extremity_mm - self.jitter_root_mm) * level
        noisy += gain * jitter_std[None, :, None] * rng.standard_normal((t, j, d))
        noisy += gain * drifting_bias(rng, (t, j, d), fps, self.bias_std_mm, self.bias_time_s)
        self._occlusions(noisy, rng, fps, gain, skeleton, subtrees)
        self._outliers(noisy, rng, fps, gain)
        return noisy.astype(np.float32)

    def _swap_left_right(self, noisy, rng, fps, skeleton, subtrees):
        pairs = skeleton.left_right_pairs
        for start in _event_starts(rng, self.scale * self.swap_rate_hz, len(noisy), fps):
            left, right = pairs[rng.integers(len(pairs))]
            frames = slice(start, start + _duration_frames(rng, self.swap_duration_s, fps))
            a = list(subtrees[left])
            b = [int(k) for k in skeleton.mirror_permutation[a]]   # each joint's right-side twin
            if sorted(b) != list(subtrees[right]):   # subtrees that do not mirror: swap the pair only
                a, b = [left], [right]
            noisy[frames, a + b] = noisy[frames, b + a]

    def _occlusions(self, noisy, rng, fps, gain, skeleton, subtrees):
        limbs = [s for j, s in enumerate(subtrees) if len(s) <= 3 and j not in skeleton.root]
        t, _, d = noisy.shape
        ramp = max(int(round(self.occlusion_ramp_s * fps)), 0)
        for start in _event_starts(rng, self.scale * self.occlusion_rate_hz, t, fps):
            n = _duration_frames(rng, self.occlusion_duration_s, fps)
            limb = list(limbs[rng.integers(len(limbs))])
            offset = gain * rng.uniform(*self.occlusion_offset_mm) * random_directions(rng, 1, d)[0]
            envelope = np.ones(n)
            r = min(ramp, n // 2)
            if r > 0:
                rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 1) / (r + 1))
                envelope[:r], envelope[n - r:] = rise, rise[::-1]
            envelope = envelope[: t - start]
            noisy[start:start + len(envelope), limb] += envelope[:, None, None] * offset

    def _outliers(self, noisy, rng, fps, gain):
        t, j, d = noisy.shape
        frames = _event_starts(rng, self.scale * self.outlier_rate_hz, t, fps)
        joints = rng.integers(0, j, len(frames))
        jumps = gain * rng.uniform(*self.outlier_offset_mm, (len(frames), 1)) * random_directions(rng, len(frames), d)
        np.add.at(noisy, (frames, joints), jumps)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


@dataclass
class MissingJoints(ErrorModel):
    """Joints the estimator did not report: NaN, in bursts (a limb for a while) and whole frames.

    Poisson bursts with burst_rate_hz hide a limb (a joint and its descendants, at most 3 joints)
    for burst_duration_s; whole frames go missing with frame_rate_hz. Only marks joints missing:
    combine it with other families (MixedErrors) for the positions that are reported.
    """

    burst_rate_hz: float = 0.3
    burst_duration_s: tuple[float, float] = (0.05, 1.0)
    frame_rate_hz: float = 0.05

    def apply(self, gt, fps, rng, skeleton=H36M17):
        noisy = _check_sequence(gt, fps).astype(np.float32, copy=True)
        t = len(noisy)
        _, subtrees = _tree(skeleton)
        limbs = [s for j, s in enumerate(subtrees) if len(s) <= 3]
        for start in _event_starts(rng, self.burst_rate_hz, t, fps):
            limb = list(limbs[rng.integers(len(limbs))])
            noisy[start:start + _duration_frames(rng, self.burst_duration_s, fps), limb] = np.nan
        noisy[_event_starts(rng, self.frame_rate_hz, t, fps)] = np.nan
        return noisy


@dataclass
class TriangulatedDetections(ErrorModel):
    """A multi-camera 2D detector triangulated per frame: the errors of a lab or robot rig that runs
    OpenPose-like detectors in each camera and a score-weighted DLT (3D data only).

    `num_cameras` pinhole cameras (focal length `focal_px`) on a ring around the person's mean root,
    `distance_m` away, elevation within +-`elevation_deg`, each looking at the person. Per camera,
    the 2D keypoints get: i.i.d. jitter (jitter_px); a drifting bias per joint (Ornstein-Uhlenbeck,
    bias_px, bias_time_s: a detector's appearance-dependent offset); misdetections (Poisson,
    misdetection_rate_hz per camera: a joint put on its left/right twin, or off by 20-80 px, for
    1-5 frames, with a low score); missed limbs (missed_rate_hz per camera, missed_duration_s,
    score 0). Scores of good detections are uniform in `score` ; a misdetection scores 0.2-0.6,
    so the weighted DLT still takes it in, and its error lands in 3D as a structured spike. A
    joint seen by fewer than 2 cameras is missing (NaN). `scale` multiplies every pixel
    magnitude. Held out of MixedErrors: what it measures is transfer to real detector output.
    """

    scale: float = 1.0
    num_cameras: int = 5
    focal_px: float = 800.0
    distance_m: tuple[float, float] = (3.5, 6.0)
    elevation_deg: float = 25.0
    jitter_px: float = 2.5
    bias_px: float = 3.0
    bias_time_s: float = 0.5
    misdetection_rate_hz: float = 1.0
    missed_rate_hz: float = 1.5
    missed_duration_s: tuple[float, float] = (0.1, 1.0)
    score: tuple[float, float] = (0.6, 0.95)

    def apply(self, gt, fps, rng, skeleton=H36M17):
        gt = _check_sequence(gt, fps)
        t, j, d = gt.shape
        if d != 3:
            raise ValueError(f"TriangulatedDetections needs 3D poses, got D = {d}")
        projections = self._cameras(gt, rng, skeleton)                            # (C, 3, 4)
        homogeneous = np.concatenate([gt, np.ones((t, j, 1))], axis=-1)           # (T, J, 4)
        image = np.einsum("cik,tjk->ctji", projections, homogeneous)
        pixels = image[..., :2] / image[..., 2:]                                  # (C, T, J, 2)
        scores = rng.uniform(*self.score, (len(projections), t, j))
        _, subtrees = _tree(skeleton)
        limbs = [s for s in subtrees if len(s) <= 3]
        twin = skeleton.mirror_permutation
        for c in range(len(projections)):
            pixels[c] += self.scale * self.jitter_px * rng.standard_normal((t, j, 2))
            pixels[c] += drifting_bias(rng, (t, j, 2), fps, self.scale * self.bias_px, self.bias_time_s)
            detected = pixels[c].copy()
            for start in _event_starts(rng, self.misdetection_rate_hz, t, fps):
                frames, joint = slice(start, start + int(rng.integers(1, 6))), int(rng.integers(j))
                if twin[joint] != joint and rng.random() < 0.5:
                    pixels[c, frames, joint] = detected[frames, twin[joint]]
                else:
                    pixels[c, frames, joint] += self.scale * rng.uniform(20, 80) * random_directions(rng, 1, 2)[0]
                scores[c, frames, joint] = rng.uniform(0.2, 0.6)
            for start in _event_starts(rng, self.missed_rate_hz, t, fps):
                limb = list(limbs[rng.integers(len(limbs))])
                scores[c, start:start + _duration_frames(rng, self.missed_duration_s, fps), limb] = 0.0
        return triangulate(projections, pixels, scores).astype(np.float32)

    def _cameras(self, gt, rng, skeleton) -> np.ndarray:
        """Projection matrices (C, 3, 4) of cameras on a ring around the mean root, looking at it;
        the ring's axis is the mean pose's longest principal axis (a person is taller than wide)."""
        target = skeleton.root_position(gt).mean(axis=0)
        spread = (gt - gt.mean(axis=1, keepdims=True)).reshape(-1, 3)
        up = np.linalg.eigh(spread.T @ spread)[1][:, -1]
        side = np.linalg.svd(up[None])[2][1:]                                     # 2 unit vectors normal to up
        azimuths = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(self.num_cameras) / self.num_cameras
        azimuths += rng.uniform(-0.3, 0.3, self.num_cameras)
        elevations = np.deg2rad(rng.uniform(-self.elevation_deg, self.elevation_deg, self.num_cameras))
        cameras = []
        for azimuth, elevation in zip(azimuths, elevations):
            direction = np.cos(elevation) * (np.cos(azimuth) * side[0] + np.sin(azimuth) * side[1]) + np.sin(elevation) * up
            centre = target + 1000.0 * rng.uniform(*self.distance_m) * direction
            forward = -direction
            right = np.cross(forward, up)
            right /= np.linalg.norm(right)
            rotation = np.stack([right, np.cross(forward, right), forward])       # rows: x right, y down, z forward
            intrinsics = np.diag([self.focal_px, self.focal_px, 1.0])
            cameras.append(intrinsics @ np.concatenate([rotation, -rotation @ centre[:, None]], axis=1))
        return np.stack(cameras)


def triangulate(projections: np.ndarray, pixels: np.ndarray, scores: np.ndarray,
                 min_score: float = 0.1) -> np.ndarray:
    """Score-weighted linear triangulation (DLT rows, solved as least squares in X with each row
    scaled to unit norm, so every camera counts by its score, not by its distance) per frame and
    joint: projections (C, 3, 4), pixels (C, T, J, 2), scores (C, T, J) -> (T, J, 3); NaN where
    fewer than 2 cameras score at least min_score."""
    weights = np.where(scores >= min_score, scores, 0.0)                          # (C, T, J)
    rows = pixels[..., None] * projections[:, None, None, 2:3, :] - projections[:, None, None, :2, :]  # (C, T, J, 2, 4)
    rows = rows / np.linalg.norm(rows[..., :3], axis=-1, keepdims=True)
    a, b = rows[..., :3], -rows[..., 3]                                           # a X = b
    w = weights[..., None]                                                        # (C, T, J, 1)
    normal = np.einsum("ctjr,ctjrk,ctjrl->tjkl", w, a, a)
    rhs = np.einsum("ctjr,ctjrk,ctjr->tjk", w, a, b)
    seen = (weights > 0).sum(axis=0) >= 2
    normal[~seen] = np.eye(3)
    points = np.linalg.solve(normal, rhs[..., None])[..., 0]
    points[~seen] = np.nan
    return points


@dataclass
class MixedErrors(ErrorModel):
    """The training distribution: a random mix of error families with magnitudes drawn per call.

    Each call (a sequence, or one view of it) draws which families are present and how strong, so
    that no single error statistic is learned as the truth (docs/data.md):
    - i.i.d. Gaussian noise, std log-uniform in gaussian_std_mm (present with gaussian_prob);
    - drifting bias (Ornstein-Uhlenbeck), std uniform in bias_std_mm, correlation time
      log-uniform in bias_time_s (bias_prob);
    - occlusion bursts, outliers (spikes) and left/right swaps of RealisticErrors, each present
      with its probability, rates uniform up to the given maxima;
    - missing joints (NaN, MissingJoints) with missing_prob;
    - with clean_prob, only a small i.i.d. noise (clean_std_mm): nearly clean input must stay so.
    Held out of it on purpose (so validation can measure transfer): uniform noise, the fixed
    parameter set of RealisticErrors, and triangulated multi-camera detections.
    """

    gaussian_prob: float = 0.8
    gaussian_std_mm: tuple[float, float] = (3.0, 40.0)
    bias_prob: float = 0.7
    bias_std_mm: tuple[float, float] = (0.0, 40.0)
    bias_time_s: tuple[float, float] = (0.1, 3.0)
    occlusion_prob: float = 0.5
    occlusion_max_rate_hz: float = 0.6
    outlier_prob: float = 0.5
    outlier_max_rate_hz: float = 1.0
    swap_prob: float = 0.3
    swap_max_rate_hz: float = 0.2
    missing_prob: float = 0.4
    missing_max_rate_hz: float = 0.5
    clean_prob: float = 0.1
    clean_std_mm: tuple[float, float] = (0.5, 5.0)

    def apply(self, gt, fps, rng, skeleton=H36M17):
        gt = _check_sequence(gt, fps)
        if rng.random() < self.clean_prob:
            return GaussianNoise(_log_uniform(rng, *self.clean_std_mm)).apply(gt, fps, rng, skeleton)
        present = lambda prob: rng.random() < prob   # noqa: E731
        events = RealisticErrors(
            scale=1.0, quality_log_std=0.0, jitter_root_mm=0.0, jitter_extremity_mm=0.0,
            bias_std_mm=rng.uniform(*self.bias_std_mm) if present(self.bias_prob) else 0.0,
            bias_time_s=_log_uniform(rng, *self.bias_time_s),
            occlusion_rate_hz=rng.uniform(0, self.occlusion_max_rate_hz) if present(self.occlusion_prob) else 0.0,
            outlier_rate_hz=rng.uniform(0, self.outlier_max_rate_hz) if present(self.outlier_prob) else 0.0,
            swap_rate_hz=rng.uniform(0, self.swap_max_rate_hz) if present(self.swap_prob) else 0.0)
        noisy = events.apply(gt, fps, rng, skeleton).astype(np.float64)
        if present(self.gaussian_prob):
            noisy += _log_uniform(rng, *self.gaussian_std_mm) * rng.standard_normal(noisy.shape)
        if present(self.missing_prob):
            missing = MissingJoints(burst_rate_hz=rng.uniform(0, self.missing_max_rate_hz))
            noisy[np.isnan(missing.apply(gt, fps, rng, skeleton))] = np.nan
        return noisy.astype(np.float32)


ERROR_MODELS: dict[str, type[ErrorModel]] = {
    "none": NoErrors, "gaussian": GaussianNoise, "uniform": UniformNoise, "realistic": RealisticErrors,
    "missing": MissingJoints, "mixed": MixedErrors, "triangulated": TriangulatedDetections,
}


def make_error_model(name: str, **overrides) -> ErrorModel:
    """Build an error model by name ('none', 'gaussian', 'uniform', 'realistic') with field overrides."""
    try:
        cls = ERROR_MODELS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown error model {name!r}; known: {sorted(ERROR_MODELS)}") from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"error model {name!r} has no parameter(s) {unknown}; known: {sorted(fields)}")
    for key, value in overrides.items():   # YAML gives lists where the fields hold (lo, hi) tuples
        if isinstance(value, list):
            overrides[key] = tuple(value)
    return cls(**overrides)


def error_model_from_config(config: str | dict | ErrorModel) -> ErrorModel:
    """Build from a YAML value: a name, or a mapping {'name': ..., <field>: <value>, ...}."""
    if isinstance(config, ErrorModel):
        return config
    if isinstance(config, str):
        return make_error_model(config)
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"error model config must be a name or a mapping with a 'name' key, got {config!r}")
    params = dict(config)
    return make_error_model(params.pop("name"), **params)


def rotation_matrix(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """3x3 rotation about a unit axis (Rodrigues)."""
    x, y, z = axis / np.linalg.norm(axis)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * k @ k


def simulated_confidence(noisy: np.ndarray, gt: np.ndarray, rng: np.random.Generator,
                         informative_prob: float = 0.5) -> np.ndarray:
    """Per-joint confidence (..., J) in [0, 1] as a detector might report it for noisy (..., J, D).

    0 where a joint is missing (NaN). Otherwise, with informative_prob, a noisy decreasing function
    of the joint's error, exp(-error / s) times a log-normal factor (s log-uniform in 30-300 mm),
    else 1 everywhere (a producer that reports none): a model must work with either.
    """
    missing = np.isnan(noisy).any(axis=-1)
    confidence = np.ones(missing.shape, dtype=np.float32)
    if rng.random() < informative_prob:
        error = np.linalg.norm(np.nan_to_num(noisy - gt), axis=-1)
        s = _log_uniform(rng, 30.0, 300.0)
        confidence = np.exp(-error / s + 0.3 * rng.standard_normal(error.shape))
        confidence = np.clip(confidence, 0.01, 1.0).astype(np.float32)
    confidence[missing] = 0.0
    return confidence


def synthesize_views(gt: np.ndarray, num_views: int, error_model: ErrorModel, fps: float,
                     rng: np.random.Generator, skeleton: Skeleton = H36M17,
                     calibration_mm: float = 0.0, calibration_deg: float = 0.0,
                     correlation: float = 0.0) -> np.ndarray:
    """V views of one motion (T, J, D) -> (V, T, J, D), each with its own errors, in the common frame.

    correlation c in [0, 1): each view's error is sqrt(c) x one draw shared by every view plus
    sqrt(1 - c) x a draw of its own (one estimator on similar viewpoints errs alike); a joint
    missing (NaN) in the shared draw is missing in every view.

    With calibration_deg / calibration_mm > 0 each view is also moved by a constant rigid
    transform (a wrong extrinsic calibration): a rotation by an angle uniform in
    [-calibration_deg, calibration_deg] about a random axis through the mean root position
    (for 2D data: in-plane rotation), then a translation of length uniform in [0, calibration_mm]
    in a random direction. The target stays the true pose `gt`, the same for every view.
    """
    gt = _check_sequence(gt, fps)
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}")
    d = gt.shape[-1]
    pivot = skeleton.root_position(gt).mean(axis=0)
    if not 0.0 <= correlation < 1.0:
        raise ValueError(f"correlation must be in [0, 1), got {correlation}")
    shared = error_model.apply(gt, fps, rng, skeleton) - gt if correlation > 0 else 0.0
    views = []
    for _ in range(num_views):
        view = error_model.apply(gt, fps, rng, skeleton).astype(np.float64)
        if correlation > 0:
            view = gt + np.sqrt(correlation) * shared + np.sqrt(1.0 - correlation) * (view - gt)
        if calibration_deg > 0 or calibration_mm > 0:
            angle = np.deg2rad(rng.uniform(-calibration_deg, calibration_deg))
            if d == 3:
                rot = rotation_matrix(random_directions(rng, 1, 3)[0], angle)
            elif d == 2:
                rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            else:
                raise ValueError(f"calibration errors need D = 2 or 3, got D = {d}")
            shift = rng.uniform(0.0, calibration_mm) * random_directions(rng, 1, d)[0]
            view = (view - pivot) @ rot.T + pivot + shift
        views.append(view)
    return np.stack(views).astype(np.float32)
