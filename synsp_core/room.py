"""A simulated room: several people walking, seen by several cameras whose trackers err (no ROS).

    from synsp_core.room import Room, RoomConfig
    room = Room(RoomConfig(people=3, cameras=4, fps=30.0, duration_s=20.0, seed=0))
    for frame in room:                        # RoomFrame, one per capture time
        frame.cameras[v]                      # camera v: [(producer id, joints (17, 3) mm, confidence (17,)), ...]
        frame.who[v]                          # ... and the true person behind each of them
        frame.truth                           # (P, 17, 3) mm, every person's true pose

World frame: mm, z up, the room centre at (0, 0), the floor at z = 0. Everything is drawn once,
at construction, from one `np.random.default_rng(seed)`: the same config gives the same room.

- **People.** Real motion: the bundled CMU test clips (`synsp_core/data`, Human3.6M-17; person i
  plays `walking_1`, `soccer_1`, `basketball_1` in turn from a random start, forward then backward
  when it runs out), resampled to `fps`, turned to face the way the person walks and carried along
  a circle of radius `circle_mm` at `speed_mm_per_s`. The circles' centres lie on a ring around the
  room centre and neighbours walk in opposite directions, so the circles intersect and their paths
  cross; each person's starting angle is picked (greedily, deterministic) so that no two pelvises
  come closer than `min_separation_mm` (people pass each other, they do not walk through each other).
- **Cameras.** `cameras` cameras on a ring around the room (the first at 45 degrees, height
  `camera_height_mm`), each looking at the room centre with a horizontal field of view of `fov_deg`.
  A camera sees a person when the pelvis lies in its field of view, is not hidden behind a nearer
  person (pelvis bearings closer than `body_radius_mm` at the nearer person's distance) and its
  detector did not miss the person (Poisson events, `miss_rate_hz` per camera and person, lasting
  `miss_duration_s`).
- **Estimates.** Each camera's estimate of each person has its own estimator-like errors
  (`errors`: an error model of `synsp_core.errors` or its name, RealisticErrors by default, drawn
  per camera by `synthesize_views`), missed joints (NaN, `MissingJoints` bursts at
  `missing_joint_rate_hz`) and a per-joint confidence (`simulated_confidence`: informative for
  about half the camera-person pairs, all ones for the rest).
- **Trackers.** Each camera's tracker numbers people its own way (camera v's ids start at
  1000 (v + 1) + a random offset, never reused) and lists them in its own order (shuffled per
  frame). A person back in view after more than `track_memory_s` gets a new id (a new track, not a
  switch). Id switches: a person's id changes to a new one (Poisson, `id_switch_rate_hz` per camera
  and person), and two people both seen by a camera exchange their ids there when they first come
  within `swap_distance_mm` of each other, with probability `swap_probability`. `id_switches`
  counts the changes of id within a track (gap at most `track_memory_s`), what
  `PeopleTracker.stats.id_switches_absorbed` counts when it keeps every id.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synsp_core.errors import ErrorModel, MissingJoints, error_model_from_config, simulated_confidence, \
    synthesize_views
from synsp_core.motion import resample

CLIPS = Path(__file__).resolve().parent / "data" / "cmu_test_clips_120fps.npz"
CLIP_NAMES = ("walking_1", "soccer_1", "basketball_1")
CLIP_FPS = 120.0


@dataclass
class RoomConfig:
    """The room's parameters: distances in mm, times in s, rates in events per second."""

    people: int = 3
    cameras: int = 4
    fps: float = 30.0
    duration_s: float = 20.0
    seed: int = 0
    errors: str | dict | ErrorModel = "realistic"   # per-camera estimator errors (synsp_core.errors)
    missing_joint_rate_hz: float = 0.3              # bursts of missed joints (a limb for 0.05-1 s), per camera and person
    speed_mm_per_s: float = 1100.0                  # walking speed
    circle_mm: float = 1400.0                       # radius of each person's circle
    min_separation_mm: float = 600.0                # closest two pelvises get (when the circles allow it)
    fov_deg: float = 60.0                           # cameras' horizontal field of view
    camera_height_mm: float = 2500.0
    body_radius_mm: float = 150.0                   # a nearer person hides this much around their pelvis
    miss_rate_hz: float = 0.1                       # detector misses a person, per camera and person ...
    miss_duration_s: tuple[float, float] = (0.1, 0.6)   # ... for this long
    track_memory_s: float = 0.5                     # a tracker keeps a person's id through gaps this short
    id_switch_rate_hz: float = 0.05                 # a tracker gives a person a new id, per camera and person
    swap_distance_mm: float = 800.0                 # two people this close may swap ids in a camera ...
    swap_probability: float = 0.3                   # ... with this probability per close approach
    clip_file: Path = field(default=CLIPS)

    def __post_init__(self):
        if int(self.people) < 1 or int(self.cameras) < 1:
            raise ValueError(f"people and cameras must be >= 1, got {self.people}, {self.cameras}")
        if not (self.fps > 0 and self.duration_s > 0):
            raise ValueError(f"fps and duration_s must be > 0, got {self.fps}, {self.duration_s}")
        if not 0 < self.fov_deg < 360:
            raise ValueError(f"fov_deg must be in (0, 360), got {self.fov_deg}")
        if not 0 <= self.swap_probability <= 1:
            raise ValueError(f"swap_probability must be in [0, 1], got {self.swap_probability}")


