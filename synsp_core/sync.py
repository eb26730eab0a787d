"""Time alignment of multi-camera skeleton streams (no ROS import).

The refinement node gets one message stream per camera; each message carries its capture
stamp in seconds. `ViewSynchronizer` turns them into frames, one payload per view, all standing
for the same instant, whether the cameras are hardware-synchronized or free-running (capture
times offset by any part of a frame period, drifting, or at different rates):

- Frame times follow one *reference* camera: the fastest live camera (the lowest-numbered one
  among those within RATE_MARGIN of the fastest rate). It changes only when another camera is
  clearly faster, or when the reference stopped and another camera has captured more than one
  reference period after the last frame (so cameras that stop together leave no extra frame).
  A frame's `stamp_s` is a capture stamp of the reference, frames are at least half its period
  apart, and emitted stamps strictly increase.
  When the reference lost a message (its next one follows a gap in its own stream), the gap's
  frame takes the capture stamp of the message of any camera closest to one reference period
  after the last frame (a *stand-in* anchor), so the other cameras do not lose that frame.
- Every view is brought to the frame time. A message within `slop_s` of it is used as is
  (exact matching: hardware-synchronized cameras, whose stamps agree within the slop).
  Otherwise the view's payload is linearly interpolated between its two messages around the
  frame time: the frame waits for the later one, which costs at most one period of that
  camera in latency; nothing is ever extrapolated. A view whose two messages around the frame
  time are separated by a gap in its own stream (a lost message: an interval over GAP_FACTOR
  times its median interval), or that has no message before the frame time, is missing (None)
  from the frame, as is a view that stopped sending. Each interpolation is counted per view
  (`interpolated`) and logged, at most once a minute per view (of stamp time).
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

A message stays queued while a later frame may still use it (as is, or as one end of an
interpolation), so it can serve two neighbouring frames; it is used as is in one frame at
most. Every received message ends up in exactly one counter (per view, `counters`; `matched`
at its first use) or is still pending, unused: received = matched + all dropped_* +
pending_counts(). `missed` and `interpolated` count frames.
"""
from __future__ import annotations

import logging
import math
import numbers
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

COUNTER_NAMES = (
    "received",              # every message given to add()
    "matched",               # used in an emitted frame (as is, or as an end of an interpolation)
    "dropped_duplicate",     # stamp equal to the view's previous stamp
    "dropped_out_of_order",  # stamp older than the view's previous stamp (by at most reset_jump_s)
    "dropped_late",          # too old to join any future frame (<= last emitted stamp - slop)
    "dropped_queue_full",    # oldest message pushed out of a full queue, unused
    "dropped_unmatched",     # no frame used it (e.g. a reference message less than half a period after a frame)
    "dropped_reset",         # pending and unused when a backwards jump reset the synchronizer
    "missed",                # frames, not messages: emitted without this view while it was live
    "interpolated",          # frames, not messages: this view's payload interpolated to the frame time
    "lost_in_gaps",          # messages missing from the view's rhythm: a stamp gap of k periods (under
                             # view_timeout_s) counts k - 1, lost anywhere from camera to here (e.g. a
                             # subscription history overflowing before the callback saw them)
)
GAP_FACTOR = 1.5        # an interval over 1.5 x a view's median interval means it lost a message
RHYTHM_INTERVALS = 15   # recent intervals per view for its median
RATE_MARGIN = 0.15      # cameras within 15% of the fastest rate count as equally fast
LOG_INTERVAL_S = 60.0   # at most one interpolation message per view per minute (stamp time)
_WAIT = "wait"          # a view's alignment is not decided yet: its next message may still come

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncedFrame:
    """One synchronized frame: per-view payloads at the frame time (None = view missing)."""

    stamp_s: float              # frame time: capture stamp of the anchor view's message, s
    payloads: list[Any]         # (V,) payload per view at stamp_s (interpolated where `interpolated`), None = missing
    stamps: list[float | None]  # (V,) capture time each payload stands for, s (stamp_s if interpolated), None = missing
    live: np.ndarray            # (V,) bool, True where the view is in this frame
    interpolated: np.ndarray    # (V,) bool, True where the view's payload was interpolated to stamp_s
    anchor: int                 # view whose own message was captured at stamp_s (the reference, or a stand-in)
    epoch: int                  # number of resets before this frame


def lerp(before, after, weight: float):
    """`before + weight * (after - before)`: linear interpolation of numbers or numpy arrays,
    the default way a view's payload is brought to a frame time between two of its messages."""
    return before + weight * (after - before)


