"""People association across cameras and over time: detections in, global person ids out (no ROS).

Each synchronized frame brings, per camera, that camera's detections: a producer id (the camera's
own tracker id, or None), the joints (J, 3) in mm in the common frame (NaN = not detected) and
optionally a per-joint confidence. `PeopleTracker.update` gives every person a global id that
stays the same through people crossing paths, a producer's id switch, a person leaving one
camera's view and short total occlusions, and hands back, per person, the V per-camera poses a
per-person StreamingRefiner takes (None where that camera did not see the person).

The algorithm, per frame (the parameters are PeopleTrackerConfig's; docs/people.md):
1. Checks. A detection of the wrong shape or with a confidence outside [0, 1] is skipped
   (`invalid_detections`); a joint that is NaN/inf, beyond MAX_ABS_MM or of confidence 0 is
   missing; a detection with no live joint (`empty_detections`) or fewer than `min_live_joints`
   (`sparse_detections`) is skipped. Producer ids repeated within one camera's frame are dropped
   as hints (`duplicate_producer_ids`): those detections are still used, the 3D distance places them.
2. Prediction. Every track (tentative or confirmed) is predicted at the frame's stamp: its
   reference pose (the last fused pose; joints unseen since keep their offset to the centre)
   moved at the constant velocity of its fused centre (least squares over `velocity_window_s`,
   at most `max_speed_mm_per_s`, extrapolated at most `max_predict_s`).
3. Assignment, per camera: cost = mean distance (mm) over the joints live in both the detection
   and the prediction (at least `min_common_joints`, else no match); a pair is allowed when the
   cost is within the track's gate, `gate_mm` + `gate_growth_mm_per_s` x time since any camera
   saw the track (at most `max_gate_mm`). A detection whose producer id is the one this camera
   gave the track when it last saw it (within `view_timeout_s`) gets `id_hint_discount_mm` off:
   the id settles near-ties, the 3D distance decides. Hungarian assignment
   (scipy.optimize.linear_sum_assignment), confirmed tracks first, then tentative ones with the
   detections left. One detection per camera per track, one track per detection.
4. Births. Detections left that lie within `group_gate_mm` of a confirmed track are duplicates of
   a tracked person (`duplicate_detections`), dropped. The rest are grouped across cameras
   (complete linkage: every pair in a group within `group_gate_mm`, at most one detection per
   camera) and each group starts a tentative track. A tentative track matched in `birth_frames`
   frames without being unseen for longer than `tentative_timeout_s` is born: it gets the next
   global id (so a one-frame ghost never gets one); otherwise it is dropped (`tentative_dropped`).
5. Update. A matched track's fused pose is the per-joint median of its detections' live joints;
   joints no camera saw this frame follow the centre. A camera that saw the track with producer
   id q within `view_timeout_s` and now sees it with id p != q: an id switch absorbed (counted,
   reported; re-entering a camera's view with a new id is not a switch).
6. Deaths. A confirmed track no camera saw for longer than `lost_timeout_s` is lost: reported once
   and never reused. Until then it is reported every frame (with all-None poses while unseen),
   so a short total occlusion keeps its id and its refiner state.

A stamp repeating the last one is skipped (`duplicate_stamps`: every person reported, no pose);
a stamp going backwards (bag loop) loses every track and starts over (`resets`).
Not done: appearance (only geometry: two people standing within about `gate_mm` of each other
while one is unseen can swap), and no track is revived after it was lost.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from synsp_core.refiner import MAX_ABS_MM

_NO_MATCH = 1e12   # cost of a forbidden pair in the assignment


@dataclass
class PeopleTrackerConfig:
    """Association parameters. Distances in mm, times in s; defaults for estimator errors of
    about 50 mm per joint at 30 fps, people walking (up to a few m/s)."""

    gate_mm: float = 400.0                 # a detection matches a track within this mean joint distance
    gate_growth_mm_per_s: float = 1500.0   # the gate grows by this per second the track is unseen by every camera
    max_gate_mm: float = 1000.0            # ... up to this
    id_hint_discount_mm: float = 100.0     # cost discount for the producer id the camera gave the track last time
    group_gate_mm: float = 300.0           # a new person's detections in several cameras lie within this of each other
    min_common_joints: int = 3             # joints live in both skeletons needed to compare them
    min_live_joints: int = 3               # a detection with fewer live joints is skipped
    birth_frames: int = 3                  # frames a tentative track must be matched in before it gets a global id
    tentative_timeout_s: float = 0.1       # a tentative track unseen for longer is dropped (ghost)
    lost_timeout_s: float = 1.0            # a person no camera saw for longer is lost
    view_timeout_s: float = 0.5            # a camera that saw a person within this is live for that person
    velocity_window_s: float = 0.3         # the centre velocity is fitted over this much recent track
    max_speed_mm_per_s: float = 4000.0     # the fitted velocity is clipped to this speed
    max_predict_s: float = 0.5             # prediction extrapolates at most this far

    def __post_init__(self):
        for name in ("gate_mm", "max_gate_mm", "group_gate_mm", "tentative_timeout_s", "lost_timeout_s",
                     "view_timeout_s", "velocity_window_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("gate_growth_mm_per_s", "id_hint_discount_mm", "max_speed_mm_per_s", "max_predict_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("min_common_joints", "min_live_joints", "birth_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Detection:
    """One camera's skeleton of one person in one frame."""

    joints_mm: np.ndarray                  # (J, 3) mm, common frame; NaN = not detected
    producer_id: int | None = None         # the camera's own tracker id (a hint), None = unknown
    confidence: np.ndarray | None = None   # (J,) in [0, 1]; None = 1


