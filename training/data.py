"""Training and evaluation data: loaders, augmentation, and windows with synthetic estimator errors.

Loaders turn files into `Sequence`s (poses in mm, a frame rate, a layout name):
  load_cmu          the CMU mocap subset (cmu17_120fps.npz: train/ and test/ keys, pelvis frame, z up)
  load_cmu_more     more CMU takes (cmu_more17_60fps.npz, world frame, 60 fps)
  load_smoothnet    SmoothNet-format pairs (groundtruth/*_gt_*.npz + detected/*.npz, 3D in metres)
  load_npz_arrays   any .npz of (T, J, D) arrays with a frame rate and layout you give

`WindowSampler` makes an epoch: per training sequence it augments, resamples to a random frame
rate, draws estimator errors ONCE for the whole sequence (V views), and then cuts windows, so
overlapping windows share the same error on a shared frame. `make_test_case` gives the
deterministic full-length noisy/ground-truth pair of a test sequence.
"""
from __future__ import annotations

import glob
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from synsp_core.errors import ErrorModel, NoErrors, simulated_confidence, synthesize_views
from synsp_core.motion import resample
from synsp_core.skeletons import DEFAULT_LAYOUT_BY_JOINTS, SKELETONS, Skeleton, get_skeleton

CMU_FPS = 120.0
CMU_MORE_FPS = 60.0
# Frame rates of SmoothNet's data sets (by file-name prefix), used when no fps is given.
SMOOTHNET_FPS = {"h36m": 50.0, "3dpw": 30.0, "pw3d": 30.0, "aist": 60.0, "jhmdb": 30.0,
                 "mpiinf3dhp": 25.0, "mupots": 30.0}


@dataclass
class Sequence:
    """One motion: poses (T, J, D) float32 in mm (3D) or pixels (2D), at `fps` frames per second.

    skeleton: layout name (synsp_core.skeletons), or e.g. '14-joint' for layouts without one.
    detected: real estimator output for the same frames, (T, J, D) or (V, T, J, D), when known.
    """

    name: str
    poses: np.ndarray
    fps: float
    skeleton: str = "h36m17"
    detected: np.ndarray | None = None

    def __post_init__(self):
        self.poses = np.asarray(self.poses, dtype=np.float32)
        if self.poses.ndim != 3 or self.poses.shape[0] == 0:
            raise ValueError(f"sequence {self.name!r}: poses must be (T, J, D) with T > 0, got {self.poses.shape}")
        if not np.all(np.isfinite(self.poses)):
            raise ValueError(f"sequence {self.name!r}: poses contain NaN or inf")
        if not self.fps > 0:
            raise ValueError(f"sequence {self.name!r}: fps must be positive, got {self.fps}")
        if self.skeleton in SKELETONS and get_skeleton(self.skeleton).num_joints != self.poses.shape[1]:
            raise ValueError(f"sequence {self.name!r}: {self.poses.shape[1]} joints, "
                             f"but layout {self.skeleton} has {get_skeleton(self.skeleton).num_joints}")
        if self.detected is not None:
            self.detected = np.asarray(self.detected, dtype=np.float32)
            if self.detected.shape[-3:] != self.poses.shape or self.detected.ndim not in (3, 4):
                raise ValueError(f"sequence {self.name!r}: detected {self.detected.shape} does not match "
                                 f"poses {self.poses.shape}")

    @property
    def num_frames(self) -> int:
        return self.poses.shape[0]


# ----------------------------------------------------------------------------- loaders

def _npz_file(path: str, default_name: str) -> str:
    file = os.path.join(path, default_name) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(f"no such data file: {file}")
    return file


def drop_leading_glitches(poses: np.ndarray, fps: float, max_speed_mm_s: float = 12000.0) -> np.ndarray:
    """Drop first frames from which some joint jumps faster than max_speed_mm_s to the next frame.

    Frame 0 of every cmu17 sequence is such a conversion glitch (joints jump 450-650 mm to frame 1).
    """
    speed = np.linalg.norm(np.diff(poses, axis=0), axis=-1).max(axis=-1) * fps   # (T-1,) mm/s
    first = 0
    while first < len(speed) and speed[first] > max_speed_mm_s:
        first += 1
    return poses[first:]


