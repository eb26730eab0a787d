"""Deployment artifacts of a checkpoint: build, verify against eager PyTorch, save, check on load.

Kinds (each artifact FILE.pt2 gets a sidecar FILE.pt2.json, written last; see `artifact_info`):
    exported       torch.export ExportedProgram (torch.export.save), CPU, float32; batch and views dynamic
    aoti-cpu       AOTInductor package compiled for this CPU and this torch version; batch and views dynamic
    tensorrt-fp32  torch_tensorrt module for one GPU model, saved with torch_tensorrt.save (ExportedProgram
    tensorrt-fp16  format); batch range chosen at build time, views fixed (fewer views are padded, masked)

Every artifact computes `RefineModule`: (poses (B, V, T, J*D) float32 in the data's units (mm),
view_mask (B, V) bool, confidence (B, V, T, J) float32 in [0, 1], 0 or NaN coordinates = missing
joint) -> (refined (B, V, T, J*D) float32, quality (B, V, T) float32). The sidecar records these
inputs (`INPUTS`); artifacts built for other inputs are refused.

Verification, before anything is written: the compiled artifact and eager float32 PyTorch run on
the same random windows (`random_windows`: world-frame poses up to 3 norm_scale from the origin,
masked views filled with NaN, some joints missing) at several batch sizes and view counts. Errors are relative to the
data scale s = max(norm_scale, max |pose|), e.g. s = 1000 mm for poses within a metre of the
origin: refined must agree within TOLERANCE * s (fp32: 1e-4 * s = 0.1 mm at s = 1 m; fp16:
1e-2 * s). float32 itself resolves about 1e-7 * s, so fp32 builds show errors far below that.
Quality (in [0, 1]) gets QUALITY_TOLERANCE_FACTOR x TOLERANCE, absolute: it is a ratio of branch
distances, dis / max dis (Eq. 3), so rounding noise is divided by how much the two branches
disagree, which is tiny for untrained weights (measured: 5e-5 for an AOTInductor build of the
untrained default model, while its refined poses agreed within 5e-4 mm).

Loading never runs Python's unpickler: `check_artifact` refuses files that are not .pt2, files
whose sidecar is missing or does not match the checkpoint (config, weights sha256) or the file's
own sha256, and pt2 archives with Python-pickled payloads (`check_pickle_free`). What the loaders
then read is raw tensor bytes, JSON graphs, a compiled .so (AOTInductor) and, for TensorRT, the
engine as a TorchScript custom-class payload (TorchScript's unpickler builds only registered C++
classes, never Python objects).

Default file names are <checkpoint stem>-<12 hex of the weights' sha256>.<kind>.pt2 (TensorRT
kinds add the GPU, e.g. tensorrt-fp16-nvidia-h100-sm90), looked up next to the checkpoint, then
in the cache directory ($SYNSP_CACHE_DIR, default ~/.cache/synsp_ros), where builds go by default.
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.export import Dim

from synsp_core.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, read_checkpoint_info
from synsp_core.model import SynSP, SynSPConfig

log = logging.getLogger(__name__)

TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}    # refined: relative to the data scale, see module docstring
QUALITY_TOLERANCE_FACTOR = 10               # quality: absolute, this times TOLERANCE
KINDS = ("exported", "aoti-cpu", "tensorrt")
INPUTS = ["poses", "view_mask", "confidence"]   # what every artifact takes, in order
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar")


class ArtifactError(ValueError):
    """An artifact that is missing pieces, does not match its checkpoint, or failed verification."""


# ---------------------------------------------------------------------------------------------
# What gets exported
# ---------------------------------------------------------------------------------------------

class RefineModule(nn.Module):
    """SynSP as deployed: (poses, view_mask, confidence) -> (refined, quality), float32 in and out.

    precision "fp16" runs the network in half precision on window-centred poses: the centring
    stays in float32 so that world-frame coordinates (metres from the origin) keep sub-millimetre
    resolution, which float16 alone (11 bits) would lose.
    """

    def __init__(self, model: SynSP, precision: str = "fp32"):
        super().__init__()
        if not isinstance(model, SynSP):
            raise TypeError(f"deployment serves SynSP models, got {type(model).__name__}")
        if precision not in TOLERANCE:
            raise ValueError(f"precision must be one of {sorted(TOLERANCE)}, got {precision!r}")
        self.precision = precision
        self.model = model.eval() if precision == "fp32" else copy.deepcopy(model).half().eval()

    @property
    def config(self) -> SynSPConfig:
        return self.model.cfg

    def forward(self, poses: torch.Tensor, view_mask: torch.Tensor, confidence: torch.Tensor):
        if self.precision == "fp32":
            out = self.model(poses, view_mask, confidence)
            return out.refined, out.quality
        cfg = self.model.cfg
        live = view_mask[:, :, None, None]
        observed_poses, confidence, observed = self.model.observed_inputs(poses, view_mask, confidence)
        centre = self.model.window_centre(observed_poses, observed)            # (B, 1, 1, 1, D)
        centred = (observed_poses.unflatten(-1, (cfg.num_joints, cfg.dims)) - centre).flatten(-2)
        out = self.model(centred.half(), view_mask, confidence.half())
        refined = (out.refined.float().unflatten(-1, (cfg.num_joints, cfg.dims)) + centre).flatten(-2)
        return torch.where(live, refined, poses), out.quality.float()


def random_windows(cfg: SynSPConfig, batch: int, views: int, seed: int = 0, device="cpu"):
    """Random but plausible windows in data units: (poses (B, V, T, J*D), view_mask (B, V),
    confidence (B, V, T, J)).

    A skeleton-sized cloud (0.3 norm_scale) about a centre up to 3 norm_scale from the origin,
    drifting over the window, seen by every view with 2% norm_scale noise. With V > 1, random
    views are masked (window 0 always loses its last view, every window keeps one) and hold NaN.
    Confidence is uniform in [0, 1]; about 5% of the joints are missing (NaN), and window 0 has
    joint 1 missing in every view and frame.
    """
    g = torch.Generator().manual_seed(seed)
    s, t, j, d = cfg.norm_scale, cfg.window, cfg.num_joints, cfg.dims
    centre = (torch.rand(batch, 1, 1, 1, d, generator=g) * 2 - 1) * 3 * s
    body = torch.randn(batch, 1, 1, j, d, generator=g) * 0.3 * s
    drift = torch.randn(batch, 1, t, 1, d, generator=g).cumsum(dim=2) * 0.01 * s
    noise = torch.randn(batch, views, t, j, d, generator=g) * 0.02 * s
    poses = (centre + body + drift + noise).flatten(-2)
    view_mask = torch.rand(batch, views, generator=g) > 0.3
    if views > 1:
        view_mask[0, -1] = False
    view_mask[:, 0] |= ~view_mask.any(dim=1)
    poses[~view_mask] = float("nan")
    confidence = torch.rand(batch, views, t, j, generator=g)
    missing = torch.rand(batch, views, t, j, generator=g) < 0.05
    missing[0, :, :, 1] = True
    poses = poses.unflatten(-1, (j, d)).masked_fill(missing[..., None], float("nan")).flatten(-2)
    return poses.to(device), view_mask.to(device), confidence.to(device)


def export_refine_module(module: RefineModule, views: int | None = None,
                         batch: tuple[int, int | None] = (1, None)) -> torch.export.ExportedProgram:
    """torch.export on the module's device, batch dynamic in [min, max] (None: unbounded).

    views None: the view count is dynamic too. torch.export specializes sizes 0 and 1, so it is
    traced with >= 2 views and reports the range as [2, inf); V = 1 runs all the same and every
    build verifies it. views N: fixed to N (TensorRT).
    """
    cfg = module.config
    device = next(module.parameters()).device
    min_batch, max_batch = batch
    example_batch = max(2, min_batch) if max_batch is None else min(max(2, min_batch), max_batch)
    inputs = random_windows(cfg, example_batch, views or max(2, cfg.max_views), device=device)
    batch_dim = Dim("batch", min=min_batch, max=max_batch)
    dims = {0: batch_dim} if views else {0: batch_dim, 1: Dim.DYNAMIC}
    with torch.no_grad():
        return torch.export.export(module, inputs, dynamic_shapes=tuple(dict(dims) for _ in inputs))


# ---------------------------------------------------------------------------------------------
# Names, hashes, sidecars
# ---------------------------------------------------------------------------------------------

def cache_dir(create: bool = False) -> Path:
    """Where builds go by default: $SYNSP_CACHE_DIR, else ~/.cache/synsp_ros. create: make it when
    missing, private to the user (mode 0700): an artifact's sidecar hash proves integrity, not
    origin, so whoever can write this folder can make the runtime load native code."""
    path = Path(os.environ.get("SYNSP_CACHE_DIR") or Path.home() / ".cache" / "synsp_ros")
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gpu_tag(device: str | torch.device = "cuda") -> str:
    """The GPU model a TensorRT engine is built for, e.g. 'nvidia-h100-80gb-hbm3-sm90'."""
    name = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")
    major, minor = torch.cuda.get_device_capability(device)
    return f"{name}-sm{major}{minor}"


def artifact_tag(kind: str, precision: str = "fp32", device: str | torch.device = "cuda") -> str:
    """The kind as it appears in file names: 'exported', 'aoti-cpu', 'tensorrt-fp16-<gpu>'."""
    if kind not in KINDS:
        raise ValueError(f"artifact kind must be one of {KINDS}, got {kind!r}")
    return f"tensorrt-{precision}-{gpu_tag(device)}" if kind == "tensorrt" else kind


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    return Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT


def artifact_filename(checkpoint: str | Path | None, tag: str) -> str:
    checkpoint = resolve_checkpoint(checkpoint)
    return f"{checkpoint.stem}-{file_sha256(checkpoint)[:12]}.{tag}.pt2"


def find_artifact(checkpoint: str | Path | None, tag: str) -> Path | None:
    """The default artifact file next to the checkpoint or in the cache directory, if present."""
    checkpoint = resolve_checkpoint(checkpoint)
    name = artifact_filename(checkpoint, tag)
    for folder in (checkpoint.parent, cache_dir()):
        if (folder / name).is_file():
            return folder / name
    return None


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def sidecar_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def artifact_info(checkpoint: Path, kind: str, precision: str, device: str, **extra) -> dict:
    """What a sidecar records: the checkpoint's model and config, its weights' sha256, the build."""
    info = read_checkpoint_info(checkpoint)
    return {"kind": kind, "precision": precision, "device": device, "checkpoint": checkpoint.name,
            "weights_sha256": file_sha256(checkpoint), "model": info["model"], "config": info["config"],
            "torch": torch.__version__, "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "inputs": INPUTS, **extra}


def check_pickle_free(path: str | Path) -> None:
    """Refuse a pt2 archive that torch.export.load would open with Python's full unpickler.

    Allowed: raw tensor payloads, TorchScript custom objects (the TensorRT engine) and sample
    inputs that load with torch.load(weights_only=True) (tensors only).
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path}: not a pt2 (zip) archive")
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(("_weights_config.json", "_constants_config.json")):
                for key, meta in json.loads(archive.read(name))["config"].items():
                    if meta.get("use_pickle") and not meta["path_name"].startswith("custom_obj_"):
                        raise ArtifactError(f"{path}: refusing {key!r}, stored as a Python pickle ({name})")
            elif "/data/sample_inputs/" in name and archive.getinfo(name).file_size:
                try:
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception as e:
                    raise ArtifactError(f"{path}: refusing {name}: holds more than tensors ({e})") from None
            elif re.search(r"/data/constants/[^/]+\.pt$", name):
                raise ArtifactError(f"{path}: refusing {name}, a legacy pickled constants file")


