"""People association (PeopleTracker) and the multi-person streaming refiner (no ROS).

The room: 3 people from the bundled CMU clips (real motion, 30 fps), placed apart and walking
towards each other (two pass each other 500 mm apart, the third crosses both paths), seen by 4
cameras with realistic estimator errors, each camera's tracker with its own ids and its own
order of detections.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from synsp_core.bones import BoneLengthPrior
from synsp_core.errors import RealisticErrors, synthesize_views
from synsp_core.people import Detection, PeopleTracker, PeopleTrackerConfig
from synsp_core.skeletons import H36M17
from synsp_core.streaming import MultiPersonRefiner, PersonViews, StreamingRefiner
from test_streaming import make_backend

torch.set_num_threads(1)   # tiny matrices: extra threads only contend on a shared machine

FPS, T, V, P, J, W = 30.0, 80, 4, 3, 17, 8
CLIPS = Path(__file__).resolve().parents[1] / "synsp_core" / "data" / "cmu_test_clips_120fps.npz"


def place(clip: np.ndarray, start_mm, end_mm) -> np.ndarray:
    """A pelvis-frame clip (T, J, 3) walked in a straight line from start to end (x, y), turned to
    face the way it goes, standing on the floor (z = 0)."""
    start, end = np.asarray(start_mm, float), np.asarray(end_mm, float)
    heading = np.arctan2(*(end - start)[::-1])
    c, s = np.cos(heading), np.sin(heading)
    turned = clip @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    path = start + (end - start) * np.linspace(0, 1, len(clip))[:, None]
    offset = np.concatenate([path, np.full((len(clip), 1), -clip[..., 2].min())], axis=1)
    return (turned + offset[:, None]).astype(np.float32)


def room_truth() -> np.ndarray:
    """(P, T, J, 3) mm: the 3 people's true motion at 30 fps."""
    clips = np.load(CLIPS)
    paths = [((-2000, -250), (2000, -250)),   # 0 and 1 walk towards each other, passing 500 mm apart
             ((2000, 250), (-2000, 250)),
             ((400, -2000), (400, 2000))]     # 2 crosses both paths
    names = ["walking_1", "soccer_1", "basketball_1"]
    return np.stack([place(clips[name][::4][:T], *path) for name, path in zip(names, paths)])


@dataclass
class Room:
    """Per camera and frame, what each camera's tracker reports; edits are made on `seen`/`ids`."""

    truth: np.ndarray                  # (P, T, J, 3)
    views: np.ndarray                  # (P, V, T, J, 3) each camera's estimate of each person
    ids: np.ndarray                    # (V, T, P) producer id of person p in camera v at frame t
    seen: np.ndarray                   # (V, T, P) bool
    order: np.ndarray                  # (V, T, P) the order a camera lists the people in
    extra: dict = field(default_factory=dict)   # (v, t) -> extra detections appended after the people

    def frame(self, t: int):
        """Detections of frame t (V lists) and, per camera, the person behind each detection (-1: none)."""
        detections, who = [], []
        for v in range(V):
            people = [p for p in self.order[v, t] if self.seen[v, t, p]]
            detections.append([Detection(self.views[p, v, t], int(self.ids[v, t, p])) for p in people])
            who.append(people)
            for extra in self.extra.get((v, t), []):
                detections[v].append(extra)
                who[v].append(-1)
        return detections, who


def make_room(seed: int = 0) -> Room:
    rng = np.random.default_rng(seed)
    truth = room_truth()
    views = np.stack([synthesize_views(truth[p], V, RealisticErrors(), FPS, rng) for p in range(P)])
    ids = np.empty((V, T, P), dtype=np.int64)
    for v in range(V):                         # each camera numbers the people its own way
        ids[v] = rng.choice(np.arange(100 * v, 100 * v + 50), P, replace=False)
    order = np.stack([np.stack([rng.permutation(P) for _ in range(T)]) for _ in range(V)])
    return Room(truth, views, ids, np.ones((V, T, P), dtype=bool), order)