def load_cmu(path: str, split: str = "train", joints: int = 17) -> list[Sequence]:
    """CMU sequences of one split ('train', 'test' or 'all') from cmu17_120fps.npz or its folder.

    Keys look like 'train/walking_3'; poses are mm, pelvis frame, z up, 120 fps, H36M-17 order.
    The glitched first frame of each sequence is dropped (drop_leading_glitches).
    """
    if joints != 17:
        raise ValueError(f"only the 17-joint (Human3.6M order) CMU file has a layout here, got joints={joints}")
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    with np.load(_npz_file(path, "cmu17_120fps.npz")) as data:
        keys = sorted(k for k in data.files if split == "all" or k.startswith(split + "/"))
        if not keys:
            raise ValueError(f"{path}: no keys for split {split!r} (keys look like 'train/<action>_<k>')")
        return [Sequence(k, drop_leading_glitches(data[k], CMU_FPS), CMU_FPS, "h36m17") for k in keys]


def load_cmu_more(path: str, root_relative: bool = False) -> list[Sequence]:
    """The 109 extra CMU takes (cmu_more17_60fps.npz or its folder): mm, world frame, z up, 60 fps.

    root_relative=True subtracts the pelvis per frame (the pelvis frame of load_cmu, but with
    the body's world orientation kept). The file may hold the same takes as cmu17's test split
    (its keys carry no take numbers, so overlap cannot be checked): do not report cmu17 test
    numbers of a model trained on this file as held-out results.
    """
    with np.load(_npz_file(path, "cmu_more17_60fps.npz")) as data:
        sequences = []
        for key in sorted(data.files):
            poses = data[key]
            if root_relative:
                poses = poses - poses[:, :1]
            sequences.append(Sequence(f"cmu_more/{key}", poses, CMU_MORE_FPS, "h36m17"))
        return sequences


def _smoothnet_sequences(file: str, key: str, allow_pickle: bool) -> list[np.ndarray]:
    try:
        with np.load(file, allow_pickle=allow_pickle) as data:
            if key not in data.files:
                raise ValueError(f"{file}: no {key!r} array (keys: {data.files})")
            return list(data[key])
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{file} stores object arrays (pickled); pass allow_pickle=True "
                             f"(--allow-pickle) only if you trust the file") from None
        raise


def load_smoothnet(path: str, split: str = "test", name: str | None = None, kind: str = "3D",
                   fps: float | None = None, layout: str | None = None,
                   allow_pickle: bool = False) -> list[tuple[Sequence, Sequence]]:
    """(ground truth, detected) sequence pairs of a SmoothNet-format data set, in mm.

    path: SmoothNet's data/poses/ folder with name='<dataset>_<estimator>' (e.g. 'h36m_fcn',
    read from path/h36m_fcn_3D/), or that data set folder itself (name then optional). The folder
    holds groundtruth/<dataset>_gt_<kind>_<split>.npz and detected/<dataset>_<estimator>_<kind>_<split>.npz,
    each with `imgname` and `joints_3d` (`joints_2d` for kind='2D'): one array per sequence,
    (T, J*D) or (T, J, D). 3D is converted from metres to mm; 2D stays in pixels. fps defaults by
    data set (SMOOTHNET_FPS: h36m 50, 3dpw 30, aist 60, ...); layout to 'h36m17' for 17 joints and
    'lsp14' for 14 (3DPW, AIST++); pass layout='coco17' for 2D COCO keypoints.
    The ground-truth Sequence also carries the detected poses (`.detected`, for make_test_case).
    SmoothNet's files hold object arrays, which numpy reads only by unpickling: allow_pickle=True
    means you trust the files.
    """
    if kind not in ("3D", "2D"):
        raise ValueError(f"kind must be '3D' or '2D', got {kind!r}")
    if name:
        if os.path.isdir(os.path.join(path, f"{name}_{kind}")):
            path = os.path.join(path, f"{name}_{kind}")
        dataset = name.split("_")[0]
        gt_file = os.path.join(path, "groundtruth", f"{dataset}_gt_{kind}_{split}.npz")
        det_file = os.path.join(path, "detected", f"{name}_{kind}_{split}.npz")
        for file in (gt_file, det_file):
            if not os.path.isfile(file):
                raise FileNotFoundError(f"no such SmoothNet file: {file} (data set {name}_{kind}, split {split})")
    else:
        gt_files = sorted(glob.glob(os.path.join(path, "groundtruth", f"*_gt_{kind}_{split}.npz")))
        det_files = sorted(glob.glob(os.path.join(path, "detected", f"*_{kind}_{split}.npz")))
        if len(gt_files) != 1 or len(det_files) != 1:
            raise FileNotFoundError(f"{path}: expected one groundtruth/*_gt_{kind}_{split}.npz and one "
                                    f"detected/*_{kind}_{split}.npz (or pass name), found {gt_files} and {det_files}")
        gt_file, det_file = gt_files[0], det_files[0]
        name = os.path.basename(det_file)[:-len(f"_{kind}_{split}.npz")]
        dataset = os.path.basename(gt_file).split("_gt_")[0]
    if fps is None:
        if dataset not in SMOOTHNET_FPS:
            raise ValueError(f"unknown frame rate of data set {dataset!r}: pass fps")
        fps = SMOOTHNET_FPS[dataset]
    key, d = ("joints_3d", 3) if kind == "3D" else ("joints_2d", 2)
    unit = 1000.0 if kind == "3D" else 1.0
    gts = _smoothnet_sequences(gt_file, key, allow_pickle)
    dets = _smoothnet_sequences(det_file, key, allow_pickle)
    if len(gts) != len(dets):
        raise ValueError(f"{path}: {len(gts)} ground-truth sequences but {len(dets)} detected")
    pairs = []
    for i, (gt, det) in enumerate(zip(gts, dets)):
        gt = np.asarray(gt, dtype=np.float64).reshape(len(gt), -1, d) * unit
        det = np.asarray(det, dtype=np.float64).reshape(len(det), -1, d) * unit
        if gt.shape != det.shape:
            raise ValueError(f"{path}: sequence {i}: ground truth {gt.shape} vs detected {det.shape}")
        seq_layout = layout or DEFAULT_LAYOUT_BY_JOINTS.get(gt.shape[1], f"{gt.shape[1]}-joint")
        seq_name = f"{name}_{kind}_{split}/{i:04d}"
        pairs.append((Sequence(seq_name, gt, fps, seq_layout, det), Sequence(seq_name, det, fps, seq_layout)))
    return pairs


