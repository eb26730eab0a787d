"""The node's multi-person path without ROS: camera detections in, refined people per frame out.

Per camera message (`PeopleInput.check`): every person's joints go through the checks of the
plausibility gate that judge one skeleton on its own (synsp_core.gate: `nonfinite`,
`out_of_range`, `off_body`; counted per camera and reason). Its `jump` test is not used: it
compares a skeleton with the recent skeletons of *the* person, and with several people that is
the tracker's job (its gated assignment). Rejected joints go on as missing (NaN); a person none
of whose joints passes is skipped and counted (`person_nonfinite`: no finite joint, e.g. all NaN;
`person_implausible`: finite joints, none plausible).

Between messages and frames (the node's ViewSynchronizer): `interpolate_detections` brings a
free-running camera's detections to the frame time: a person with the same producer id in both
messages is interpolated joint by joint, the others are taken from the nearer message as they are.

Per synchronized frame (`PeoplePipeline.push`): PeopleTracker.update gives global ids and each
person's per-camera poses; MultiPersonRefiner refines everyone in one batched model call (a person
born gets a state, a person lost is flushed and removed); `PeopleAssembler` puts the people's
refined frames together by capture stamp and releases one `PeopleOutput` per synchronized frame,
in stamp order, once no person still holds a frame at or before that stamp.

Latency rule: a tracked person whom no camera saw in a frame (a short total occlusion, or leaving)
has its held frames finalized at once (averaged over the windows they had; their state, windows
and bone lengths, stays), so nobody's output waits for a person who is not there. A person seen
in every frame comes out `emit_delay` frames after capture, as with one person.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synsp_core.gate import PlausibilityGate
from synsp_core.people import Detection, PeopleTracker, PeopleTrackerConfig, nan_median
from synsp_core.streaming import MultiPersonRefiner, RefinedFrame

PERSON_REASONS = ("nonfinite", "implausible")   # a person skipped: no joint passes the checks


class SkeletonGate(PlausibilityGate):
    """PlausibilityGate's tests that judge one skeleton alone (nonfinite, out_of_range, off_body),
    for all the people of a camera message at once; no history, so no `jump` test (its counter
    stays 0)."""

    def check(self, view: int, stamp_s: float, joints_mm) -> np.ndarray:
        return self.check_people(view, np.asarray(joints_mm, dtype=np.float64)[None])[0]

    def check_people(self, view: int, joints: np.ndarray) -> np.ndarray:
        """(P, J, D) float64 mm -> (P, J) bool: which joints pass; the rejected ones counted as
        PlausibilityGate.check counts them (the off-body centre: the per-axis median of the
        joints that passed so far)."""
        if joints.ndim != 3 or joints.shape[1] != self.num_joints:
            raise ValueError(f"joints must be shaped ({self.num_joints}, D), got {joints.shape[1:]}")
        finite = np.isfinite(joints).all(axis=2)
        with np.errstate(invalid="ignore", over="ignore"):
            far = finite & (np.abs(joints) > self.max_abs_mm).any(axis=2)
            ok = finite & ~far
            centre = nan_median(np.where(ok[..., None], joints, np.nan).swapaxes(0, 1))   # (P, D)
            offset = joints - centre[:, None]
            off = ok & (np.sqrt((offset * offset).sum(axis=2)) > self.max_extent_mm)
        for reason, rejected in (("nonfinite", ~finite), ("out_of_range", far), ("off_body", off)):
            self.counters[reason][view] += int(rejected.sum())
        return ok & ~off


class PeopleInput:
    """Per camera message: the people's joints checked, as Detections for the tracker.

    num_views, num_joints: cameras V and joints J of the layout. `counters` (reason -> (V,)):
    people skipped, `gate.counters`: joints rejected, `people` (V,): people received.
    """

    def __init__(self, num_views: int, num_joints: int):
        self.num_joints = num_joints
        self.gate = SkeletonGate(num_views, num_joints)
        self.people = np.zeros(num_views, dtype=np.int64)
        self.counters = {reason: np.zeros(num_views, dtype=np.int64) for reason in PERSON_REASONS}

    def check(self, view: int, stamp_s: float, people) -> tuple[list[Detection], list[tuple[int, str, list[int]]]]:
        """people: (producer id or None, joints (J, 3) mm with NaN = missing, confidence (J,) or None)
        -> (Detections of the people kept, [(producer id, reason, indices of rejected finite joints)]
        for every person skipped or with finite joints rejected; reason 'gated' for the latter)."""
        people = list(people)
        self.people[view] += len(people)
        if not people:
            return [], []
        joints = [np.asarray(j, dtype=np.float64) for _, j, _ in people]
        shape = joints[0].shape
        wrong = next((j.shape for j in joints if j.shape != shape or j.ndim != 2), None)
        if wrong is not None:
            raise ValueError(f"joints must be shaped ({self.num_joints}, D), got {wrong}")
        joints = np.stack(joints)                                       # (P, J, D)
        ok = self.gate.check_people(view, joints)
        rejected = ~ok & np.isfinite(joints).all(axis=2)                # finite joints the gate refused
        kept = np.where(ok[..., None], joints, np.nan)
        detections, notes = [], []
        for k, ((producer_id, _, confidence), any_ok, any_rejected) in enumerate(
                zip(people, ok.any(axis=1).tolist(), rejected.any(axis=1).tolist())):
            rejected_finite = np.flatnonzero(rejected[k]).tolist() if any_rejected else []
            if not any_ok:
                reason = "implausible" if rejected_finite else "nonfinite"
                self.counters[reason][view] += 1
                notes.append((producer_id, reason, rejected_finite))
                continue
            if rejected_finite:
                notes.append((producer_id, "gated", rejected_finite))
            detections.append(Detection(kept[k], producer_id, confidence))
        return detections, notes


def _lerp_detection(near: Detection, far: Detection, weight: float) -> Detection:
    """`near` moved `weight` of the way to `far` where both have the joint; near's joint elsewhere."""
    both = np.isfinite(near.joints_mm).all(axis=1) & np.isfinite(far.joints_mm).all(axis=1)
    joints = np.where(both[:, None], near.joints_mm + weight * (far.joints_mm - near.joints_mm), near.joints_mm)
    confidence = near.confidence
    if near.confidence is not None or far.confidence is not None:
        a = np.ones(len(joints)) if near.confidence is None else np.asarray(near.confidence, dtype=np.float64)
        b = np.ones(len(joints)) if far.confidence is None else np.asarray(far.confidence, dtype=np.float64)
        confidence = np.where(both, a + weight * (b - a), a)
    return Detection(joints, near.producer_id, confidence)