def track(room: Room, tracker: PeopleTracker | None = None, frames=range(T)):
    """Run a tracker over the room -> (tracker, outputs, per frame {global id: true person}), and
    check that every detection a person got comes from that one true person."""
    tracker = tracker or PeopleTracker(V, J)
    outputs, identities = [], []
    for t in frames:
        detections, who = room.frame(t)
        out = tracker.update(t / FPS, detections)
        identity = {}
        for gid, person in out.people.items():
            truths = {who[v][i] for v, i in enumerate(person.sources) if i >= 0}
            assert len(truths) <= 1, f"frame {t}: person {gid} mixes detections of {truths}"
            if truths:
                identity[gid] = truths.pop()
            for v in range(V):
                assert (person.poses[v] is None) == (person.sources[v] < 0)
        outputs.append(out)
        identities.append(identity)
    return tracker, outputs, identities


def id_map(identities) -> dict:
    """{true person: set of global ids it had} over all frames."""
    mapping = {}
    for identity in identities:
        for gid, p in identity.items():
            mapping.setdefault(p, set()).add(gid)
    return mapping


def assert_stable(identities):
    """Each true person had exactly one global id, and no global id was two people."""
    mapping = id_map(identities)
    assert sorted(mapping) == list(range(P)), mapping
    assert all(len(gids) == 1 for gids in mapping.values()), mapping
    assert len({next(iter(g)) for g in mapping.values()}) == P, mapping


def test_room_paths_cross():
    room = make_room()
    dist = np.linalg.norm(room.truth[:, None, :, 0, :2] - room.truth[None, :, :, 0, :2], axis=-1)
    assert dist[0, 1].min() < 600 and dist[2, [0, 1]].min() < 900   # the test really crosses paths
    tracker, outputs, identities = track(room)
    assert_stable(identities)
    born_at = [t for t, out in enumerate(outputs) if out.born]
    assert born_at == [2] and sorted(outputs[2].born) == [0, 1, 2]     # birth_frames = 3
    for t in range(2, T):                      # from birth on, every detection goes to its person
        assert len(outputs[t].people) == P
        assert all(person.seen and (person.sources >= 0).all() for person in outputs[t].people.values())
    assert tracker.stats.id_switches_absorbed == 0 and tracker.stats.lost == 0 and tracker.stats.born == 3
    assert tracker.stats.tentative == 0


def test_producer_id_switches_are_absorbed_and_counted():
    room = make_room()
    room.ids[1, 20:, 2] = 999                  # camera 1's tracker renumbers person 2
    a, b = room.ids[2, 0, 0], room.ids[2, 0, 1]
    room.ids[2, 40:, 0], room.ids[2, 40:, 1] = b, a   # camera 2 swaps persons 0 and 1 as they pass each other
    tracker, outputs, identities = track(room)
    assert_stable(identities)
    gid = {p: next(iter(g)) for p, g in id_map(identities).items()}
    switches = [(t, s) for t, out in enumerate(outputs) for s in out.id_switches]
    assert [(t, s.camera, s.person_id, s.new_producer_id) for t, s in switches if t == 20] == [(20, 1, gid[2], 999)]
    assert sorted((s.person_id, s.old_producer_id, s.new_producer_id) for t, s in switches if t == 40) == \
        sorted([(gid[0], a, b), (gid[1], b, a)])
    assert len(switches) == 3 and tracker.stats.id_switches_absorbed == 3
    assert outputs[-1].people[gid[0]].id_switches == 1 and outputs[-1].people[gid[2]].id_switches == 1
    assert all(len(out.people) == P for out in outputs[2:])


def test_person_leaves_one_camera_and_comes_back():
    room = make_room()
    room.seen[1, 20:50, 0] = False             # person 0 out of camera 1's view for 1 s ...
    room.ids[1, 50:, 0] = 777                  # ... and back with a new id from that camera's tracker
    tracker, outputs, identities = track(room)
    assert_stable(identities)
    g = next(iter(id_map(identities)[0]))
    assert all(outputs[t].people[g].poses[1] is None for t in range(20, 50))
    assert outputs[25].people[g].live[1]       # within view_timeout_s: still live for the refiner (held)
    assert not outputs[45].people[g].live[1]   # longer: that camera is out of this person's model input
    assert outputs[50].people[g].sources[1] >= 0 and outputs[50].people[g].live.all()
    assert tracker.stats.id_switches_absorbed == 0   # re-entering with a new id is not a switch
    assert tracker.stats.born == 3 and tracker.stats.lost == 0 and tracker.stats.tentative_dropped == 0