def load_npz_arrays(path: str, fps: float, layout: str = "h36m17") -> list[Sequence]:
    """Every array of an .npz as a sequence: (T, J, D) in mm (3D) or pixels (2D) at `fps`."""
    with np.load(path) as data:   # no pickle: plain numeric arrays only
        sequences = []
        for key in sorted(data.files):
            arr = data[key]
            if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.number):
                raise ValueError(f"{path}: array {key!r} must be numeric (T, J, D), got {arr.dtype} {arr.shape}")
            sequences.append(Sequence(key, arr, fps, layout))
        if not sequences:
            raise ValueError(f"{path}: no arrays")
        return sequences


# ----------------------------------------------------------------------------- augmentation

def rotate_about_axis(poses: np.ndarray, angle_rad: float, up_axis: int = 2) -> np.ndarray:
    """Rotate 3D poses (..., 3) about the coordinate axis `up_axis` through the origin."""
    a, b = [k for k in range(3) if k != up_axis]
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    out = poses.copy()
    out[..., a] = c * poses[..., a] - s * poses[..., b]
    out[..., b] = s * poses[..., a] + c * poses[..., b]
    return out


def mirror(poses: np.ndarray, skeleton: Skeleton, lateral_axis: int = 0) -> np.ndarray:
    """Mirror (..., J, D) poses: negate the lateral axis and relabel left <-> right joints."""
    out = poses[..., skeleton.mirror_permutation, :].copy()
    out[..., lateral_axis] *= -1
    return out


def bone_classes(skeleton: Skeleton) -> np.ndarray:
    """Per joint, the index of its bone's class: left and right twins share one (symmetric bodies)."""
    names = [n[2:] if n[:2] in ("l_", "r_") else n for n in skeleton.joint_names]
    return np.array([sorted(set(names)).index(n) for n in names])


def scale_bones(poses: np.ndarray, skeleton: Skeleton, factors: np.ndarray) -> np.ndarray:
    """Scale each bone (parent -> joint j) of (T, J, D) poses by factors[j], rebuilding positions down the tree.

    The root keeps its position; every other joint = its (new) parent + factors[j] * original bone.
    """
    out = poses.copy()
    depth = skeleton.depths   # joints are rebuilt parents first, in any index order
    for j in sorted(range(skeleton.num_joints), key=depth.__getitem__):
        p = skeleton.parents[j]
        if p >= 0:
            out[:, j] = out[:, p] + factors[j] * (poses[:, j] - poses[:, p])
    return out