class _Message:
    """One queued camera message."""

    __slots__ = ("stamp_s", "payload", "after_gap", "used", "used_as_is")

    def __init__(self, stamp_s: float, payload, after_gap: bool):
        self.stamp_s = stamp_s
        self.payload = payload
        self.after_gap = after_gap  # the view lost a message (or more) just before this one
        self.used = False           # in an emitted frame (as is or as an end of an interpolation): matched
        self.used_as_is = False     # in an emitted frame as is: never as is again


def _finite(name: str, value) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value}")
    return value


class ViewSynchronizer:
    """Align per-camera messages into frames; see the module docstring for the semantics.

    `interpolate(before, after, weight)` brings a payload to a time between two messages
    (`weight` in [0, 1): 0 = `before`); the default `lerp` suits numpy arrays. `log` receives a
    line while a view is interpolated, saying why (at most once a minute per view), and one
    when the reference camera changes.
    Cost per message: O(V * queue_size) at most, about 16 us for 4 views, 20 us when they are
    interpolated (docs/sync.md).
    """

    def __init__(self, num_views: int, slop_s: float, queue_size: int = 10,
                 view_timeout_s: float = 0.5, reset_jump_s: float = 1.0,
                 interpolate: Callable[[Any, Any, float], Any] = lerp,
                 log: Callable[[str], None] = _LOGGER.info):
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
        self._interpolate = interpolate
        self._log = log
        self._counters = {name: [0] * self.num_views for name in COUNTER_NAMES}  # plain ints: fast +=
        self.reset_count = 0
        self._now = None  # latest now_s given, s
        self._clear()

    def _clear(self):
        """Forget all pending state (queues, stamps, rates, liveness); cumulative counters stay."""
        views = range(self.num_views)
        self._queues = [deque() for _ in views]        # _Message per view, increasing stamps
        self._intervals = [deque(maxlen=RHYTHM_INTERVALS) for _ in views]  # recent in-order intervals, s
        self._periods = [None for _ in views]          # median of those intervals, s (None until 3)
        self._last_stamp = [None for _ in views]       # newest in-order stamp per view, s
        self._last_arrival = [None for _ in views]     # now_s when that message arrived
        self._logged_s = [-math.inf for _ in views]    # frame time of the view's last interpolation message
        self._reference = None                         # view whose stamps are the frame times
        self._epoch_start_stamp = None                 # first stamp since start/reset
        self._epoch_start_now = None                   # now_s when that message arrived
        self._newest_stamp = -math.inf
        self._last_emitted = -math.inf

    @property
    def counters(self) -> dict[str, np.ndarray]:
        """Cumulative per-view counts, name -> (V,) int64 copy (see COUNTER_NAMES)."""
        return {name: np.array(counts, dtype=np.int64) for name, counts in self._counters.items()}

    def pending_counts(self) -> np.ndarray:
        """(V,) int: messages queued per view that no frame has used yet."""
        return np.array([sum(not message.used for message in queue) for queue in self._queues], dtype=np.int64)

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
            after_gap = False
            if last is not None:
                period = self._periods[view]
                after_gap = period is not None and stamp_s - last > GAP_FACTOR * period
                if after_gap and stamp_s - last < self.view_timeout_s:   # longer: the camera paused
                    counts["lost_in_gaps"][view] += round((stamp_s - last) / period) - 1
                intervals = self._intervals[view]
                intervals.append(stamp_s - last)
                if len(intervals) >= 3:
                    self._periods[view] = sorted(intervals)[len(intervals) // 2]
            self._last_stamp[view] = stamp_s
            self._last_arrival[view] = now_s
            if self._epoch_start_stamp is None:
                self._epoch_start_stamp, self._epoch_start_now = stamp_s, now_s
            self._newest_stamp = max(self._newest_stamp, stamp_s)
            if stamp_s <= self._last_emitted - self.slop_s:
                counts["dropped_late"][view] += 1
            else:
                queue = self._queues[view]
                queue.append(_Message(stamp_s, payload, after_gap))
                if len(queue) > self.queue_size:
                    self._retire(view, queue.popleft(), "dropped_queue_full")
        return self._emit_ready(final=False)

    def poll(self, now_s: float) -> list[SyncedFrame]:
        """Advance the clock to `now_s` (s) without a message, e.g. from a timer, so frames held
        for cameras that all stopped still come out after view_timeout_s."""
        self._advance_clock(now_s, stamp_jumped=False)
        return self._emit_ready(final=False)

    def flush(self) -> list[SyncedFrame]:
        """End of stream: emit every frame the pending messages give, waiting for nobody; then
        forget them (unused ones count as dropped_unmatched)."""
        frames = self._emit_ready(final=True)
        for view, queue in enumerate(self._queues):
            while queue:
                self._retire(view, queue.popleft(), "dropped_unmatched")
        return frames

    # internals

    def _advance_clock(self, now_s, stamp_jumped: bool):
        """Record the caller's clock; reset on a backwards jump of the clock or of a stamp."""
        if now_s is not None:
            now_s = _finite("now_s", now_s)
        clock_jumped = now_s is not None and self._now is not None and now_s < self._now - self.reset_jump_s
        if stamp_jumped or clock_jumped:
            for view, queue in enumerate(self._queues):
                for message in queue:
                    self._retire(view, message, "dropped_reset")
            self._clear()
            self.reset_count += 1
        if now_s is not None:
            self._now = now_s

    def _retire(self, view: int, message: _Message, unused_counter: str):
        """Count a message leaving the queue unused in `unused_counter` (a used one is counted already)."""
        if not message.used:
            self._counters[unused_counter][view] += 1

    def _use(self, view: int, message: _Message):
        """Mark a message as used in a frame; the first use counts it as matched."""
        if not message.used:
            message.used = True
            self._counters["matched"][view] += 1

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
        while True:
            live = self._live_list()
            anchor = self._next_anchor(live, final)
            if anchor is None:
                return frames
            anchor_view, frame_s = anchor
            alignments = []
            for view in range(self.num_views):
                alignment = self._align(view, frame_s)
                # A view waited for has sent nothing after frame_s: it stops being live, and the
                # frame goes out without it, once the newest stamp is view_timeout_s past frame_s.
                if alignment is _WAIT and live[view] and not final:
                    return frames
                alignments.append(None if alignment is _WAIT else alignment)
            frames.append(self._make_frame(anchor_view, frame_s, alignments, [v and not final for v in live]))

    def _next_anchor(self, live: list[bool], final: bool) -> tuple[int, float] | None:
        """(view, capture stamp) of the message that sets the next frame time, or None if no
        frame can start yet. Frame times follow the reference camera, except in a gap of its
        stream, where the message of any camera closest to one period after the last frame
        stands in for the one it lost."""
        candidates = [] if final else [view for view in range(self.num_views) if live[view]]
        if not candidates:  # nobody to wait for: any view with a message left
            candidates = [view for view in range(self.num_views) if self._next_message(view) is not None]
        reference = self._choose_reference(candidates)
        message = None if reference is None else self._next_message(reference)
        if message is None:
            return None
        period = self._periods[reference]
        if message.after_gap and message.stamp_s > self._last_emitted + GAP_FACTOR * period:
            stand_in = self._closest_message(self._last_emitted + period, period / 2)
            if stand_in is not None:
                return stand_in
        return reference, message.stamp_s

    def _next_message(self, view: int, after_s: float | None = None) -> _Message | None:
        """The view's first queued message after `after_s` (default: half its period after the
        last frame) that no frame has used: the next frame time it could give as the reference."""
        if after_s is None:
            after_s = self._last_emitted + (self._periods[view] or 0.0) / 2
        for message in self._queues[view]:
            if message.stamp_s > after_s and not message.used:
                return message
        return None

    def _closest_message(self, target_s: float, within_s: float) -> tuple[int, float] | None:
        """(view, stamp) of the queued message closest to `target_s` (within `within_s`) not used
        as is yet, or None. (It may have been the end of an interpolation: the reference's next
        message shows the stream goes on.)"""
        best, best_distance = None, within_s
        for view, queue in enumerate(self._queues):
            for message in queue:
                distance = abs(message.stamp_s - target_s)
                if distance <= best_distance and not message.used_as_is and (best is None or distance < best_distance):
                    best, best_distance = (view, message.stamp_s), distance
        return best

    def _choose_reference(self, candidates: list[int]) -> int | None:
        """The reference camera among `candidates`: the lowest-numbered of the fastest (within
        RATE_MARGIN); the current one stays while it is a candidate and no candidate is faster
        by more than RATE_MARGIN, so frame times do not hop between equal cameras. When the
        current one stopped, another takes over only once it has captured more than one
        reference period after the last frame (the reference missed a capture, the others went
        on): when all cameras stop together, their last captures make no frame of their own.
        None: no reference yet."""
        periods = self._periods
        current = self._reference
        if current is not None and current not in candidates:
            limit_s = self._last_emitted + (periods[current] or 0.0)
            candidates = [view for view in candidates if self._next_message(view, limit_s) is not None]
        if not candidates:
            return None
        known = [view for view in candidates if periods[view] is not None]
        if known:
            fastest_s = min(periods[view] for view in known)
            best = next(view for view in known if periods[view] <= fastest_s * (1 + RATE_MARGIN))
        else:
            best = candidates[0]
        if current in candidates and (periods[current] is None  # (else periods[best] is known too)
                                      or periods[best] * (1 + RATE_MARGIN) >= periods[current]):
            return current
        self._reference = best
        rate = "rate not known yet" if periods[best] is None else f"{1 / periods[best]:.1f} fps"
        self._log(f"sync: frame times follow view {best} ({rate})")
        return best

    def _align(self, view: int, frame_s: float):
        """How `view` joins the frame at `frame_s`: (message, None, 0.0) as is, (before, after,
        weight) interpolated, None when missing, or _WAIT while its next message may decide it."""
        slop = self.slop_s
        as_is, as_is_distance = None, math.inf
        before = after = None
        for message in self._queues[view]:
            stamp = message.stamp_s
            if stamp > frame_s and after is None:
                after = message
            if stamp > frame_s + slop:
                break
            distance = abs(stamp - frame_s)
            if distance <= slop and distance < as_is_distance and not message.used_as_is:
                as_is, as_is_distance = message, distance
            if stamp <= frame_s:
                before = message
        if as_is is not None:
            return as_is, None, 0.0
        if after is None:
            return _WAIT
        if before is None or after.after_gap:
            return None
        return before, after, (frame_s - before.stamp_s) / (after.stamp_s - before.stamp_s)

    def _make_frame(self, anchor_view: int, frame_s: float, alignments: list, required: list[bool]) -> SyncedFrame:
        """Build the frame at `frame_s` from each view's alignment (see _align), count it, and
        retire the messages no later frame can use."""
        payloads, stamps = [], []
        interpolated = np.zeros(self.num_views, dtype=bool)
        counts = self._counters
        for view, alignment in enumerate(alignments):
            if alignment is None:
                payloads.append(None)
                stamps.append(None)
                counts["missed"][view] += required[view]
                continue
            before, after, weight = alignment
            self._use(view, before)
            if after is None:
                before.used_as_is = True
                payloads.append(before.payload)
                stamps.append(before.stamp_s)
                continue
            self._use(view, after)
            payloads.append(self._interpolate(before.payload, after.payload, weight))
            stamps.append(frame_s)
            interpolated[view] = True
            counts["interpolated"][view] += 1
            if frame_s - self._logged_s[view] >= LOG_INTERVAL_S:
                self._logged_s[view] = frame_s
                self._log_interpolation(view, anchor_view, frame_s, before.stamp_s, after.stamp_s)
        self._last_emitted = frame_s
        for view, queue in enumerate(self._queues):
            # A message followed by one at or before this frame, or by one this frame used as is,
            # is farther from any later frame than that one: no later frame can use it.
            while len(queue) >= 2 and (queue[1].stamp_s <= frame_s or queue[1].used_as_is):
                self._retire(view, queue.popleft(), "dropped_unmatched")
        live = np.array([stamp is not None for stamp in stamps], dtype=bool)
        return SyncedFrame(stamp_s=frame_s, payloads=payloads, stamps=stamps, live=live,
                           interpolated=interpolated, anchor=anchor_view, epoch=self.reset_count)

    def _log_interpolation(self, view: int, anchor_view: int, frame_s: float, before_s: float, after_s: float):
        """Say that `view` is being interpolated and why: its captures fall between the frame times."""
        offset_ms = min(before_s - frame_s, after_s - frame_s, key=abs) * 1e3
        period = self._periods[view]
        period_text = "" if period is None else f", its period {period * 1e3:.1f} ms"
        self._log(f"sync: view {view} has no capture within sync slop ({self.slop_s * 1e3:.1f} ms) of the frame "
                  f"time (nearest {offset_ms:+.1f} ms from view {anchor_view}'s{period_text}): not synchronized, so "
                  f"its skeleton is interpolated to the frame times ({self._counters['interpolated'][view]} frames "
                  f"so far; at most once a minute)")
