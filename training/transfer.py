r"""The transfer matrix: error family x skeleton convention x 1 / V views, against the floor.

    synsp-transfer --cmu-dir ../shared/data/cmu --split val --synsp CKPT [--model NAME=CKPT ...] \
        --out out/transfer_val

A validation set drawn from the training generator and skeleton measures fit, not transfer. Each
cell here changes what training never drew exactly: the skeleton convention (training/
conventions.py: the CMU data's own, Human3.6M's, a COCO/OpenPose-derived one), the error family
(i.i.d. Gaussian near clean and strong, and 3x stronger in one horizontal direction per view as
a monocular estimator's depth, the fixed RealisticErrors set, uniform noise and
triangulated multi-camera 2D detections: families MixedErrors never draws, and RealisticErrors
with missing joints; V views of `triangulated` are V rigs triangulating independently) and, on the `val` split, the
action basketball_signal held out of training whole (with the `_5` takes of the others).

Per cell and model: MPJPE and Accel (mm, mm/frame^2; root-relative as in metrics.py) of the input,
of the floor, and of the model with and without the bone-length stage. The floor is the best
classical baseline of the issue: on 1 view the Gaussian filter, on V views the plain mean of the
views followed by it, its sigma chosen per cell ON THE SCORED DATA ITSELF (an oracle: no filter
setting a user could pick does better). Missing joints are linearly interpolated in time for the
baselines (they cannot take NaN). A cell passes when the model's MPJPE and Accel are both no
worse than the floor's. Writes matrix.md and matrix.csv to --out. Outside the matrix,
`--families` also takes stronger and weaker versions of its families (STRESS_FAMILIES: the
estimator-like errors x 1.5 and x 2, triangulated detections x 0.5 and x 2, 40 mm noise).
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synsp_core.bones import BoneLengthPrior
from synsp_core.checkpoint import load_checkpoint
from synsp_core.cli import run_command
from synsp_core.errors import MissingJoints, error_model_from_config, synthesize_views
from synsp_core.filters import make_filter
from synsp_core.metrics import evaluate_sequences
from synsp_core.motion import resample
from synsp_core.refiner import Refiner, interpolate_missing
from synsp_core.skeletons import H36M17
from synsp_training.conventions import NAMED_CONVENTIONS
from synsp_training.data import _name_seed, load_cmu

# error family -> error model config; "missing": RealisticErrors with joints missing (NaN) on top
FAMILIES = {
    "gauss5": {"name": "gaussian", "std_mm": 5.0},
    "gauss20": {"name": "gaussian", "std_mm": 20.0},
    "realistic": {"name": "realistic"},
    "uniform40": {"name": "uniform", "max_mm": 40.0},
    "depth5": {"name": "gaussian", "std_mm": 5.0, "depth_ratio": 3.0},
    "missing": {"name": "realistic"},
    "triangulated": {"name": "triangulated"},
}
# stronger and weaker versions of the families, outside the matrix (`--families`): the floor must hold there too
STRESS_FAMILIES = {
    "realistic_x1.5": {"name": "realistic", "scale": 1.5},
    "realistic_x2": {"name": "realistic", "scale": 2.0},
    "triangulated_x0.5": {"name": "triangulated", "scale": 0.5},
    "triangulated_x2": {"name": "triangulated", "scale": 2.0},
    "gauss40": {"name": "gaussian", "std_mm": 40.0},
}
SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)   # Gaussian filter grid (frames)
HELD_OUT_ACTION = "basketball_signal"          # never in transfer training (synsp_transfer.yaml)


@dataclass
class Cell:
    family: str
    convention: str
    views: int
    noisy: list    # per sequence (V, T, J, 3), NaN = missing
    gt: list       # per sequence (T, J, 3)


def sequences(cmu_dir: str, split: str) -> list:
    """CMU sequences to score: 'val' (the `_5` takes + the held-out action) or 'test'."""
    if split == "test":
        return load_cmu(cmu_dir, "test")
    return [s for s in load_cmu(cmu_dir, "train") if s.name.endswith("_5") or HELD_OUT_ACTION + "_" in s.name]


def make_cell(seqs, family: str, convention: str, views: int, fps: float, seed: int) -> Cell:
    errors = error_model_from_config(dict({**FAMILIES, **STRESS_FAMILIES}[family]))
    noisy, gt = [], []
    for seq in seqs:
        rng = np.random.default_rng([seed, _name_seed(seq.name), views])
        motion = NAMED_CONVENTIONS[convention].apply(resample(seq.poses, seq.fps, fps)).astype(np.float32)
        v = synthesize_views(motion, views, errors, fps, rng)
        if family == "missing":
            for k in range(views):
                v[k][np.isnan(MissingJoints(burst_rate_hz=0.5).apply(motion, fps, rng))] = np.nan
        noisy.append(v)
        gt.append(motion)
    return Cell(family, convention, views, noisy, gt)


def score(preds, gts) -> tuple[float, float]:
    m = evaluate_sequences(list(zip(preds, gts)), skeleton=H36M17)
    return m["mpjpe"], m["accel"]


def floor(cell: Cell) -> tuple[dict, list]:
    """The best Gaussian filter on the (interpolated) input, or on the mean of the views."""
    inputs = []
    for noisy in cell.noisy:
        filled = interpolate_missing(noisy, np.isfinite(noisy).all(axis=-1))
        with np.errstate(invalid="ignore"):
            inputs.append(np.nanmean(filled, axis=0))
    inputs = [interpolate_missing(x[None], np.isfinite(x).all(axis=-1)[None])[0] for x in inputs]
    best = None
    for sigma in SIGMAS:
        f = make_filter("gaussian", sigma=sigma)
        mpjpe, accel = score([f(x) for x in inputs], cell.gt)
        if best is None or mpjpe < best["mpjpe"]:
            best = {"sigma": sigma, "mpjpe": mpjpe, "accel": accel}
    return best, inputs


def model_scores(refiner: Refiner, prior: BoneLengthPrior, cell: Cell, fps: float, agreement_bound: bool,
                 white_blend: bool) -> dict:
    """The fused output's scores with the bone-length stage and without it: the model passes
    (and the white-noise floor's perturbed pass) once, the final stages on them both ways."""
    scores = {}
    passes = []
    for noisy in cell.noisy:
        arr, conf = noisy.astype(np.float32), np.ones(noisy.shape[:-1], np.float32)
        raw = refiner.model_pass(arr, conf, fps)
        passes.append((raw, refiner.probe_pass(arr, conf, raw, fps) if white_blend else None))
    for suffix, stage in (("", prior), (" no-stage", None)):
        fused = [refiner.final_stages(raw, probe, stage, agreement_bound)[1] for raw, probe in passes]
        scores["mpjpe" + suffix], scores["accel" + suffix] = score(fused, cell.gt)
    return scores


def run(args) -> list[dict]:
    seqs = sequences(args.cmu_dir, args.split)
    models = [("SynSP", args.synsp)] + [tuple(m.split("=", 1)) for m in args.model]
    # model_scores applies the final stages, with and without the bone stage
    refiners = [(name, Refiner.from_model(load_checkpoint(path), bone_lengths=False, smoothing=not args.no_smoothing,
                                          agreement_bound=False, white_blend=False)) for name, path in models]
    prior = BoneLengthPrior(H36M17)
    rows = []
    for family in args.families:
        for convention in args.conventions:
            for views in args.views:
                cell = make_cell(seqs, family, convention, views, args.fps, args.seed)
                base, inputs = floor(cell)
                input_mpjpe, input_accel = score(inputs, cell.gt)
                for name, refiner in refiners:
                    m = model_scores(refiner, prior, cell, args.fps, not args.no_agreement_bound,
                                     not args.no_white_blend)
                    rows.append({"model": name, "family": family, "convention": convention, "views": views,
                                 "input_mpjpe": input_mpjpe, "input_accel": input_accel,
                                 "floor_sigma": base["sigma"], "floor_mpjpe": base["mpjpe"],
                                 "floor_accel": base["accel"], **m,
                                 "gain_pct": 100 * (1 - m["mpjpe"] / base["mpjpe"]),
                                 "passes": m["mpjpe"] <= base["mpjpe"] and m["accel"] <= base["accel"]})
                    print(format_row(rows[-1]), flush=True)
    return rows


HEADER = ("| model | errors | convention | views | input MPJPE / Accel | floor (sigma) MPJPE / Accel "
          "| model MPJPE / Accel | without stage | gain vs floor | floor held |\n|---|---|---|---:|---|---|---|---|---:|---|")


def format_row(r: dict) -> str:
    return (f"| {r['model']} | {r['family']} | {r['convention']} | {r['views']} "
            f"| {r['input_mpjpe']:.2f} / {r['input_accel']:.2f} "
            f"| ({r['floor_sigma']:g}) {r['floor_mpjpe']:.2f} / {r['floor_accel']:.2f} "
            f"| {r['mpjpe']:.2f} / {r['accel']:.2f} | {r['mpjpe no-stage']:.2f} / {r['accel no-stage']:.2f} "
            f"| {r['gain_pct']:+.1f}% | {'yes' if r['passes'] else 'NO'} |")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="synsp-transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cmu-dir", required=True, help="folder with cmu17_120fps.npz")
    parser.add_argument("--split", default="val", choices=["val", "test"],
                        help="val: `_5` takes + the held-out action (model choice); test: score once")
    parser.add_argument("--synsp", required=True, help="SynSP checkpoint")
    parser.add_argument("--model", action="append", default=[], help="NAME=CHECKPOINT, more models")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES) + list(STRESS_FAMILIES),
                        help="default: the matrix; also " + ", ".join(STRESS_FAMILIES))
    parser.add_argument("--conventions", nargs="+", default=list(NAMED_CONVENTIONS), choices=list(NAMED_CONVENTIONS))
    parser.add_argument("--views", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--no-smoothing", action="store_true", help="ablation: the Refiner without its smoothing stage")
    parser.add_argument("--no-agreement-bound", action="store_true", help="ablation: ... without the multi-view floor")
    parser.add_argument("--no-white-blend", action="store_true", help="ablation: ... without the white-noise floor")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/transfer"))
    args = parser.parse_args(argv)
    print(HEADER)
    rows = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    held = sum(r["passes"] for r in rows)
    summary = f"\n{held} of {len(rows)} cells hold the floor ({args.split} split, seed {args.seed}, {args.fps:g} fps)\n"
    (args.out / "matrix.md").write_text(HEADER + "\n" + "\n".join(format_row(r) for r in rows) + "\n" + summary)
    with open(args.out / "matrix.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(summary)
    return rows


def cli_main() -> int:
    """The synsp-transfer command: exit status 0 after the matrix, 2 with a one-line error on a mistake."""
    return run_command("synsp-transfer", main)


if __name__ == "__main__":
    sys.exit(cli_main())