@dataclass
class RoomFrame:
    """What the cameras report at one capture time, and the truth."""

    index: int
    stamp_s: float
    cameras: list      # V lists of (producer id, joints (J, 3) float32 mm (NaN = missed), confidence (J,) float32)
    who: list          # V lists: the true person (0 .. P-1) behind each detection of `cameras`
    truth: np.ndarray  # (P, J, 3) float32 mm


class Room:
    """The simulated room of a RoomConfig (module docstring). Arrays, all over T frames:

    truth (P, T, J, 3) mm; estimates (P, V, T, J, 3) mm, each camera's estimate of each person
    whether seen or not (NaN = missed joint); confidence (P, V, T, J); seen (V, T, P) bool;
    in_view (V, T, P) bool (field of view only); producer_ids (V, T, P) int (-1 where not seen);
    order (V, T, P): the order camera v lists the people it sees; camera_positions (V, 3) mm;
    camera_yaw (V,) rad; id_switches: int; events: counts of what the trackers did.
    """

    def __init__(self, config: RoomConfig | None = None):
        self.config = cfg = config or RoomConfig()
        rng = np.random.default_rng(cfg.seed)
        P, V = int(cfg.people), int(cfg.cameras)
        T = max(int(round(cfg.duration_s * cfg.fps)), 3)
        self.num_people, self.num_cameras, self.num_frames = P, V, T
        self.stamps_s = np.arange(T) / cfg.fps

        self.paths_mm, heading = walk_paths(P, T, cfg)                               # (P, T, 2), (P, T)
        self.truth = np.stack([self._person(p, T, heading[p], rng) for p in range(P)])   # (P, T, J, 3)

        extent = float(np.abs(self.paths_mm).max())
        angles = math.pi / 4 + 2 * math.pi * np.arange(V) / V
        ring = extent + 1300.0
        self.camera_positions = np.stack([ring * np.cos(angles), ring * np.sin(angles),
                                          np.full(V, cfg.camera_height_mm)], axis=1)
        self.camera_yaw = angles + math.pi                                           # looking at the centre
        self.in_view = self._in_view()
        occluded = self._occluded()
        missed = self._missed(rng, V, T, P)
        self.seen = self.in_view & ~occluded & ~missed
        self.events = {"out_of_view": int((~self.in_view).sum()), "occluded": int((self.in_view & occluded).sum()),
                       "missed": int((self.in_view & ~occluded & missed).sum())}

        errors = error_model_from_config(cfg.errors)
        gaps = MissingJoints(burst_rate_hz=cfg.missing_joint_rate_hz, frame_rate_hz=0.0)
        self.estimates = np.empty((P, V) + self.truth.shape[1:], dtype=np.float32)
        self.confidence = np.empty(self.estimates.shape[:-1], dtype=np.float32)
        for p in range(P):
            views = synthesize_views(self.truth[p], V, errors, cfg.fps, rng)
            for v in range(V):
                views[v][np.isnan(gaps.apply(self.truth[p], cfg.fps, rng))] = np.nan
                self.confidence[p, v] = simulated_confidence(views[v], self.truth[p], rng)
            self.estimates[p] = views
        self.producer_ids = self._track_ids(rng)
        self.order = np.argsort(rng.random((V, T, P)), axis=-1)

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self):
        return (self.frame(t) for t in range(self.num_frames))

    def frame(self, t: int) -> RoomFrame:
        """The cameras' reports at frame t (each camera in its own order)."""
        cameras, who = [], []
        for v in range(self.num_cameras):
            people = [int(p) for p in self.order[v, t] if self.seen[v, t, p]]
            cameras.append([(int(self.producer_ids[v, t, p]), self.estimates[p, v, t], self.confidence[p, v, t])
                            for p in people])
            who.append(people)
        return RoomFrame(t, float(self.stamps_s[t]), cameras, who, self.truth[:, t])

    def produced(self, person: int) -> np.ndarray:
        """(V, T, J, 3) mm: the cameras' estimates of a person as they were reported: NaN where the
        camera did not see the person (and for missed joints)."""
        return np.where(self.seen[:, :, person, None, None], self.estimates[person], np.nan)

    # -- construction ------------------------------------------------------------------------------
    def _person(self, p: int, frames: int, heading: np.ndarray, rng) -> np.ndarray:
        """(T, J, 3) mm: clip p % 3 at fps from a random start, looped forward-backward, turned to
        `heading`, on the floor, carried along the person's path."""
        cfg = self.config
        with np.load(cfg.clip_file) as clips:
            clip = resample(clips[CLIP_NAMES[p % len(CLIP_NAMES)]].astype(np.float64), CLIP_FPS, cfg.fps)
        cycle = np.concatenate([clip, clip[-2:0:-1]])               # forward, then backward: no jumps
        index = (int(rng.integers(len(cycle))) + np.arange(frames)) % len(cycle)
        motion = cycle[index]
        c, s = np.cos(heading)[:, None], np.sin(heading)[:, None]
        x, y = motion[..., 0], motion[..., 1]
        turned = np.stack([c * x - s * y, s * x + c * y, motion[..., 2] - clip[..., 2].min()], axis=-1)
        turned[..., :2] += self.paths_mm[p][:, None]
        return turned.astype(np.float32)

    def _bearings(self):
        """Per camera, each person's pelvis bearing relative to the optical axis (V, T, P) rad and
        horizontal distance (V, T, P) mm."""
        pelvis = self.paths_mm.transpose(1, 0, 2)[None]                   # (1, T, P, 2)
        rel = pelvis - self.camera_positions[:, None, None, :2]            # (V, T, P, 2)
        angle = np.arctan2(rel[..., 1], rel[..., 0]) - self.camera_yaw[:, None, None]
        return (angle + math.pi) % (2 * math.pi) - math.pi, np.linalg.norm(rel, axis=-1)

    def _in_view(self) -> np.ndarray:
        bearing, _ = self._bearings()
        return np.abs(bearing) <= math.radians(self.config.fov_deg) / 2

    def _occluded(self) -> np.ndarray:
        """(V, T, P): a nearer person's body covers the pelvis bearing."""
        bearing, distance = self._bearings()
        diff = np.abs((bearing[..., :, None] - bearing[..., None, :] + math.pi) % (2 * math.pi) - math.pi)
        nearer = distance[..., None, :] < distance[..., :, None]          # [..., p, q]: q is nearer than p
        covers = diff < np.arctan2(self.config.body_radius_mm, distance)[..., None, :]
        return (nearer & covers & self.in_view[..., None, :]).any(axis=-1)

    def _missed(self, rng, V: int, T: int, P: int) -> np.ndarray:
        cfg = self.config
        missed = np.zeros((V, T, P), dtype=bool)
        for v in range(V):
            for p in range(P):
                for start in rng.integers(0, T, rng.poisson(cfg.miss_rate_hz * T / cfg.fps)):
                    length = max(1, int(round(rng.uniform(*cfg.miss_duration_s) * cfg.fps)))
                    missed[v, start:start + length, p] = True
        return missed

    def _track_ids(self, rng) -> np.ndarray:
        """(V, T, P) each camera's tracker ids (-1 where not seen); counts id_switches."""
        cfg = self.config
        V, T, P = self.seen.shape
        memory = max(int(round(cfg.track_memory_s * cfg.fps)), 1)
        switch = rng.random((V, T, P)) < cfg.id_switch_rate_hz / cfg.fps
        centre = self.paths_mm.transpose(1, 0, 2)                          # (T, P, 2)
        close = np.linalg.norm(centre[:, :, None] - centre[:, None], axis=-1) < cfg.swap_distance_mm   # (T, P, P)
        swap_draw = rng.random((V, T, P, P)) < cfg.swap_probability
        ids = np.full((V, T, P), -1, dtype=np.int64)
        self.id_switches, self.id_swaps, self.new_tracks = 0, 0, 0
        for v in range(V):
            next_id = 1000 * (v + 1) + int(rng.integers(0, 500))
            current = np.full(P, -1, dtype=np.int64)       # the tracker's id for each person (-1: none)
            last_seen = np.full(P, -10 ** 9)
            for t in range(T):
                for p in range(P):
                    if current[p] >= 0 and t - last_seen[p] > memory:   # the tracker forgot the person
                        current[p] = -1
                for p in range(P):
                    for q in range(p + 1, P):
                        starts = close[t, p, q] and (t == 0 or not close[t - 1, p, q])
                        if starts and swap_draw[v, t, p, q] and self.seen[v, t, p] and self.seen[v, t, q] \
                                and current[p] >= 0 and current[q] >= 0:
                            current[p], current[q] = current[q], current[p]
                            self.id_switches += 2
                            self.id_swaps += 1
                for p in range(P):
                    if not self.seen[v, t, p]:
                        continue
                    if current[p] < 0:
                        current[p], next_id = next_id, next_id + 1
                        self.new_tracks += 1
                    elif switch[v, t, p]:
                        current[p], next_id = next_id, next_id + 1
                        self.id_switches += 1
                    ids[v, t, p] = current[p]
                    last_seen[p] = t
        return ids


