"""ViewSynchronizer: approximate-time matching, dead cameras, drops, resets (no ROS needed)."""
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
    """Stamps strictly increase (within an epoch), members lie within slop, no message is used twice,
    and every received message is counted exactly once (or still pending)."""
    for before, after in zip(frames, frames[1:]):
        assert before.epoch < after.epoch or before.stamp_s < after.stamp_s, (before, after)
    used = [payload for frame in frames for payload in frame.payloads if payload is not None]
    assert len(used) == len(set(used))
    for frame in frames:
        members = [s for s in frame.stamps if s is not None]
        assert frame.stamp_s in members
        assert max(members) - min(members) <= sync.slop_s + 1e-12
        assert np.array_equal(frame.live, [p is not None for p in frame.payloads])
        assert all((p is None) == (s is None) for p, s in zip(frame.payloads, frame.stamps))
    counts = sync.counters
    accounted = counts["matched"] + sync.pending_counts()
    accounted += sum(counts[name] for name in COUNTER_NAMES if name.startswith("dropped_"))
    assert np.array_equal(accounted, counts["received"])
    assert np.array_equal(counts["matched"], np.sum([f.live for f in frames], axis=0) if frames else 0)


def rounds(num_frames, views, stamp=lambda view, k: k * PERIOD):
    """Messages of `views` for frames 0..num_frames-1, round by round; payload (view, k)."""
    return [(view, stamp(view, k), (view, k)) for k in range(num_frames) for view in views]


def frame_indices(frame):
    """The capture index k of each member, None where missing."""
    return [None if p is None else p[1] for p in frame.payloads]


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
    for frame in frames:
        assert frame.stamp_s == max(frame.stamps)  # pivot: newest first-pending capture
    dropped = sum(sync.counters[name].sum() for name in COUNTER_NAMES if name.startswith("dropped_"))
    assert dropped == 0
    check_invariants(sync, frames)


def test_offsets_beyond_slop_are_not_matched():
    # View 1 is 20 ms late on odd frames (> slop 10 ms): it is never matched on those. (Its
    # irregular stamps read as gaps once its median interval is the short one, 13 ms; view 0's
    # odd frames then go out without it.)
    sync = ViewSynchronizer(2, slop_s=0.01)
    frames = feed(sync, rounds(40, range(2), lambda view, k: k * PERIOD + (0.02 if view == 1 and k % 2 else 0)))
    assert [frame_indices(f) for f in frames if f.live.all()] == [[k, k] for k in range(0, 40, 2)]
    partial = [frame_indices(f) for f in frames if not f.live.all()]
    assert all(k1 is None and k0 % 2 for k0, k1 in partial)
    assert sync.counters["dropped_unmatched"][1] == 19  # view 1's last one is still pending
    check_invariants(sync, frames)


def test_closest_message_to_pivot_is_chosen_within_slop():
    # Pivot: view 0 at 10 ms. View 1 has 0 and 15 ms: 15 ms is closer.
    sync = ViewSynchronizer(2, slop_s=0.02)
    frames = feed(sync, [(1, 0.000, "a"), (1, 0.015, "b"), (0, 0.010, "p")])
    assert [f.payloads for f in frames] == [["p", "b"]]
    assert sync.counters["dropped_unmatched"].tolist() == [0, 1]
    # Closest on both sides would spread 27 ms > slop: fall back to messages at or before the pivot.
    sync = ViewSynchronizer(3, slop_s=0.02)
    frames = feed(sync, [(1, 0.000, "a"), (1, 0.018, "b"), (2, -0.009, "c"), (2, 0.05, "d"), (0, 0.010, "p")])
    assert [f.payloads for f in frames] == [["p", "a", "c"]]
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


def test_frame_is_never_held_longer_than_view_timeout():
    # View 1's last message (50 ms) was matched above its frame's pivot (40 ms), so it stays
    # live a little longer than the next pivot (42 ms) is allowed to wait for it.
    sync = ViewSynchronizer(2, slop_s=0.09, queue_size=50, view_timeout_s=0.2)
    first = feed(sync, [(1, 0.000, "a"), (1, 0.050, "b"), (0, 0.040, "p")])
    assert [f.payloads for f in first] == [["p", "b"]]
    stamps = 0.042 + 0.006 * np.arange(36)
    for stamp in stamps[:34]:
        assert sync.add(0, stamp, stamp) == []
    held, = sync.add(0, stamps[34], stamps[34])  # 246 ms: 42 ms is 204 ms behind
    assert held.stamp_s == stamps[0] and held.stamps == [stamps[0], None]
    assert sync.live_views().tolist() == [True, True]
    rest = sync.add(0, stamps[35], stamps[35])  # 252 ms: view 1 is dead, nobody is waited for
    assert [f.stamp_s for f in rest] == stamps[1:].tolist()
    check_invariants(sync, first + [held] + rest)


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
    sync = ViewSynchronizer(2, slop_s=0.01, queue_size=3)
    frames = feed(sync, rounds(6, [0]) + rounds(6, [1]))
    assert sync.counters["dropped_queue_full"].tolist() == [3, 0]
    assert [frame_indices(f) for f in frames] == [[3, 3], [4, 4], [5, 5]]
    assert sync.counters["dropped_unmatched"].tolist() == [0, 3]
    check_invariants(sync, frames)


def test_single_view_emits_every_message_at_once():
    sync = ViewSynchronizer(1, slop_s=0.0)
    for k in range(10):
        frames = sync.add(0, k * PERIOD, k)
        assert len(frames) == 1 and frames[0].payloads == [k] and frames[0].stamp_s == k * PERIOD
    assert sync.add(0, 9 * PERIOD, 9) == [] and sync.counters["dropped_duplicate"].tolist() == [1]


def test_cameras_at_different_rates_sync_at_the_slower_rate():
    # View 0 at 30 fps, view 1 at 15 fps (every other stamp): one frame per 15 fps message.
    messages = [m for m in rounds(60, range(2)) if m[0] == 0 or m[2][1] % 2 == 0]
    sync = ViewSynchronizer(2, slop_s=0.01)
    frames = feed(sync, messages)
    assert [frame_indices(f) for f in frames] == [[k, k] for k in range(0, 60, 2)]
    assert sync.counters["dropped_unmatched"].tolist() == [29, 0]  # view 0's last odd one is pending
    check_invariants(sync, frames)


def test_lost_message_costs_only_its_own_view():
    # View 2 loses frames 10 and 11 (its next message follows a gap in its own 30 fps rhythm):
    # those frames still go out with the other three views, not dropped.
    messages = [m for m in rounds(30, range(4)) if not (m[0] == 2 and m[2][1] in (10, 11))]
    sync = ViewSynchronizer(4, slop_s=0.01)
    frames = feed(sync, messages)
    assert [frame_indices(f) for f in frames] == [
        [k, k, None, k] if k in (10, 11) else [k] * 4 for k in range(30)]
    assert sync.counters["missed"].tolist() == [0, 0, 2, 0]
    assert sum(sync.counters[name].sum() for name in COUNTER_NAMES if name.startswith("dropped_")) == 0
    check_invariants(sync, frames)


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
    assert sync.counters["dropped_late"].tolist() == [0, 1]
    check_invariants(sync, frames)