def interpolate_detections(before: list, after: list, weight: float) -> list:
    """A camera's detections at a time between two of its messages (`weight` in [0, 1): 0 =
    `before`): people with the same producer id in both are interpolated joint by joint (a joint
    missing in one message keeps the nearer message's value), everyone else is the nearer
    message's as is. Producer ids repeated within a message, or None, are not matched."""
    near, far, w = (before, after, weight) if weight < 0.5 else (after, before, 1.0 - weight)
    ids = [d.producer_id for d in far]
    by_id = {d.producer_id: d for d in far if d.producer_id is not None and ids.count(d.producer_id) == 1}
    near_ids = [d.producer_id for d in near]
    out = []
    for detection in near:
        other = by_id.get(detection.producer_id) if near_ids.count(detection.producer_id) == 1 else None
        out.append(detection if other is None else _lerp_detection(detection, other, w))
    return out


@dataclass
class PeopleOutput:
    """One synchronized frame's refined people, released in stamp order."""

    stamp_s: float
    tag: object                 # what the caller gave with the frame (the node: its exact header stamp)
    ids: list                   # global person ids, ascending
    joints: np.ndarray          # (P, J, 3) float32 mm, finite
    quality: np.ndarray         # (P, J) float32 in [0, 1]: per-joint quality (RefinedFrame.joint_quality)
    frames: dict                # id -> RefinedFrame


@dataclass
class PeopleOutputStats:
    frames_released: int = 0     # PeopleOutputs released (one per synchronized frame)
    people_released: int = 0     # person frames in them
    late_person_frames: int = 0  # person frames for a stamp already released (or unknown): dropped
    nonfinite_people: int = 0    # person frames with a non-finite joint: dropped (never published)
    forced_releases: int = 0     # frames released while a person still held a frame at or before them


class PeopleAssembler:
    """Person frames in, one PeopleOutput per registered frame out, in stamp order.

    `add_frame(stamp_s, tag)` registers a synchronized frame (stamps increasing); `add(pid, frames)`
    files a person's refined frames; `release(held)` returns the registered frames older than
    every stamp still held by some person (`held`: iterable of stamps), oldest first. A frame kept
    for more than `max_held` newer frames is released anyway (a safety net; `forced_releases`).
    """

    def __init__(self, max_held: int = 64):
        self.max_held = max_held
        self.pending: dict[float, tuple[object, dict]] = {}   # stamp -> (tag, {pid: RefinedFrame}), in order
        self.last_released = -math.inf
        self.stats = PeopleOutputStats()

    def add_frame(self, stamp_s: float, tag=None) -> None:
        if stamp_s <= self.last_released or (self.pending and stamp_s <= next(reversed(self.pending))):
            raise ValueError(f"frame stamps must increase: {stamp_s} after "
                             f"{max([self.last_released, *self.pending])}")
        self.pending[stamp_s] = (tag, {})

    def add(self, pid: int, frames: list[RefinedFrame]) -> None:
        for frame in frames:
            entry = self.pending.get(frame.stamp_s)
            if entry is None:
                self.stats.late_person_frames += 1
            elif not np.isfinite(frame.fused).all():
                self.stats.nonfinite_people += 1
            else:
                entry[1][pid] = frame

    def release(self, held=(), everything: bool = False) -> list[PeopleOutput]:
        """Frames no person holds back any more (all of them with `everything`), oldest first."""
        oldest_held = min(held, default=math.inf)
        out = []
        while self.pending:
            stamp_s = next(iter(self.pending))
            blocked = stamp_s >= oldest_held and not everything
            if blocked and len(self.pending) <= self.max_held:
                break
            self.stats.forced_releases += blocked
            tag, people = self.pending.pop(stamp_s)
            self.last_released = stamp_s
            out.append(self._output(stamp_s, tag, people))
        return out

    def restart(self) -> None:
        """A new stream (stamps may go back); call after releasing everything."""
        self.pending.clear()
        self.last_released = -math.inf

    def _output(self, stamp_s: float, tag, people: dict) -> PeopleOutput:
        ids = sorted(people)
        frames = [people[pid] for pid in ids]
        j = frames[0].fused.shape[0] if frames else 0
        joints = np.stack([f.fused for f in frames]).astype(np.float32) if frames else np.zeros((0, j, 3), np.float32)
        quality = (np.stack([f.joint_quality for f in frames]).astype(np.float32) if frames
                   else np.zeros((0, j), np.float32))
        self.stats.frames_released += 1
        self.stats.people_released += len(ids)
        return PeopleOutput(stamp_s, tag, ids, joints, quality, dict(zip(ids, frames)))