@dataclass
class TrackedPerson:
    """A confirmed person in one frame: what a per-person StreamingRefiner.push takes (poses,
    live, confidences), plus where it came from."""

    person_id: int
    poses: list                # V entries: (J, 3) float32 mm, missing joints NaN; None = not seen by that camera
    confidences: list          # V entries: (J,) float32 in [0, 1] (0 = missing joint); None where poses is None
    live: np.ndarray           # (V,) bool: cameras that saw the person within view_timeout_s
    sources: np.ndarray        # (V,) int: index of the detection in that camera's input list; -1 = none
    producer_ids: list         # V entries: the producer id of that detection (None: none, or no id)
    centre_mm: np.ndarray      # (3,) fused centre (predicted while unseen)
    seen: bool                 # some camera saw the person in this frame
    frames_seen: int           # frames some camera saw the person in, since the track started
    id_switches: int           # producer id switches absorbed for this person so far


@dataclass
class IdSwitch:
    """A camera's tracker changed its id for a person; the global id stayed."""

    camera: int
    person_id: int
    old_producer_id: int
    new_producer_id: int


@dataclass
class PeopleFrame:
    """What `PeopleTracker.update` returns for one frame."""

    stamp_s: float
    people: dict               # global id -> TrackedPerson: every confirmed person not lost, ascending ids
    born: list                 # global ids confirmed in this frame
    lost: list                 # global ids lost in this frame (no longer in people)
    id_switches: list          # IdSwitch absorbed in this frame
    tentative: int             # tentative tracks (candidates not yet born) after this frame


@dataclass
class PeopleStats:
    """Counters since construction; `tracked` and `tentative` are current values."""

    frames: int = 0                  # frames updated
    detections: int = 0              # detections received
    tracked: int = 0                 # confirmed people now
    tentative: int = 0               # tentative tracks now
    born: int = 0                    # global ids given
    lost: int = 0                    # people lost (timeout or reset)
    id_switches_absorbed: int = 0    # producer id switches that kept their global id
    tentative_dropped: int = 0       # tentative tracks never born (ghosts)
    invalid_detections: int = 0      # wrong shape, or confidence not in [0, 1]: skipped
    empty_detections: int = 0        # no live joint (all NaN): skipped
    sparse_detections: int = 0       # fewer than min_live_joints live joints: skipped
    duplicate_producer_ids: int = 0  # detections whose producer id repeated within their camera's frame: id ignored
    duplicate_detections: int = 0    # unmatched detections within group_gate_mm of a person: dropped
    duplicate_stamps: int = 0        # frames whose stamp repeated the last one: skipped
    resets: int = 0                  # backwards stamps: every track lost, start over


