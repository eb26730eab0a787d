"""One inference interface for the node and offline refinement.

    backend = create_backend(checkpoint=None, backend="auto")
    refined, quality = backend(poses, view_mask, confidence)   # (B, V, T, J*D) mm, (B, V) bool, (B, V, T, J)
    backend.name, backend.device, backend.config   # e.g. "aoti-cpu", cpu, SynSPConfig

backend=
    "auto"      "tensorrt" when torch_tensorrt and a CUDA device are present, else "cuda" when a
                CUDA device is present, else "cpu". Logs its choice and why (Python logging).
    "tensorrt"  torch_tensorrt engine for this GPU (precision "fp32" or "fp16"); when none is cached
                for this checkpoint and GPU, one is built and cached first (about a minute, logged).
    "cuda"      eager PyTorch on the GPU, replayed through CUDA Graphs (one per input shape).
    "cpu"       the AOTInductor package when one matches the checkpoint, else eager CPU. It never
                compiles one (minutes on a small CPU; the node must start fast): build it once with
                `synsp-export --checkpoint CKPT --formats aoti`.
    "aoti"      the AOTInductor package; an error naming the expected file when it is missing.
    "eager"     plain PyTorch on `device` (default "cpu").
The node's `backend` parameter takes 'auto', 'tensorrt', 'cuda' and 'cpu'.

Artifacts (see synsp_core.artifacts): `artifact=` names a file; otherwise the default file name for
the checkpoint is looked up next to it, then in the cache directory. An artifact found by name that
no longer fits (another torch version, another GPU) is rebuilt (TensorRT) or skipped with a warning
(AOTInductor under "cpu"/"auto"); one named with `artifact=` must fit, else ArtifactError.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from synsp_core.artifacts import (ArtifactError, RefineModule, artifact_filename, artifact_tag,
                                  build_tensorrt, cache_dir, check_artifact, export_refine_module,
                                  find_artifact, resolve_checkpoint, tensorrt_unavailable_reason)
from synsp_core.checkpoint import load_checkpoint, read_checkpoint_info
from synsp_core.model import SynSP, SynSPConfig

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "cuda", "cpu", "aoti", "eager")


class Backend:
    """Checks the inputs, moves them to the device and runs the subclass's `run` without autograd."""

    name: str
    device: torch.device
    config: SynSPConfig

    def __call__(self, poses: torch.Tensor, view_mask: torch.Tensor | None = None,
                 confidence: torch.Tensor | None = None):
        """poses (B, V, T, J*D) in mm (NaN: joint missing), view_mask (B, V) bool (None: all views
        live), confidence (B, V, T, J) in [0, 1] (None: 1; 0: missing)
        -> (refined (B, V, T, J*D) float32, quality (B, V, T) float32) on self.device."""
        cfg = self.config
        expected = f"(B, V, {cfg.window}, {cfg.num_joints * cfg.dims})"
        if not isinstance(poses, torch.Tensor) or poses.dim() != 4 or min(poses.shape) == 0 \
                or poses.shape[2:] != (cfg.window, cfg.num_joints * cfg.dims):
            got = tuple(poses.shape) if isinstance(poses, torch.Tensor) else type(poses).__name__
            raise ValueError(f"poses must be a tensor shaped {expected} (window, joints*dims of the "
                             f"checkpoint), got {got}")
        batch, views = poses.shape[:2]
        if view_mask is None:
            view_mask = torch.ones(batch, views, dtype=torch.bool)
        elif not isinstance(view_mask, torch.Tensor) or view_mask.dtype != torch.bool \
                or view_mask.shape != (batch, views):
            got = (view_mask.dtype, tuple(view_mask.shape)) if isinstance(view_mask, torch.Tensor) else view_mask
            raise ValueError(f"view_mask must be a bool tensor shaped ({batch}, {views}), got {got}")
        if not bool(view_mask.any(dim=1).all()):
            raise ValueError("every window needs at least one live view (a view_mask row is all False)")
        joints_shape = (batch, views, cfg.window, cfg.num_joints)
        if confidence is None:
            confidence = torch.ones(joints_shape)
        elif not isinstance(confidence, torch.Tensor) or tuple(confidence.shape) != joints_shape:
            got = tuple(confidence.shape) if isinstance(confidence, torch.Tensor) else type(confidence).__name__
            raise ValueError(f"confidence must be a tensor shaped {joints_shape}, got {got}")
        # Compiled backends (AOTI, TensorRT, CUDA Graphs) assume dense row-major inputs: an
        # expanded (stride-0) mask was read wrongly by AOTI, so every backend gets contiguous ones.
        with torch.inference_mode():
            return self.run(poses.to(self.device, torch.float32).contiguous(),
                            view_mask.to(self.device).contiguous(),
                            confidence.to(self.device, torch.float32).contiguous())

    def run(self, poses: torch.Tensor, view_mask: torch.Tensor, confidence: torch.Tensor):
        raise NotImplementedError


