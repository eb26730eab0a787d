"""How rigid each skeleton convention's bones are on real motion, and how much of it the pose explains.

    python -m synsp_training.bone_rigidity --cmu-dir ../shared/data/cmu

Per split (validation takes, test split) and convention (training/conventions.py), on the ground
truth at 30 fps: the std over time of each bone's length (mean over bones and sequences / worst),
and what is left of it after a least-squares fit on the cosines between the bone and its adjacent
bones, or every other bone: the features of synsp_core.bones.pose_dependence. Figures in
docs/training.md ("Bones that stretch with the pose").
"""
from __future__ import annotations

import argparse

import numpy as np

from synsp_core.bones import BoneLengthPrior, bone_cosines
from synsp_core.motion import resample
from synsp_core.skeletons import H36M17
from synsp_training.conventions import NAMED_CONVENTIONS
from synsp_training.transfer import sequences


def residual_std(lengths: np.ndarray, features: np.ndarray) -> float:
    """Std of lengths (T,) left after a least-squares fit on features (T, K) plus a constant."""
    a = np.concatenate([features - features.mean(axis=0), np.ones((len(features), 1))], axis=1)
    return float((lengths - a @ np.linalg.lstsq(a, lengths, rcond=None)[0]).std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmu-dir", required=True)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    prior = BoneLengthPrior(H36M17)
    bones = prior.bones
    adjacent = [[k for k, other in enumerate(bones) if k != b and set(other) & set(bone)]
                for b, bone in enumerate(bones)]
    print("| takes | convention | raw | fit on adjacent bones | fit on all bones |\n|---|---|---|---|---|")
    for split, name in (("val", "validation"), ("test", "test")):
        seqs = sequences(args.cmu_dir, split)
        for convention in NAMED_CONVENTIONS:
            stds = {"raw": [], "adjacent": [], "all": []}
            for seq in seqs:
                poses = NAMED_CONVENTIONS[convention].apply(resample(seq.poses, seq.fps, args.fps)).astype(np.float64)
                lengths = prior.bone_lengths(poses)
                cosines = bone_cosines(prior, poses)
                for b in range(len(bones)):
                    stds["raw"].append(lengths[:, b].std())
                    stds["adjacent"].append(residual_std(lengths[:, b], cosines[:, b, adjacent[b]]))
                    stds["all"].append(residual_std(lengths[:, b], np.delete(cosines[:, b], b, axis=1)))
            cells = " | ".join(f"{np.mean(x):.2f} / {np.max(x):.2f}" for x in stds.values())
            print(f"| {name} | {convention} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
