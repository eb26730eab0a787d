"""Streaming multi-view refinement: synchronized frames in, finalized refined frames out.

The node's logic without ROS. Each synchronized frame (one pose per view, or None where a view
has no message) is appended to per-view ring buffers holding the last W frames (J, D) in mm; the
model then runs ONCE on the W-frame window of all views in use, and a StreamingSWAA merges the
overlapping window outputs (Fig. 4 of SynSP). A frame is finalized `emit_delay` frames after it
came in (0 = causal, W - 1 = every window covering it averaged) and returned with its original
capture stamp.

Choices, on purpose:
- Warm-up and late joiners: a view's buffer starts filled with its first pose, so the model
  always sees W frames; these padding rows carry weight 0 in the SWAA (below), so they shape the
  context of real frames but are never emitted nor averaged into an output.
- A live view with no pose in a frame (a lost message) holds its last pose in the buffer, with
  weight 0: it stays in the model's input, but that frame's output comes only from the views
  that saw it. A view the synchronizer declares dead is masked out of the model (PSE masking)
  and its buffer is forgotten; when it rejoins it starts over like a new view.
- Weighted SWAA: every window row carries, per view, (refined * w, quality * w, w) with
  w = 1 if the view observed that frame in that window, else 0. StreamingSWAA returns means, and
  mean(x * w) / mean(w) is the average over exactly the windows where the view saw the frame, so
  views may come and go without corrupting each other. One SWAA serves all views.
- Fusion after SWAA: the fused pose is the mean of the refined poses of the views that saw the
  frame. Weighting them by their PQE quality instead was measured no better (26.19 mm MPJPE and
  5.33 mm/frame^2 Accel both ways, 4 views, realistic errors, the 3 CMU test clips x 2 seeds,
  an early multi-view checkpoint): the model already weighs the views against each other.
- A backwards stamp (bag loop, sim time restart) or a gap longer than `max_gap_s` flushes the held
  frames and starts a new stream. A duplicate stamp is ignored.
- Bone lengths (3D): with a BoneLengthPrior, each finalized fused pose updates the running
  bone-length estimate, and the fused and per-view poses are projected onto it (synsp_core.bones),
  the same stage as in the offline Refiner. A new stream starts a new estimate.
- Missing joints: a pose may hold NaN joints (coordinates that are not finite or beyond
  MAX_ABS_MM count as missing too), and `confidences` gives per-joint confidence in [0, 1]; the
  model weighs joints by it and predicts missing ones. A pose with no observed joint counts as
  no pose. Each frame's `joint_quality` is the best over its views of PQE quality x the joint's
  confidence in that frame: 0 for a joint no view saw. The bone-length estimate learns only from
  bones whose two joints some view saw.
- Nothing non-finite leaves: a view whose window output has NaN/inf gets weight 0 for that window,
  and a frame left with no finite view is dropped; both are counted.
- Several people: MultiPersonRefiner keeps one StreamingRefiner per person (its own windows, SWAA
  and bone lengths) and refines all their windows in ONE batched backend call per frame; `push`
  is `prepare` (check, buffer), the model call on `model_inputs()`, then `finish` (SWAA, decode),
  and MultiPersonRefiner runs the middle step once for everyone. People ids come from
  synsp_core.people.PeopleTracker; a person gone from the tracked set is flushed and removed.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from synsp_core.bones import BoneLengthPrior
from synsp_core.refiner import MAX_ABS_MM, observed_mean
from synsp_core.swaa import StreamingSWAA

SKIP_INPUT_WEIGHT = 1e-6   # SWAA weight of an input pose standing in for a skipped window (skip_model)


def edge_taper(window: int) -> np.ndarray:
    """SWAA weights of a window's rows while a window budget skips windows: 0.25, 0.75 on the two
    frames at each edge, 1 inside. Refined every other frame, a frame would otherwise average the
    windows' odd positions and the next frame their even ones, and the model's edge frames differ
    from its middle ones: a zig-zag (room demo, budget 2 of 3 people, ties then to the lowest id:
    Accel 4.92 -> 7.85 mm/frame^2 untapered, 5.77 tapered; 2026-12-03, `python -m
    synsp_ros.demo_room --offline --window-budget 2`)."""
    if window < 4:
        return np.ones(window)
    return np.concatenate([[0.25, 0.75], np.ones(window - 4), [0.75, 0.25]])


@dataclass
class RefinedFrame:
    """One finalized output frame. Rows of views not in `views` are zero."""

    stamp_s: float          # capture stamp of the input frame, s
    fused: np.ndarray       # (J, D) mm, views fused
    per_view: np.ndarray    # (V, J, D) mm, each view's refined pose
    quality: np.ndarray     # (V,) PQE quality in [1/e, 1]; 0 for views not in use
    views: np.ndarray       # (V,) bool, views that contributed to this frame
    windows: np.ndarray     # (V,) int, windows averaged per view (under a window budget: weighted, copies too)
    joint_quality: np.ndarray  # (J,) in [0, 1]: best view quality x joint confidence; 0 = seen by no view


@dataclass
class StreamingStats:
    """Counters since construction (not cleared by reset)."""

    frames_in: int = 0           # synchronized frames pushed
    frames_out: int = 0          # refined frames returned
    resets: int = 0              # new streams started (backwards stamp or gap)
    duplicate_stamps: int = 0    # frames ignored because their stamp repeated the last one
    empty_frames: int = 0        # frames ignored because no view had a pose
    missing_joints: int = 0      # joints of received poses that were missing (NaN, implausible, confidence 0)
    nonfinite_windows: int = 0   # (window, view) outputs with NaN/inf, given weight 0
    dropped_frames: int = 0      # finalized frames with no finite view, not returned
    skipped_windows: int = 0     # windows left out of the model by a window budget (skip_model)


class StreamingRefiner:
    """Online SynSP refinement of V synchronized views.

    backend: a callable (poses (1, V, W, J*D) mm, view_mask (1, V) bool) -> (refined, quality)
    with a `config` (SynSPConfig: window, num_joints, dims), as made by runtime.create_backend.
    emit_delay: frames a frame waits for later windows, 0 .. W - 1 (None = W - 1); settable live.
    max_gap_s: a stamp gap longer than this starts a new stream (e.g. the view timeout).
    bone_prior: the bone-length stage applied to every returned pose (None: off).
    """

    def __init__(self, backend, num_views: int, emit_delay: int | None = None, max_gap_s: float = math.inf,
                 bone_prior: BoneLengthPrior | None = None):
        cfg = backend.config
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        if not max_gap_s > 0:
            raise ValueError(f"max_gap_s must be > 0 s, got {max_gap_s}")
        self.backend = backend
        self.num_views, self.window = num_views, cfg.window
        self.num_joints, self.dims = cfg.num_joints, cfg.dims
        self.max_gap_s = max_gap_s
        self.pose_size = self.num_joints * self.dims
        # SWAA channels per view: refined * w (J*D), quality * w (1), w (1)
        self.swaa = StreamingSWAA(self.window, num_views * (self.pose_size + 2), emit_delay)
        self.stats = StreamingStats()
        self.bone_prior = bone_prior
        self.reset()

    @property
    def emit_delay(self) -> int:
        return self.swaa.emit_delay

    @emit_delay.setter
    def emit_delay(self, value: int) -> None:
        self.swaa.emit_delay = value

    @property
    def views_in_use(self) -> np.ndarray:
        """(V,) bool: views with a buffer, i.e. fed to the model at the next frame."""
        return self.in_use.copy()

    def reset(self) -> None:
        """Forget the stream (buffers, held frames); counters stay."""
        v, w = self.num_views, self.window
        self.buffers = np.zeros((v, w, self.num_joints, self.dims), dtype=np.float32)  # oldest first
        self.confidence = np.zeros((v, w, self.num_joints), dtype=np.float32)          # 0 = missing
        self.observed = np.zeros((v, w), dtype=bool)  # real pose at that buffer row
        self.in_use = np.zeros(v, dtype=bool)
        self.swaa.reset()
        self.windows_pushed = 0
        self.last_model_window: int | None = None   # index of the newest window the model refined
        self.last_rows: np.ndarray | None = None    # its SWAA rows (W, V, J*D + 2), for skip_model
        self.pending_stamps: dict[int, float] = {}  # SWAA frame index -> capture stamp
        self.pending_confidence: dict[int, np.ndarray] = {}  # SWAA frame index -> (V, J) as received
        self.pending_views_mean: dict[int, np.ndarray] = {}  # SWAA frame index -> (J, D), bone lengths, V > 1
        self.last_stamp_s: float | None = None
        self.awaiting_model = False   # prepare buffered a window whose outputs finish has not had
        if self.bone_prior is not None:
            self.bone_prior.reset()

    def push(self, stamp_s: float, poses, live=None, confidences=None) -> list[RefinedFrame]:
        """Add one synchronized frame and return the frames finalized by it, oldest first.

        poses: V entries, each (J, D) in mm (NaN joints: missing) or None (no message from that
        view in this frame). live: (V,) bool from the synchronizer, False = the view timed out
        (None: poses present). confidences: V entries, each (J,) in [0, 1] or None (1).
        """
        ready, needs_model = self.prepare(stamp_s, poses, live, confidences)
        if not needs_model:
            return ready
        try:
            rows = self.run_model()
        finally:
            self.awaiting_model = False
        return ready + self.decode(self.swaa.push(rows))

    def prepare(self, stamp_s: float, poses, live=None, confidences=None) -> tuple[list[RefinedFrame], bool]:
        """`push` up to the model call, for batching several refiners in one call
        (MultiPersonRefiner). Same arguments; returns (frames already finalized, by a restart,
        needs_model). When needs_model is True, run the backend on `model_inputs()` and hand its
        outputs for this window to `finish`, which returns the frames the window finalizes. A
        window prepared and never finished (the backend raised) is dropped, as by `push`."""
        self.awaiting_model = False
        if len(poses) != self.num_views:
            raise ValueError(f"expected {self.num_views} poses (one per view, None if missing), got {len(poses)}")
        confidences = [None] * self.num_views if confidences is None else list(confidences)
        if len(confidences) != self.num_views:
            raise ValueError(f"expected {self.num_views} confidences (one per view, or None), got {len(confidences)}")
        checked = [None if p is None else self.check_pose(v, p, c) for v, (p, c) in enumerate(zip(poses, confidences))]
        poses = [None if c is None else c[0] for c in checked]
        confidences = [None if c is None else c[1] for c in checked]
        live = np.array([p is not None for p in poses]) if live is None else np.asarray(live, dtype=bool)
        if live.shape != (self.num_views,):
            raise ValueError(f"live must be shaped ({self.num_views},), got {live.shape}")
        stamp_s = float(stamp_s)
        self.stats.frames_in += 1

        ready = []
        if self.last_stamp_s is not None:
            if stamp_s == self.last_stamp_s:
                self.stats.duplicate_stamps += 1
                return ready, False
            if stamp_s < self.last_stamp_s or stamp_s - self.last_stamp_s > self.max_gap_s:
                ready = self.restart()
        if not any(p is not None and ok for p, ok in zip(poses, live)):
            self.stats.empty_frames += 1
            return ready, False
        self.last_stamp_s = stamp_s
        self.append(poses, confidences, live)
        index = self.windows_pushed + self.window - 1
        self.pending_stamps[index] = stamp_s
        self.pending_confidence[index] = np.stack([c if p is not None and ok else np.zeros(self.num_joints, np.float32)
                                                   for p, c, ok in zip(poses, confidences, live)])
        if self.bone_prior is not None and self.num_views > 1:   # the views' mean, NaN where none saw a joint
            seen = np.stack([p for p, ok in zip(poses, live) if p is not None and ok])[:, None].astype(np.float64)
            count, mean = observed_mean(seen, np.isfinite(seen).all(axis=-1))
            self.pending_views_mean[index] = np.where(count[0, :, None] > 0, mean[0], np.nan)
        self.awaiting_model = True
        return ready, True

    def model_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The current window as the backend takes it, without the batch axis: poses
        (V, W, J*D) float32 mm, view_mask (V,) bool, confidence (V, W, J) float32 (views)."""
        v, w = self.num_views, self.window
        return self.buffers.reshape(v, w, self.pose_size), self.in_use.copy(), self.confidence

    def finish(self, refined, quality, taper: bool = False) -> list[RefinedFrame]:
        """The second half of `push` after `prepare`: this window's model outputs, refined
        (V, W, J*D) and quality (V, W) (numpy or torch, any float dtype) -> the frames finalized.
        taper: weigh the window's rows by `edge_taper`, while a window budget skips windows."""
        if not self.awaiting_model:
            raise RuntimeError("finish without a prepared window (prepare returned needs_model False)")
        return self.decode(self.swaa.push(self.window_rows(refined, quality, taper)))

    def windows_without_model(self) -> float:
        """Windows pushed since the newest one the model refined, counting a prepared one (inf
        when none was refined yet): above emit_delay, the frame the prepared window finalizes is
        covered by no refined window, so a window budget must not skip it."""
        if self.last_model_window is None:
            return math.inf
        return self.windows_pushed - self.last_model_window

    def skip_model(self) -> list[RefinedFrame]:
        """`finish` without a model call, for a window budget (MultiPersonRefiner): the prepared
        window enters the SWAA as the newest refined window shifted by the frames since, so
        consecutive frames keep averaging nearly the same windows (zero-weight rows instead
        doubled the room demo's Accel). The newest frames, which that window does not reach,
        get their input pose (a missing joint: its mean over the view's window) with weight
        SKIP_INPUT_WEIGHT: nothing against a refined window later, and the pose that comes out
        (windows 0, quality 0) if the stream ends first."""
        if not self.awaiting_model:
            raise RuntimeError("skip_model without a prepared window (prepare returned needs_model False)")
        shift = min(self.windows_without_model(), self.window)
        rows = np.zeros((self.window, self.num_views, self.pose_size + 2))
        if shift < self.window:
            rows[:-shift] = self.last_rows[shift:]
        with warnings.catch_warnings():   # a joint never seen in a view's window: NaN, that view left out
            warnings.simplefilter("ignore", RuntimeWarning)
            seen = np.where(self.observed[..., None, None], self.buffers, np.nan)
            poses = np.where(np.isnan(self.buffers), np.nanmean(seen, axis=1, keepdims=True), self.buffers)[:, -shift:]
        complete = np.isfinite(poses).all(axis=(2, 3))                                       # (V, shift)
        weight = SKIP_INPUT_WEIGHT * (self.observed[:, -shift:] & complete & self.in_use[:, None]).T   # (shift, V)
        newest = poses.reshape(self.num_views, shift, -1).transpose(1, 0, 2)                  # (shift, V, J*D)
        rows[-shift:, :, :-2] = np.where(weight[..., None] > 0, newest, 0.0) * weight[..., None]
        rows[-shift:, :, -1] = weight
        self.awaiting_model = False
        self.windows_pushed += 1
        self.stats.skipped_windows += 1
        return self.decode(self.swaa.push(rows.reshape(self.window, -1)))

    def flush(self) -> list[RefinedFrame]:
        """Finalize every held frame now (end of stream), averaged over the windows so far."""
        return self.decode(self.swaa.flush())

    def restart(self) -> list[RefinedFrame]:
        """Start a new stream (e.g. the synchronizer reset): flush the held frames, then reset."""
        ready = self.flush()
        self.reset()
        self.stats.resets += 1
        return ready

    # -- internals -----------------------------------------------------------------------------
    def check_pose(self, view: int, pose, confidence=None):
        """(pose (J, D) float32 with missing joints NaN, confidence (J,)), or None when no joint
        is observed. A wrong shape or a confidence outside [0, 1] is a ValueError."""
        pose = np.asarray(pose, dtype=np.float64)
        if pose.shape != (self.num_joints, self.dims):
            raise ValueError(f"view {view}: pose must be shaped ({self.num_joints}, {self.dims}), got {pose.shape}")
        confidence = np.ones(self.num_joints) if confidence is None else np.asarray(confidence, dtype=np.float64)
        if confidence.shape != (self.num_joints,) or not ((confidence >= 0) & (confidence <= 1)).all():
            raise ValueError(f"view {view}: confidence must be {self.num_joints} values in [0, 1]")
        with np.errstate(invalid="ignore"):
            observed = (np.abs(pose) <= MAX_ABS_MM).all(axis=-1) & (confidence > 0)   # False for NaN / inf
        self.stats.missing_joints += int((~observed).sum())
        if not observed.any():
            return None
        return (np.where(observed[:, None], pose, np.nan).astype(np.float32),
                np.where(observed, confidence, 0.0).astype(np.float32))

    def append(self, poses, confidences, live) -> None:
        """Shift every buffer by one frame and write the new poses (see module docstring)."""
        self.in_use &= live                       # dead views leave the model
        self.buffers[:, :-1] = self.buffers[:, 1:]  # the last row keeps its pose: a hold
        self.confidence[:, :-1] = self.confidence[:, 1:]
        self.observed[:, :-1] = self.observed[:, 1:]
        self.observed[:, -1] = False
        for v, (pose, confidence) in enumerate(zip(poses, confidences)):
            if pose is None or not live[v]:
                continue
            if not self.in_use[v]:                # joins: pad its whole buffer with this pose
                self.buffers[v] = pose
                self.confidence[v] = confidence
                self.observed[v] = False
                self.in_use[v] = True
            self.buffers[v, -1] = pose
            self.confidence[v, -1] = confidence
            self.observed[v, -1] = True

    def run_model(self) -> np.ndarray:
        """Refine the current window; return the weighted SWAA rows (W, V * (J*D + 2))."""
        poses, view_mask, confidence = self.model_inputs()
        refined, quality = self.backend(torch.from_numpy(poses[None]), torch.from_numpy(view_mask[None]),
                                        torch.from_numpy(confidence[None]))
        return self.window_rows(refined[0], quality[0])

    def window_rows(self, refined, quality, taper: bool = False) -> np.ndarray:
        """One window's model outputs, refined (V, W, J*D) and quality (V, W) -> the weighted
        SWAA rows (W, V * (J*D + 2)); taper: rows weighted by `edge_taper` (see finish)."""
        v, w = self.num_views, self.window
        if isinstance(refined, torch.Tensor):
            refined = refined.float().cpu().numpy()
        if isinstance(quality, torch.Tensor):
            quality = quality.float().cpu().numpy()
        refined = np.asarray(refined, dtype=np.float32)      # (V, W, J*D)
        quality = np.asarray(quality, dtype=np.float32)      # (V, W)
        if refined.shape != (v, w, self.pose_size) or quality.shape != (v, w):
            raise ValueError(f"model outputs must be shaped ({v}, {w}, {self.pose_size}) and ({v}, {w}), "
                             f"got {refined.shape} and {quality.shape}")
        self.awaiting_model = False
        finite = np.isfinite(refined).all(axis=(1, 2)) & np.isfinite(quality).all(axis=1)
        self.stats.nonfinite_windows += int((self.in_use & ~finite).sum())
        weight = (self.observed & (self.in_use & finite)[:, None]).astype(np.float64)  # (V, W)
        if taper:
            weight = weight * edge_taper(w)[None, :]
        rows = np.empty((w, v, self.pose_size + 2))
        rows[:, :, :-2] = np.where(weight[..., None] > 0, refined, 0.0).transpose(1, 0, 2) * weight.T[..., None]
        rows[:, :, -2] = np.where(weight > 0, quality, 0.0).T * weight.T
        rows[:, :, -1] = weight.T
        self.last_rows, self.last_model_window = rows, self.windows_pushed
        self.windows_pushed += 1
        return rows.reshape(w, -1)

    def decode(self, finals) -> list[RefinedFrame]:
        """Turn SWAA frames into RefinedFrames; skip warm-up padding and non-finite frames."""
        frames = []
        for final in finals:
            stamp_s = self.pending_stamps.pop(final.index, None)
            received = self.pending_confidence.pop(final.index, None)
            mean = self.pending_views_mean.pop(final.index, None)
            if stamp_s is None:                   # a warm-up padding row, not an input frame
                continue
            means = final.value.reshape(self.num_views, self.pose_size + 2)
            weight = means[:, -1]                 # fraction of the windows in which the view saw it
            views = weight > 0
            safe = np.where(views, weight, 1.0)
            per_view = np.where(views[:, None], means[:, :-2] / safe[:, None], 0.0)
            quality = np.where(views, means[:, -2] / safe, 0.0)
            views &= np.isfinite(per_view).all(axis=1) & np.isfinite(quality)
            if not views.any():
                self.stats.dropped_frames += 1
                continue
            shape = (self.num_joints, self.dims)
            fused = per_view[views].mean(axis=0).reshape(shape)
            per_view = per_view.reshape(self.num_views, *shape)
            per_view[~views] = 0.0
            quality[~views] = 0.0
            joint_quality = (quality[views, None] * received[views]).max(axis=0)
            if self.bone_prior is not None:   # one projection call for the fused and per-view poses
                seen = (received > 0).any(axis=0).astype(np.float64)
                weights = seen[self.bone_prior.parents] * seen[self.bone_prior.children]
                # several views: their mean measured along fused's bones, where the mean's noise
                # averages out and fused's smoothing does not shorten fast limbs (Refiner.bound_stages)
                lengths = (self.bone_prior.update(fused[None], weights[None]) if mean is None else
                           self.bone_prior.update(mean[None], weights[None], along=fused[None]))[0]
                projected = self.bone_prior.project(np.concatenate([fused[None], per_view[views]]), lengths)
                fused, per_view[views] = projected[0], projected[1:]
            frames.append(RefinedFrame(
                stamp_s=stamp_s,
                fused=fused.astype(np.float32),
                per_view=per_view.astype(np.float32),
                quality=quality.astype(np.float32),
                views=views,
                windows=np.rint(weight * final.count).astype(np.int64) * views,
                joint_quality=joint_quality.astype(np.float32),
            ))
        self.stats.frames_out += len(frames)
        return frames