@dataclass
class Augmentation:
    """Random per-sequence augmentation (each sequence once per epoch, before errors are drawn).

    Rotation about `up_axis` by a uniform angle (3D only), mirroring with probability mirror_prob
    (negate `lateral_axis`, swap left/right labels), global scale, per-bone-class length scale
    (left/right twins alike, so bodies stay symmetric), time reversal with probability
    reverse_prob (motion played backwards is still human motion), and a speed change: the motion
    is played `speed` times faster (log-uniform in speed_range) by resampling it.
    Defaults match the CMU data: z up, subject's left/right along x.

    `apply` also takes motions stacked between the time and joint axes, (T, K, J, D): a ground
    truth and its real detections. They get the same draws (speed, scale, mirror, rotation), so
    the detection error moves with the body; bone-length scaling is then skipped (it would
    rebuild each detected joint from its parent and so pile up and rescale the estimator's error
    down the tree).
    """

    up_axis: int = 2
    lateral_axis: int = 0
    rotate: bool = True
    mirror_prob: float = 0.5
    scale_range: tuple[float, float] = (0.9, 1.1)
    bone_scale_range: tuple[float, float] = (0.85, 1.15)
    speed_range: tuple[float, float] = (0.8, 1.25)
    reverse_prob: float = 0.0

    def apply(self, poses: np.ndarray, fps: float, dst_fps: float, skeleton: Skeleton,
              rng: np.random.Generator) -> np.ndarray:
        """Augment (T, J, D) poses, or (T, K, J, D) stacked motions, recorded at fps; returns the
        augmented motion at dst_fps."""
        speed = np.exp(rng.uniform(*np.log(self.speed_range)))
        poses = resample(poses, fps * speed, dst_fps).astype(np.float64)
        if poses.ndim == 3:
            classes = bone_classes(skeleton)
            poses = scale_bones(poses, skeleton, rng.uniform(*self.bone_scale_range, classes.max() + 1)[classes])
        poses = poses * rng.uniform(*self.scale_range)
        if self.reverse_prob > 0 and rng.random() < self.reverse_prob:
            poses = poses[::-1]
        if rng.random() < self.mirror_prob:
            poses = mirror(poses, skeleton, self.lateral_axis)
        if self.rotate and poses.shape[-1] == 3:
            poses = rotate_about_axis(poses, rng.uniform(-np.pi, np.pi), self.up_axis)
        return poses.astype(np.float32)


# ----------------------------------------------------------------------------- windows

def _name_seed(name: str) -> int:
    return zlib.crc32(name.encode())


def hold_out_every(items: list, every: int = 10) -> tuple[list, list]:
    """(kept, held out): items 0, every, 2 * every, ... are held out (validation, filter tuning).

    Used for SmoothNet-format data, whose train split has no validation part of its own.
    """
    if len(items) < 2:
        raise ValueError(f"need at least 2 sequences to hold one out, got {len(items)}")
    held = set(range(0, len(items), every))
    return [x for i, x in enumerate(items) if i not in held], [items[i] for i in sorted(held)]


@dataclass
class WindowBatch:
    """noisy and gt (B, V, W, J*D) float32 (gt: the true pose, the same for every view),
    view_mask (B, V) bool (False: the view is absent and its noisy input is zero), confidence
    (B, V, W, J) float32 in [0, 1] (0: the joint is missing, its noisy input is zero)."""

    noisy: torch.Tensor
    gt: torch.Tensor
    view_mask: torch.Tensor
    confidence: torch.Tensor


@dataclass
class EpochData:
    """One epoch's synthesized sequences, concatenated in time, and its window start frames."""

    noisy: np.ndarray        # (V, F, J*D) all sequences' noisy frames, one after another (missing: 0)
    confidence: np.ndarray   # (V, F, J) per-joint confidence, 0 = missing
    gt: np.ndarray           # (F, J*D)
    starts: np.ndarray       # (N,) first frame of each window, in the concatenated frames
    view_mask: np.ndarray    # (N, V) bool
    fps: np.ndarray          # (num_sequences * repeats,) the frame rate each draw was made at

    @property
    def num_windows(self) -> int:
        return len(self.starts)


