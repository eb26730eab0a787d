"""ViewSynchronizer: exact matching, interpolation of free-running cameras, dead cameras, drops,
resets (no ROS needed)."""
import math

import numpy as np
import pytest

from synsp_core.sync import COUNTER_NAMES, SyncedFrame, ViewSynchronizer

PERIOD = 1 / 30  # s, 30 fps


def feed(sync, messages):
    """messages: (view, stamp_s, payload[, now_s]) in arrival order -> all frames returned."""
    frames = []
    for message in messages:
        frames += sync.add(*message)
    return frames


def check_invariants(sync, frames):
    """Stamps strictly increase (within an epoch) and are the anchor's capture stamps; members used
    as is lie within slop of the frame time and are used as is once; every received message is
    counted exactly once (or still pending)."""
    for before, after in zip(frames, frames[1:]):
        assert before.epoch < after.epoch or before.stamp_s < after.stamp_s, (before, after)
    as_is = [(frame.epoch, view, stamp) for frame in frames for view, stamp in enumerate(frame.stamps)
             if stamp is not None and not frame.interpolated[view]]
    assert len(as_is) == len(set(as_is))
    for frame in frames:
        assert frame.stamps[frame.anchor] == frame.stamp_s and not frame.interpolated[frame.anchor]
        assert all(abs(s - frame.stamp_s) <= sync.slop_s + 1e-12 for s in frame.stamps if s is not None)
        assert np.array_equal(frame.live, [p is not None for p in frame.payloads])
        assert all((p is None) == (s is None) for p, s in zip(frame.payloads, frame.stamps))
        assert not (frame.interpolated & ~frame.live).any()
    counts = sync.counters
    accounted = counts["matched"] + sync.pending_counts()
    accounted += sum(counts[name] for name in COUNTER_NAMES if name.startswith("dropped_"))
    assert np.array_equal(accounted, counts["received"])
    assert np.array_equal(counts["interpolated"], np.sum([f.interpolated for f in frames], axis=0) if frames else 0)


def rounds(num_frames, views, stamp=lambda view, k: k * PERIOD):
    """Messages of `views` for frames 0..num_frames-1, round by round; payload (view, k)."""
    return [(view, stamp(view, k), (view, k)) for k in range(num_frames) for view in views]


def frame_indices(frame):
    """The capture index k of each member, None where missing."""
    return [None if p is None else p[1] for p in frame.payloads]


def motion(t_s):
    """A (17, 3) skeleton moving at constant velocity (mm, mm/s): linear interpolation is exact."""
    return np.linspace(-500.0, 500.0, 51).reshape(17, 3) + np.array([1500.0, -800.0, 300.0]) * t_s


def free_running(stamps_per_view, rng, latency_s=0.02):
    """Messages (view, stamp_s, motion(stamp_s)) of cameras with their own capture times, in
    arrival order (each message delayed by 0..latency_s; per camera, order is kept)."""
    messages = [(view, float(stamp), motion(stamp)) for view, stamps in enumerate(stamps_per_view) for stamp in stamps]
    arrival = [stamp + rng.uniform(0.0, latency_s) for _, stamp, _ in messages]
    return [messages[i] for i in np.argsort(arrival, kind="stable")]


def assert_on_motion(frames):
    """Every payload is the skeleton at the time its view stands for (its capture, or the frame
    time where interpolated)."""
    for frame in frames:
        for payload, stamp in zip(frame.payloads, frame.stamps):
            if payload is not None:
                np.testing.assert_allclose(payload, motion(stamp), atol=1e-6)


def test_perfect_stamps_four_views_every_frame_complete():
    sync = ViewSynchronizer(4, slop_s=0.01)
    frames = feed(sync, rounds(60, range(4)))
    assert len(frames) == 60
    assert all(frame.live.all() for frame in frames)
    assert [frame_indices(f) for f in frames] == [[k] * 4 for k in range(60)]
    np.testing.assert_allclose([f.stamp_s for f in frames], np.arange(60) * PERIOD)
    assert sync.counters["matched"].tolist() == [60] * 4
    check_invariants(sync, frames)


