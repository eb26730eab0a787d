"""Export a SynSP checkpoint for deployment; every artifact is verified against eager PyTorch first.

    synsp-export                                     # shipped weights -> exported + aoti, in the cache
    synsp-export --checkpoint runs/mv/best.safetensors --formats aoti --out-dir deploy/
    synsp-export --formats tensorrt-fp32 tensorrt-fp16 --batch 1 1 1024 --views 4   # on the GPU

Formats: exported (torch.export ExportedProgram, dynamic batch and views), aoti (AOTInductor
package for this CPU; minutes to compile on a small CPU), tensorrt-fp32 / tensorrt-fp16 (needs
torch_tensorrt and a CUDA device; batch range MIN OPT MAX, views fixed). Each FILE.pt2 comes with
FILE.pt2.json: the checkpoint's config, the weights' sha256 and the verification errors, which
synsp_core.runtime checks before it loads the file. Default names are what the runtime looks up.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from synsp_core.artifacts import (artifact_filename, artifact_tag, build_aoti, build_exported, build_tensorrt,
                                  cache_dir, export_checkpoint, resolve_checkpoint, tensorrt_unavailable_reason)
from synsp_core.cli import run_command

FORMATS = ("exported", "aoti", "tensorrt-fp32", "tensorrt-fp16")


def build(fmt: str, checkpoint: Path, out_dir: Path | None, batch: tuple[int, int, int], views: int | None,
          program=None):
    if fmt == "exported":
        return build_exported(checkpoint, out_dir and out_dir / artifact_filename(checkpoint, "exported"), program)
    if fmt == "aoti":
        return build_aoti(checkpoint, out_dir and out_dir / artifact_filename(checkpoint, "aoti-cpu"), program)
    precision = fmt.split("-")[1]
    out = out_dir and out_dir / artifact_filename(checkpoint, artifact_tag("tensorrt", precision))
    return build_tensorrt(checkpoint, precision, batch, views, out)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a .safetensors checkpoint (default: the shipped weights)")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=["exported", "aoti"])
    parser.add_argument("--out-dir", type=Path, default=None,
                        help=f"where to write (default: the runtime's cache, {cache_dir()})")
    parser.add_argument("--batch", type=int, nargs=3, default=(1, 1, 1024), metavar=("MIN", "OPT", "MAX"),
                        help="TensorRT batch range in windows; OPT is what the engine is tuned for "
                             "(1: the node's step)")
    parser.add_argument("--views", type=int, default=None,
                        help="TensorRT view count (default: the checkpoint's max_views)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    checkpoint = resolve_checkpoint(args.checkpoint)
    if any(f.startswith("tensorrt") for f in args.formats):
        reason = tensorrt_unavailable_reason()
        if reason:   # say so before minutes of other builds, not after
            parser.error(f"TensorRT formats need torch_tensorrt and a CUDA device: {reason}")
    # exported and aoti start from the same ExportedProgram: trace it once
    program = export_checkpoint(checkpoint) if {"exported", "aoti"} <= set(args.formats) else None
    written = []
    for fmt in args.formats:
        start = time.perf_counter()
        result = build(fmt, checkpoint, args.out_dir, tuple(args.batch), args.views, program)
        print(f"{fmt}: {result.path} ({time.perf_counter() - start:.0f} s)\n  {result.verification}")
        written.append(result.path)
    return written


def cli_main() -> int:
    """The synsp-export command: exit status 0 once every artifact is written, 2 with a one-line
    error on a mistake (e.g. a missing or broken checkpoint)."""
    return run_command("synsp-export", main)


if __name__ == "__main__":
    sys.exit(cli_main())