def check_artifact(artifact: str | Path, checkpoint: str | Path | None, kind: str,
                   precision: str | None = None) -> dict:
    """Check an artifact against the checkpoint it claims to come from; return its sidecar.

    Raises FileNotFoundError (artifact or sidecar missing) or ArtifactError naming the file and
    every difference: kind, precision, config fields, weights, the file's own hash, torch version.
    """
    artifact, checkpoint = Path(artifact), resolve_checkpoint(checkpoint)
    if artifact.suffix in PICKLE_SUFFIXES or artifact.suffix != ".pt2":
        raise ArtifactError(f"{artifact}: only .pt2 artifacts written by synsp-export are loaded "
                            f"(pickle files such as {', '.join(PICKLE_SUFFIXES)} are never loaded)")
    if not artifact.is_file():
        raise FileNotFoundError(f"artifact not found: {artifact}")
    sidecar = sidecar_path(artifact)
    if not sidecar.is_file():
        raise FileNotFoundError(f"artifact sidecar not found: {sidecar} (synsp-export writes it beside "
                                f"{artifact.name}; without it the artifact cannot be matched to a checkpoint)")
    info = json.loads(sidecar.read_text())
    expected = read_checkpoint_info(checkpoint)
    problems = []
    if info.get("kind") != kind:
        problems.append(f"kind: artifact {info.get('kind')!r}, wanted {kind!r}")
    if precision is not None and info.get("precision") != precision:
        problems.append(f"precision: artifact {info.get('precision')!r}, wanted {precision!r}")
    built, wanted = info.get("config", {}), expected["config"]
    for key in sorted(set(built) | set(wanted)):
        if built.get(key) != wanted.get(key):
            problems.append(f"{key}: artifact {built.get(key)!r}, checkpoint {wanted.get(key)!r}")
    if info.get("inputs") != INPUTS:
        problems.append(f"inputs: artifact takes {info.get('inputs', ['poses', 'view_mask'])}, wanted {INPUTS}")
    if info.get("model") != expected["model"]:
        problems.append(f"model: artifact {info.get('model')!r}, checkpoint {expected['model']!r}")
    weights = file_sha256(checkpoint)
    if info.get("weights_sha256") != weights:
        problems.append(f"weights: artifact built from sha256 {str(info.get('weights_sha256'))[:12]}..., "
                        f"checkpoint has {weights[:12]}...")
    if kind != "exported" and info.get("torch") != torch.__version__:
        problems.append(f"torch: artifact built with {info.get('torch')}, this is {torch.__version__}")
    if kind == "tensorrt":
        here = gpu_tag() if torch.cuda.is_available() else "no CUDA device"
        if info.get("gpu") != here:
            problems.append(f"gpu: engine built for {info.get('gpu')}, this machine has {here}")
        if info.get("torch_tensorrt") != installed_version("torch_tensorrt"):
            problems.append(f"torch_tensorrt: engine built with {info.get('torch_tensorrt')}, "
                            f"installed: {installed_version('torch_tensorrt')}")
    if problems:
        raise ArtifactError(f"{artifact} does not match {checkpoint}:\n  " + "\n  ".join(problems)
                            + "\nrebuild it with synsp-export")
    if file_sha256(artifact) != info.get("artifact_sha256"):
        raise ArtifactError(f"{artifact}: file content differs from what synsp-export wrote "
                            f"(sha256 mismatch with {sidecar.name}); rebuild it")
    check_pickle_free(artifact)
    return info


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------