@dataclass
class WindowSampler:
    """Windows of W frames with synthetic errors (or real detections), regenerated every epoch.

    Per sequence and epoch (seeded by seed, epoch and the sequence name, so runs repeat): a
    target frame rate uniform in fps_range (fps_range=None: the sequence's own rate),
    augmentation (with speed change) to that rate,
    errors for V = num_views views drawn once for the whole sequence (synthesize_views), then
    every window (stride 1; a stride > 1 starts at a random offset). With random_live_views and
    V > 1 each window keeps a random subset of 1..V views (uniform count). Sequences shorter than
    W frames at their drawn rate are skipped for that epoch. repeats > 1 draws every sequence
    that many times per epoch (independent augmentation, rate and errors): a longer epoch.

    conventions: a callable rng -> Convention (synsp_training.conventions.ConventionSampler) that
    redraws the skeleton convention of every sequence draw (3D H36M-17 only), applied to the
    ground truth before errors are drawn: no convention is learned as the truth.
    view_correlation_prob: the share of sequence draws whose views get correlated errors
    (correlation uniform in 0.2-0.8, synthesize_views); the rest have independent views.
    confidence_informative_prob: the share of views whose per-joint confidence follows their
    error (simulated_confidence); the others report 1, and 0 for missing (NaN) joints.

    error_model=None takes each sequence's real estimator output (`Sequence.detected`, V = 1 or
    its view count, which must equal num_views) as the noisy input: it is resampled and augmented
    together with the ground truth (`Augmentation.apply` on the stacked pair: same rotation,
    mirror, scale and speed, no bone scaling); the calibration errors do not apply.
    """

    sequences: list[Sequence]
    window: int
    num_views: int = 1
    error_model: ErrorModel | None = field(default_factory=NoErrors)
    fps_range: tuple[float, float] | None = (20.0, 60.0)
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    random_live_views: bool = True
    calibration_mm: float = 0.0
    calibration_deg: float = 0.0
    conventions: object = None
    view_correlation_prob: float = 0.0
    confidence_informative_prob: float = 0.5
    stride: int = 1
    repeats: int = 1
    seed: int = 0

    def __post_init__(self):
        if not self.sequences:
            raise ValueError("WindowSampler needs at least one sequence")
        if min(self.window, self.num_views, self.stride, self.repeats) < 1:
            raise ValueError(f"window, num_views, stride and repeats must be >= 1, got "
                             f"{self.window}, {self.num_views}, {self.stride}, {self.repeats}")
        layouts = {s.skeleton for s in self.sequences}
        if len(layouts) != 1:
            raise ValueError(f"all sequences must share one layout, got {sorted(layouts)}")
        self.skeleton = get_skeleton(layouts.pop())
        if self.error_model is None:
            for seq in self.sequences:
                if seq.detected is None:
                    raise ValueError(f"sequence {seq.name!r} has no detected poses: error_model=None trains on "
                                     f"real estimator output (SmoothNet-format data); give an error model instead")
                views = len(seq.detected) if seq.detected.ndim == 4 else 1
                if views != self.num_views:
                    raise ValueError(f"sequence {seq.name!r} has {views} detected view(s), num_views is {self.num_views}")

    def motion_with_detections(self, seq: Sequence, fps: float, rng: np.random.Generator):
        """Ground truth (T, J, D) and its real detections (V, T, J, D) at fps, augmented alike."""
        detected = seq.detected if seq.detected.ndim == 4 else seq.detected[None]
        both = np.concatenate([seq.poses[None], detected]).transpose(1, 0, 2, 3)     # (T, 1 + V, J, D)
        if self.augmentation is None:
            both = resample(both, seq.fps, fps)
        else:
            both = self.augmentation.apply(both, seq.fps, fps, self.skeleton, rng)
        both = both.transpose(1, 0, 2, 3)
        return both[0], both[1:]

    def synthesize_epoch(self, epoch: int) -> EpochData:
        noisy, confidence, gt, starts, rates, offset = [], [], [], [], [], 0
        for seq, repeat in ((s, r) for r in range(self.repeats) for s in self.sequences):
            rng = np.random.default_rng([self.seed, epoch, _name_seed(seq.name), repeat])
            fps = rng.uniform(*self.fps_range) if self.fps_range else seq.fps
            if self.error_model is None:
                poses, views = self.motion_with_detections(seq, fps, rng)
            elif self.augmentation is None:
                poses = resample(seq.poses, seq.fps, fps)
            else:
                poses = self.augmentation.apply(seq.poses, seq.fps, fps, self.skeleton, rng)
            rates.append(fps)
            t = len(poses)
            if t < self.window:
                continue
            if self.error_model is not None:
                if self.conventions is not None:
                    poses = self.conventions(rng).apply(poses).astype(np.float32)
                correlated = self.view_correlation_prob > 0 and rng.random() < self.view_correlation_prob
                correlation = rng.uniform(0.2, 0.8) if correlated else 0.0
                views = synthesize_views(poses, self.num_views, self.error_model, fps, rng, self.skeleton,
                                         self.calibration_mm, self.calibration_deg, correlation)
            informative = self.confidence_informative_prob if self.error_model is not None else 0.0
            confidence.append(np.stack([simulated_confidence(v, poses, rng, informative) for v in views]))
            noisy.append(np.nan_to_num(views, nan=0.0).reshape(self.num_views, t, -1))
            gt.append(poses.reshape(t, -1))
            first = rng.integers(self.stride) if self.stride > 1 else 0
            starts.append(offset + np.arange(first, t - self.window + 1, self.stride))
            offset += t
        if not starts:
            raise ValueError(f"no sequence has {self.window} frames at the drawn frame rates")
        starts = np.concatenate(starts)
        mask_rng = np.random.default_rng([self.seed, epoch, 1 << 32])
        if self.random_live_views and self.num_views > 1:
            live = mask_rng.integers(1, self.num_views + 1, len(starts))
            rank = np.argsort(mask_rng.random((len(starts), self.num_views)), axis=1).argsort(axis=1)
            view_mask = rank < live[:, None]
        else:
            view_mask = np.ones((len(starts), self.num_views), dtype=bool)
        return EpochData(np.concatenate(noisy, axis=1), np.concatenate(confidence, axis=1),
                         np.concatenate(gt), starts, view_mask, np.array(rates))

    def batches(self, epoch: int, batch_size: int, shuffle: bool = True, rank: int = 0,
                world_size: int = 1, data: EpochData | None = None) -> Iterator[WindowBatch]:
        """Yield the epoch's windows in batches (the last may be smaller).

        For DDP every rank passes its rank and world_size: all ranks draw the same epoch and
        order, and each takes an equal share (a few windows may be left out).
        """
        data = data or self.synthesize_epoch(epoch)
        order = np.arange(data.num_windows)
        if shuffle:
            order = np.random.default_rng([self.seed, epoch, 2 << 32]).permutation(order)
        order = order[rank::world_size][: data.num_windows // world_size]
        steps = np.arange(self.window)
        for i in range(0, len(order), batch_size):
            chosen = order[i:i + batch_size]
            frames = data.starts[chosen, None] + steps                 # (B, W)
            mask = data.view_mask[chosen]
            noisy = data.noisy[:, frames].transpose(1, 0, 2, 3) * mask[:, :, None, None]
            confidence = data.confidence[:, frames].transpose(1, 0, 2, 3) * mask[:, :, None, None]
            gt = np.repeat(data.gt[frames][:, None], noisy.shape[1], axis=1)
            yield WindowBatch(torch.from_numpy(noisy.astype(np.float32)), torch.from_numpy(gt),
                              torch.from_numpy(mask), torch.from_numpy(confidence.astype(np.float32)))


def make_test_case(seq: Sequence, fps: float, error_model: ErrorModel | None, num_views: int = 1,
                   seed: int = 0, calibration_mm: float = 0.0,
                   calibration_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic evaluation pair at `fps`: noisy (V, T, J, D) and gt (T, J, D), float32.

    Errors depend only on seed and the sequence name (not on the order of the test set).
    error_model=None uses the sequence's real estimator output (seq.detected) instead.
    """
    gt = resample(seq.poses, seq.fps, fps)
    if error_model is None:
        if seq.detected is None:
            raise ValueError(f"sequence {seq.name!r} has no detected poses; give an error model")
        detected = seq.detected if seq.detected.ndim == 4 else seq.detected[None]
        noisy = np.stack([resample(view, seq.fps, fps) for view in detected])
        return noisy.astype(np.float32), gt.astype(np.float32)
    rng = np.random.default_rng([seed, _name_seed(seq.name)])
    noisy = synthesize_views(gt, num_views, error_model, fps, rng, get_skeleton(seq.skeleton),
                             calibration_mm, calibration_deg)
    return noisy, gt.astype(np.float32)
