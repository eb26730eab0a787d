r"""Paper-style evaluation: refiners against classical filters on one data set and error model.

    synsp-evaluate --cmu-dir DATA/cmu --fps 30 --errors realistic --views 4 \
        --synsp synsp_core/weights/synsp_h36m17_3d.safetensors --smoothnet runs/smoothnet/best.safetensors \
        --out out/eval

Real estimator output (SmoothNet-format data, 3D in mm or 2D in pixels, at the data set's own rate):
    synsp-evaluate --smoothnet-dir PATH/data/poses --smoothnet-name h36m_fcn --allow-pickle \
        --errors detected --synsp runs/synsp_smoothnet_3d/best.safetensors --out out/eval_h36m_fcn

Rows: Input (view 0), One-Euro, Savitzky-Golay, Gaussian1d (each with parameters chosen on the
VALIDATION takes, never the test split; for SmoothNet-format data on the train split's sequences
0, 10, 20, ..., those train.py holds out), SmoothNet and SynSP single-view (view 0), and with
--views V > 1: mean of views, mean of views + best filter, SynSP multi-view (fused). For 3D, SynSP
rows include the bone-length stage (synsp_core/bones.py), as the Refiner and the node do; rows
"without bone-length stage" are the ablation, and the best single-view filter and the mean of
views + best filter are also shown followed by that stage. Extra
checkpoints (e.g. Tab. 5 ablations) come in as --model NAME=PATH. `--split val` scores the CMU
validation takes instead of the test split (model selection; filters are then tuned on them too). Columns: MPJPE, PA-MPJPE,
Accel, worst-1% MPJPE and latency (frames of look-ahead). Writes table.md, table.csv and
mpjpe_vs_accel.png to --out.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from synsp_core.bones import BoneLengthPrior, bone_prior_for
from synsp_core.checkpoint import load_checkpoint, read_checkpoint_info
from synsp_core.cli import frame_rate, run_command
from synsp_core.errors import error_model_from_config, rotation_matrix
from synsp_core.filters import make_filter
from synsp_core.metrics import METRIC_NAMES, evaluate_sequences
from synsp_core.refiner import Refiner
from synsp_core.skeletons import get_skeleton
from synsp_training.conventions import NAMED_CONVENTIONS, get_convention
from synsp_training.data import Sequence, hold_out_every, load_cmu, load_smoothnet, make_test_case

# Parameter grids searched on the validation takes (MPJPE decides; ties go to lower Accel).
FILTER_GRIDS = {
    "one_euro": {"min_cutoff": [0.3, 0.6, 1.0, 2.0, 4.0], "beta": [0.0, 0.001, 0.01, 0.05]},
    "savgol": {"window": [5, 9, 13, 17, 25, 31], "polyorder": [1, 2, 3]},
    "gaussian": {"sigma": [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]},
}
FILTER_TITLES = {"one_euro": "One-Euro", "savgol": "Savitzky-Golay", "gaussian": "Gaussian1d"}


@dataclass
class Case:
    noisy: np.ndarray  # (V, T, J, D)
    gt: np.ndarray     # (T, J, D)


def make_cases(sequences, fps, error_model, views, seed) -> list[Case]:
    cases = []
    for seq in sequences:
        noisy, gt = make_test_case(seq, fps, error_model, num_views=views, seed=seed)
        if len(noisy) != views:   # real detections come with their own view count
            raise ValueError(f"sequence {seq.name!r} has {len(noisy)} detected view(s), --views is {views}")
        if len(gt) >= 3:
            cases.append(Case(noisy, gt))
    return cases


def score(preds, cases, skeleton) -> dict[str, float]:
    return evaluate_sequences(list(zip(preds, (c.gt for c in cases))), skeleton=skeleton)


def build_filter(name: str, params: dict, fps: float):
    return make_filter(name, fps=fps, **params) if name == "one_euro" else make_filter(name, **params)


def tune_filter(name: str, inputs: list[np.ndarray], cases: list[Case], fps: float, skeleton) -> dict:
    """The grid point with the lowest MPJPE on the given (validation) inputs."""
    grid = FILTER_GRIDS[name]
    best, best_key = None, None
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        if name == "savgol" and params["polyorder"] >= params["window"]:
            continue
        f = build_filter(name, params, fps)
        m = score([f(x) for x in inputs], cases, skeleton)
        key = (round(m["mpjpe"], 3), m["accel"])
        if best_key is None or key < best_key:
            best, best_key = params, key
    return best


def bone_stage(preds: list[np.ndarray], prior: BoneLengthPrior) -> list[np.ndarray]:
    """Each sequence through the bone-length stage, its lengths from the whole sequence, as the
    Refiner applies it."""
    return [prior.project(poses, prior.recording_lengths(poses)) for poses in preds]


def tune_filters(inputs: list[np.ndarray], val: list[Case], fps: float, skeleton) -> dict[str, tuple[dict, float]]:
    """Per filter: (parameters tuned on the validation takes, their validation MPJPE); ({}, 0) without them."""
    tuned = {}
    for name in FILTER_GRIDS:
        params = tune_filter(name, inputs, val, fps, skeleton) if val else {}
        f = build_filter(name, params, fps)
        tuned[name] = params, score([f(x) for x in inputs], val, skeleton)["mpjpe"] if val else 0.0
    return tuned


def filter_label(name: str, params: dict) -> str:
    return f"{FILTER_TITLES[name]} ({', '.join(f'{k}={v}' for k, v in params.items())})"


def model_rows(name: str, path: str, test: list[Case], views: int, skeleton, fps: float):
    """Rows for one checkpoint: single-view on view 0, and multi-view (fused) when views > 1 and the
    model takes several views. SynSP rows are the Refiner's output as users get it (smoothing,
    bone-length stage for 3D, the multi-view floor), each followed by an ablation row without the
    bone-length stage; SmoothNet runs as in its paper."""
    model = load_checkpoint(path)
    latency = model.cfg.window - 1
    multi_view = hasattr(model.cfg, "max_views")
    staged = bone_prior_for(model.cfg, enabled=multi_view) is not None
    variants = [("", Refiner.from_model(model))]
    if staged:
        variants.append((" without bone-length stage", Refiner.from_model(model, bone_lengths=False)))
    rows = []
    for suffix, refiner in variants:
        rows.append((name + (" (1 view)" if views > 1 and multi_view else "") + suffix,
                     [refiner.refine(c.noisy[0], fps) for c in test], latency))
        if views > 1 and getattr(model.cfg, "max_views", 1) > 1:
            rows.append((f"{name} ({views} views, fused){suffix}",
                         [refiner.refine_views(c.noisy, fps)[1] for c in test], latency))
    order = [0, 2, 1, 3] if len(rows) == 4 else range(len(rows))   # each row next to its ablation
    return [rows[i] for i in order]


def evaluate(args) -> list[dict]:
    overrides = {k: yaml.safe_load(v) for k, _, v in (kv.partition("=") for kv in args.error_param)}
    errors = None if args.errors == "detected" else error_model_from_config({"name": args.errors, **overrides})
    if args.smoothnet_dir:
        def split(part):   # ground truths; .detected holds the estimator output
            return [gt for gt, _ in load_smoothnet(args.smoothnet_dir, part, name=args.smoothnet_name or None,
                                                   kind=args.kind, allow_pickle=args.allow_pickle)]
        test_seqs = split("test")
        val_seqs = hold_out_every(split("train"), 10)[1]   # filters are tuned on these, as train.py validates
    elif args.cmu_dir:
        val_seqs = [s for s in load_cmu(args.cmu_dir, "train") if s.name.endswith(tuple(args.val_takes))]
        # --split val: model selection on the validation takes (filters tuned on them too), test untouched
        test_seqs = val_seqs if args.split == "val" else load_cmu(args.cmu_dir, "test")
    else:
        raise SystemExit("evaluate: give the data: --cmu-dir (CMU folder) or --smoothnet-dir")
    if args.convention:   # the same motion in another skeleton convention (training/conventions.py)
        convention = get_convention(args.convention)
        test_seqs, val_seqs = ([Sequence(s.name, convention.apply(s.poses), s.fps, s.skeleton) for s in seqs]
                               for seqs in (test_seqs, val_seqs))
    skeleton = get_skeleton(args.layout or test_seqs[0].skeleton)
    fps = args.fps = args.fps or (test_seqs[0].fps if args.smoothnet_dir else 30.0)   # resolved for the title
    test = make_cases(test_seqs, fps, errors, args.views, args.seed)
    val = make_cases(val_seqs, fps, errors, args.views, args.seed + 1) if val_seqs else []
    if args.rotate_x_deg:   # the same data in another frame: only frame-dependent methods change
        turn = rotation_matrix(np.array([1.0, 0.0, 0.0]), np.radians(args.rotate_x_deg)).astype(np.float32)
        test, val = ([Case(c.noisy @ turn.T, c.gt @ turn.T) for c in cases] for cases in (test, val))

    rows: list[tuple[str, list[np.ndarray], int]] = [("Input", [c.noisy[0] for c in test], 0)]
    prior = BoneLengthPrior(skeleton) if test[0].gt.shape[-1] == 3 else None
    tuned = tune_filters([c.noisy[0] for c in val], val, fps, skeleton)
    best = min(tuned, key=lambda name: tuned[name][1])
    for name, (params, _) in tuned.items():
        f = build_filter(name, params, fps)
        rows.append((filter_label(name, params), [f(c.noisy[0]) for c in test], f.latency_frames))
        if prior is not None and name == best:
            rows.append((rows[-1][0] + " + bone-length stage", bone_stage(rows[-1][1], prior), f.latency_frames))
    if args.smoothnet:
        rows += model_rows("SmoothNet", args.smoothnet, test, 1, skeleton, fps)
    if args.synsp:
        rows += model_rows("SynSP", args.synsp, test, args.views, skeleton, fps)
    for spec in args.model:
        name, _, path = spec.partition("=")
        rows += model_rows(name, path, test, args.views, skeleton, fps)
    if args.views > 1:
        means = [c.noisy.mean(axis=0) for c in test]
        tuned = tune_filters([c.noisy.mean(axis=0) for c in val], val, fps, skeleton)
        name = min(tuned, key=lambda n: tuned[n][1])
        f = build_filter(name, tuned[name][0], fps)
        label = f"Mean of {args.views} views + {filter_label(name, tuned[name][0])}"
        mean_rows = [(f"Mean of {args.views} views", means, 0), (label, [f(m) for m in means], f.latency_frames)]
        if prior is not None:
            mean_rows.append((label + " + bone-length stage", bone_stage(mean_rows[-1][1], prior), f.latency_frames))
        rows[1:1] = mean_rows   # right after Input

    table = []
    for label, preds, latency in rows:
        table.append({"method": label, **score(preds, test, skeleton), "latency_frames": latency})
    return table


def write_outputs(table: list[dict], out: Path, title: str, unit: str = "mm") -> str:
    """table.md, table.csv and mpjpe_vs_accel.png; unit: the data's (mm, or px for 2D)."""
    out.mkdir(parents=True, exist_ok=True)
    cols = list(METRIC_NAMES) + ["latency_frames"]
    heads = {"mpjpe": f"MPJPE ({unit})", "pa_mpjpe": f"PA-MPJPE ({unit})", "accel": f"Accel ({unit}/frame²)",
             "worst1_mpjpe": f"worst-1% MPJPE ({unit})", "latency_frames": "latency (frames)"}
    lines = [f"**{title}**", "", "| method | " + " | ".join(heads[c] for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for row in table:
        lines.append(f"| {row['method']} | " + " | ".join(
            str(row[c]) if c == "latency_frames" else f"{row[c]:.2f}" for c in cols) + " |")
    md = "\n".join(lines) + "\n"
    (out / "table.md").write_text(md)
    with open(out / "table.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["method"] + cols)
        writer.writeheader()
        writer.writerows(table)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for row in table:
        ax.scatter(row["accel"], row["mpjpe"])
        ax.annotate(row["method"].split(" (")[0], (row["accel"], row["mpjpe"]), fontsize=8)
    ax.set_xscale("log"); ax.set_xlabel(f"Accel error ({unit}/frame², log)"); ax.set_ylabel(f"MPJPE ({unit})")
    ax.set_title(title, fontsize=9); fig.tight_layout(); fig.savefig(out / "mpjpe_vs_accel.png", dpi=110)
    plt.close(fig)
    return md


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cmu-dir", default="", help="folder with cmu17_120fps.npz (the CMU test split)")
    parser.add_argument("--smoothnet-dir", default="", help="SmoothNet-format data folder (use instead of CMU)")
    parser.add_argument("--smoothnet-name", default="", help="its <dataset>_<estimator>, e.g. h36m_fcn")
    parser.add_argument("--kind", default="3D", choices=["3D", "2D"], help="SmoothNet data kind (2D: pixels)")
    parser.add_argument("--allow-pickle", action="store_true", help="SmoothNet's files are pickled object arrays")
    parser.add_argument("--val-takes", nargs="*", default=["_5"], help="CMU train keys held out to tune filters")
    parser.add_argument("--split", default="test", choices=["test", "val"],
                        help="CMU split to score: test, or val (the held-out train takes, for model selection)")
    parser.add_argument("--fps", type=frame_rate, default=None,
                        help="evaluation frame rate (default: 30 for CMU, the data set's own for SmoothNet data)")
    parser.add_argument("--errors", default="realistic", help="gaussian | uniform | realistic | detected")
    parser.add_argument("--error-param", nargs="*", default=[], help="error model overrides, e.g. std_mm=40")
    parser.add_argument("--views", type=int, default=1)
    parser.add_argument("--rotate-x-deg", type=float, default=0.0,
                        help="3D: rotate every pose about x first; 90 puts z-up data (CMU) in a y-down camera "
                             "frame (Human3.6M's), 110 in that of a camera pitched 20 degrees down")
    parser.add_argument("--convention", default="", choices=["", *NAMED_CONVENTIONS],
                        help="CMU data: score it in another skeleton convention (h36m: pelvis at the hip "
                             "midpoint, Human3.6M's segment lengths; coco: COCO/OpenPose-derived joint centres)")
    parser.add_argument("--layout", default="", help="joint layout (default: the data's, e.g. lsp14 for 14 joints)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synsp", default="", help="SynSP checkpoint")
    parser.add_argument("--smoothnet", default="", help="SmoothNet checkpoint")
    parser.add_argument("--model", action="append", default=[], help="NAME=CHECKPOINT, more rows")
    parser.add_argument("--out", type=Path, default=Path("out/eval"))
    args = parser.parse_args(argv)
    for path in filter(None, [args.synsp, args.smoothnet, *(spec.partition("=")[2] for spec in args.model)]):
        read_checkpoint_info(path)   # a missing checkpoint fails now, not after minutes of filter tuning
    table = evaluate(args)
    data = args.smoothnet_dir or f"CMU {args.split} split"
    title = f"{data}, {args.errors} errors at {args.fps:g} fps, {args.views} view(s), seed {args.seed}"
    if args.rotate_x_deg:
        title += f", turned {args.rotate_x_deg:g} deg about x"
    if args.convention:
        title += f", {args.convention} skeleton convention"
    unit = "px" if args.smoothnet_dir and args.kind == "2D" else "mm"
    print(write_outputs(table, args.out, title, unit))
    return table


def cli_main() -> int:
    """The synsp-evaluate command: exit status 0 after the table, 2 with a one-line error on a mistake."""
    return run_command("synsp-evaluate", main)


if __name__ == "__main__":
    sys.exit(cli_main())
