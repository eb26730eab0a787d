"""People walking in the world frame: the Refiner against the oracle Gaussian floor.

    python -m synsp_training.world_walks --cmu-dir ../shared/data/cmu

The transfer matrix (training/transfer.py) scores pelvis-frame motion, like the training data. A
robot sees people walk through the room: here every 10th of the extra CMU takes
(cmu_more17_60fps.npz, world frame, 11 takes, 1.1 m/s on average; used neither in training nor in
validation) at 30 fps, errors of a family of transfer.FAMILIES, 1 and 4 views, against the best
Gaussian filter on the (mean of the) views, its sigma chosen on the scored data. Prints MPJPE /
Accel (root-relative, as the matrix) and absolute MPJPE. Figures in docs/training.md ("People
walking in the world frame").
"""
from __future__ import annotations

import argparse

import numpy as np

from synsp_core.errors import error_model_from_config, synthesize_views
from synsp_core.filters import make_filter
from synsp_core.motion import resample
from synsp_core.refiner import Refiner
from synsp_training.conventions import NAMED_CONVENTIONS
from synsp_training.data import load_cmu_more
from synsp_training.transfer import FAMILIES, SIGMAS, score


def absolute_mpjpe(preds, gts) -> float:
    return float(np.mean([np.linalg.norm(p - g, axis=-1).mean() for p, g in zip(preds, gts)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmu-dir", required=True)
    parser.add_argument("--checkpoint", default=None, help="SynSP checkpoint (default: the shipped weights)")
    parser.add_argument("--families", nargs="+", default=["gauss5", "realistic"], choices=list(FAMILIES))
    parser.add_argument("--conventions", nargs="+", default=["cmu", "h36m"], choices=list(NAMED_CONVENTIONS))
    args = parser.parse_args()
    takes = load_cmu_more(args.cmu_dir)[::10]
    refiner = Refiner.from_pretrained(args.checkpoint, backend="cpu")
    for family in args.families:
        errors = error_model_from_config(dict(FAMILIES[family]))
        for convention in args.conventions:
            for views in (1, 4):
                gts, noisy = [], []
                for k, take in enumerate(takes):
                    motion = NAMED_CONVENTIONS[convention].apply(resample(take.poses, take.fps, 30.0))
                    gts.append(motion.astype(np.float32))
                    noisy.append(synthesize_views(gts[-1], views, errors, 30.0, np.random.default_rng([k, views])))
                means = [v.mean(axis=0) for v in noisy]
                filters = [(score([make_filter("gaussian", sigma=s)(x) for x in means], gts), s) for s in SIGMAS]
                (floor_mpjpe, floor_accel), sigma = min(filters)
                floor_abs = absolute_mpjpe([make_filter("gaussian", sigma=sigma)(x) for x in means], gts)
                preds = [refiner.refine_views(v, 30.0)[1] for v in noisy]
                mpjpe, accel = score(preds, gts)
                print(f"{family} {convention} {views} view(s): floor (sigma {sigma:g}) {floor_mpjpe:.2f} / "
                      f"{floor_accel:.2f}, absolute {floor_abs:.2f} | refiner {mpjpe:.2f} / {accel:.2f}, "
                      f"absolute {absolute_mpjpe(preds, gts):.2f}", flush=True)


if __name__ == "__main__":
    main()
