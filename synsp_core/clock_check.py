"""Isolate a camera whose clock disagrees with the others' (no ROS import).

A camera's capture stamps run on its own clock. If one camera's clock is off (stamps an hour
ahead, a host without time sync), the synchronizer would take its stamps as the newest time:
frames published an hour ahead, the healthy cameras' messages discarded as late, then a jump
back. `ClockCheck` stops such a camera before its messages reach the synchronizer.

Each message gives its camera's offset = capture stamp - arrival time on the receiver's clock
(transport and estimator latency plus the camera's clock error). The cameras heard within
`fresh_s` vote: the largest group whose offsets agree within `max_skew_s` of each other is the
reference (a tie goes to the group whose offset is closest to zero, i.e. to the receiver's
clock); a message is accepted when its offset is within `max_skew_s` of that group's median.
So one bad camera among several is isolated, never the healthy ones; with two cameras that
disagree, the one agreeing with the receiver's clock wins. Until a second camera of
several is heard, the first one is judged against the receiver's clock (on a loaded receiver
the callbacks run in any order), so a bad clock cannot slip in before the others are heard; a
single-camera setup is never judged. When every camera jumps together
(bag loop, simulation restart) the majority moves with them after a frame at most.

Every message's offset is recorded, accepted or not, so a camera whose clock recovers rejoins
with its next message. Keep `fresh_s` below `max_skew_s`: a receiver that stalls for a while and
then takes its backlog sees every camera's arrivals late by the stall; with only the cameras
heard within `fresh_s` voting, that never looks like a disagreement.
"""
from __future__ import annotations

import math

import numpy as np


class ClockCheck:
    """Per message: does its camera's clock agree with the other cameras'? See the module docstring."""

    def __init__(self, num_views: int, max_skew_s: float, fresh_s: float):
        if not (math.isfinite(max_skew_s) and max_skew_s > 0 and math.isfinite(fresh_s) and fresh_s > 0):
            raise ValueError(f"max_skew_s and fresh_s must be finite and > 0 s, got {max_skew_s}, {fresh_s}")
        self.max_skew_s, self.fresh_s = max_skew_s, fresh_s
        self.offsets = np.full(num_views, np.nan)     # last stamp - arrival per view, s
        self.arrivals = np.full(num_views, -np.inf)   # receiver time of that message, s
        self.isolated = np.zeros(num_views, dtype=bool)
        self.dropped = np.zeros(num_views, dtype=np.int64)

    def check(self, view: int, stamp_s: float, now_s: float) -> bool:
        """Record the message; True if its camera agrees with the reference group (else counted)."""
        self.offsets[view] = stamp_s - now_s
        self.arrivals[view] = now_s
        fresh = np.flatnonzero(now_s - self.arrivals <= self.fresh_s)
        offsets = self.offsets[fresh]
        if len(self.offsets) > 1 and np.isnan(self.offsets).sum() == len(self.offsets) - 1:
            offsets = np.append(offsets, 0.0)   # the first camera heard: the receiver's clock votes too
        if offsets.max() - offsets.min() <= self.max_skew_s:   # all agree (the usual case): no vote
            accepted = True
        else:
            groups = [offsets[np.abs(offsets - offset) <= self.max_skew_s] for offset in offsets]
            reference = max(groups, key=lambda group: (len(group), -abs(float(np.median(group)))))
            accepted = abs(self.offsets[view] - float(np.median(reference))) <= self.max_skew_s
        self.isolated[view] = not accepted
        self.dropped[view] += not accepted
        return accepted
