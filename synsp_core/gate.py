"""Plausibility gate for incoming skeletons (no ROS import): rejects joints no person can have.

An estimator's ordinary errors (jitter, drifting bias, occlusions, outliers of a few hundred mm,
left/right swaps; see synsp_core/errors.py) are the model's business and pass. The gate stops
what would break the pipeline instead: one joint at 1e30 m makes the model's output non-finite
for every view, and one at 1e6 m drags the running bone-length estimate metres off for minutes.

`PlausibilityGate.check(view, stamp_s, joints_mm)` returns, per joint, whether it passes; the
rejected joints are counted per view and reason (`counters`). The tests, in this order:

- `nonfinite`: NaN or inf (NaN is also how estimators mark a missing joint).
- `out_of_range`: a coordinate beyond `max_abs_mm` (default 1e7 mm = 10 km) from the frame's
  origin. No robot works at that range, and it keeps every value that passes far inside float32
  (3.4e38), where the model runs: a float64 1e39 is finite but becomes inf in float32.
- `off_body`: a joint farther than `max_extent_mm` (default 2 m) from the skeleton's own centre
  (the per-axis median of its joints, robust to a few wild joints): no joint of a person is more
  than about 1.2 m from the middle of its body. Needs no history, so it works from the first
  message on.
- `jump`: a joint farther from the person's recent position than the person can move: the
  reference is the per-joint median of the recently accepted skeletons of all views (robust to
  a minority of bad ones), and the allowed distance is `size_margin` x the person's size (the
  median distance of the reference joints from their centre, about 0.3 m for an adult) plus
  `max_speed_mm_s` (default 20 m/s, faster than a thrown ball leaves the hand) x the time since
  that reference. It catches a whole skeleton teleported metres away (wrong person, bad
  transform), which the shape test cannot see.

The history forgets skeletons older than `horizon_s` (from the newest stamp), so after everything
was rejected for that long the next skeleton starts a new reference: one persistent bad camera
among good ones stays rejected, a single camera that moved to another person is followed after
`horizon_s`. `reset()` forgets the person (a new stream may be another one).
"""
from __future__ import annotations

import math
import warnings
from collections import deque

import numpy as np

REASONS = ("nonfinite", "out_of_range", "off_body", "jump")
MIN_HISTORY = 3          # accepted skeletons before the jump test applies
MIN_SIZE_MM = 100.0      # floor of the person's size (a degenerate skeleton has none)


class PlausibilityGate:
    """Per view and joint: is this position plausible for the person? See the module docstring."""

    def __init__(self, num_views: int, num_joints: int, max_abs_mm: float = 1e7, max_extent_mm: float = 2000.0,
                 max_speed_mm_s: float = 20_000.0, size_margin: float = 3.0, horizon_s: float = 1.0):
        for name, value in (("max_abs_mm", max_abs_mm), ("max_extent_mm", max_extent_mm),
                            ("max_speed_mm_s", max_speed_mm_s), ("size_margin", size_margin),
                            ("horizon_s", horizon_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if num_views < 1 or num_joints < 1:
            raise ValueError(f"num_views and num_joints must be >= 1, got {num_views}, {num_joints}")
        self.num_views, self.num_joints = num_views, num_joints
        self.max_abs_mm, self.max_extent_mm = max_abs_mm, max_extent_mm
        self.max_speed_mm_s, self.size_margin, self.horizon_s = max_speed_mm_s, size_margin, horizon_s
        self.counters = {reason: np.zeros(num_views, dtype=np.int64) for reason in REASONS}
        self.history: deque[tuple[float, np.ndarray]] = deque(maxlen=2 * num_views + 1)
        self.reset()

    def reset(self) -> None:
        """Forget the person (counters stay)."""
        self.history.clear()

    def check(self, view: int, stamp_s: float, joints_mm) -> np.ndarray:
        """(J,) bool: which joints of this skeleton (J, D) in mm pass. Counts the rejected ones."""
        joints = np.asarray(joints_mm, dtype=np.float64)
        if joints.ndim != 2 or joints.shape[0] != self.num_joints:
            raise ValueError(f"joints must be shaped ({self.num_joints}, D), got {joints.shape}")
        ok = np.isfinite(joints).all(axis=1)
        self.reject(view, "nonfinite", ~ok)
        with np.errstate(invalid="ignore"):
            far = ok & (np.abs(joints) > self.max_abs_mm).any(axis=1)
        ok = self.reject(view, "out_of_range", far, ok)
        if ok.any():
            centre = np.median(joints[ok], axis=0)
            ok = self.reject(view, "off_body", ok & (np.linalg.norm(joints - centre, axis=1) > self.max_extent_mm), ok)
        self.forget(stamp_s)
        if ok.any() and len(self.history) >= MIN_HISTORY:
            ok = self.reject(view, "jump", ok & self.jumped(stamp_s, joints), ok)
        if ok.any():
            self.history.append((stamp_s, np.where(ok[:, None], joints, np.nan)))
        return ok

    # -- internals -----------------------------------------------------------------------------
    def reject(self, view: int, reason: str, rejected: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
        self.counters[reason][view] += int(rejected.sum())
        return ~rejected if ok is None else ok & ~rejected

    def forget(self, stamp_s: float) -> None:
        """Drop the skeletons more than horizon_s older than `stamp_s`; all of them when `stamp_s`
        lies that far before the newest (time went back: a new stream, maybe another person)."""
        if self.history and max(stamp for stamp, _ in self.history) - stamp_s > self.horizon_s:
            self.history.clear()
        while self.history and self.history[0][0] < stamp_s - self.horizon_s:
            self.history.popleft()

    def jumped(self, stamp_s: float, joints: np.ndarray) -> np.ndarray:
        """(J,) bool: joints beyond where the person can be by now (NaN reference: not judged)."""
        stamps = np.array([stamp for stamp, _ in self.history])
        with warnings.catch_warnings():   # a joint rejected in every recent skeleton: all-NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            reference = np.nanmedian(np.stack([pose for _, pose in self.history]), axis=0)
            size = np.nanmedian(np.linalg.norm(reference - np.nanmedian(reference, axis=0), axis=1))
        size = max(size, MIN_SIZE_MM) if math.isfinite(size) else MIN_SIZE_MM
        allowed = self.size_margin * size + self.max_speed_mm_s * abs(stamp_s - float(np.median(stamps)))
        with np.errstate(invalid="ignore"):
            return np.linalg.norm(joints - reference, axis=1) > allowed