@dataclass
class PersonViews:
    """One person's views in one frame, as StreamingRefiner.push takes them (people.TrackedPerson
    has the same fields)."""

    poses: list                  # V entries: (J, D) mm (NaN joints: missing) or None
    live: np.ndarray | None = None       # (V,) bool; None: the views with a pose
    confidences: list | None = None      # V entries: (J,) in [0, 1] or None


@dataclass
class MultiPersonStats:
    """Counters since construction."""

    frames_in: int = 0        # frames pushed
    model_calls: int = 0      # backend calls (one per frame in which some person had a window; more with max_batch)
    windows: int = 0          # person windows refined (the sum of the batch sizes)
    skipped_windows: int = 0  # person windows left out by window_budget
    max_batch: int = 0        # the largest batch so far
    started: int = 0          # person states created
    removed: int = 0          # person states flushed and removed


class MultiPersonRefiner:
    """One StreamingRefiner state per person (windows, SWAA, bone lengths), all people's windows in
    ONE batched model call per frame.

    backend, num_views, emit_delay, max_gap_s: as StreamingRefiner (the same for every person).
    bone_prior_factory: a callable returning a fresh BoneLengthPrior for each new person (None: off).
    max_batch: at most this many people per backend call (None: all in one call).
    window_budget: at most this many people's windows refined per frame (None: everyone's), for a
    CPU that cannot refine a crowd at the frame rate. The people whose newest refined window is
    the oldest go first; the others' windows enter their SWAA as a shifted copy of their newest
    refined window (`skip_model`), so their frames average fewer distinct windows (about
    W x budget / people of them) and come out at the
    same time. A person whose next finalized frame no refined window would cover is refined
    whatever the budget: nothing is dropped, and a new person is refined at once. In a frame where
    the budget skips someone, the refined windows are weighted by `edge_taper`. Room demo (3 people,
    4 cameras, 2026-12-03): budget 2: MPJPE 23.9 -> 24.2 mm, Accel 4.92 -> 6.14 mm/frame^2; budget 1:
    24.6 / 7.77 (docs/people.md).

    push(stamp_s, people) -> {person id: [RefinedFrame, ...]}: `people` maps every person being
    tracked to their views this frame (PersonViews, people.TrackedPerson, or a plain list of V
    poses). A new id gets a fresh state; an id no longer in `people` is flushed (its held frames
    returned under its id) and removed. The outputs equal those of separate StreamingRefiners
    fed the same frames (to float tolerance: batched matrix products may round differently).
    """

    def __init__(self, backend, num_views: int, emit_delay: int | None = None, max_gap_s: float = math.inf,
                 bone_prior_factory=None, max_batch: int | None = None, window_budget: int | None = None):
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1 or None, got {max_batch}")
        if window_budget is not None and window_budget < 1:
            raise ValueError(f"window_budget must be >= 1 or None, got {window_budget}")
        StreamingRefiner(backend, num_views, emit_delay, max_gap_s)   # checks the arguments now
        self.backend, self.num_views, self.max_gap_s = backend, num_views, max_gap_s
        self._emit_delay = emit_delay
        self.bone_prior_factory, self.max_batch, self.window_budget = bone_prior_factory, max_batch, window_budget
        self.refiners: dict[int, StreamingRefiner] = {}
        self.stats = MultiPersonStats()

    @property
    def emit_delay(self) -> int | None:
        return self._emit_delay

    @emit_delay.setter
    def emit_delay(self, value: int) -> None:
        StreamingRefiner(self.backend, self.num_views, value)   # checks the value before any state changes
        for refiner in self.refiners.values():
            refiner.emit_delay = value
        self._emit_delay = value

    @property
    def people(self) -> list[int]:
        """Ids of the people with a state, ascending."""
        return sorted(self.refiners)

    def push(self, stamp_s: float, people) -> dict[int, list[RefinedFrame]]:
        """One frame of every tracked person -> each person's finalized frames (ids pushed or
        removed in this call; an empty list when none finalized)."""
        self.stats.frames_in += 1
        out = self.remove([pid for pid in self.refiners if pid not in people])
        prepared = []
        try:
            self._prepare_and_run(stamp_s, people, out, prepared)
        finally:   # a backend error drops this frame's windows, as StreamingRefiner.push does
            for pid in prepared:
                self.refiners[pid].awaiting_model = False
        return out

    def _prepare_and_run(self, stamp_s: float, people, out: dict, prepared: list) -> None:
        for pid in sorted(people):
            views = people[pid]
            if isinstance(views, (list, tuple)):
                poses, live, confidences = views, None, None
            else:
                poses = views.poses
                live, confidences = getattr(views, "live", None), getattr(views, "confidences", None)
            refiner = self.refiners.get(pid)
            if refiner is None:
                bone_prior = None if self.bone_prior_factory is None else self.bone_prior_factory()
                refiner = self.refiners[pid] = StreamingRefiner(self.backend, self.num_views, self._emit_delay,
                                                                self.max_gap_s, bone_prior)
                self.stats.started += 1
            out[pid], needs_model = refiner.prepare(stamp_s, poses, live, confidences)
            if needs_model:
                prepared.append(pid)
        chosen = self.within_budget(prepared, out)
        binding = len(chosen) < len(prepared)
        prepared[:] = chosen
        chunk = self.max_batch or max(len(prepared), 1)
        for start in range(0, len(prepared), chunk):
            ids = prepared[start:start + chunk]
            inputs = [self.refiners[pid].model_inputs() for pid in ids]   # (poses, view_mask, confidence) each
            refined, quality = self.backend(*(torch.from_numpy(np.stack(x)) for x in zip(*inputs)))
            self.stats.model_calls += 1
            self.stats.windows += len(ids)
            self.stats.max_batch = max(self.stats.max_batch, len(ids))
            for row, pid in enumerate(ids):
                out[pid] += self.refiners[pid].finish(refined[row], quality[row], taper=binding)

    def within_budget(self, prepared: list[int], out: dict) -> list[int]:
        """The prepared people the model refines this frame (window_budget); the others' windows
        are skipped now, their finalized frames added to `out`."""
        if self.window_budget is None or len(prepared) <= self.window_budget:
            return prepared
        waits = {pid: self.refiners[pid].windows_without_model() for pid in prepared}
        # ties: the one skipped most so far, then the lowest id (sorted is stable), so a budget of
        # B for P people skips each person in P - B of every P frames
        by_wait = sorted(prepared, key=lambda pid: (-waits[pid], -self.refiners[pid].stats.skipped_windows))
        delay = self.refiners[prepared[0]].emit_delay
        due = sum(waits[pid] > delay for pid in prepared)
        chosen = set(by_wait[:max(self.window_budget, due)])
        for pid in prepared:
            if pid not in chosen:
                out[pid] += self.refiners[pid].skip_model()
                self.stats.skipped_windows += 1
        return [pid for pid in prepared if pid in chosen]

    def remove(self, person_ids) -> dict[int, list[RefinedFrame]]:
        """Flush and forget these people (lost): {id: their held frames}."""
        out = {}
        for pid in person_ids:
            refiner = self.refiners.pop(pid, None)
            if refiner is not None:
                out[pid] = refiner.flush()
                self.stats.removed += 1
        return out

    def flush(self) -> dict[int, list[RefinedFrame]]:
        """End of stream: every person's held frames; the states stay (as StreamingRefiner.flush)."""
        return {pid: refiner.flush() for pid, refiner in sorted(self.refiners.items())}