def walk_paths(people: int, frames: int, cfg: RoomConfig) -> tuple[np.ndarray, np.ndarray]:
    """Each person's pelvis (P, T, 2) mm and heading (P, T) rad: circles of radius cfg.circle_mm
    whose centres lie on a ring (800 mm for up to 3 people, wider for more), neighbours walking in
    opposite directions; starting angles chosen one person after the other, on a 5-degree grid, for
    the closest approach to the people placed before to be at least cfg.min_separation_mm and
    otherwise as small as possible (crossings), or as large as possible where none reaches it."""
    radius, speed = cfg.circle_mm, cfg.speed_mm_per_s
    ring = 800.0 * max(people, 3) / 3 if people > 1 else 0.0
    period = 2 * math.pi * radius / speed
    t_check = np.arange(int(period * cfg.fps) + 1) / cfg.fps               # relative motion repeats after a period
    t = np.arange(frames) / cfg.fps
    placed, paths, headings = [], [], []
    for p in range(people):
        theta = 2 * math.pi * p / people
        centre = ring * np.array([math.cos(theta), math.sin(theta)])
        omega = (1 if p % 2 == 0 else -1) * speed / radius
        best = None
        for phase in np.deg2rad(np.arange(0, 360, 5)):
            x = centre + radius * np.stack([np.cos(omega * t_check + phase), np.sin(omega * t_check + phase)], 1)
            gap = min((np.linalg.norm(x - other, axis=1).min() for other in placed), default=math.inf)
            key = (gap >= cfg.min_separation_mm, -gap if gap >= cfg.min_separation_mm else gap)
            if best is None or key > best[0]:
                best = (key, phase, x)
        _, phase, x = best
        placed.append(x)
        angle = omega * t + phase
        paths.append(centre + radius * np.stack([np.cos(angle), np.sin(angle)], 1))
        headings.append(angle + math.copysign(math.pi / 2, omega))          # the tangent: the way they walk
    return np.stack(paths), np.stack(headings)