@dataclass
class Verification:
    """Worst differences from eager float32 over the verified inputs."""
    refined_mm: float        # max |refined - eager| in data units
    scale_mm: float          # data scale s of the input where refined_mm occurred
    quality: float           # max |quality - eager|
    tolerance: float         # for refined_mm / scale_mm; quality: QUALITY_TOLERANCE_FACTOR x this

    @property
    def fraction_of_tolerance(self) -> float:
        """The larger of both errors over its tolerance: <= 1 passes."""
        return max(self.refined_mm / self.scale_mm, self.quality / QUALITY_TOLERANCE_FACTOR) / self.tolerance

    def __str__(self) -> str:
        return (f"max abs error refined {self.refined_mm:.3g} mm (data scale {self.scale_mm:.0f} mm, "
                f"relative {self.refined_mm / self.scale_mm:.2g} vs tolerance {self.tolerance:g}), quality "
                f"{self.quality:.3g} (tolerance {self.tolerance * QUALITY_TOLERANCE_FACTOR:g})")


def nan_aware_max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b|, where NaN in both counts as equal and NaN in one as infinite; compared on the
    CPU, so a GPU backend's output can be checked against a CPU reference."""
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    diff = (a - b).abs()
    both_nan = torch.isnan(a) & torch.isnan(b)
    return float(torch.where(both_nan, torch.zeros_like(diff), diff.nan_to_num(nan=float("inf"))).max())