class _Track:
    def __init__(self, num_views: int, stamp_s: float, pose: np.ndarray):
        self.person_id: int | None = None       # None while tentative
        self.pose = pose                        # (J, 3) float64 reference pose; NaN = never seen
        self.history: deque = deque()           # (stamp_s, centre) of matched frames
        self.velocity = np.zeros(3)
        self.last_seen_s = stamp_s
        self.matched_frames = 0
        self.id_switches = 0
        self.producer_ids: list = [None] * num_views
        self.camera_seen_s = np.full(num_views, -math.inf)
        self.prediction = pose

    @property
    def confirmed(self) -> bool:
        return self.person_id is not None

    def centre(self, predicted: bool = False) -> np.ndarray:
        """(3,) mean of the joints known (of the prediction, or of the last fused pose)."""
        pose = self.prediction if predicted else self.pose
        return pose[np.isfinite(pose[:, 0])].mean(axis=0)

    def predict(self, stamp_s: float, config: PeopleTrackerConfig) -> np.ndarray:
        dt = min(max(stamp_s - self.last_seen_s, 0.0), config.max_predict_s)
        self.prediction = self.pose + self.velocity * dt
        return self.prediction

    def gate_mm(self, stamp_s: float, config: PeopleTrackerConfig) -> float:
        unseen_s = max(stamp_s - self.last_seen_s, 0.0)
        return min(config.gate_mm + config.gate_growth_mm_per_s * unseen_s, max(config.max_gate_mm, config.gate_mm))

    def observe(self, stamp_s: float, fused: np.ndarray, config: PeopleTrackerConfig) -> None:
        """fused (J, 3): this frame's median of the matched detections, NaN = no camera saw the joint."""
        seen = np.isfinite(fused).all(axis=1)
        known = np.isfinite(self.pose).all(axis=1)
        both = seen & known
        shift = (fused[both] - self.prediction[both]).mean(axis=0) if both.any() else np.zeros(3)
        pose = np.where(known[:, None], self.prediction + shift, np.nan)   # unseen joints follow the centre
        pose[seen] = fused[seen]
        self.pose = pose
        self.last_seen_s = stamp_s
        self.matched_frames += 1
        self.history.append((stamp_s, self.centre()))
        while self.history and self.history[0][0] < stamp_s - config.velocity_window_s:
            self.history.popleft()
        self.velocity = _fit_velocity(self.history, config.max_speed_mm_per_s)


def _fit_velocity(history, max_speed_mm_per_s: float) -> np.ndarray:
    """Least-squares slope of the centres over time (mm/s), clipped to max_speed_mm_per_s."""
    if len(history) < 2:
        return np.zeros(3)
    t = np.array([s for s, _ in history])
    c = np.stack([x for _, x in history])
    t = t - t.mean()
    denominator = (t * t).sum()
    if denominator <= 0:
        return np.zeros(3)
    velocity = (t[:, None] * (c - c.mean(axis=0))).sum(axis=0) / denominator
    speed = float(np.linalg.norm(velocity))
    return velocity * (max_speed_mm_per_s / speed) if speed > max_speed_mm_per_s else velocity


def skeleton_distance_mm(a: np.ndarray, b: np.ndarray, min_common_joints: int = 1) -> float:
    """Mean distance (mm) over the joints finite in both (J, 3) skeletons; inf with fewer than
    min_common_joints such joints."""
    return float(pairwise_distance_mm(a[None], b[None], min_common_joints)[0, 0])


def pairwise_distance_mm(a: np.ndarray, b: np.ndarray, min_common_joints: int = 1) -> np.ndarray:
    """(N, J, 3) and (K, J, 3) skeletons -> (N, K) skeleton_distance_mm of every pair."""
    norms = np.sqrt(((a[:, None] - b[None]) ** 2).sum(axis=-1))   # (N, K, J), NaN where either misses the joint
    common = np.isfinite(norms)
    count = common.sum(axis=-1)
    total = np.where(common, norms, 0.0).sum(axis=-1)
    return np.where(count >= min_common_joints, total / np.maximum(count, 1), math.inf)


