"""synsp-refine INPUT.npz OUTPUT.npz [--checkpoint PATH] [--fps F] [--backend B] [--no-bone-lengths]

Every array in INPUT is (T, J, 3) (one view) or (V, T, J, 3) (views in one common frame), mm.
An optional `<key>/confidence` array, shaped like `<key>` without its last axis ((T, J) or
(V, T, J)), holds each joint's confidence in [0, 1] (e.g. the pose estimator's score); it guides
the refinement of `<key>` and is not written out.
OUTPUT holds the same keys with refined arrays of the same shape, plus `<key>/fused` (refined
views averaged) for multi-view arrays; each array is one person's stream, so the bone-length
stage estimates that person's bone lengths from it (synsp_core/bones.py).

Every array is checked before anything is refined and every result is checked finite before
anything is written; OUTPUT is written in one go at the end (to a temporary file beside it, then
renamed), so a bad key never leaves a half-written file. OUTPUT's folder must exist: a typo in a
path creates no folders. Mistakes end with a one-line error and exit status 2.

`run_command` and `frame_rate` serve the training commands (synsp-train, synsp-evaluate,
synsp-export) too.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from synsp_core.refiner import Refiner, check_confidence, check_poses

CONFIDENCE = "/confidence"            # INPUT key suffix of a per-joint confidence
FPS_RANGE = (1.0, 10_000.0)           # --fps: slower is no motion capture, faster only costs time
USER_ERRORS = (ValueError, OSError)   # what a user's mistake raises; the message names file, key or value


def run_command(prog: str, command, *args) -> int:
    """Run command(*args) as a console script: exit status 0 when it returns (whatever it returns),
    2 with a one-line "PROG: error: ..." on stderr, no traceback, when it raises a USER_ERRORS."""
    try:
        command(*args)
    except USER_ERRORS as err:
        print(f"{prog}: error: {' '.join(str(err).split())}", file=sys.stderr)   # e.g. YAML's are multi-line
        return 2
    return 0


def frame_rate(text: str) -> float:
    """argparse type of --fps: a number within FPS_RANGE (not NaN or inf: resampling from or to a
    rate far outside it would take minutes or produce millions of frames)."""
    lo, hi = FPS_RANGE
    try:
        fps = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame rate {text!r} is not a number") from None
    if not lo <= fps <= hi:   # False for NaN too
        raise argparse.ArgumentTypeError(f"frame rate must be {lo:g} to {hi:g} fps, got {text}")
    return fps


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The named arrays of an .npz archive (never unpickled)."""
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single array (.npy); synsp-refine reads an .npz archive of named "
                         f"arrays, e.g. np.savez('in.npz', poses=poses)")
    with data:
        arrays = {key: data[key] for key in data.files}
    if not arrays:
        raise ValueError(f"{path}: no arrays")
    return arrays


def check_inputs(arrays: dict[str, np.ndarray], path: Path,
                 refiner: Refiner) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """{key: (poses, confidence or None)}, every array checked. A confidence without its poses and
    an input key that the output's `<key>/fused` would overwrite are errors."""
    inputs = {}
    for key, arr in arrays.items():
        if key.endswith(CONFIDENCE):
            if key.removesuffix(CONFIDENCE) not in arrays:
                raise ValueError(f"{path}:{key}: no array {key.removesuffix(CONFIDENCE)!r} for this confidence")
            continue
        poses = check_poses(arr, refiner.num_joints, refiner.dims, name=f"{path}:{key}")
        if poses.ndim == 4 and f"{key}/fused" in arrays:
            raise ValueError(f"{path}:{key}/fused: the output's fused views of {key!r} would overwrite "
                             f"this array; rename it")
        confidence = arrays.get(key + CONFIDENCE)
        if confidence is not None:
            confidence = check_confidence(confidence, poses, f"{path}:{key}{CONFIDENCE}")
        inputs[key] = poses, confidence
    return inputs


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz in one go: to a temporary file beside it (opened like any new file, so its mode
    honours the umask), then renamed over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def refine_file(args: argparse.Namespace) -> None:
    if not args.output.parent.is_dir():
        raise FileNotFoundError(f"output folder {args.output.parent} does not exist (synsp-refine creates no folders)")
    arrays = read_arrays(args.input)
    try:
        refiner = Refiner.from_pretrained(args.checkpoint, args.backend, bone_lengths=not args.no_bone_lengths,
                                          smoothing=not args.no_smoothing, agreement_bound=not args.no_agreement_bound,
                                          white_blend=not args.no_white_blend)
    except RuntimeError as err:   # the runtime's word for a backend this machine cannot run (no GPU)
        raise ValueError(str(err)) from None
    inputs = check_inputs(arrays, args.input, refiner)   # everything checked before anything is refined
    result = {}
    for key, (poses, confidence) in inputs.items():
        if poses.ndim == 4:
            result[key], result[f"{key}/fused"] = refiner.refine_views(poses, args.fps, name=key,
                                                                       confidence=confidence)
        else:
            result[key] = refiner.refine(poses, args.fps, name=key, confidence=confidence)
    for key, refined in result.items():
        if not np.isfinite(refined).all():
            raise ValueError(f"{key}: the refined output holds NaN or inf (input values out of scale, "
                             f"or a broken checkpoint); nothing written")
    write_npz(args.output, result)
    print(f"synsp-refine: wrote {len(result)} arrays to {args.output}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synsp-refine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=None, help="SynSP .safetensors (default: shipped weights)")
    parser.add_argument("--fps", type=frame_rate, default=None,
                        help=f"frame rate of INPUT ({FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}); enables resampling "
                             f"into the checkpoint's trained range when outside it (unset: no resampling)")
    parser.add_argument("--backend", default="auto", help="runtime backend: auto, cpu, cuda, tensorrt")
    parser.add_argument("--no-smoothing", action="store_true",
                        help="skip the smoothing stage after SWAA (a Gaussian over time, wider where the input is noisy)")
    parser.add_argument("--no-bone-lengths", action="store_true",
                        help="skip the bone-length stage (projection onto the person's running bone lengths)")
    parser.add_argument("--no-agreement-bound", action="store_true",
                        help="skip the multi-view floor (the fused pose bounded to the mean of views + a filter by "
                             "the views' disagreement)")
    parser.add_argument("--no-white-blend", action="store_true",
                        help="skip the white-noise floor (white input errors: the output blended with a filter, "
                             "both chosen by Stein's unbiased risk estimate)")
    return run_command("synsp-refine", refine_file, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