def verify(candidate, reference: RefineModule, shapes, precision: str, device="cpu") -> Verification:
    """Compare candidate(poses, view_mask, confidence) with the float32 reference on random
    windows of each (batch, views) in shapes; raise ArtifactError when over the tolerance of
    `precision`."""
    cfg, tolerance = reference.config, TOLERANCE[precision]
    worst = None
    for seed, (batch, views) in enumerate(shapes):
        inputs = random_windows(cfg, batch, views, seed=seed, device=device)
        poses = inputs[0]
        with torch.inference_mode():
            expected = reference(*inputs)
            got = candidate(*inputs)
        scale = max(cfg.norm_scale, float(poses.nan_to_num().abs().max()))
        result = Verification(nan_aware_max_error(got[0], expected[0]), scale,
                              nan_aware_max_error(got[1], expected[1]), tolerance)
        if worst is None or result.fraction_of_tolerance > worst.fraction_of_tolerance:
            worst = result
        if result.fraction_of_tolerance > 1:
            raise ArtifactError(f"verification failed at batch {batch}, {views} views: {result}; nothing written")
    return worst


# ---------------------------------------------------------------------------------------------
# Builds
# ---------------------------------------------------------------------------------------------

@dataclass
class Build:
    path: Path
    info: dict
    verification: Verification