def test_short_total_occlusion_keeps_the_id():
    room = make_room()
    room.seen[:, 30:36, 2] = False             # no camera sees person 2 for 6 frames (0.2 s), near person 0's path
    tracker, outputs, identities = track(room)
    assert_stable(identities)
    g = next(iter(id_map(identities)[2]))
    for t in range(30, 36):
        person = outputs[t].people[g]          # still reported, unseen: the refiner holds its state
        assert not person.seen and all(p is None for p in person.poses) and person.live.all()
    assert outputs[36].people[g].seen and (outputs[36].people[g].sources >= 0).all()
    assert tracker.stats.born == 3 and tracker.stats.lost == 0


def test_birth_after_consistent_frames_and_ghosts_never_born():
    room = make_room()
    room.seen[:, :20, 2] = False               # person 2 walks in at frame 20
    far = room.views[0, 0, 10] + np.array([3000.0, 3000.0, 0.0], np.float32)
    room.extra[(3, 10)] = [Detection(far, 42)]                      # a one-frame ghost
    room.extra[(0, 12)] = [Detection(far + 1000, None)]             # two frames of another, one camera
    room.extra[(0, 13)] = [Detection(far + 1000, None)]
    for t in range(5, 60):                     # camera 0 lists person 1 twice (a doubled skeleton)
        room.extra[(0, t)] = room.extra.get((0, t), []) + [Detection(room.views[1, 0, t] + 60, None)]
    tracker, outputs, identities = track(room)
    assert [(t, out.born) for t, out in enumerate(outputs) if out.born] in (
        [(2, [0, 1]), (22, [2])], [(2, [1, 0]), (22, [2])])           # 3 consistent frames: 20, 21, 22
    assert_stable(identities[22:])
    assert tracker.stats.born == 3 and tracker.stats.tentative_dropped >= 2
    assert tracker.stats.duplicate_detections >= 50
    assert all(len(out.people) == (2 if t < 22 else 3) for t, out in enumerate(outputs) if t >= 2)


def test_death_after_the_timeout():
    room = make_room()
    room.seen[:, 30:, 1] = False               # person 1 leaves the room at frame 30
    room.seen[:, 75:, 1] = True                # and someone walks in where they would be, later
    config = PeopleTrackerConfig(lost_timeout_s=1.0)
    tracker, outputs, identities = track(room, PeopleTracker(V, J, config))
    g = next(iter(id_map(identities[:30])[1]))
    expected = next(t for t in range(30, T) if t / FPS - 29 / FPS > config.lost_timeout_s)
    assert [t for t, out in enumerate(outputs) if g in out.lost] == [expected]
    assert all(g in outputs[t].people for t in range(30, expected)) and g not in outputs[expected].people
    assert all(g not in out.people for out in outputs[expected:])
    assert [(t, out.born) for t, out in enumerate(outputs) if out.born][-1] == (77, [3])   # a new id, never reused
    assert tracker.stats.lost == 1 and tracker.stats.born == 4


def test_bad_detections_are_counted_and_skipped():
    room = make_room()
    room.ids[1, :, 1] = room.ids[1, :, 0]      # camera 1 gives persons 0 and 1 the same id
    nan = np.full((J, 3), np.nan, np.float32)
    sparse = nan.copy()
    sparse[:2] = 0.0
    for t in range(T):
        room.extra[(0, t)] = [Detection(nan, 5)]                              # all-NaN person
        room.extra[(2, t)] = [Detection(np.zeros((16, 3)), 6),                # wrong joint count
                              (7, room.views[0, 2, t], np.full(J, 1.5)),      # confidence beyond 1
                              ("not an id", room.views[0, 2, t]),
                              (8, sparse)]                                    # 2 live joints
    tracker, outputs, identities = track(room)
    assert_stable(identities)
    assert all(len(out.people) == P for out in outputs[2:])
    stats = tracker.stats
    assert stats.empty_detections == T and stats.invalid_detections == 3 * T and stats.sparse_detections == T
    assert stats.duplicate_producer_ids == 2 * T and stats.id_switches_absorbed == 0
    for out, identity in zip(outputs, identities):
        for gid, person in out.people.items():
            assert (person.producer_ids[1] is None) == (identity[gid] in (0, 1))   # the repeated id is no hint
            assert all(np.isfinite(p).any() for p in person.poses if p is not None)


