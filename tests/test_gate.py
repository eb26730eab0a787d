"""PlausibilityGate: absurd joints are rejected and counted per view; an estimator's errors pass."""
from pathlib import Path

import numpy as np
import pytest

from synsp_core.errors import RealisticErrors
from synsp_core.gate import REASONS, PlausibilityGate

CLIP = np.load(Path(__file__).resolve().parents[1] / "synsp_core" / "data" / "cmu_test_clips_120fps.npz")
WALK = CLIP["walking_1"][::4].astype(np.float64)    # (T, 17, 3) mm at 30 fps
DT = 1 / 30


def counts(gate: PlausibilityGate, view: int) -> dict[str, int]:
    return {reason: int(gate.counters[reason][view]) for reason in REASONS}


def warm(gate: PlausibilityGate, frames: int = 10, views=(0,)) -> int:
    for frame in range(frames):
        for view in views:
            assert gate.check(view, frame * DT, WALK[frame]).all()
    return frames


def test_clean_and_realistically_noisy_skeletons_pass():
    views = 4
    gate = PlausibilityGate(views, 17)
    noisy = [RealisticErrors().apply(WALK, 30.0, np.random.default_rng(seed)) for seed in range(views)]
    for frame in range(len(WALK)):
        for view in range(views):
            assert gate.check(view, frame * DT, noisy[view][frame]).all(), (frame, view)
    assert all(count == 0 for reason in REASONS for count in gate.counters[reason])


@pytest.mark.parametrize("value, reason", [(np.nan, "nonfinite"), (np.inf, "nonfinite"),
                                           (3.4e38 * 1e3, "out_of_range"),   # finite, inf in float32
                                           (1e30, "out_of_range"), (1e9, "out_of_range"),
                                           (5e4, "off_body")])
def test_one_absurd_joint_is_rejected_alone(value, reason):
    gate = PlausibilityGate(2, 17)
    frame = warm(gate)
    joints = WALK[frame].copy()
    joints[13, 1] = value
    ok = gate.check(1, frame * DT, joints)
    assert ok.tolist() == [j != 13 for j in range(17)]
    assert counts(gate, 1) == {r: int(r == reason) for r in REASONS} and counts(gate, 0) == dict.fromkeys(REASONS, 0)


def test_absurd_joint_is_rejected_from_the_first_message_on():
    gate = PlausibilityGate(1, 17)
    joints = WALK[0].copy()
    joints[3] = [1e6, 0, 0]    # 1 km: within range, far off the body
    assert gate.check(0, 0.0, joints).tolist() == [j != 3 for j in range(17)]


def test_a_teleported_skeleton_is_rejected_but_walking_and_running_pass():
    gate = PlausibilityGate(2, 17)
    frame = warm(gate, views=(0, 1))
    assert not gate.check(1, frame * DT, WALK[frame] + [5000.0, 0, 0]).any()     # 5 m away: a jump
    assert gate.counters["jump"][1] == 17
    fast = WALK[frame] + [8000 * DT, 0, 0]           # the whole person 8 m/s faster than the walk
    assert gate.check(0, frame * DT, fast).all()


def test_a_bad_camera_stays_rejected_among_good_ones():
    gate = PlausibilityGate(3, 17)
    for frame in range(60):
        assert gate.check(0, frame * DT, WALK[frame]).all()
        assert gate.check(1, frame * DT, WALK[frame]).all()
        ok = gate.check(2, frame * DT, WALK[frame] + [3000.0, 0, 0])
        assert frame < 1 or not ok.any(), frame   # only its very first message can seed the history
    assert gate.counters["jump"][2] >= 59 * 17


def test_a_single_camera_follows_a_new_person_after_the_horizon():
    gate = PlausibilityGate(1, 17, horizon_s=0.5)
    frame = warm(gate)
    moved = [gate.check(0, (frame + k) * DT, WALK[frame + k] + [10_000.0, 0, 0]).all() for k in range(30)]
    assert not any(moved[:10]) and all(moved[-10:])


def test_time_going_back_starts_a_new_person():
    gate = PlausibilityGate(1, 17)
    warm(gate)
    assert gate.check(0, -60.0, WALK[0] + [4000.0, 0, 0]).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_abs_mm"):
        PlausibilityGate(1, 17, max_abs_mm=float("nan"))
    with pytest.raises(ValueError, match="shaped"):
        PlausibilityGate(1, 17).check(0, 0.0, WALK[0, :16])
