"""Checkpoints: weights as safetensors beside a JSON file with the model config. Never pickle.

A checkpoint `NAME.safetensors` has `NAME.json` next to it:
    {"model": "synsp" | "smoothnet", "config": {...}, "meta": {...free-form: data, errors, metrics}}
Loading accepts only that pair; any other file type is refused before it is read, and every
weight must be floating point and finite (a NaN weight would otherwise turn every output NaN).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from synsp_core.model import SynSP, SynSPConfig

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "synsp_h36m17_3d.safetensors"


def config_path(checkpoint: str | Path) -> Path:
    return Path(checkpoint).with_suffix(".json")


def _model_registry():
    from synsp_core.smoothnet import SmoothNet, SmoothNetConfig  # local import: optional model
    return {"synsp": (SynSP, SynSPConfig), "smoothnet": (SmoothNet, SmoothNetConfig)}


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: dict | None = None,
                    half: bool = False) -> Path:
    """Write NAME.safetensors (fp16 if `half`) and NAME.json; returns the .safetensors path."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors, got {path}")
    kind = {cls: name for name, (cls, _) in _model_registry().items()}[type(model)]
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().contiguous().cpu()
             for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp))
    config_path(path).write_text(json.dumps(
        {"model": kind, "config": model.cfg.to_dict(), "meta": meta or {}}, indent=2))
    tmp.replace(path)
    return path


def read_checkpoint_info(path: str | Path) -> dict:
    """The JSON beside a checkpoint: {"model", "config", "meta"}."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: only .safetensors checkpoints are loaded (no pickle files)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    cfg_file = config_path(path)
    if not cfg_file.is_file():
        raise FileNotFoundError(f"checkpoint config not found: {cfg_file} (expected beside {path.name})")
    try:
        return json.loads(cfg_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{cfg_file}: not valid JSON ({err})") from None


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """NAME.safetensors as float32 tensors. A file safetensors cannot read, or a weight that is not
    floating point (e.g. int32) or not finite in float32, is a ValueError naming file and tensor."""
    try:
        state = load_file(str(path))
    except SafetensorError as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    weights = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise ValueError(f"{path}: weight {name!r} is {tensor.dtype}, not floating point")
        weights[name] = tensor.float()
        if not torch.isfinite(weights[name]).all():
            raise ValueError(f"{path}: weight {name!r} holds NaN or inf (in float32)")
    return weights


def load_checkpoint(path: str | Path | None = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the model named in NAME.json and load NAME.safetensors into it (in float32, eval mode).

    path None loads the shipped default weights.
    """
    path = Path(path) if path is not None else DEFAULT_CHECKPOINT
    info = read_checkpoint_info(path)
    registry = _model_registry()
    if info.get("model") not in registry:
        raise ValueError(f"{config_path(path)}: unknown model kind {info.get('model')!r}")
    cls, cfg_cls = registry[info["model"]]
    model = cls(cfg_cls.from_dict(info["config"]))
    try:
        missing, unexpected = model.load_state_dict(load_weights(path), strict=False)
    except RuntimeError as err:   # a weight's shape differs from the config's
        raise ValueError(f"{path}: weights do not match the config: {err}") from None
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the config "
                         f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
    return model.to(device).eval()