class EagerBackend(Backend):
    """Plain PyTorch on CPU or CUDA."""

    def __init__(self, model: SynSP, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.module = RefineModule(model.to(self.device))
        self.config: SynSPConfig = model.cfg
        self.name = f"eager-{self.device.type}"

    def run(self, poses, view_mask, confidence):
        return self.module(poses, view_mask, confidence)


class CudaGraphBackend(Backend):
    """Eager CUDA replayed through CUDA Graphs: one graph per input shape (B, V), captured on
    first use. The node's shape never changes, so it pays one capture and then only replays.

    It captures the exported program moved to the GPU, not the nn.Module: the module turns
    Python lists into index tensors on every call (a host-to-device copy, which cannot be
    captured); the exported program holds them as constants on the device.
    """

    def __init__(self, model: SynSP, device: str | torch.device = "cuda"):
        from torch.export.passes import move_to_device_pass
        self.device = torch.device(device)
        self.config = model.cfg
        self.name = "cuda-graphs"
        program = export_refine_module(RefineModule(model.cpu()))
        self.module = move_to_device_pass(program, self.device).module()
        self.graphs = {}   # (B, V) -> (graph, static inputs, static outputs)

    def capture(self, *inputs):
        static_inputs = tuple(x.clone() for x in inputs)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):   # warm-up outside the graph: lazy init, allocator pools
            for _ in range(3):
                self.module(*static_inputs)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_outputs = self.module(*static_inputs)
        return graph, static_inputs, static_outputs

    def run(self, poses, view_mask, confidence):
        inputs = (poses, view_mask, confidence)
        shape = tuple(poses.shape[:2])
        if shape not in self.graphs:
            log.info("capturing a CUDA graph for batch %d, %d views", *shape)
            self.graphs[shape] = self.capture(*inputs)
        graph, static_inputs, outputs = self.graphs[shape]
        for static, x in zip(static_inputs, inputs):
            static.copy_(x)
        graph.replay()
        return tuple(out.clone() for out in outputs)   # the next replay overwrites the outputs


class AOTIBackend(Backend):
    """AOTInductor package compiled for the CPU (`synsp-export --formats aoti`)."""

    def __init__(self, artifact: str | Path, checkpoint: str | Path | None = None):
        info = check_artifact(artifact, checkpoint, "aoti-cpu")
        self.artifact = Path(artifact)
        self.config = SynSPConfig.from_dict(info["config"])
        self.device = torch.device("cpu")
        self.name = "aoti-cpu"
        self.runner = torch._inductor.aoti_load_package(str(artifact))

    def run(self, poses, view_mask, confidence):
        refined, quality = self.runner(poses, view_mask, confidence)
        return refined, quality


class TensorRTBackend(Backend):
    """torch_tensorrt engine. Fewer views than the engine was built for are padded with masked
    views (exact: live views never attend to masked ones); batches beyond its range are split
    into chunks of its max, and a last chunk below its min is padded with repeats."""

    def __init__(self, artifact: str | Path, checkpoint: str | Path | None = None, precision: str = "fp32"):
        import torch_tensorrt  # noqa: F401  registers the engine class the saved program refers to
        info = check_artifact(artifact, checkpoint, "tensorrt", precision)
        self.artifact = Path(artifact)
        self.config = SynSPConfig.from_dict(info["config"])
        self.device = torch.device("cuda")
        self.name = f"tensorrt-{precision}"
        self.views = info["views"]
        self.min_batch, _, self.max_batch = info["batch"]
        self.module = torch.export.load(str(artifact)).module()

    def run(self, poses, view_mask, confidence):
        batch, views = poses.shape[:2]
        if views > self.views:
            raise ValueError(f"{views} views, but the TensorRT engine {self.artifact.name} was built for "
                             f"{self.views}; build one with synsp-export --views {views}")
        if views < self.views:
            missing = self.views - views
            poses = torch.cat([poses, poses.new_zeros(batch, missing, *poses.shape[2:])], dim=1)
            view_mask = torch.cat([view_mask, view_mask.new_zeros(batch, missing)], dim=1)
            confidence = torch.cat([confidence, confidence.new_zeros(batch, missing, *confidence.shape[2:])], dim=1)
        refined, quality = [], []
        for start in range(0, batch, self.max_batch):
            chunk = tuple(x[start:start + self.max_batch] for x in (poses, view_mask, confidence))
            size = len(chunk[0])
            if size < self.min_batch:
                chunk = tuple(torch.cat([x, x[:1].expand(self.min_batch - size, *x.shape[1:])]) for x in chunk)
            out = self.module(*chunk)
            refined.append(out[0][:size, :views])
            quality.append(out[1][:size, :views])
        return torch.cat(refined), torch.cat(quality)


# ---------------------------------------------------------------------------------------------
# Choosing a backend
# ---------------------------------------------------------------------------------------------

def build_command(checkpoint: Path, formats: str) -> str:
    return f"synsp-export --checkpoint {checkpoint} --formats {formats}"


def require_cuda(backend: str) -> None:
    if not torch.cuda.is_available():
        raise RuntimeError(f"backend {backend!r} needs a CUDA device: torch.cuda.is_available() is False"
                           + (" (this torch is CPU-only)" if torch.version.cuda is None else ""))


