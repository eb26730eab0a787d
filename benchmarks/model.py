"""SynSP inference speed per runtime backend: one node step and offline throughput.

    PYTHONPATH=. python benchmarks/model.py --build-aoti            # CPU: eager and AOTInductor
    PYTHONPATH=. python benchmarks/model.py --peak-tflops 67        # on a GPU: adds the GPU backends

Node step: one window (batch 1), V = 1 and 4 views, W frames, J joints, inputs on the CPU and
outputs copied back to it, as the node does; p50 and p90 latency over --repeats calls after warm-up.
Offline: batches of 1024 single-view windows, as `synsp-refine` sends them; windows/s.
Backends: eager CPU, AOTInductor CPU, and with a CUDA device eager CUDA, CUDA Graphs, TensorRT
fp32 and fp16 (the node-step engine is the runtime's default: batch 1..1024 tuned for 1, views =
max_views; offline uses a second engine, views 1, tuned for 1024). Unavailable ones are listed with
the reason. FLOPs per window are counted with torch.utils.flop_counter (attention through the
math kernel so its matmuls count); achieved FLOP/s = FLOPs / time.

Without --checkpoint the model is a random default SynSPConfig (seed 0, 2.3M parameters, overrides
with --config key=value) saved in the cache directory, so its AOTInductor package is built once
(--build-aoti, minutes on 2 cores) and reused.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import platform
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from synsp_core.artifacts import (build_aoti, build_tensorrt, cache_dir, find_artifact, random_windows,
                                  tensorrt_unavailable_reason)
from synsp_core.checkpoint import load_checkpoint, save_checkpoint
from synsp_core.model import SynSP, SynSPConfig
from synsp_core.runtime import TensorRTBackend, create_backend

NODE_VIEWS = (1, 4)
OFFLINE_BATCH = 1024


def parse_overrides(pairs: list[str]) -> dict:
    types = {f.name: f.type for f in fields(SynSPConfig)}
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"--config: unknown SynSPConfig field {key!r}")
        overrides[key] = {"int": int, "float": float, "bool": lambda v: v.lower() in ("1", "true")}.get(
            types[key], str)(value)
    return overrides


def benchmark_checkpoint(overrides: dict) -> Path:
    """A random SynSP of the default config (plus overrides), saved once under the cache dir."""
    cfg = SynSPConfig(**overrides)
    suffix = "".join(f"_{k}{v}" for k, v in sorted(overrides.items()))
    path = cache_dir() / "benchmark" / f"synsp_random_seed0{suffix}.safetensors"
    if not path.is_file():
        torch.manual_seed(0)
        save_checkpoint(path, SynSP(cfg))
    return path


def flops_per_window(checkpoint: Path, views: int) -> int:
    model = load_checkpoint(checkpoint)
    inputs = random_windows(model.cfg, 1, views)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), counter:
        model(*inputs)
    return counter.get_total_flops()


def seconds_per_call(call, repeats: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return np.array(times)


def node_step(backend, cfg: SynSPConfig, views: int):
    poses, view_mask, _ = random_windows(cfg, 1, views, seed=1)
    poses, view_mask = poses.nan_to_num(), torch.ones_like(view_mask)   # every camera and joint live

    def call():
        refined, quality = backend(poses, view_mask)
        return refined.cpu(), quality.cpu()
    return call


def offline_batch(backend, cfg: SynSPConfig):
    poses = random_windows(cfg, OFFLINE_BATCH, 1, seed=2)[0].nan_to_num()
    view_mask = torch.ones(OFFLINE_BATCH, 1, dtype=torch.bool)

    def call():
        return backend(poses, view_mask)[0].cpu()
    return call


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def backends(checkpoint: Path, build_missing_aoti: bool):
    """(name, factory or None, reason when skipped), node-step backends first."""
    yield "eager-cpu", lambda: create_backend(checkpoint, "eager"), None
    if find_artifact(checkpoint, "aoti-cpu") is None and build_missing_aoti:
        build_aoti(checkpoint)
    reason = None if find_artifact(checkpoint, "aoti-cpu") else "no AOTInductor package (run with --build-aoti)"
    yield "aoti-cpu", lambda: create_backend(checkpoint, "aoti"), reason
    no_cuda = None if torch.cuda.is_available() else "no CUDA device"
    yield "eager-cuda", lambda: create_backend(checkpoint, "eager", device="cuda"), no_cuda
    yield "cuda-graphs", lambda: create_backend(checkpoint, "cuda"), no_cuda
    for precision in ("fp32", "fp16"):
        yield f"tensorrt-{precision}", lambda p=precision: create_backend(checkpoint, "tensorrt", precision=p), \
            tensorrt_unavailable_reason()


def offline_tensorrt(checkpoint: Path, precision: str) -> TensorRTBackend:
    """A single-view engine tuned for the offline batch (the default engine pads to max_views)."""
    out = cache_dir() / "benchmark" / f"{checkpoint.stem}.offline.tensorrt-{precision}.pt2"
    if not out.is_file():
        build_tensorrt(checkpoint, precision, (1, OFFLINE_BATCH, OFFLINE_BATCH), views=1, out=out)
    return TensorRTBackend(out, checkpoint, precision)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: a random default-config SynSP")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="SynSPConfig overrides of the random model, e.g. d_model=96 n_refine_layers=2")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the node's default is 1)")
    parser.add_argument("--repeats", type=int, default=200, help="timed node steps per backend and V")
    parser.add_argument("--offline-repeats", type=int, default=3, help="timed offline batches per backend")
    parser.add_argument("--build-aoti", action="store_true", help="compile the AOTInductor package if missing")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the accelerator's peak, to print the fraction the best GPU backend reaches")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or benchmark_checkpoint(parse_overrides(args.config))
    cfg = load_checkpoint(checkpoint).cfg
    params = sum(p.numel() for p in load_checkpoint(checkpoint).parameters())
    flops = {v: flops_per_window(checkpoint, v) for v in NODE_VIEWS}

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()
    print(f"# SynSP inference, {datetime.date.today()}, torch {torch.__version__}, {device}, "
          f"{args.threads} CPU thread(s)")
    print(f"model: {checkpoint.name}, {params / 1e6:.2f}M parameters, W={cfg.window}, J={cfg.num_joints}; "
          + ", ".join(f"{flops[v] / 1e6:.1f} MFLOP per window at V={v}" for v in NODE_VIEWS))
    print()
    print("| backend | node step V=1 p50 / p90 (ms) | node step V=4 p50 / p90 (ms) | V=4 GFLOP/s "
          f"| offline {OFFLINE_BATCH} windows V=1 (windows/s) | offline GFLOP/s |")
    print("|---|---|---|---|---|---|")
    best_gpu = 0.0
    skipped = []
    for name, factory, reason in backends(checkpoint, args.build_aoti):
        if reason:
            skipped.append(f"{name}: {reason}")
            continue
        backend = factory()
        step = {v: np.percentile(seconds_per_call(node_step(backend, cfg, v), args.repeats, 20), [50, 90])
                for v in NODE_VIEWS}
        offline_backend = offline_tensorrt(checkpoint, name.split("-")[1]) if name.startswith("tensorrt") else backend
        batch_s = np.median(seconds_per_call(offline_batch(offline_backend, cfg), args.offline_repeats, 1))
        windows_per_s = OFFLINE_BATCH / batch_s
        step_gflops, offline_gflops = flops[4] / step[4][0] / 1e9, flops[1] * windows_per_s / 1e9
        if backend.device.type == "cuda":
            best_gpu = max(best_gpu, step_gflops, offline_gflops)
        print(f"| {name} | {step[1][0] * 1e3:.2f} / {step[1][1] * 1e3:.2f} | {step[4][0] * 1e3:.2f} / "
              f"{step[4][1] * 1e3:.2f} | {step_gflops:.1f} | {windows_per_s:,.0f} | {offline_gflops:.1f} |",
              flush=True)
    for line in skipped:
        print(f"\nskipped {line}", end="")
    print()
    if best_gpu and args.peak_tflops:
        print(f"best GPU backend: {best_gpu / 1e3:.2f} TFLOP/s = {best_gpu / 1e3 / args.peak_tflops:.2%} "
              f"of the {args.peak_tflops} TFLOP/s peak")


if __name__ == "__main__":
    main()