@pytest.mark.parametrize("num_views", [4, 8])
def test_jittered_stamps_and_arrival_order_are_matched_without_drops(num_views):
    rng = np.random.default_rng(num_views)
    num_frames, jitter, slop = 200, 0.004, 0.01
    stamps = np.arange(num_frames)[:, None] * PERIOD + rng.uniform(-jitter, jitter, (num_frames, num_views))
    arrival = stamps + rng.uniform(0.0, 0.02, stamps.shape)  # network latency, keeps per-view order
    order = sorted(np.ndindex(num_frames, num_views), key=lambda kv: arrival[kv])
    sync = ViewSynchronizer(num_views, slop_s=slop)
    frames = feed(sync, [(v, stamps[k, v], (v, k)) for k, v in order])
    frames += sync.flush()
    assert [frame_indices(f) for f in frames] == [[k] * num_views for k in range(num_frames)]
    assert all(frame.anchor == 0 for frame in frames)  # the reference: view 0, waited for from the start
    assert not any(frame.interpolated.any() for frame in frames)  # hardware-synchronized: matched as is
    dropped = sum(sync.counters[name].sum() for name in COUNTER_NAMES if name.startswith("dropped_"))
    assert dropped == 0
    check_invariants(sync, frames)


def test_closest_message_to_the_frame_time_is_chosen_within_slop():
    # Frame time: view 0 (the reference) at 10 ms. View 1 has 0 and 15 ms: 15 ms is closer; 0 ms
    # can serve no later frame.
    sync = ViewSynchronizer(2, slop_s=0.02)
    frames = feed(sync, [(1, 0.000, "a"), (1, 0.015, "b"), (0, 0.010, "p")])
    assert [f.payloads for f in frames] == [["p", "b"]]
    assert sync.counters["dropped_unmatched"].tolist() == [0, 1]
    # Each view within slop of the frame time (views 1 and 2 are 27 ms apart: no matter).
    sync = ViewSynchronizer(3, slop_s=0.02)
    frames = feed(sync, [(1, 0.000, "a"), (1, 0.018, "b"), (2, -0.009, "c"), (2, 0.05, "d"), (0, 0.010, "p")])
    assert [f.payloads for f in frames] == [["p", "b", "c"]]
    check_invariants(sync, frames)


