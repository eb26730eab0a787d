"""synsp-refine INPUT.npz OUTPUT.npz [--checkpoint PATH] [--fps F] [--backend B] [--no-bone-lengths]

Every array in INPUT is (T, J, 3) (one view) or (V, T, J, 3) (views in one common frame), mm.
OUTPUT holds the same keys with refined arrays of the same shape, plus `<key>/fused` (refined
views averaged) for multi-view arrays; each array is one person's stream, so the bone-length
stage estimates that person's bone lengths from it (synsp_core/bones.py). Every array is checked before anything is refined, and
OUTPUT is written in one go at the end (to a temporary file, then renamed), so a bad key never
leaves a half-written file.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from synsp_core.refiner import Refiner, check_poses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synsp-refine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=None, help="SynSP .safetensors (default: shipped weights)")
    parser.add_argument("--fps", type=float, default=None, help="frame rate of INPUT; enables resampling "
                        "into the checkpoint's trained range when outside it")
    parser.add_argument("--backend", default="auto", help="runtime backend: auto, cpu, cuda, tensorrt")
    parser.add_argument("--no-bone-lengths", action="store_true",
                        help="skip the bone-length stage (projection onto the person's running bone lengths)")
    args = parser.parse_args(argv)
    try:
        with np.load(args.input, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        if not arrays:
            raise ValueError(f"{args.input}: no arrays")
        refiner = Refiner.from_pretrained(args.checkpoint, args.backend, bone_lengths=not args.no_bone_lengths)
        for key, arr in arrays.items():   # validate everything before refining anything
            check_poses(arr, refiner.num_joints, refiner.dims, name=f"{args.input}:{key}")
        result = {}
        for key, arr in arrays.items():
            if arr.ndim == 4:
                result[key], result[f"{key}/fused"] = refiner.refine_views(arr, args.fps, name=key)
            else:
                result[key] = refiner.refine(arr, args.fps, name=key)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=args.output.parent)
        os.close(fd)
        np.savez(tmp, **result)
        os.replace(tmp, args.output)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"synsp-refine: error: {err}", file=sys.stderr)
        return 2
    print(f"synsp-refine: wrote {len(result)} arrays to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
