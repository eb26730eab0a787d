"""Where the GPU node step's time goes, and what kernel fusion would save (GPU machine only).

    PYTHONPATH=. python benchmarks/gpu_profile.py

1. `cuda` backend (CUDA Graphs), shipped weights: the whole call (checks, copies in and out) and
   the captured graph's GPU time alone (CUDA events around `graph.replay()`), for batches 1 / 3 / 6
   at V = 4 and batch 1 at V = 1.
2. The eager step's GPU kernels and copies, counted with the torch profiler (batch 1, V = 4).
3. The same exported program compiled by TorchInductor (`torch.compile`, mode "default") and
   captured in a CUDA graph: replay time and its difference from eager. The program is moved to
   an indexed device (cuda:0): moved to plain "cuda", inductor stops on a device assertion.
Figures: docs/deploy.md, "GPU figures".
"""
import time

import numpy as np
import torch
from torch.export.passes import move_to_device_pass

from synsp_core.artifacts import random_windows
from synsp_core.checkpoint import load_checkpoint
from synsp_core.runtime import RefineModule, create_backend, export_refine_module

CHECKPOINT = "synsp_core/weights/synsp_h36m17_3d.safetensors"
REPEATS = 200


def replay_ms(graph: torch.cuda.CUDAGraph) -> float:
    """Median GPU time of one replay, ms."""
    times = []
    for _ in range(REPEATS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def capture(fn, *args) -> torch.cuda.CUDAGraph:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(*args)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(*args)
    return graph


def live_inputs(cfg, batch: int, views: int, device: str = "cpu"):
    poses, _, _ = random_windows(cfg, batch, views, seed=1)
    return (poses.nan_to_num().to(device), torch.ones(batch, views, dtype=torch.bool, device=device),
            torch.ones(batch, views, cfg.window, cfg.num_joints, device=device))


def main() -> None:
    if not torch.cuda.is_available():
        print(f"skipped: no CUDA device (torch {torch.__version__})")
        return
    backend = create_backend(CHECKPOINT, "cuda")
    cfg = backend.config
    for batch, views in [(1, 4), (3, 4), (6, 4), (1, 1)]:
        inputs = live_inputs(cfg, batch, views)
        for _ in range(20):
            backend(*inputs)
        calls = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            refined, quality = backend(*inputs)
            refined.cpu(), quality.cpu()
            calls.append(time.perf_counter() - start)
        graph = backend.graphs[(batch, views)][0]
        print(f"cuda-graphs B={batch} V={views}: whole call p50 {np.median(calls) * 1e3:.2f} ms, "
              f"replay alone (GPU time) p50 {replay_ms(graph):.3f} ms", flush=True)

    module = move_to_device_pass(export_refine_module(RefineModule(load_checkpoint(CHECKPOINT))),
                                 torch.device("cuda:0")).module()
    inputs = live_inputs(cfg, 1, 4, "cuda")
    with torch.inference_mode():
        module(*inputs)
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
            module(*inputs)
            torch.cuda.synchronize()
        kernels = [e for e in profile.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        print(f"eager step B=1 V=4: {len(kernels)} GPU kernels and copies, summed GPU time "
              f"{sum(e.device_time for e in kernels) / 1e3:.3f} ms", flush=True)

        start = time.perf_counter()
        compiled = torch.compile(module, mode="default", dynamic=False)
        expected, got = module(*inputs), compiled(*inputs)
        torch.cuda.synchronize()
        print(f"inductor compile {time.perf_counter() - start:.1f} s, max difference from eager "
              f"{float((got[0] - expected[0]).abs().nan_to_num().max()):.3g} mm", flush=True)
        print(f"inductor + CUDA graph B=1 V=4: replay p50 {replay_ms(capture(compiled, *inputs)):.3f} ms")


if __name__ == "__main__":
    main()