@pytest.mark.parametrize("slop_s, interpolated_views", [(0.015, [2]), (0.0, [1, 2, 3])])
@pytest.mark.parametrize("seed", [0, 1])
def test_free_running_cameras_at_any_phase_are_interpolated(slop_s, interpolated_views, seed):
    # The reported case: 4 cameras at 25 fps, capture times offset by 0, 12, 24 and 36 ms,
    # +-2 ms jitter. Matching stamps within slop gave no frame at all. With the node's slop,
    # 15 ms, views 1 and 3 (12 and -4 ms from a frame) are mostly matched as is (not when the
    # jitters add up past 15 ms), view 2 (24 ms after one frame, 16 ms before the next) mostly
    # interpolated.
    rng = np.random.default_rng(seed)
    period, num_frames = 1 / 25, 300
    offsets = np.array([0.0, 0.012, 0.024, 0.036])
    stamps = np.arange(num_frames)[:, None] * period + offsets + rng.uniform(-0.002, 0.002, (num_frames, 4))
    lines = []
    sync = ViewSynchronizer(4, slop_s=slop_s, log=lines.append)
    frames = feed(sync, free_running(stamps.T, rng)) + sync.flush()  # the last captures of 1-3 make no frame
    np.testing.assert_array_equal([f.stamp_s for f in frames], stamps[:, 0])  # the reference's captures
    assert all(f.live.all() for f in frames[1:])  # the first lacks a capture before it on some views
    interpolated = sync.counters["interpolated"]
    assert [view for view in range(4) if interpolated[view] > num_frames // 2] == interpolated_views
    assert_on_motion(frames)
    check_invariants(sync, frames)
    assert lines[0] == "sync: frame times follow view 0 (rate not known yet)"
    told = [int(line.split()[2]) for line in lines[1:] if "interpolated to the frame times" in line]
    assert sorted(told) == sorted(set(told)) and set(interpolated_views) <= set(told)  # once a minute: once


def test_cameras_stopping_together_leave_no_frame_of_their_own():
    # Free-running cameras stop together; views 0 and 1 captured first, so they stop being live
    # first (arrival clock), while views 2 and 3 still count as live for a moment. Their last
    # captures (26 and 36 ms after the last frame; view 2's unused: it was matched as is, 14 ms
    # before the frame) are not frames of their own.
    period = 1 / 25
    messages = [(view, k * period + offset, motion(k * period + offset), k * period + offset + 0.005)
                for k in range(50) for view, offset in enumerate([0.0, 0.012, 0.026, 0.036])]
    sync = ViewSynchronizer(4, slop_s=0.015, view_timeout_s=0.5)
    frames = feed(sync, messages)
    last_s = 49 * period
    frames += sync.poll(last_s + 0.524)   # views 0 and 1 timed out, views 2 and 3 not yet
    assert sync.live_views().tolist() == [False, False, True, True]
    frames += sync.poll(last_s + 1.0) + sync.flush()
    np.testing.assert_allclose([f.stamp_s for f in frames], np.arange(50) * period)
    assert {f.anchor for f in frames} == {0}
    check_invariants(sync, frames)


def test_reference_camera_that_stops_is_replaced_by_the_next():
    # View 0, the reference, stops for 1 s: after view_timeout the frames follow view 1, from
    # its first capture one period after the last frame; view 0 rejoins as an ordinary view.
    stamps = [(view, k * PERIOD + 0.01 * view) for k in range(90) for view in range(2)
              if not (view == 0 and 30 <= k < 60)]
    lines = []
    sync = ViewSynchronizer(2, slop_s=0.005, queue_size=20, view_timeout_s=0.2, log=lines.append)
    frames = feed(sync, [(view, stamp, motion(stamp)) for view, stamp in stamps]) + sync.flush()
    assert [f.anchor for f in frames] == [0] * 30 + [1] * 60
    expected = [stamp for view, stamp in stamps if view == (0 if stamp < 30 * PERIOD else 1)]
    np.testing.assert_allclose([f.stamp_s for f in frames], expected)
    assert "sync: frame times follow view 1 (30.0 fps)" in lines
    assert [f.live.tolist() for f in frames[29:31]] == [[True, True], [False, True]]
    assert all(f.live.all() for f in frames[60:-1])  # view 0 back, interpolated (but after its last capture)
    assert_on_motion(frames)
    check_invariants(sync, frames)


def test_interpolation_is_linear_between_the_neighbouring_messages():
    # View 1 captures 20 ms after view 0 (slop 10 ms): frame k (view 0 at k/30 s) takes 0.6 of
    # view 1's message k-1 and 0.4 of its message k, and comes out when message k arrives.
    sync = ViewSynchronizer(2, slop_s=0.01)
    outputs = [sync.add(view, k * PERIOD + 0.02 * view, motion(k * PERIOD + 0.02 * view).astype(np.float32))
               for k in range(10) for view in range(2)]
    frames = [frame for output in outputs for frame in output]
    assert [len(output) for output in outputs[2:]] == [0, 1] * 9  # each frame once view 1 passed it
    assert frames[0].live.tolist() == [True, False]  # no view 1 message before the first frame
    for k, frame in enumerate(frames[1:], 1):
        assert frame.interpolated.tolist() == [False, True] and frame.stamps == [k * PERIOD] * 2
        expected = 0.6 * motion((k - 1) * PERIOD + 0.02) + 0.4 * motion(k * PERIOD + 0.02)
        np.testing.assert_allclose(frame.payloads[1], expected, atol=1e-3)  # float32 payloads
        np.testing.assert_allclose(frame.payloads[1], motion(k * PERIOD), atol=1e-3)
    check_invariants(sync, frames)


def test_drifting_camera_clock_stays_aligned():
    # View 1's clock runs 1% slow: over 20 s its phase sweeps 6 periods, in and out of the slop.
    rng = np.random.default_rng(3)
    num_frames = 600
    stamps = [np.arange(num_frames) * PERIOD, 0.005 + np.arange(num_frames - 6) * PERIOD * 1.01]
    sync = ViewSynchronizer(2, slop_s=0.01)
    frames = feed(sync, free_running(stamps, rng)) + sync.flush()
    np.testing.assert_array_equal([f.stamp_s for f in frames], stamps[0])
    assert sum(f.live.all() for f in frames) >= num_frames - 8  # view 1 ends 6 frames early
    interpolated = sync.counters["interpolated"][1]
    assert 200 < interpolated < 500  # the rest matched as is, while its phase is within slop
    assert_on_motion(frames)
    check_invariants(sync, frames)


@pytest.mark.parametrize("slow_view", [0, 1])
def test_camera_at_another_rate_is_interpolated_at_the_faster_rate(slow_view):
    # One camera at 30 fps, the other at 15 fps (capturing 7 ms later, beyond the 5 ms slop):
    # frames at 30 fps, at the fast camera's captures, the slow camera interpolated between its own.
    rng = np.random.default_rng(slow_view)
    fast, slow = np.arange(120) * PERIOD, 0.007 + np.arange(60) * 2 * PERIOD
    lines = []
    sync = ViewSynchronizer(2, slop_s=0.005, log=lines.append)
    frames = feed(sync, free_running([slow, fast] if slow_view == 0 else [fast, slow], rng)) + sync.flush()
    settled = [f for f in frames if f.stamp_s > 0.3]  # the rates are known after 4 messages
    np.testing.assert_array_equal([f.stamp_s for f in settled], fast[fast > 0.3])
    assert all(f.anchor == 1 - slow_view for f in settled)
    assert all(f.live.all() for f in settled[:-2]) and all(f.interpolated[slow_view] for f in settled[:-2])
    assert lines[0] == "sync: frame times follow view 0 (rate not known yet)"
    if slow_view == 0:  # the fast camera takes over once the rates are known
        assert "sync: frame times follow view 1 (30.0 fps)" in lines
    assert_on_motion(frames)
    check_invariants(sync, frames)


def test_dead_camera_is_dropped_after_timeout_and_rejoins():
    timeout = 0.2
    sync = ViewSynchronizer(3, slop_s=0.01, queue_size=20, view_timeout_s=timeout)
    frames, emitted_at = [], []  # newest stamp when each frame came out
    for k in range(70):
        for view in range(3):
            if view == 2 and 11 <= k <= 40:
                continue  # camera 2 stops
            new = sync.add(view, k * PERIOD, (view, k))
            frames += new
            emitted_at += [k * PERIOD] * len(new)
        if k == 30:
            assert sync.live_views().tolist() == [True, True, False]
    assert sync.live_views().all()
    by_index = {f.payloads[0][1]: f for f in frames}
    assert sorted(by_index) == list(range(70))  # views 0 and 1 never lose a frame
    for k, frame in by_index.items():
        # Frame 41 is formed on view 1's message, before camera 2's arrives: it rejoins at 42.
        assert frame.live.tolist() == [True, True, not 11 <= k <= 41], k
    holds = np.array(emitted_at) - [f.stamp_s for f in frames]
    assert holds.max() <= timeout + PERIOD  # waited at most view_timeout once
    assert (holds[20:] == 0).all()          # then no latency while camera 2 is dead
    assert sync.counters["dropped_unmatched"].tolist() == [0, 0, 1]  # camera 2's frame 41
    check_invariants(sync, frames)


def test_clock_detects_cameras_that_all_stopped():
    sync = ViewSynchronizer(2, slop_s=0.01, view_timeout_s=0.5)
    assert sync.add(0, 10.0, "a", now_s=10.02) == []
    assert sync.poll(10.3) == []  # camera 1 may still come
    frames = sync.poll(10.6)
    assert [f.payloads for f in frames] == [["a", None]]
    assert not sync.live_views().any()
    check_invariants(sync, frames)


def test_cameras_are_waited_for_from_the_first_message_not_the_first_poll():
    # The node polls from start-up; its cameras may send seconds later. The first message's
    # camera is not the only one: the others are waited for, and view 0 is the reference.
    sync = ViewSynchronizer(2, slop_s=0.01, view_timeout_s=0.5)
    assert sync.poll(7.0) == []
    assert sync.add(1, 10.0, "b", now_s=10.0) == []
    frame, = sync.add(0, 10.0, "a", now_s=10.01)
    assert frame.payloads == ["a", "b"] and frame.anchor == 0


def test_reordered_messages_are_counted_out_of_order():
    messages = rounds(10, range(2))
    four, five = messages.index((1, 4 * PERIOD, (1, 4))), messages.index((1, 5 * PERIOD, (1, 5)))
    messages[four], messages[five] = messages[five], messages[four]
    sync = ViewSynchronizer(2, slop_s=0.01)
    frames = feed(sync, messages)
    # View 1's frame 4 came after its frame 5: too late, so frame 4 goes out without view 1.
    assert [frame_indices(f) for f in frames] == [[k, k] if k != 4 else [4, None] for k in range(10)]
    assert sync.counters["dropped_out_of_order"].tolist() == [0, 1]
    assert sync.counters["dropped_unmatched"].tolist() == [0, 0]
    assert sync.counters["missed"].tolist() == [0, 1]
    check_invariants(sync, frames)


def test_duplicates_are_counted_and_never_emitted_twice():
    messages = [m for m in rounds(20, range(2)) for _ in range(1 + (m[0] == 1))]
    sync = ViewSynchronizer(2, slop_s=0.01)
    frames = feed(sync, messages)
    assert [frame_indices(f) for f in frames] == [[k, k] for k in range(20)]
    assert sync.counters["dropped_duplicate"].tolist() == [0, 20]
    check_invariants(sync, frames)


def test_late_message_is_dropped_and_counted():
    sync = ViewSynchronizer(3, slop_s=0.01, view_timeout_s=0.2)
    frames = feed(sync, rounds(5, range(3)) + rounds(30, range(2))[10:] + [(0, 30 * PERIOD, (0, 30))])
    assert frames[-1].stamps == [29 * PERIOD, 29 * PERIOD, None]
    assert sync.add(2, 8 * PERIOD, (2, 8)) == []  # delayed, frame 8 went out long ago
    assert sync.counters["dropped_late"].tolist() == [0, 0, 1]
    assert sync.counters["dropped_unmatched"].sum() == 0
    check_invariants(sync, frames)


def test_backwards_jump_resets_and_frames_resume():
    sync = ViewSynchronizer(2, slop_s=0.01)
    frames = feed(sync, rounds(60, range(2)) + [(0, 60 * PERIOD, (0, 60))])  # 2 s, then back to 0
    assert sync.pending_counts().tolist() == [1, 0]
    looped = feed(sync, [(v, t, ("loop", v, k)) for v, t, (_, k) in rounds(10, range(2))])
    assert sync.reset_count == 1
    assert [f.epoch for f in frames] == [0] * 60 and [f.epoch for f in looped] == [1] * 10
    assert all(f.live.all() for f in looped)  # the other view is waited for after the reset
    np.testing.assert_allclose([f.stamp_s for f in looped], np.arange(10) * PERIOD)
    counts = sync.counters
    assert counts["dropped_reset"].tolist() == [1, 0]
    assert counts["received"].tolist() == [71, 70] and counts["matched"].tolist() == [70, 70]
    assert counts["dropped_out_of_order"].sum() == 0
    check_invariants(sync, frames + looped)


def test_clock_jumping_backwards_resets():
    sync = ViewSynchronizer(2, slop_s=0.01)
    sync.add(0, 100.0, "a", now_s=100.0)
    assert sync.poll(3.0) == [] and sync.reset_count == 1
    assert sync.counters["dropped_reset"].tolist() == [1, 0]
    frames = feed(sync, [(0, 3.0, "b", 3.0), (1, 3.0, "c", 3.0)])
    assert [(f.payloads, f.epoch) for f in frames] == [(["b", "c"], 1)]


def test_queue_overflow_drops_oldest():
    # View 0 fills its queue of 3 while view 1 is waited for; view 1's messages 0-2 wait for
    # the frame at 3 (its first, 0, is pushed out by 3; 1 and 2 then serve no frame).
    sync = ViewSynchronizer(2, slop_s=0.01, queue_size=3)
    frames = feed(sync, rounds(6, [0]) + rounds(6, [1]))
    assert sync.counters["dropped_queue_full"].tolist() == [3, 1]
    assert [frame_indices(f) for f in frames] == [[3, 3], [4, 4], [5, 5]]
    assert sync.counters["dropped_unmatched"].tolist() == [0, 2]
    check_invariants(sync, frames)


def test_single_view_emits_every_message_at_once():
    sync = ViewSynchronizer(1, slop_s=0.0)
    for k in range(10):
        frames = sync.add(0, k * PERIOD, k)
        assert len(frames) == 1 and frames[0].payloads == [k] and frames[0].stamp_s == k * PERIOD
    assert sync.add(0, 9 * PERIOD, 9) == [] and sync.counters["dropped_duplicate"].tolist() == [1]


@pytest.mark.parametrize("lost_view", [2, 0])
def test_lost_message_costs_only_its_own_view(lost_view):
    # A view loses frames 10 and 11 (its next message follows a gap in its own 30 fps rhythm):
    # those frames still go out with the other three views, not dropped. When the reference
    # (view 0) lost them, the frame times come from another camera (the lowest-numbered).
    messages = [m for m in rounds(30, range(4)) if not (m[0] == lost_view and m[2][1] in (10, 11))]
    sync = ViewSynchronizer(4, slop_s=0.01)
    frames = feed(sync, messages)
    expected = [[k] * 4 for k in range(30)]
    for k in (10, 11):
        expected[k][lost_view] = None
    assert [frame_indices(f) for f in frames] == expected
    assert [f.anchor for f in frames if f.anchor != 0] == ([1, 1] if lost_view == 0 else [])
    assert sync.counters["missed"].tolist() == [2 if view == lost_view else 0 for view in range(4)]
    assert sync.counters["lost_in_gaps"].tolist() == [2 if view == lost_view else 0 for view in range(4)]
    assert sum(sync.counters[name].sum() for name in COUNTER_NAMES if name.startswith("dropped_")) == 0
    check_invariants(sync, frames)


def test_lost_messages_are_counted_from_the_gaps_in_a_cameras_rhythm():
    """Messages that never reach the synchronizer (lost on the network or in a subscription queue)
    leave gaps in the camera's stamps: a gap of k periods counts k - 1; a pause longer than the
    view timeout is a camera that stopped, not lost messages."""
    lost = {5, 12, 13, 14}
    stamps = [k * PERIOD for k in range(40) if k not in lost] + [2.0 + k * PERIOD for k in range(5)]
    sync = ViewSynchronizer(1, slop_s=0.01, view_timeout_s=0.5)
    feed(sync, [(0, stamp, (0, i)) for i, stamp in enumerate(stamps)])
    assert sync.counters["lost_in_gaps"].tolist() == [len(lost)]


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_lost_messages_at_random_with_jitter_and_reordered_arrivals(seed):
    rng = np.random.default_rng(seed)
    num_frames, num_views, slop = 1000, 4, 0.01
    stamps = np.arange(num_frames)[:, None] * PERIOD + rng.uniform(-0.004, 0.004, (num_frames, num_views))
    sent = rng.random(stamps.shape) > 0.1
    sent[:5] = True   # a view's rhythm is known after its first 4 messages
    arrival = stamps + rng.uniform(0.0, 0.02, stamps.shape)
    order = sorted((kv for kv in np.ndindex(num_frames, num_views) if sent[kv]), key=lambda kv: arrival[kv])
    sync = ViewSynchronizer(num_views, slop_s=slop)
    frames = feed(sync, [(v, stamps[k, v], (v, k)) for k, v in order]) + sync.flush()
    expected = [[k if sent[k, v] else None for v in range(num_views)] for k in range(num_frames) if sent[k].any()]
    assert [frame_indices(f) for f in frames] == expected
    assert sum(sync.counters[name].sum() for name in COUNTER_NAMES if name.startswith("dropped_")) == 0
    check_invariants(sync, frames)


def test_lost_message_of_an_interpolated_camera_costs_the_frames_around_it():
    # View 1 captures 20 ms after view 0 and loses its message 10 (at 353 ms): frames 10 and 11
    # (333 and 367 ms) lie between its messages 9 and 11, across the gap: view 1 is missing there
    # (and in frame 0, before its first message).
    messages = [(view, k * PERIOD + 0.02 * view, motion(k * PERIOD + 0.02 * view))
                for k in range(20) for view in range(2) if (view, k) != (1, 10)]
    sync = ViewSynchronizer(2, slop_s=0.01)
    frames = feed(sync, messages)
    assert [k for k, f in enumerate(frames) if not f.live.all()] == [0, 10, 11]
    assert sync.counters["missed"].tolist() == [0, 3]
    assert_on_motion(frames)
    check_invariants(sync, frames)


def test_flush_emits_pending_frames():
    sync = ViewSynchronizer(2, slop_s=0.01)
    assert feed(sync, [(0, 0.0, "a"), (0, PERIOD, "b")]) == []  # view 1 may still send
    frames = sync.flush()
    assert [f.payloads for f in frames] == [["a", None], ["b", None]]
    assert sync.pending_counts().sum() == 0
    check_invariants(sync, frames)


def test_frame_type_and_live_mask():
    sync = ViewSynchronizer(3, slop_s=0.01)
    frame, = feed(sync, [(0, 1.0, "a"), (2, 1.0, "c"), (1, 1.0, "b")])
    assert isinstance(frame, SyncedFrame) and frame.live.dtype == bool and frame.live.shape == (3,)
    assert frame.stamps == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_views=0, slop_s=0.01), "num_views"),
    (dict(num_views=2, slop_s=-0.01), "slop_s"),
    (dict(num_views=2, slop_s=0.01, queue_size=0), "queue_size"),
    (dict(num_views=2, slop_s=0.6, view_timeout_s=0.5), "view_timeout_s"),
    (dict(num_views=2, slop_s=math.nan), "slop_s"),
    (dict(num_views=2, slop_s=0.01, reset_jump_s=0), "reset_jump_s"),
])
def test_invalid_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ViewSynchronizer(**kwargs)