def test_bad_arguments():
    tracker = PeopleTracker(V, J)
    with pytest.raises(ValueError, match="expected 4 detection lists"):
        tracker.update(0.0, [[]] * 3)
    with pytest.raises(ValueError, match="gate_mm"):
        PeopleTrackerConfig(gate_mm=0)
    assert tracker.update(0.0, [None] * V).people == {}
    assert tracker.update(0.0, [[]] * V).people == {} and tracker.stats.duplicate_stamps == 1


def test_backwards_stamp_loses_everyone_and_starts_over():
    room = make_room()
    tracker, outputs, _ = track(room, frames=range(10))
    assert len(outputs[-1].people) == P
    detections, _ = room.frame(10)
    out = tracker.update(0.0, detections)
    assert sorted(out.lost) == [0, 1, 2] and out.people == {} and tracker.stats.resets == 1


# -- the multi-person streaming refiner ------------------------------------------------------------
class CountingBackend:
    """Wraps a backend; records the batch size of every call."""

    def __init__(self, backend):
        self.backend, self.config, self.batches = backend, backend.config, []

    def __call__(self, poses, view_mask=None, confidence=None):
        self.batches.append(poses.shape[0])
        return self.backend(poses, view_mask, confidence)


def assert_same_frames(got, expected):
    assert [f.stamp_s for f in got] == [f.stamp_s for f in expected]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.fused, b.fused, atol=1e-3)
        np.testing.assert_allclose(a.per_view, b.per_view, atol=1e-3)
        np.testing.assert_allclose(a.quality, b.quality, atol=1e-5)
        np.testing.assert_array_equal(a.views, b.views)
        np.testing.assert_array_equal(a.windows, b.windows)
        np.testing.assert_allclose(a.joint_quality, b.joint_quality, atol=1e-5)


def test_multi_person_refiner_one_batched_call_equals_separate_refiners():
    room = make_room()
    room.seen[:, 30:36, 2] = False             # person 2 totally occluded for 6 frames
    room.seen[:, 40:, 1] = False               # person 1 leaves: lost 1 s later, flushed and removed
    room.seen[1, 10:25, 0] = False             # person 0 out of camera 1's view for a while
    backend = CountingBackend(make_backend())
    prior = lambda: BoneLengthPrior(H36M17, horizon_frames=30)   # noqa: E731
    multi = MultiPersonRefiner(backend, V, emit_delay=3, bone_prior_factory=prior)
    tracker = PeopleTracker(V, J)
    got: dict = {}
    single: dict = {}                          # the reference: one StreamingRefiner per person, fed the same
    expected: dict = {}
    calls_per_frame = []
    for t in range(T):
        frame = tracker.update(t / FPS, room.frame(t)[0])
        before = len(backend.batches)
        for gid, frames in multi.push(frame.stamp_s, frame.people).items():
            got.setdefault(gid, []).extend(frames)
        calls_per_frame.append(len(backend.batches) - before)
        single_calls = len(backend.batches)
        for gid in frame.lost:
            expected[gid] += single.pop(gid).flush()
        for gid, person in frame.people.items():
            if gid not in single:
                single[gid] = StreamingRefiner(backend, V, emit_delay=3, bone_prior=prior())
            expected.setdefault(gid, []).extend(single[gid].push(frame.stamp_s, person.poses, person.live,
                                                                 person.confidences))
        del backend.batches[single_calls:]     # count only the multi-person refiner's calls
    for gid, frames in multi.flush().items():
        got[gid] += frames
    for gid, refiner in single.items():
        expected[gid] += refiner.flush()

    assert calls_per_frame[:2] == [0, 0] and all(n == 1 for n in calls_per_frame[2:])   # ONE call per frame
    assert backend.batches[0] == 3 and max(backend.batches) == 3 and min(backend.batches) == 2
    assert multi.stats.model_calls == T - 2 and multi.stats.removed == 1 and multi.stats.started == 3
    assert sorted(got) == sorted(expected) == [0, 1, 2]
    for gid in got:
        assert_same_frames(got[gid], expected[gid])
    assert len(got[2]) == T - 2 - 6            # every frame someone saw person 2, none while occluded
    lost_person = next(g for g in got if len(got[g]) == 40 - 2)
    assert lost_person not in multi.people     # flushed: all its 38 frames came out, then removed
    assert all(np.isfinite(f.fused).all() for frames in got.values() for f in frames)


