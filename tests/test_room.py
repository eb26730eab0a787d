"""The simulated room (synsp_core/room.py): determinism, what the cameras report, and that the
trackers' failures it promises (out of view, occluded, missed people, missed joints, id switches
and swaps) happen, and that PeopleTracker keeps one global id per person through them."""
import numpy as np
import pytest

from synsp_core.people import PeopleTracker
from synsp_core.room import Room, RoomConfig


@pytest.fixture(scope="module")
def room() -> Room:
    return Room(RoomConfig(people=3, cameras=4, fps=30.0, duration_s=20.0, seed=0))


def test_same_seed_same_room_other_seed_other_room(room):
    again = Room(RoomConfig(people=3, cameras=4, fps=30.0, duration_s=20.0, seed=0))
    for name in ("truth", "estimates", "confidence", "seen", "producer_ids", "order", "camera_positions"):
        np.testing.assert_array_equal(getattr(room, name), getattr(again, name), err_msg=name)
    other = Room(RoomConfig(people=3, cameras=4, fps=30.0, duration_s=20.0, seed=1))
    assert not np.array_equal(room.estimates, other.estimates, equal_nan=True)
    assert not np.array_equal(room.producer_ids, other.producer_ids)


def test_frame_contents(room):
    assert len(room) == 600 and room.truth.shape == (3, 600, 17, 3)
    ranges = []
    for t in (0, 123, 599):
        frame = room.frame(t)
        assert frame.index == t and frame.stamp_s == pytest.approx(t / 30.0)
        assert frame.truth.shape == (3, 17, 3)
        assert len(frame.cameras) == len(frame.who) == 4
        for v, (detections, who) in enumerate(zip(frame.cameras, frame.who)):
            assert len(detections) == len(who) == room.seen[v, t].sum()
            ids = [d[0] for d in detections]
            assert len(set(ids)) == len(ids)                    # a tracker's ids are unique in a frame
            for (producer_id, joints, confidence), p in zip(detections, who):
                assert isinstance(producer_id, int) and producer_id == room.producer_ids[v, t, p]
                assert joints.shape == (17, 3) and joints.dtype == np.float32
                assert confidence.shape == (17,) and ((confidence >= 0) & (confidence <= 1)).all()
                np.testing.assert_array_equal(joints, room.estimates[p, v, t])
                assert (confidence[np.isnan(joints).any(axis=1)] == 0).all()
            ranges.append((v, ids))
    by_camera = {}
    for v, ids in ranges:
        by_camera.setdefault(v, set()).update(ids)
    cameras = list(by_camera.values())
    assert all(a.isdisjoint(b) for i, a in enumerate(cameras) for b in cameras[i + 1:])   # each camera its own ids
    assert sum(1 for _ in room) == len(room)


def test_people_walk_on_the_floor_apart_and_cross(room):
    truth = room.truth
    assert abs(truth[..., 2].min()) < 1.0 and truth[..., 2].max() < 2200        # feet on the floor, z up, mm
    pelvis = truth[:, :, 0, :2]
    speed = np.linalg.norm(np.diff(pelvis, axis=1), axis=-1).mean() * 30.0
    assert 700 < speed < 1500                                                   # walking, mm/s
    gaps = np.linalg.norm(pelvis[:, None] - pelvis[None], axis=-1)               # (P, P, T)
    pairs = [gaps[p, q] for p in range(3) for q in range(p + 1, 3)]
    assert min(g.min() for g in pairs) >= 0.9 * room.config.min_separation_mm     # apart ...
    assert sum(g.min() < 1000 for g in pairs) >= 2                               # ... but passing close
    # the paths cross: some point of one path lies within 100 mm of a point of another
    path = room.paths_mm
    assert np.linalg.norm(path[0][:, None] - path[1][None], axis=-1).min() < 100


def test_cameras_miss_people_and_joints(room):
    assert room.events["out_of_view"] > 0 and room.events["occluded"] > 0 and room.events["missed"] > 0
    seen = room.seen
    assert 0.5 < seen.mean() < 0.95
    assert seen.any(axis=0).mean() > 0.99                  # nearly always someone sees each person
    longest = 0
    for v in range(4):                                     # a person absent from a camera for a while
        for p in range(3):
            run = 0
            for s in seen[:, :, p][v]:
                run = 0 if s else run + 1
                longest = max(longest, run)
    assert longest >= 30
    reported = room.estimates[np.broadcast_to(seen.transpose(2, 0, 1), room.estimates.shape[:3])]
    missing = np.isnan(reported).any(axis=-1)
    assert 0.002 < missing.mean() < 0.1                    # missed joints


def test_estimator_errors_per_camera(room):
    error = np.linalg.norm(room.estimates - room.truth[:, None], axis=-1)    # (P, V, T, J)
    per_camera = np.nanmean(error, axis=(2, 3))
    assert (per_camera > 15).all() and (per_camera < 120).all()
    assert np.nanmean(np.linalg.norm(room.produced(0).mean(axis=0) - room.truth[0], axis=-1)) > 0
    a, b = room.estimates[0, 0] - room.truth[0], room.estimates[0, 1] - room.truth[0]
    live = np.isfinite(a) & np.isfinite(b)
    assert abs(np.corrcoef(a[live], b[live])[0, 1]) < 0.5   # each camera errs its own way
    assert np.isnan(room.produced(0)[~room.seen[:, :, 0]]).all()


def test_id_switches_are_counted(room):
    ids, seen, memory = room.producer_ids, room.seen, round(room.config.track_memory_s * 30)
    switches = 0
    for v in range(4):
        for p in range(3):
            frames = np.flatnonzero(seen[v, :, p])
            assert (ids[v, frames, p] >= 0).all() and (ids[v, ~seen[v, :, p], p] == -1).all()
            for a, b in zip(frames[:-1], frames[1:]):
                switches += b - a <= memory and ids[v, a, p] != ids[v, b, p]
    assert switches == room.id_switches > 0
    assert room.id_swaps > 0                              # two people exchanged ids in some camera


def test_people_tracker_keeps_one_id_per_person(room):
    tracker = PeopleTracker(room.num_cameras)
    truths_of = {}
    for frame in room:
        out = tracker.update(frame.stamp_s, frame.cameras)
        for gid, person in out.people.items():
            truths_of.setdefault(gid, set()).update(frame.who[v][i] for v, i in enumerate(person.sources) if i >= 0)
    assert sorted(len(s) for s in truths_of.values()) == [1, 1, 1]           # 3 ids, none mixing people
    assert sorted(p for s in truths_of.values() for p in s) == [0, 1, 2]
    assert tracker.stats.id_switches_absorbed == room.id_switches and tracker.stats.lost == 0


@pytest.mark.parametrize("people,cameras", [(1, 1), (6, 4), (2, 8)])
def test_other_sizes(people, cameras):
    room = Room(RoomConfig(people=people, cameras=cameras, duration_s=3.0, seed=3))
    assert room.estimates.shape == (people, cameras, 90, 17, 3)
    assert room.seen.shape == (cameras, 90, people)
    assert np.isfinite(room.truth).all()


@pytest.mark.parametrize("bad", [dict(people=0), dict(cameras=0), dict(fps=0), dict(duration_s=-1),
                                 dict(fov_deg=0), dict(swap_probability=2)])
def test_bad_config(bad):
    with pytest.raises(ValueError):
        RoomConfig(**bad)