@pytest.mark.parametrize("args, message", [
    ((2, 0.0, "x"), "view"),
    ((-1, 0.0, "x"), "view"),
    ((0, math.nan, "x"), "stamp_s"),
    ((0, math.inf, "x"), "stamp_s"),
    ((0, 0.0, None), "payload"),
    ((0, 0.0, "x", math.nan), "now_s"),
])
def test_invalid_messages_are_rejected(args, message):
    sync = ViewSynchronizer(2, slop_s=0.01)
    with pytest.raises(ValueError, match=message):
        sync.add(*args)
    assert sync.counters["received"].sum() == 0


def test_flush_never_emits_a_stamp_at_or_before_the_last_frame():
    # View 1 rejoins with a stamp just before the last frame (within slop, so not late on
    # arrival); flushing cannot put it in a frame without going back in time.
    sync = ViewSynchronizer(2, slop_s=0.01, view_timeout_s=0.2)
    frames = feed(sync, rounds(3, range(2)) + rounds(20, [0])[3:])
    assert frames[-1].stamps == [19 * PERIOD, None]
    assert sync.add(1, 19 * PERIOD - 0.005, "rejoin") == []
    assert sync.flush() == []
    assert sync.counters["dropped_unmatched"].tolist() == [0, 1]
    check_invariants(sync, frames)
