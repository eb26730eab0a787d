"""Quality of the node's streaming path (StreamingRefiner, no ROS) for each emit_delay.

    python benchmarks/emit_delay_quality.py [--checkpoint PATH] [--views 4] [--rate 30] [--seeds 2] [--no-bone-lengths]
                                            [--walk-speed MM_PER_S]

The 3 bundled CMU test clips, resampled to `rate`, each seen by `views` cameras with independent
'realistic' synthetic errors, are pushed frame by frame through StreamingRefiner as the node does
(bone-length stage on, as the node's default); prints MPJPE / PA-MPJPE / Accel / worst-1% of the fused output per emit_delay, with the cameras
and their plain average (no model) for reference. The latency cost of emit_delay d is d / rate.
The bundled clips are root-centred (the person stays on the spot); --walk-speed carries each one
along x at that speed, as a person walking through the room.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from synsp_core.errors import make_error_model, synthesize_views
from synsp_core.metrics import evaluate_sequences
from synsp_core.bones import bone_prior_for
from synsp_core.motion import resample
from synsp_core.runtime import create_backend
from synsp_core.streaming import StreamingRefiner

CLIPS = Path(__file__).resolve().parents[1] / "synsp_core" / "data" / "cmu_test_clips_120fps.npz"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped weights")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--seeds", type=int, default=2, help="error draws per clip")
    parser.add_argument("--no-bone-lengths", action="store_true", help="without the bone-length stage (node default: on)")
    parser.add_argument("--walk-speed", type=float, default=0.0, help="mm/s along x added to every clip (0: on the spot)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    backend = create_backend(args.checkpoint, "cpu")
    sequences = []
    with np.load(CLIPS) as clips:
        for seed in range(args.seeds):
            for name in clips.files:
                gt = resample(clips[name], 120.0, args.rate)
                gt[..., 0] += args.walk_speed * np.arange(len(gt))[:, None] / args.rate
                views = synthesize_views(gt, args.views, make_error_model("realistic"), args.rate,
                                         np.random.default_rng(seed))
                sequences.append((gt, views))

    def show(label, pairs):
        s = evaluate_sequences(pairs)
        print(f"{label:28s} {s['mpjpe']:7.2f} {s['pa_mpjpe']:9.2f} {s['accel']:7.2f} {s['worst1_mpjpe']:9.2f}")

    print(f"{'':28s} {'MPJPE':>7s} {'PA-MPJPE':>9s} {'Accel':>7s} {'worst1%':>9s}   (mm, mm/frame^2)")
    show("each camera", [(view, gt) for gt, views in sequences for view in views])
    show("average of the cameras", [(views.mean(axis=0), gt) for gt, views in sequences])
    for delay in range(backend.config.window):
        pairs = []
        for gt, views in sequences:
            refiner = StreamingRefiner(backend, args.views, delay,
                                       bone_prior=bone_prior_for(backend.config, not args.no_bone_lengths))
            frames = []
            for t in range(len(gt)):
                frames += refiner.push(t / args.rate, list(views[:, t]))
            frames += refiner.flush()
            pairs.append((np.stack([f.fused for f in frames]), gt))
        show(f"emit_delay {delay} (+{delay / args.rate * 1e3:3.0f} ms)", pairs)


if __name__ == "__main__":
    main()
