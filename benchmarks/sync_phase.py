"""Alignment error of ViewSynchronizer against the phase offset between two cameras.

Real motion (the bundled CMU clips, synsp_core/data/README.md) is made continuous with a cubic
spline and sampled by two cameras at --fps: camera 0 (the reference) at k / fps, camera 1 at
k / fps + offset, for offsets from 0 to one period. No estimator noise and no stamp jitter, so
the figure is the alignment error alone: the MPJPE of camera 1's skeleton in each synchronized
frame against the true skeleton at the frame time (camera 0's capture time). Columns:

- "as captured": camera 1's nearest capture taken as is, whatever the offset (what matching
  stamps gives when it matches at all: the old synchronizer matched only within the slop);
- "slop S ms": what ViewSynchronizer(slop_s=S) outputs (as is within S of the frame time,
  interpolated otherwise), with the share of frames interpolated and the frames that had
  camera 1 (all but the first, which has no capture of camera 1 before it, when interpolated).

    PYTHONPATH=. python benchmarks/sync_phase.py [--fps 30] [--slops 0.015 0.005 0]
"""
import argparse
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from synsp_core.sync import ViewSynchronizer

DATA = Path(__file__).resolve().parents[1] / "synsp_core" / "data"
DATASETS = (  # file, capture rate (fps), what it holds
    ("cmu_test_clips_120fps.npz", 120.0, "CMU test clips, pelvis frame (no global motion)"),
    ("cmu_world_clip_60fps.npz", 60.0, "CMU walk, world frame (walking speed included)"),
)
OFFSET_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # of a period


def mpjpe_mm(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per frame: mean joint position error, mm ((N, J, 3) each)."""
    return np.linalg.norm(predicted - truth, axis=-1).mean(axis=-1)


def synchronized_errors(motion: CubicSpline, duration_s: float, fps: float, offset_s: float, slop_s: float):
    """Run both cameras through ViewSynchronizer; (camera 1's per-frame errors (mm), frames,
    frames interpolated)."""
    reference = np.arange(0.0, duration_s - offset_s, 1 / fps)
    messages = [(0, t, motion(t)) for t in reference] + [(1, t + offset_s, motion(t + offset_s)) for t in reference]
    messages.sort(key=lambda message: message[1])  # arrival in capture order
    sync = ViewSynchronizer(2, slop_s=slop_s)
    frames = [frame for message in messages for frame in sync.add(*message)] + sync.flush()
    aligned = [frame for frame in frames if frame.live[1]]
    errors = mpjpe_mm(np.array([frame.payloads[1] for frame in aligned]),
                      motion(np.array([frame.stamp_s for frame in aligned])))
    return errors, len(frames), int(sync.counters["interpolated"][1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, default=30.0, help="camera rate, both cameras")
    parser.add_argument("--slops", type=float, nargs="+", default=[0.015, 0.005, 0.0],
                        help="sync slop values to compare, s (0.015 = the node's default)")
    args = parser.parse_args()
    period_s = 1 / args.fps
    for file_name, clip_fps, description in DATASETS:
        with np.load(DATA / file_name) as clips:
            motions = [(CubicSpline(np.arange(len(clip)) / clip_fps, clip.astype(np.float64)), len(clip) / clip_fps)
                       for clip in (clips[name] for name in clips.files)]
        print(f"\n{file_name}: {description}; {args.fps:g} fps cameras, camera 1's MPJPE at the frame time (mm)")
        header = "| offset (ms) | as captured |" + "".join(f" slop {slop * 1e3:g} ms (interpolated, frames) |"
                                                      for slop in args.slops)
        print(header)
        print("|---:" * (header.count("|") - 1) + "|")
        for fraction in OFFSET_FRACTIONS:
            offset_s = fraction * period_s
            nearest = min(offset_s, period_s - offset_s)  # the other camera's nearest capture
            as_captured = np.concatenate([
                mpjpe_mm(motion(times + nearest), motion(times))
                for motion, duration_s in motions for times in [np.arange(0.0, duration_s - period_s, period_s)]])
            row = f"| {offset_s * 1e3:.1f} | {as_captured.mean():.2f} |"
            for slop_s in args.slops:
                runs = [synchronized_errors(motion, duration_s, args.fps, offset_s, slop_s)
                        for motion, duration_s in motions]
                errors = np.concatenate([errors for errors, _, _ in runs])
                frames = sum(count for _, count, _ in runs)
                interpolated = sum(count for _, _, count in runs)
                row += f" {errors.mean():.2f} ({interpolated / frames:.0%}, {len(errors)}/{frames}) |"
            print(row)


if __name__ == "__main__":
    main()
