"""Approximate-time synchronization of multi-camera skeleton streams (no ROS import).

The refinement node gets one message stream per camera; each message carries its capture
stamp in seconds. `ViewSynchronizer` groups them into frames, one message per view, like
message_filters' ApproximateTime policy, adapted to cameras that stop and come back:

- A frame is a set of messages, at most one per view, whose stamps lie within `slop_s` of
  each other. Every *live* view must be in it; a view that is not live is not waited for.
- The pivot of a frame is the newest head (oldest queued message) among the live views: no
  frame can be formed earlier, and messages older than pivot - slop can never be matched
  (they are dropped as `dropped_unmatched`). Each view contributes its queued message closest
  to the pivot; if that would spread the set beyond slop, the messages at or before the pivot
  are used. The frame is emitted as soon as every live view has a message within slop: with
  a slop below half the camera period (recommended) a view has at most one candidate, so this
  is also the set with the smallest spread, with no extra wait.
- A lost message does not cost the other views their frame: when a live view's next message
  follows a gap in its own stream (an interval over GAP_FACTOR times its median interval) that
  spans the earliest pending frame, that frame goes out without it (counted per view in
  `missed`). A slower camera has no gaps in its own stream, so views at different rates still
  sync at the slower one (except in such a gap, where the faster views' frames go out).
- `SyncedFrame.stamp_s` is the pivot's stamp: an actual capture stamp of a member (the latest
  first-pending capture among the live views). Emitted stamps strictly increase.
- Liveness is measured on the message-time axis: a view is live while its last stamp is
  within `view_timeout_s` of the newest stamp seen on any view, and, when the caller passes
  its clock `now_s` (ROS time, so `use_sim_time` works), while its last message arrived
  within `view_timeout_s` of now (so cameras that all stop are noticed by `poll`). Views that
  have not sent since the start (or a reset) are waited for once, for `view_timeout_s` after
  the first message. A frame is never held more than `view_timeout_s` behind the newest stamp:
  after that it goes out with the late views marked missing. A view rejoins when it sends.
- A stamp jumping backwards by more than `reset_jump_s` on a view (bag loop, simulation
  restart), or `now_s` doing so, discards everything pending and starts a new epoch:
  `reset_count` increments and every later frame carries the new `epoch`, so the node resets
  its own per-view buffers when `frame.epoch` changes.

Every received message ends up in exactly one counter (per view, `counters`) or is still
pending: received = matched + all dropped_* + pending_counts(). `missed` counts frames.
"""
from __future__ import annotations

import math
import numbers
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

COUNTER_NAMES = (
    "received",              # every message given to add()
    "matched",               # used in an emitted frame
    "dropped_duplicate",     # stamp equal to the view's previous stamp
    "dropped_out_of_order",  # stamp older than the view's previous stamp (by at most reset_jump_s)
    "dropped_late",          # too old to join any future frame (<= last emitted stamp - slop)
    "dropped_queue_full",    # oldest message pushed out of a full queue
    "dropped_unmatched",     # no frame could include it (e.g. a 30 fps view matched to a 15 fps one)
    "dropped_reset",         # pending when a backwards jump reset the synchronizer
    "missed",                # frames, not messages: emitted without this view while it was live
)
GAP_FACTOR = 1.5        # an interval over 1.5 x a view's median interval means it lost a message
RHYTHM_INTERVALS = 15   # recent intervals per view for its median


@dataclass(frozen=True)
class SyncedFrame:
    """One synchronized frame: per-view payloads and stamps (None = view missing)."""

    stamp_s: float             # capture stamp of the frame (the pivot member's stamp), s
    payloads: list[Any]        # (V,) payload per view, None where the view is missing
    stamps: list[float | None]  # (V,) capture stamp per view, s, None where missing
    live: np.ndarray           # (V,) bool, True where the view is in this frame
    epoch: int                 # number of resets before this frame


def _finite(name: str, value) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value}")
    return value


