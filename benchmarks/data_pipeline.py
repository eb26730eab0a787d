"""Input error of each synthetic error model, and the speed of making a training epoch.

  python benchmarks/data_pipeline.py                      # error table on the bundled test clips
  python benchmarks/data_pipeline.py --cmu-dir DIR        # + epoch timing on DIR/cmu17_120fps.npz

Errors: the bundled CMU test clips (synsp_core/data/cmu_test_clips_120fps.npz, glitched first
frame dropped) resampled to --fps, seeds 0..--seeds-1; MPJPE, PA-MPJPE and Accel error from
synsp_core.metrics, pooled over clips and seeds. "mean of 4 views" averages 4 independent views.
"""
import argparse
import time
from pathlib import Path

import numpy as np
import torch

from synsp_core import metrics
from synsp_core.errors import make_error_model, synthesize_views
from synsp_core.motion import resample
from synsp_training.data import Sequence, WindowSampler, drop_leading_glitches, load_cmu

CLIPS = Path(__file__).parents[1] / "synsp_core/data/cmu_test_clips_120fps.npz"
# (error model, overrides, views averaged)
SETTINGS = [
    ("none", {}, 1),
    ("gaussian", {}, 1),
    ("gaussian", {"std_mm": 29.0}, 1),
    ("gaussian", {"std_mm": 58.0}, 1),
    ("uniform", {}, 1),
    ("uniform", {"max_mm": 71.0}, 1),
    ("uniform", {"max_mm": 142.0}, 1),
    ("realistic", {"scale": 0.5}, 1),
    ("realistic", {}, 1),
    ("realistic", {"scale": 2.0}, 1),
    ("realistic", {}, 4),
]


def error_table(fps: float, seeds: int) -> None:
    with np.load(CLIPS) as data:
        clips = {k: resample(drop_leading_glitches(data[k], 120.0), 120.0, fps) for k in data.files}
    gt_accel = np.mean([np.linalg.norm(c[2:] - 2 * c[1:-1] + c[:-2], axis=-1).mean() for c in clips.values()])
    print(f"clips {sorted(clips)} at {fps:g} fps, seeds 0..{seeds - 1}; "
          f"ground-truth |accel| {gt_accel:.1f} mm/frame^2")
    print("| error model | views averaged | MPJPE mm | PA-MPJPE mm | Accel mm/frame^2 |")
    print("|---|---|---|---|---|")
    for name, overrides, views in SETTINGS:
        model = make_error_model(name, **overrides)
        pairs = []
        for seed in range(seeds):
            for i, gt in enumerate(clips.values()):
                noisy = synthesize_views(gt, views, model, fps, np.random.default_rng([seed, i]))
                pairs.append((noisy.mean(axis=0), gt))
        scores = metrics.evaluate_sequences(pairs)
        label = name + "".join(f" {k}={v:g}" for k, v in overrides.items())
        print(f"| {label} | {views} | {scores['mpjpe']:.1f} | {scores['pa_mpjpe']:.1f} | {scores['accel']:.1f} |")


def epoch_timing(cmu_dir: str, views: int, window: int, repeats: int) -> None:
    torch.set_num_threads(1)
    sequences: list[Sequence] = load_cmu(cmu_dir, "train")
    sampler = WindowSampler(sequences, window, num_views=views, error_model=make_error_model("realistic"),
                            repeats=repeats)
    t0 = time.perf_counter()
    data = sampler.synthesize_epoch(0)
    t1 = time.perf_counter()
    batches = sum(1 for _ in sampler.batches(0, 256, data=data))
    t2 = time.perf_counter()
    print(f"epoch: {len(sequences)} sequences x {repeats} repeats, V={views}, W={window}: "
          f"{data.num_windows} windows; synthesize {t1 - t0:.2f} s, {batches} batches of 256 {t2 - t1:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cmu-dir", help="folder with cmu17_120fps.npz, for the epoch timing")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    error_table(args.fps, args.seeds)
    if args.cmu_dir:
        epoch_timing(args.cmu_dir, args.views, args.window, args.repeats)


if __name__ == "__main__":
    main()