@dataclass
class PeopleEvents:
    """What happened to the people in one pushed frame (for logs)."""

    born: list
    lost: list
    id_switches: list           # people.IdSwitch


class PeoplePipeline:
    """PeopleTracker -> MultiPersonRefiner -> PeopleAssembler, one synchronized frame at a time.

    backend, num_views, emit_delay, max_gap_s, bone_prior_factory, window_budget: as MultiPersonRefiner.
    tracker_config: PeopleTrackerConfig (None: defaults). `push(stamp_s, detections, tag)`
    -> the PeopleOutputs released by it; `flush()` at the end of a stream; `restart()` for a new
    stream whose stamps may go back. `last_events` says who was born, lost, or had an id switch.
    """

    def __init__(self, backend, num_views: int, emit_delay: int | None = None, max_gap_s: float = math.inf,
                 bone_prior_factory=None, tracker_config: PeopleTrackerConfig | None = None,
                 window_budget: int | None = None):
        self.num_views = num_views
        self.tracker = PeopleTracker(num_views, backend.config.num_joints, tracker_config)
        self.refiner = MultiPersonRefiner(backend, num_views, emit_delay, max_gap_s, bone_prior_factory,
                                          window_budget=window_budget)
        self.assembler = PeopleAssembler(max_held=8 * backend.config.window)
        self.last_stamp_s: float | None = None
        self.last_events = PeopleEvents([], [], [])
        self.duplicate_stamps = 0

    @property
    def emit_delay(self) -> int:
        return self.refiner.emit_delay

    @emit_delay.setter
    def emit_delay(self, value: int) -> None:
        self.refiner.emit_delay = value

    @property
    def backend(self):
        return self.refiner.backend

    @backend.setter
    def backend(self, backend) -> None:   # e.g. the node switching to an AOTInductor package
        self.refiner.backend = backend
        for refiner in self.refiner.refiners.values():
            refiner.backend = backend

    def push(self, stamp_s: float, detections, tag=None) -> list[PeopleOutput]:
        """One synchronized frame: detections = V entries (a list of Detection per camera, None
        where the camera is missing from the frame); tag: handed back with the frame's output.
        A stamp repeating the last one is ignored (`duplicate_stamps`); one going back restarts."""
        stamp_s = float(stamp_s)
        out = []
        if self.last_stamp_s is not None:
            if stamp_s == self.last_stamp_s:
                self.duplicate_stamps += 1
                return out
            if stamp_s < self.last_stamp_s:
                out = self.restart()
        self.last_stamp_s = stamp_s
        frame = self.tracker.update(stamp_s, [[] if d is None else d for d in detections])
        self.last_events = PeopleEvents(frame.born, frame.lost, frame.id_switches)
        self.assembler.add_frame(stamp_s, tag)
        finished = self.refiner.push(stamp_s, frame.people)   # lost people: flushed and removed here
        for pid, person in frame.people.items():
            refiner = self.refiner.refiners.get(pid)
            if not person.seen and refiner is not None:   # nobody saw them: their held frames out now
                finished[pid] = finished.get(pid, []) + refiner.flush()
        for pid, frames in finished.items():
            self.assembler.add(pid, frames)
        return out + self.assembler.release(self.held_stamps())

    def held_stamps(self) -> list[float]:
        """Stamps of the frames the people's refiners still hold."""
        return [s for refiner in self.refiner.refiners.values() for s in refiner.pending_stamps.values()]

    def flush(self) -> list[PeopleOutput]:
        """End of stream (every camera stopped): every held frame out; people and tracks stay."""
        for pid, frames in self.refiner.flush().items():
            self.assembler.add(pid, frames)
        return self.assembler.release(everything=True)

    def restart(self) -> list[PeopleOutput]:
        """A new stream (stamps may go back): everyone's held frames out, every refiner state
        removed; the tracker starts over by itself at the first backwards stamp."""
        for pid, frames in self.refiner.remove(list(self.refiner.refiners)).items():
            self.assembler.add(pid, frames)
        out = self.assembler.release(everything=True)
        self.assembler.restart()
        self.last_stamp_s = None
        return out