def tensorrt_backend(checkpoint: Path, precision: str, artifact: str | Path | None) -> TensorRTBackend:
    """The named engine, else the cached one for this GPU, else a new one (built, verified, cached)."""
    reason = tensorrt_unavailable_reason()
    if reason:
        raise RuntimeError(f"backend 'tensorrt' is unavailable: {reason}")
    if artifact is not None:
        return TensorRTBackend(artifact, checkpoint, precision)
    path = find_artifact(checkpoint, artifact_tag("tensorrt", precision))
    if path is not None:
        try:
            return TensorRTBackend(path, checkpoint, precision)
        except ArtifactError as e:
            log.warning("cached TensorRT engine does not fit, rebuilding it: %s", e)
    log.info("no TensorRT %s engine for this checkpoint and GPU yet: building one in %s (about a minute)",
             precision, cache_dir())
    return TensorRTBackend(build_tensorrt(checkpoint, precision).path, checkpoint, precision)


def aoti_backend(checkpoint: Path, artifact: str | Path | None) -> AOTIBackend:
    path = artifact or find_artifact(checkpoint, "aoti-cpu")
    if path is None:
        name = artifact_filename(checkpoint, "aoti-cpu")
        raise FileNotFoundError(f"no AOTInductor package {name} next to {checkpoint} or in {cache_dir()}; "
                                f"build it (minutes) with: {build_command(checkpoint, 'aoti')}")
    return AOTIBackend(path, checkpoint)


def cpu_backend(checkpoint: Path, artifact: str | Path | None) -> Backend:
    """AOTInductor when a fitting package exists (or is named), else eager CPU; never compiles."""
    if artifact is not None:
        return AOTIBackend(artifact, checkpoint)
    path = find_artifact(checkpoint, "aoti-cpu")
    if path is not None:
        try:
            return AOTIBackend(path, checkpoint)
        except ArtifactError as e:
            log.warning("AOTInductor package does not fit, using eager CPU: %s", e)
    else:
        log.info("no AOTInductor package %s next to the checkpoint or in %s; using eager CPU "
                 "(2.5 to 3.5x slower per node step; build one with: %s)",
                 artifact_filename(checkpoint, "aoti-cpu"), cache_dir(), build_command(checkpoint, "aoti"))
    return EagerBackend(load_checkpoint(checkpoint), "cpu")


def auto_backend(checkpoint: Path, precision: str) -> Backend:
    """TensorRT, else CUDA Graphs, else the best CPU path; logs the choice and why."""
    reason = tensorrt_unavailable_reason()
    if reason is None:
        try:
            backend = tensorrt_backend(checkpoint, precision, None)
            log.info("backend 'auto' chose %s (%s)", backend.name, backend.artifact)
            return backend
        except Exception as e:  # a failed engine build must not stop the node: the GPU still works
            log.warning("backend 'auto': TensorRT failed (%s: %s); trying CUDA Graphs", type(e).__name__, e)
    else:
        log.info("backend 'auto': no TensorRT: %s", reason)
    if torch.cuda.is_available():
        backend = CudaGraphBackend(load_checkpoint(checkpoint), "cuda")
    else:
        backend = cpu_backend(checkpoint, None)
    log.info("backend 'auto' chose %s", backend.name)
    return backend


def create_backend(checkpoint: str | Path | None = None, backend: str = "auto", device: str | None = None,
                   artifact: str | Path | None = None, precision: str = "fp32") -> Backend:
    """Load a checkpoint (None: the shipped weights) behind the requested backend (see module doc).

    device: only for "eager" ("cpu" or "cuda"); the other backends imply theirs.
    artifact: an explicit .pt2 for "aoti", "cpu" or "tensorrt" (else looked up by name).
    precision: "fp32" or "fp16", for TensorRT ("auto" on a GPU with torch_tensorrt, or "tensorrt").
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
    if device is not None and backend != "eager":
        raise ValueError(f"device= applies to backend 'eager' only; {backend!r} picks its own device")
    if artifact is not None and backend not in ("aoti", "cpu", "tensorrt"):
        raise ValueError(f"artifact= applies to backends 'aoti', 'cpu' and 'tensorrt', not {backend!r}")
    checkpoint = resolve_checkpoint(checkpoint)
    read_checkpoint_info(checkpoint)   # refuses non-safetensors files and missing configs first
    if backend == "auto":
        return auto_backend(checkpoint, precision)
    if backend == "tensorrt":
        return tensorrt_backend(checkpoint, precision, artifact)
    if backend == "cuda":
        require_cuda(backend)
        return CudaGraphBackend(load_checkpoint(checkpoint), "cuda")
    if backend == "aoti":
        return aoti_backend(checkpoint, artifact)
    if backend == "cpu":
        return cpu_backend(checkpoint, artifact)
    device = device or "cpu"
    if torch.device(device).type == "cuda":
        require_cuda("eager")
    return EagerBackend(load_checkpoint(checkpoint), device)
