"""ClockCheck: a camera whose clock disagrees is isolated, never the healthy ones."""
import pytest

from synsp_core.clock_check import ClockCheck

PERIOD = 1 / 30
LATENCY = 0.08


def run(check: ClockCheck, frames: range, clock_errors, t0: float = 1000.0) -> dict[int, list[bool]]:
    """Every camera sends each frame (capture + its clock error, received LATENCY later)."""
    accepted = {view: [] for view in range(len(clock_errors))}
    for frame in frames:
        now = t0 + frame * PERIOD + LATENCY
        for view, error in enumerate(clock_errors):
            error = error(frame) if callable(error) else error
            accepted[view].append(check.check(view, t0 + frame * PERIOD + error, now + 0.001 * view))
    return accepted


def test_one_camera_an_hour_ahead_is_isolated():
    check = ClockCheck(4, max_skew_s=1.0, fresh_s=0.5)
    accepted = run(check, range(30), [0.0, 0.0, 3600.0, 0.0])
    assert all(all(accepted[v]) for v in (0, 1, 3)) and not any(accepted[2])
    assert check.dropped.tolist() == [0, 0, 30, 0] and check.isolated.tolist() == [False, False, True, False]


@pytest.mark.parametrize("bad", [0, 1])
def test_of_two_cameras_the_one_agreeing_with_the_receiver_wins(bad):
    errors = [0.0, 0.0]
    errors[bad] = -3600.0
    accepted = run(ClockCheck(2, 1.0, 0.5), range(10), errors)
    # the very first message of all has nobody to disagree with
    assert not any(accepted[bad][1:]) and all(accepted[1 - bad])


def test_estimator_latency_differences_pass():
    accepted = run(ClockCheck(3, 1.0, 0.5), range(20), [0.0, -0.4, -0.7])   # slower estimators
    assert all(all(a) for a in accepted.values())


def test_every_camera_jumping_back_together_is_followed():
    check = ClockCheck(4, 1.0, 0.5)
    accepted = run(check, range(40), [lambda f: -60.0 if f >= 20 else 0.0] * 4)
    for view in range(4):
        assert all(accepted[view][:20]) and all(accepted[view][21:]), view


def test_a_recovered_clock_rejoins_and_a_single_camera_is_always_accepted():
    check = ClockCheck(3, 1.0, 0.5)
    accepted = run(check, range(20), [0.0, 0.0, lambda f: 5.0 if f < 10 else 0.0])
    assert accepted[2] == [False] * 10 + [True] * 10
    assert all(run(ClockCheck(1, 1.0, 0.5), range(5), [3600.0])[0])


def test_a_receiver_stall_isolates_nobody():
    check = ClockCheck(3, max_skew_s=1.0, fresh_s=0.5)
    run(check, range(10), [0.0, 0.0, 0.0])
    # the receiver stalls 3 s, then takes its backlog: every message arrives late by up to 3 s
    now = 1000.0 + 10 * PERIOD + LATENCY + 3.0
    assert all(check.check(view, 1000.0 + 10 * PERIOD, now + 0.01 * view) for view in range(3))


def test_bad_arguments():
    with pytest.raises(ValueError):
        ClockCheck(2, 0.0, 0.5)


def test_a_bad_clock_heard_first_is_not_taken_before_the_others_vote():
    check = ClockCheck(3, max_skew_s=1.0, fresh_s=0.5)
    assert not check.check(2, 1000.0 + 3600.0, 1000.0)   # heard first, an hour ahead of the receiver
    assert check.check(0, 1000.01, 1000.02) and check.check(1, 1000.01, 1000.02)
    assert not check.check(2, 1000.04 + 3600.0, 1000.05)