def dynamic_shapes_to_verify(cfg: SynSPConfig) -> list[tuple[int, int]]:
    """(batch, views) pairs every dynamic build is checked at, including V = 1."""
    views = sorted({1, 2, cfg.max_views})
    return [(1, views[-1]), (1, 1), (3, views[1] if len(views) > 2 else views[-1]), (17, views[-1])]


def temporary_path(path: Path) -> Path:
    """Where a build writes before its file is verified and moved in place (same folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(path.name[:-len(".pt2")] + ".tmp.pt2")


def install_artifact(tmp: Path, path: Path, info: dict) -> Path:
    """Write the sidecar (with the file's sha256), then move the file in place. An old file left
    beside a new sidecar fails the sha256 check, so a crash in between cannot load a wrong file."""
    sidecar_path(path).write_text(json.dumps({**info, "artifact_sha256": file_sha256(tmp)}, indent=2))
    tmp.replace(path)
    return path


def export_checkpoint(checkpoint: str | Path | None = None) -> torch.export.ExportedProgram:
    """The checkpoint's RefineModule (float32, CPU) exported with dynamic batch and views."""
    return export_refine_module(RefineModule(load_checkpoint(resolve_checkpoint(checkpoint))))


def build_exported(checkpoint: str | Path | None = None, out: str | Path | None = None,
                   program: torch.export.ExportedProgram | None = None) -> Build:
    """ExportedProgram with dynamic batch and views, verified, saved with torch.export.save.
    program: the result of export_checkpoint(checkpoint), when already at hand."""
    checkpoint = resolve_checkpoint(checkpoint)
    reference = RefineModule(load_checkpoint(checkpoint))
    program = program or export_refine_module(reference)
    verification = verify(program.module(), reference, dynamic_shapes_to_verify(reference.config), "fp32")
    path = Path(out) if out else cache_dir(create=True) / artifact_filename(checkpoint, "exported")
    info = artifact_info(checkpoint, "exported", "fp32", "cpu", views=None, batch=[1, None],
                         verification=vars(verification))
    tmp = temporary_path(path)
    example_inputs, program.example_inputs = program.example_inputs, None
    try:   # saved without example inputs: the archive then holds no pickled tensors at all
        torch.export.save(program, tmp)
    finally:
        program.example_inputs = example_inputs   # AOTInductor needs them
    install_artifact(tmp, path, info)
    log.info("wrote %s (%s)", path, verification)
    return Build(path, info, verification)


def build_aoti(checkpoint: str | Path | None = None, out: str | Path | None = None,
               program: torch.export.ExportedProgram | None = None) -> Build:
    """AOTInductor package for this CPU, dynamic batch and views, verified before it is moved in
    place. Compiling takes minutes on a small CPU (about 2 min for the default config on 2 cores).
    program: the result of export_checkpoint(checkpoint), when already at hand."""
    checkpoint = resolve_checkpoint(checkpoint)
    reference = RefineModule(load_checkpoint(checkpoint))
    program = program or export_refine_module(reference)
    path = Path(out) if out else cache_dir(create=True) / artifact_filename(checkpoint, "aoti-cpu")
    tmp = temporary_path(path)
    log.info("compiling the AOTInductor package %s (minutes on a small CPU)", path)
    try:
        torch._inductor.aoti_compile_and_package(program, package_path=str(tmp))
        runner = torch._inductor.aoti_load_package(str(tmp))
        verification = verify(runner, reference, dynamic_shapes_to_verify(reference.config), "fp32")
        info = artifact_info(checkpoint, "aoti-cpu", "fp32", "cpu", views=None, batch=[1, None],
                             verification=vars(verification))
        install_artifact(tmp, path, info)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s (%s)", path, verification)
    return Build(path, info, verification)


def load_exported(artifact: str | Path, checkpoint: str | Path | None = None) -> nn.Module:
    """A checked ExportedProgram file as a callable module on the CPU."""
    check_artifact(artifact, checkpoint, "exported")
    return torch.export.load(str(artifact)).module()


def tensorrt_unavailable_reason() -> str | None:
    """Why TensorRT cannot run here, or None when torch_tensorrt and a CUDA device are present."""
    missing = []
    if importlib.util.find_spec("torch_tensorrt") is None:
        missing.append(f"torch_tensorrt is not installed (pip install torch-tensorrt built for torch "
                       f"{torch.__version__.split('+')[0]})")
    if not torch.cuda.is_available():
        missing.append("no CUDA device (torch.cuda.is_available() is False"
                       + (", this torch is CPU-only)" if torch.version.cuda is None else ")"))
    return "; ".join(missing) or None


def build_tensorrt(checkpoint: str | Path | None = None, precision: str = "fp32",
                   batch: tuple[int, int, int] = (1, 1, 1024), views: int | None = None,
                   out: str | Path | None = None, device: str = "cuda") -> Build:
    """torch_tensorrt engine for this GPU: batch (min, opt, max), views fixed (default max_views).

    fp16 is explicit in the graph (RefineModule precision "fp16"), so it does not depend on
    TensorRT's precision flags; fp32 is true fp32 (TF32 off). Verified against eager float32 CUDA,
    then saved with torch_tensorrt.save in its ExportedProgram format.
    """
    reason = tensorrt_unavailable_reason()
    if reason:
        raise RuntimeError(f"cannot build a TensorRT engine: {reason}")
    import torch_tensorrt
    from torch.export.passes import move_to_device_pass

    min_batch, opt_batch, max_batch = batch
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise ValueError(f"batch range must be 1 <= min <= opt <= max, got {batch}")
    checkpoint = resolve_checkpoint(checkpoint)
    model = load_checkpoint(checkpoint)
    cfg = model.cfg
    views = views or cfg.max_views
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    # Exported on the CPU like the other kinds, then moved: constants and device arguments follow.
    program = export_refine_module(RefineModule(model, precision), views, (min_batch, max_batch))
    program = move_to_device_pass(program, device)

    def shape(b):
        return (b, views, cfg.window, cfg.num_joints * cfg.dims)
    inputs = [torch_tensorrt.Input(min_shape=shape(min_batch), opt_shape=shape(opt_batch),
                                   max_shape=shape(max_batch), dtype=torch.float32),
              torch_tensorrt.Input(min_shape=(min_batch, views), opt_shape=(opt_batch, views),
                                   max_shape=(max_batch, views), dtype=torch.bool),
              torch_tensorrt.Input(min_shape=shape(min_batch)[:-1] + (cfg.num_joints,),
                                   opt_shape=shape(opt_batch)[:-1] + (cfg.num_joints,),
                                   max_shape=shape(max_batch)[:-1] + (cfg.num_joints,), dtype=torch.float32)]
    log.info("building a TensorRT %s engine for %s, batch %s, %d views (about a minute)",
             precision, torch.cuda.get_device_name(device), batch, views)
    # disable_tf32: TensorRT rounds fp32 matmul inputs to TF32 (10-bit mantissa) unless told not to
    engine = torch_tensorrt.dynamo.compile(program, inputs, min_block_size=1, disable_tf32=True)
    shapes = [(b, views) for b in sorted({min_batch, opt_batch, max_batch})]
    verification = verify(engine, RefineModule(model.to(device)), shapes, precision, device)
    path = Path(out) if out else cache_dir(create=True) / artifact_filename(
        checkpoint, artifact_tag("tensorrt", precision, device))
    info = artifact_info(checkpoint, "tensorrt", precision, "cuda", views=views,
                         batch=[min_batch, opt_batch, max_batch], gpu=gpu_tag(device),
                         torch_tensorrt=installed_version("torch_tensorrt"), verification=vars(verification))
    example = random_windows(cfg, opt_batch, views, device=device)
    batch_dim = Dim("batch", min=min_batch, max=max_batch)
    tmp = temporary_path(path)
    torch_tensorrt.save(engine, str(tmp), output_format="exported_program", arg_inputs=list(example),
                        dynamic_shapes=({0: batch_dim}, {0: batch_dim}, {0: batch_dim}))
    install_artifact(tmp, path, info)
    log.info("wrote %s (%s)", path, verification)
    return Build(path, info, verification)