class PeopleTracker:
    """Global person ids across cameras and over time (module docstring: the algorithm).

    num_views: cameras V; num_joints: J of the layout; config: PeopleTrackerConfig (None: defaults).
    `update(stamp_s, detections)` once per synchronized frame -> PeopleFrame; `stats` counts.
    """

    def __init__(self, num_views: int, num_joints: int = 17, config: PeopleTrackerConfig | None = None):
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        if num_joints < 1:
            raise ValueError(f"num_joints must be >= 1, got {num_joints}")
        self.num_views, self.num_joints = num_views, num_joints
        self.config = config or PeopleTrackerConfig()
        self.stats = PeopleStats()
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.last_stamp_s: float | None = None

    def update(self, stamp_s: float, detections) -> PeopleFrame:
        """One synchronized frame. detections: V entries, one per camera, each a list of
        Detection (or tuples (producer_id, joints_mm[, confidence])); None or [] = nobody seen.
        Returns the confirmed people (ids, per-camera poses), births, losses and id switches."""
        if len(detections) != self.num_views:
            raise ValueError(f"expected {self.num_views} detection lists (one per camera), got {len(detections)}")
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp_s must be finite, got {stamp_s}")
        cfg = self.config
        self.stats.frames += 1
        lost: list[int] = []
        if self.last_stamp_s is not None and stamp_s == self.last_stamp_s:
            self.stats.duplicate_stamps += 1
            return self._frame(stamp_s, [], [], [], {})
        if self.last_stamp_s is not None and stamp_s < self.last_stamp_s:
            lost = [t.person_id for t in self.tracks if t.confirmed]
            self.stats.lost += len(lost)
            self.stats.resets += 1
            self.tracks = []
        self.last_stamp_s = stamp_s

        cameras = [self._check(camera) for camera in detections]   # per camera: [(index, id, joints, conf)]
        for track in self.tracks:
            track.predict(stamp_s, cfg)
        self._merge_tentative()
        # per camera: confirmed tracks first, then tentative tracks, with what is left
        matches: dict[int, dict[int, tuple]] = {}   # id(track) -> {camera: detection}
        leftovers = []
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]
        for v, camera in enumerate(cameras):
            rest = self._assign(v, stamp_s, camera, confirmed, matches)
            rest = self._assign(v, stamp_s, rest, tentative, matches)
            leftovers += [(v, d) for d in rest]
        leftovers = [(v, d) for v, d in leftovers if not self._near_person(d[2], self.tracks)]

        switches: list[IdSwitch] = []
        for track in self.tracks:
            seen = matches.get(id(track))
            if not seen:
                continue
            for v, (_, producer_id, _, _) in seen.items():
                previous = track.producer_ids[v]
                if (track.confirmed and producer_id is not None and previous is not None
                        and producer_id != previous and stamp_s - track.camera_seen_s[v] <= cfg.view_timeout_s):
                    switches.append(IdSwitch(v, track.person_id, previous, producer_id))
                    track.id_switches += 1
                if producer_id is not None or stamp_s - track.camera_seen_s[v] > cfg.view_timeout_s:
                    track.producer_ids[v] = producer_id
                track.camera_seen_s[v] = stamp_s
            track.observe(stamp_s, _median([d[2] for d in seen.values()]), cfg)
        self.stats.id_switches_absorbed += len(switches)

        for group in self._group(leftovers):
            pose = _median([d[2] for _, d in group])
            track = _Track(self.num_views, stamp_s, pose)
            track.prediction = pose
            track.observe(stamp_s, pose, cfg)
            for v, d in group:
                track.producer_ids[v] = d[1]
                track.camera_seen_s[v] = stamp_s
            matches[id(track)] = {v: d for v, d in group}
            self.tracks.append(track)

        born: list[int] = []
        kept = []
        for track in self.tracks:
            unseen_s = stamp_s - track.last_seen_s
            if track.confirmed:
                if unseen_s > cfg.lost_timeout_s:
                    lost.append(track.person_id)
                    self.stats.lost += 1
                    continue
            elif unseen_s > cfg.tentative_timeout_s:
                self.stats.tentative_dropped += 1
                continue
            elif track.matched_frames >= cfg.birth_frames:
                track.person_id = self.next_id
                self.next_id += 1
                born.append(track.person_id)
                self.stats.born += 1
            kept.append(track)
        self.tracks = kept
        return self._frame(stamp_s, born, lost, switches, matches)

    # -- internals -----------------------------------------------------------------------------
    def _check(self, camera) -> list[tuple]:
        """A camera's detections -> [(index, producer_id, joints (J, 3) float64 NaN = missing, confidence (J,))]."""
        checked = []
        for index, detection in enumerate(camera or ()):
            self.stats.detections += 1
            try:
                if isinstance(detection, Detection):
                    producer_id, joints, confidence = detection.producer_id, detection.joints_mm, detection.confidence
                else:
                    producer_id, joints, *more = detection
                    confidence = more[0] if more else None
                joints = np.asarray(joints, dtype=np.float64)
                confidence = np.ones(self.num_joints) if confidence is None \
                    else np.asarray(confidence, dtype=np.float64)
                producer_id = None if producer_id is None else int(producer_id)
            except (TypeError, ValueError):
                self.stats.invalid_detections += 1
                continue
            if joints.shape != (self.num_joints, 3) or confidence.shape != (self.num_joints,) \
                    or not ((confidence >= 0) & (confidence <= 1)).all():
                self.stats.invalid_detections += 1
                continue
            with np.errstate(invalid="ignore"):
                live = (np.abs(joints) <= MAX_ABS_MM).all(axis=1) & (confidence > 0)
            if not live.any():
                self.stats.empty_detections += 1
                continue
            if live.sum() < self.config.min_live_joints:
                self.stats.sparse_detections += 1
                continue
            checked.append((index, producer_id, np.where(live[:, None], joints, np.nan),
                            np.where(live, confidence, 0.0)))
        ids = [d[1] for d in checked if d[1] is not None]
        repeated = {i for i in ids if ids.count(i) > 1}
        if repeated:
            self.stats.duplicate_producer_ids += sum(ids.count(i) for i in repeated)
            checked = [(i, None if p in repeated else p, j, c) for i, p, j, c in checked]
        return checked

    def _assign(self, view: int, stamp_s: float, camera: list, tracks: list, matches: dict) -> list:
        """Gated Hungarian assignment of one camera's detections to tracks; returns the detections left."""
        if not camera or not tracks:
            return camera
        cfg = self.config
        distance = pairwise_distance_mm(np.stack([d[2] for d in camera]), np.stack([t.prediction for t in tracks]),
                                        cfg.min_common_joints)
        gate = np.array([t.gate_mm(stamp_s, cfg) for t in tracks])
        cost = np.where(distance <= gate, distance, _NO_MATCH)
        for k, track in enumerate(tracks):
            if stamp_s - track.camera_seen_s[view] <= cfg.view_timeout_s and track.producer_ids[view] is not None:
                for i, (_, producer_id, _, _) in enumerate(camera):
                    if producer_id == track.producer_ids[view] and cost[i, k] < _NO_MATCH:
                        cost[i, k] = max(cost[i, k] - cfg.id_hint_discount_mm, 0.0)
        rows, cols = linear_sum_assignment(cost)
        taken = set()
        for i, k in zip(rows, cols):
            if cost[i, k] < _NO_MATCH:
                matches.setdefault(id(tracks[k]), {})[view] = camera[i]
                taken.add(i)
        return [d for i, d in enumerate(camera) if i not in taken]

    def _merge_tentative(self) -> None:
        """A tentative track predicted within group_gate_mm of a confirmed track or an older
        tentative one is the same person seen twice (e.g. split at its first frame): dropped."""
        kept = [t for t in self.tracks if t.confirmed]
        for track in self.tracks:   # tentative ones, oldest first
            if track.confirmed:
                continue
            if any(skeleton_distance_mm(track.prediction, other.prediction, self.config.min_common_joints)
                   <= self.config.group_gate_mm for other in kept):
                self.stats.tentative_dropped += 1
                continue
            kept.append(track)
        self.tracks = [t for t in self.tracks if any(t is k for k in kept)]

    def _near_person(self, joints: np.ndarray, tracks: list) -> bool:
        if not tracks:
            return False
        distance = pairwise_distance_mm(joints[None], np.stack([t.prediction for t in tracks]),
                                        self.config.min_common_joints)
        if (distance <= self.config.group_gate_mm).any():
            self.stats.duplicate_detections += 1
            return True
        return False

    def _group(self, items: list) -> list[list]:
        """Complete-linkage grouping of (camera, detection) across cameras within group_gate_mm."""
        cfg = self.config
        n = len(items)
        if n == 0:
            return []
        joints = np.stack([d[2] for _, d in items])
        distance = pairwise_distance_mm(joints, joints, cfg.min_common_joints)
        cameras = np.array([v for v, _ in items])
        distance[cameras[:, None] == cameras[None]] = math.inf   # one detection per camera in a group
        groups = [[a] for a in range(n)]
        while len(groups) > 1:
            best, pair = cfg.group_gate_mm, None
            for g in range(len(groups)):
                for h in range(g + 1, len(groups)):
                    link = max(distance[a, b] for a in groups[g] for b in groups[h])
                    if link <= best:
                        best, pair = link, (g, h)
            if pair is None:
                break
            g, h = pair
            groups[g] += groups.pop(h)
        return [[items[a] for a in group] for group in groups]

    def _frame(self, stamp_s: float, born, lost, switches, matches) -> PeopleFrame:
        cfg = self.config
        people = {}
        for track in sorted((t for t in self.tracks if t.confirmed), key=lambda t: t.person_id):
            seen = matches.get(id(track), {})
            poses, confidences, producer_ids = [None] * self.num_views, [None] * self.num_views, [None] * self.num_views
            sources = np.full(self.num_views, -1, dtype=np.int64)
            for v, (index, producer_id, joints, confidence) in seen.items():
                poses[v], confidences[v] = joints.astype(np.float32), confidence.astype(np.float32)
                sources[v], producer_ids[v] = index, producer_id
            people[track.person_id] = TrackedPerson(
                person_id=track.person_id, poses=poses, confidences=confidences,
                live=stamp_s - track.camera_seen_s <= cfg.view_timeout_s, sources=sources,
                producer_ids=producer_ids,
                centre_mm=track.centre(predicted=not seen),
                seen=bool(seen), frames_seen=track.matched_frames, id_switches=track.id_switches)
        self.stats.tracked = len(people)
        self.stats.tentative = sum(not t.confirmed for t in self.tracks)
        return PeopleFrame(stamp_s=stamp_s, people=people, born=list(born), lost=list(lost),
                           id_switches=list(switches), tentative=self.stats.tentative)


def _median(poses: list) -> np.ndarray:
    """Per-joint median of (J, 3) poses whose missing joints are NaN (all 3 coordinates); NaN where
    none has the joint."""
    if len(poses) == 1:
        return np.array(poses[0], dtype=np.float64)
    return nan_median(np.stack(poses))


def nan_median(values: np.ndarray) -> np.ndarray:
    """(N, ...) -> (...): np.nanmedian(values, axis=0) without its masked-array cost and all-NaN
    warnings (NaN where no value is finite); values: finite or NaN."""
    n = len(values)
    ordered = np.sort(values.reshape(n, -1), axis=0)                   # NaN last
    count = np.isfinite(ordered).sum(axis=0)
    columns = np.arange(ordered.shape[1])
    low = ordered[np.maximum(count - 1, 0) // 2, columns]              # the middle one (odd count)
    high = ordered[np.minimum(count // 2, n - 1), columns]             # or the two middle ones
    return np.where(count > 0, 0.5 * (low + high), np.nan).reshape(values.shape[1:])