class ViewSynchronizer:
    """Group per-camera messages into frames; see the module docstring for the semantics.

    Cost per message: O(V * queue_size) at most, about 15-20 us for 4 views (docs/sync.md).
    """

    def __init__(self, num_views: int, slop_s: float, queue_size: int = 10,
                 view_timeout_s: float = 0.5, reset_jump_s: float = 1.0):
        if isinstance(num_views, bool) or not isinstance(num_views, numbers.Integral) or num_views < 1:
            raise ValueError(f"num_views must be an integer >= 1, got {num_views!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, numbers.Integral) or queue_size < 1:
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        slop_s = _finite("slop_s", slop_s)
        view_timeout_s = _finite("view_timeout_s", view_timeout_s)
        reset_jump_s = _finite("reset_jump_s", reset_jump_s)
        if slop_s < 0:
            raise ValueError(f"slop_s must be >= 0 s, got {slop_s}")
        if view_timeout_s <= slop_s:
            raise ValueError(f"view_timeout_s ({view_timeout_s} s) must exceed slop_s ({slop_s} s)")
        if reset_jump_s <= 0:
            raise ValueError(f"reset_jump_s must be > 0 s, got {reset_jump_s}")
        self.num_views = int(num_views)
        self.slop_s = slop_s
        self.queue_size = int(queue_size)
        self.view_timeout_s = view_timeout_s
        self.reset_jump_s = reset_jump_s
        self._counters = {name: [0] * self.num_views for name in COUNTER_NAMES}  # plain ints: fast +=
        self.reset_count = 0
        self._now = None  # latest now_s given, s
        self._clear()

    def _clear(self):
        """Forget all pending state (queues, stamps, liveness); cumulative counters stay."""
        views = range(self.num_views)
        self._queues = [deque() for _ in views]        # (stamp_s, payload, gap_start_s), increasing stamps
        self._intervals = [deque(maxlen=RHYTHM_INTERVALS) for _ in views]  # recent in-order intervals, s
        self._last_stamp = [None for _ in views]       # newest in-order stamp per view, s
        self._last_arrival = [None for _ in views]     # now_s when that message arrived
        self._epoch_start_stamp = None                 # first stamp since start/reset
        self._epoch_start_now = None                   # first now_s since start/reset
        self._newest_stamp = -math.inf
        self._last_emitted = -math.inf

    @property
    def counters(self) -> dict[str, np.ndarray]:
        """Cumulative per-view counts, name -> (V,) int64 copy (see COUNTER_NAMES)."""
        return {name: np.array(counts, dtype=np.int64) for name, counts in self._counters.items()}

    def pending_counts(self) -> np.ndarray:
        """(V,) int: messages queued per view, waiting for a frame."""
        return np.array([len(queue) for queue in self._queues], dtype=np.int64)

    def live_views(self) -> np.ndarray:
        """(V,) bool: views that frames currently wait for."""
        return np.array(self._live_list(), dtype=bool)

    def add(self, view: int, stamp_s: float, payload, now_s: float | None = None) -> list[SyncedFrame]:
        """Feed one message of `view` captured at `stamp_s` (s); return the frames now complete,
        oldest first. `now_s` is the caller's clock (s, same time base as the stamps)."""
        if isinstance(view, bool) or not isinstance(view, numbers.Integral) or not 0 <= view < self.num_views:
            raise ValueError(f"view must be an integer in [0, {self.num_views}), got {view!r}")
        if payload is None:
            raise ValueError("payload must not be None (None marks a missing view in frames)")
        stamp_s = _finite("stamp_s", stamp_s)
        self._advance_clock(now_s, stamp_jumped=self._last_stamp[view] is not None
                            and stamp_s < self._last_stamp[view] - self.reset_jump_s)
        counts = self._counters
        counts["received"][view] += 1
        last = self._last_stamp[view]
        if last is not None and stamp_s == last:
            counts["dropped_duplicate"][view] += 1
        elif last is not None and stamp_s < last:
            counts["dropped_out_of_order"][view] += 1
        else:
            gap_start = None  # the view's previous stamp, when a message or more went missing since
            if last is not None:
                period = self._period(view)
                if period is not None and stamp_s - last > GAP_FACTOR * period:
                    gap_start = last
                self._intervals[view].append(stamp_s - last)
            self._last_stamp[view] = stamp_s
            self._last_arrival[view] = now_s
            if self._epoch_start_stamp is None:
                self._epoch_start_stamp = stamp_s
            self._newest_stamp = max(self._newest_stamp, stamp_s)
            if stamp_s <= self._last_emitted - self.slop_s:
                counts["dropped_late"][view] += 1
            else:
                queue = self._queues[view]
                queue.append((stamp_s, payload, gap_start))
                if len(queue) > self.queue_size:
                    queue.popleft()
                    counts["dropped_queue_full"][view] += 1
        return self._emit_ready(final=False)

    def poll(self, now_s: float) -> list[SyncedFrame]:
        """Advance the clock to `now_s` (s) without a message, e.g. from a timer, so frames held
        for cameras that all stopped still come out after view_timeout_s."""
        self._advance_clock(now_s, stamp_jumped=False)
        return self._emit_ready(final=False)

    def flush(self) -> list[SyncedFrame]:
        """End of stream: emit everything pending as frames, waiting for nobody."""
        return self._emit_ready(final=True)

    # internals

    def _advance_clock(self, now_s, stamp_jumped: bool):
        """Record the caller's clock; reset on a backwards jump of the clock or of a stamp."""
        if now_s is not None:
            now_s = _finite("now_s", now_s)
        clock_jumped = now_s is not None and self._now is not None and now_s < self._now - self.reset_jump_s
        if stamp_jumped or clock_jumped:
            for view, queue in enumerate(self._queues):
                self._counters["dropped_reset"][view] += len(queue)
            self._clear()
            self.reset_count += 1
        if now_s is not None:
            self._now = now_s
            if self._epoch_start_now is None:
                self._epoch_start_now = now_s

    def _live_list(self) -> list[bool]:
        """Per view: has it sent (or, never seen this epoch, could it still send) recently?"""
        live = []
        for view in range(self.num_views):
            seen = self._last_stamp[view] is not None
            last_stamp = self._last_stamp[view] if seen else self._epoch_start_stamp
            arrival = self._last_arrival[view] if seen else self._epoch_start_now
            fresh = last_stamp is not None and self._newest_stamp - last_stamp <= self.view_timeout_s
            if fresh and self._now is not None and arrival is not None:
                fresh = self._now - arrival <= self.view_timeout_s
            live.append(fresh)
        return live

    def _emit_ready(self, final: bool) -> list[SyncedFrame]:
        """Emit every frame that is decided; `final` waits for no view (flush)."""
        frames = []
        queues = self._queues
        while True:
            heads = [queue[0][0] if queue else None for queue in queues]
            if all(head is None for head in heads):
                return frames
            live = self._live_list()
            required = [] if final else [view for view in range(self.num_views) if live[view]]
            ready = [view for view in required if queues[view]]
            if ready:
                # No frame can start before the newest head of the views every frame needs,
                # unless the views ahead lost their message for an earlier frame.
                pivot = self._pivot(ready, heads)
            else:
                # Nobody to wait for: start from the oldest message, take the newest within slop.
                earliest = min(head for head in heads if head is not None)
                pivot = max(entry[0] for queue in queues for entry in queue if entry[0] <= earliest + self.slop_s)
            if self._drop_older_than(pivot - self.slop_s, "dropped_unmatched"):
                continue  # heads changed, so may the pivot
            waiting = len(ready) < len(required)
            if waiting and self._newest_stamp - pivot <= self.view_timeout_s:
                return frames
            if pivot <= self._last_emitted:  # only after liveness changes; keeps stamps increasing
                earliest_view = min((view for view in range(self.num_views) if queues[view]), key=heads.__getitem__)
                queues[earliest_view].popleft()
                self._counters["dropped_late"][earliest_view] += 1
                continue
            frames.append(self._pop_frame(pivot))
            for view in required:
                if not frames[-1].live[view]:
                    self._counters["missed"][view] += 1

    def _period(self, view: int) -> float | None:
        """The view's median interval between messages, s (None until it has sent 4)."""
        intervals = self._intervals[view]
        return sorted(intervals)[len(intervals) // 2] if len(intervals) >= 3 else None

    def _pivot(self, ready: list[int], heads: list) -> float:
        """The newest head of the `ready` views; or the newest within slop of the earliest head,
        when every view beyond that lost its message for the frame of those heads."""
        limit = min(heads[view] for view in ready) + self.slop_s
        members = [heads[view] for view in ready if heads[view] <= limit]
        frame_stamp = sum(members) / len(members)   # the mean: less stamp jitter than any one member
        if all(heads[view] <= limit or self._lost_at(view, frame_stamp) for view in ready):
            return max(members)
        return max(heads[view] for view in ready)

    def _lost_at(self, view: int, stamp_s: float) -> bool:
        """Did `view` lose its message for a frame at `stamp_s`? Its head follows a gap in its own
        stream that spans the frame (the caller knows the head lies beyond it)."""
        gap_start = self._queues[view][0][2]
        return gap_start is not None and gap_start < stamp_s - self.slop_s

    def _drop_older_than(self, limit_s: float, counter: str) -> bool:
        dropped = False
        for view, queue in enumerate(self._queues):
            while queue and queue[0][0] < limit_s:
                queue.popleft()
                self._counters[counter][view] += 1
                dropped = True
        return dropped

    def _pop_frame(self, pivot: float) -> SyncedFrame:
        """Take each view's message closest to `pivot` (within slop) out of its queue."""
        slop = self.slop_s
        chosen = []  # per view: queue index of the member, or None
        for queue in self._queues:
            best, best_distance = None, math.inf
            for index, (stamp, *_) in enumerate(queue):
                if stamp > pivot + slop:
                    break
                distance = abs(stamp - pivot)
                if distance <= slop and distance < best_distance:
                    best, best_distance = index, distance
            chosen.append(best)
        member_stamps = [self._queues[v][i][0] for v, i in enumerate(chosen) if i is not None]
        if max(member_stamps) - min(member_stamps) > slop:
            # Members on both sides of the pivot spread too far: use only those at or before it.
            for view, queue in enumerate(self._queues):
                if chosen[view] is not None and queue[chosen[view]][0] > pivot:
                    before = chosen[view] - 1
                    chosen[view] = before if before >= 0 and queue[before][0] >= pivot - slop else None
        payloads, stamps = [], []
        for view, (queue, index) in enumerate(zip(self._queues, chosen)):
            if index is None:
                payloads.append(None)
                stamps.append(None)
                continue
            for _ in range(index):
                queue.popleft()
            self._counters["dropped_unmatched"][view] += index
            stamp, payload, _ = queue.popleft()
            self._counters["matched"][view] += 1
            payloads.append(payload)
            stamps.append(stamp)
        self._last_emitted = pivot
        live = np.array([stamp is not None for stamp in stamps], dtype=bool)
        return SyncedFrame(stamp_s=pivot, payloads=payloads, stamps=stamps, live=live, epoch=self.reset_count)