def test_multi_person_refiner_max_batch_and_plain_lists():
    backend = CountingBackend(make_backend())
    multi = MultiPersonRefiner(backend, V, emit_delay=0, max_batch=2)
    room = make_room()
    for t in range(5):
        people = {p: list(room.views[p, :, t]) for p in range(P)}   # plain V-entry lists
        people[1] = PersonViews(list(room.views[1, :, t]), np.ones(V, bool), [None] * V)
        out = multi.push(t / FPS, people)
        assert sorted(out) == [0, 1, 2] and all(len(f) == 1 for f in out.values())
    assert backend.batches == [2, 1] * 5
    assert multi.remove([1])[1] == [] and multi.people == [0, 2]
    multi.emit_delay = 3
    with pytest.raises(ValueError, match="emit_delay"):
        multi.emit_delay = W
    with pytest.raises(ValueError, match="max_batch"):
        MultiPersonRefiner(backend, V, max_batch=0)
    with pytest.raises(RuntimeError, match="finish without a prepared window"):
        StreamingRefiner(backend, V).finish(np.zeros((V, W, J * 3)), np.ones((V, W)))


def test_window_budget_refines_the_longest_waiting_and_drops_nothing():
    """3 people, budget 1: one window per frame (plus a newcomer's), in turn; every frame still
    comes out, at the same time as without a budget. An identity model returns each window's
    input, so every average of windows is the input itself: skipped windows (copies of the last
    refined one, input poses with a tiny weight) leave the outputs exactly as they were."""
    class Identity:                              # refined = input (a missing joint: 0), quality 1
        config = make_backend().config

        def __call__(self, poses, view_mask=None, confidence=None):
            return poses.nan_to_num(0.0), torch.ones(poses.shape[:3])

    room = make_room()
    room.views[1, 2, 20:30, 5] = np.nan          # a missing joint in one camera of person 1
    outputs = {}
    for budget in (None, 1):
        backend = CountingBackend(Identity())
        multi = MultiPersonRefiner(backend, V, emit_delay=W - 1, window_budget=budget)
        frames = {p: [] for p in range(P)}
        released = []                            # frames out per push
        for t in range(40):
            out = multi.push(t / FPS, {p: list(room.views[p, :, t]) for p in range(P)})
            released.append(sum(len(f) for f in out.values()))
            for p, f in out.items():
                frames[p] += f
        for p, f in multi.flush().items():
            frames[p] += f
        outputs[budget] = (frames, released, backend.batches, multi)
    frames, released, batches, multi = outputs[1]
    reference, reference_released, _, _ = outputs[None]
    assert batches == [3] + [1] * 39             # the newcomers at once, then one person per frame
    assert multi.stats.windows == 42 and multi.stats.skipped_windows == 3 * 40 - 42
    assert [multi.refiners[p].stats.skipped_windows for p in range(P)] == [26, 26, 26]   # in turn
    assert released == reference_released       # frames released at the same pushes
    for p in range(P):
        assert [f.stamp_s for f in frames[p]] == [f.stamp_s for f in reference[p]] == [t / FPS for t in range(40)]
        for got, expected in zip(frames[p], reference[p]):
            np.testing.assert_allclose(got.per_view, expected.per_view, atol=0.01)
            assert np.isfinite(got.fused).all()
        assert all((f.windows[f.views] >= 1).all() for f in frames[p][:-W])   # each refined by some window


def test_window_budget_never_skips_a_frame_no_window_would_cover():
    """emit_delay 0: each frame is finalized by its own window, so the budget cannot skip anyone."""
    backend = CountingBackend(make_backend())
    multi = MultiPersonRefiner(backend, V, emit_delay=0, window_budget=1)
    room = make_room()
    for t in range(5):
        out = multi.push(t / FPS, {p: list(room.views[p, :, t]) for p in range(P)})
        assert all(len(f) == 1 and f[0].windows.max() == 1 for f in out.values())
    assert backend.batches == [3] * 5 and multi.stats.skipped_windows == 0
    with pytest.raises(ValueError, match="window_budget"):
        MultiPersonRefiner(backend, V, window_budget=0)
