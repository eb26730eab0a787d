"""Train SynSP (or the SmoothNet baseline) on real motion with synthetic estimator errors.

    synsp-train --config training/configs/synsp_multiview.yaml epochs=20 out_dir=runs/mv
    torchrun --nproc_per_node 2 training/train.py --config ... (DDP: gloo on CPU, NCCL on GPU)

One YAML file per experiment; any key can be overridden as key=value (nested: errors.scale=1.5).
Writes to out_dir: last.safetensors/.json (+ last_optim.safetensors to resume), best.safetensors
(lowest validation MPJPE), TensorBoard scalars and an example-sequence plot.

Real estimator output instead of synthetic errors (SmoothNet-format data, 3D or 2D; docs/data.md):
    synsp-train --config training/configs/synsp_smoothnet_3d.yaml smoothnet_dir=PATH/data/poses
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from safetensors.torch import load_file, save_file

from synsp_core.checkpoint import read_checkpoint_info, save_checkpoint
from synsp_core.cli import run_command
from synsp_core.errors import error_model_from_config
from synsp_core.losses import BRANCH_LAMBDAS, sequence_loss, synsp_loss
from synsp_core.model import SynSP, SynSPConfig
from synsp_core.skeletons import Skeleton, get_skeleton
from synsp_core.smoothnet import SmoothNet, SmoothNetConfig
from synsp_core.swaa import swaa_reference
from synsp_training.conventions import ConventionSampler, get_convention
from synsp_training.data import (Augmentation, WindowSampler, hold_out_every, load_cmu, load_cmu_more,
                                 load_npz_arrays, load_smoothnet)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class TrainConfig:
    model: str = "synsp"                      # "synsp" or "smoothnet"
    model_config: dict = field(default_factory=dict)  # overrides of SynSPConfig / SmoothNetConfig
    # data
    cmu_dir: str = ""                         # folder with cmu17_120fps.npz (train/ and test/ keys); set by the configs
    use_cmu_more: bool = True                 # add cmu_more17_60fps.npz (made root-relative)
    smoothnet_dir: str = ""                   # optional SmoothNet-format data set (see load_sequences)
    smoothnet_name: str = ""                  # its '<dataset>_<estimator>', e.g. h36m_fcn ("": the folder's only one)
    smoothnet_kind: str = "3D"                # "3D" (mm) or "2D" (pixels: model_config needs dims 2, norm_scale in px)
    smoothnet_allow_pickle: bool = False      # SmoothNet's own files are pickled object arrays: opt in
    val_takes: tuple = ("_5",)                # train/ keys ending with these are held out for validation
    val_actions: tuple = ()                   # train/ actions held out whole (validation of unseen actions)
    fps_range: tuple = (20.0, 60.0)           # training frame rate drawn per sequence; null: each one's own rate
    views: int = 1
    random_live_views: bool = True
    calibration_mm: float = 0.0
    calibration_deg: float = 0.0
    errors: dict = field(default_factory=lambda: {"name": "realistic"})  # {name: detected}: real detections
    conventions: bool = False                 # redraw the skeleton convention per sequence (training/conventions.py)
    view_correlation_prob: float = 0.0        # share of sequence draws with correlated view errors
    confidence_informative_prob: float = 0.5  # share of views whose simulated confidence follows their error
    val_errors: dict = field(default_factory=dict)  # validation error model ({}: as errors), e.g. a held-out family
    val_convention: str = ""                  # validation skeleton convention ("": the data's own), e.g. h36m
    augment: bool = True
    augmentation: dict = field(default_factory=dict)  # overrides of data.Augmentation fields, e.g. up_axis: 1
    repeats: int = 1                          # draws of every sequence per epoch
    window_stride: int = 1                    # > 1: every stride-th window (or segment), at a random offset per epoch
    # SWAA-aware training: > 0 trains on segments of this many consecutive stride-1 windows, merges
    # each segment's refined windows by SWAA, and adds swaa_weight x Eq. 4 (accel lambda
    # swaa_accel_lambda) on the merged frames that every window covers: the output users get.
    # fused_weight adds the same on the mean of the live views (the node's ~/refined).
    # batch_size then counts segments.
    segment_windows: int = 0
    swaa_weight: float = 1.0
    swaa_accel_lambda: float = 1.0
    fused_weight: float = 0.0
    # > 0: each view's loss weighed by 1 / (its input's mean joint error + this, mm), scaled to mean 1
    # (view_weights): a clean input's few mm count as much as a noisy one's tens (the floor, docs/training.md)
    relative_loss_mm: float = 0.0
    # optimisation (the paper's: Adam, lr 1e-3, x0.95 per epoch, Eq. 4)
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    lr_decay: float = 0.95
    amsgrad: bool = True
    grad_clip: float = 1.0
    smoothnet_lambda: float = 1.0             # SmoothNet's own loss: L_pose + L_acc
    lambdas: dict = field(default_factory=lambda: dict(BRANCH_LAMBDAS))  # Eq. 4's lambda per SynSP output
    init_from: str = ""                       # start from these weights (fine-tuning), not from scratch
    time_budget_min: float = 0.0              # stop after this many minutes (0: no limit)
    seed: int = 0
    threads: int = 0                          # torch CPU threads (0: torch's default)
    amp: bool = True                          # bf16 autocast on CUDA only
    out_dir: str = "runs/synsp"
    log_every: int = 50
    half_weights: bool = False                # store fp16 weights in the checkpoints
    keep_epochs: bool = False                 # also keep epoch_<k>.safetensors (choose later, e.g. on a matrix)

    @classmethod
    def load(cls, path: str | None, overrides: list[str]) -> "TrainConfig":
        raw = yaml.safe_load(Path(path).read_text()) if path else {}
        if not isinstance(raw, dict):
            raise ValueError(f"expected a mapping of settings (key: value lines), got {type(raw).__name__}")
        for item in overrides:
            key, _, value = item.partition("=")
            if not _:
                raise ValueError(f"override {item!r} is not key=value")
            node = raw
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = yaml.safe_load(value)
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        types = {f.name: f.type for f in fields(cls)}
        for k, v in raw.items():   # YAML 1.1 reads 3e-4 as a string; tuples come as lists
            if types[k] in ("float", "int") and isinstance(v, str):
                raw[k] = float(v) if types[k] == "float" else int(v)
            elif types[k] == "tuple" and v is not None:
                raw[k] = tuple(v)
        return cls(**raw)


def build_model(cfg: TrainConfig, skeleton: Skeleton) -> torch.nn.Module:
    """The model for data in `skeleton`'s layout (model_config may not contradict it)."""
    layout = {"skeleton": skeleton.name, "num_joints": skeleton.num_joints, "root_joints": list(skeleton.root)}
    clash = {k: cfg.model_config[k] for k in layout if k in cfg.model_config
             and list(np.atleast_1d(cfg.model_config[k])) != list(np.atleast_1d(layout[k]))}
    if clash:
        raise ValueError(f"model_config {clash} contradicts the data's layout {layout}")
    model_config = {**cfg.model_config, **layout}
    if cfg.model == "synsp":
        return SynSP(SynSPConfig.from_dict({"max_views": cfg.views, **model_config}))
    if cfg.model == "smoothnet":
        return SmoothNet(SmoothNetConfig.from_dict(model_config))
    raise ValueError(f"unknown model {cfg.model!r}: 'synsp' or 'smoothnet'")


def uses_detections(cfg: TrainConfig) -> bool:
    """errors: {name: detected} trains on real estimator output instead of synthetic errors."""
    return (cfg.errors if isinstance(cfg.errors, str) else cfg.errors.get("name")) == "detected"


def load_sequences(cfg: TrainConfig):
    """Training and validation sequences.

    With cmu_dir: the CMU train split (val takes held out) + cmu_more + the SmoothNet train split
    (training only). With cmu_dir "": the SmoothNet train split alone, its sequences 0, 10, 20, ...
    held out for validation (hold_out_every; SmoothNet's data sets have no validation split).
    """
    if uses_detections(cfg) and cfg.cmu_dir:
        raise ValueError("errors: detected trains on real estimator output, which the CMU data lack: "
                         "set cmu_dir='' and smoothnet_dir")
    train, val = [], []
    if cfg.cmu_dir:
        cmu = load_cmu(cfg.cmu_dir, "train")
        held_out = [s.name.endswith(cfg.val_takes) or s.name.split("/")[-1].rsplit("_", 1)[0] in cfg.val_actions
                    for s in cmu]
        train = [s for s, held in zip(cmu, held_out) if not held]
        val = [s for s, held in zip(cmu, held_out) if held]
        more = Path(cfg.cmu_dir) / "cmu_more17_60fps.npz"
        if cfg.use_cmu_more and more.is_file():
            train += load_cmu_more(str(more), root_relative=True)
    if cfg.smoothnet_dir:
        pairs = load_smoothnet(cfg.smoothnet_dir, "train", name=cfg.smoothnet_name or None,
                               kind=cfg.smoothnet_kind, allow_pickle=cfg.smoothnet_allow_pickle)
        smoothnet = [gt for gt, _detected in pairs]   # gt.detected holds the estimator output
        if cfg.cmu_dir:
            train += smoothnet
        else:
            train, val = hold_out_every(smoothnet, 10)
    if not train:
        raise ValueError("no training data: set cmu_dir and/or smoothnet_dir")
    return train, val


def split_segments(batch, window: int):
    """Segments (B, V, S, C) -> all their stride-1 windows as a batch (B * N, V, W, C), N = S - W + 1."""
    def unfold(x):   # (B, V, S, C) -> (B * N, V, W, C)
        x = x.unfold(2, window, 1).permute(0, 2, 1, 4, 3)
        return x.reshape(-1, *x.shape[2:])
    n = batch.noisy.shape[2] - window + 1
    return type(batch)(unfold(batch.noisy), unfold(batch.gt), batch.view_mask.repeat_interleave(n, dim=0),
                       unfold(batch.confidence))


def view_weights(batch, cfg: TrainConfig, dims: int) -> torch.Tensor:
    """(B, V) loss weights: the view mask, or with relative_loss_mm > 0 each live view weighed by
    1 / (its input's mean joint error over observed joints + relative_loss_mm), scaled to mean 1
    over the live views of the batch."""
    mask = batch.view_mask.to(batch.gt.dtype)
    if not cfg.relative_loss_mm:
        return mask
    error = (batch.noisy - batch.gt).unflatten(-1, (-1, dims)).norm(dim=-1)          # (B, V, T, J)
    observed = (batch.confidence > 0).to(error.dtype)
    mean_error = (error * observed).sum(dim=(2, 3)) / observed.sum(dim=(2, 3)).clamp_min(1)
    weights = mask / (mean_error + cfg.relative_loss_mm)
    return weights * mask.sum() / weights.sum()


def merged_loss(refined: torch.Tensor, segments, cfg: TrainConfig, scale: float) -> torch.Tensor:
    """Eq. 4 on SWAA-merged segments, over the frames every window of the segment covers: per view,
    plus fused_weight x the same on the mean of the live views.

    refined (B * N, V, W, C) windows of segments (B, V, S, C), in data units.
    """
    b, v, s, c = segments.gt.shape
    w = refined.shape[2]
    windows = refined.view(b, s - w + 1, v, w, c).transpose(1, 2)            # (B, V, N, W, C)
    merged = swaa_reference(windows)[:, :, w - 1:s - w + 1] / scale          # (B, V, S - 2(W-1), C)
    target = segments.gt[:, :, w - 1:s - w + 1] / scale
    mask = segments.view_mask
    weights = view_weights(segments, cfg, c // segments.confidence.shape[-1])
    loss = sequence_loss(merged, target, cfg.swaa_accel_lambda, weights)
    if cfg.fused_weight:
        live = mask[:, :, None, None].to(merged.dtype)
        fused = (merged * live).sum(dim=1, keepdim=True) / live.sum(dim=1, keepdim=True)
        fused_weights = (weights.sum(dim=1) / mask.sum(dim=1).clamp_min(1))[:, None]   # mean over live views
        loss = loss + cfg.fused_weight * sequence_loss(fused, target[:, :1], cfg.swaa_accel_lambda, fused_weights)
    return loss


def loss_fn(model, batch, cfg: TrainConfig, scale: float):
    """Eq. 4 on normalized coordinates (data units / norm_scale); with segment_windows, plus the
    SWAA-merged loss (see TrainConfig)."""
    inner = model.module if hasattr(model, "module") else model
    if isinstance(inner, SynSP):
        segments = batch if cfg.segment_windows else None
        if segments is not None:
            batch = split_segments(segments, inner.cfg.window)
        out = model(batch.noisy, batch.view_mask, batch.confidence)
        scaled = type(out)(out.position / scale, out.acceleration / scale, out.refined / scale, out.quality)
        loss, parts = synsp_loss(scaled, batch.gt / scale, view_weights(batch, cfg, inner.cfg.dims), cfg.lambdas)
        if segments is not None:
            merged = merged_loss(out.refined, segments, cfg, scale)
            loss = loss + cfg.swaa_weight * merged
            parts["merged"] = float(merged.detach())
        return loss, parts
    gt = batch.gt / scale
    pred = model(batch.noisy, batch.view_mask) / scale
    loss = sequence_loss(pred, gt, cfg.smoothnet_lambda, batch.view_mask)
    return loss, {"refined": float(loss.detach())}


def window_errors(pred: torch.Tensor, gt: torch.Tensor, view_mask: torch.Tensor, dims: int):
    """Sums over live view-windows of per-window MPJPE (mm) and Accel error (mm/frame^2), and their count."""
    live = view_mask.float()
    pos = (pred - gt).unflatten(-1, (-1, dims)).norm(dim=-1).mean(dim=(-2, -1))
    acc = (pred.diff(n=2, dim=2) - gt.diff(n=2, dim=2)).unflatten(-1, (-1, dims)).norm(dim=-1).mean(dim=(-2, -1))
    return float((pos * live).sum()), float((acc * live).sum()), float(live.sum())


@torch.no_grad()
def validate(model, sampler: WindowSampler, device) -> dict[str, float]:
    """Window-level MPJPE and Accel error of the final output (and of the input) on the validation set."""
    model.eval()
    dims = model.cfg.dims
    totals = np.zeros(5)
    for batch in sampler.batches(epoch=0, batch_size=1024, shuffle=False):
        batch = to_device(batch, device)
        out = model(batch.noisy, batch.view_mask, batch.confidence) if isinstance(model, SynSP) \
            else model(batch.noisy, batch.view_mask)
        pred = out.refined if isinstance(out, tuple) else out
        e_pos, e_acc, n = window_errors(pred, batch.gt, batch.view_mask, dims)
        i_pos, i_acc, _ = window_errors(batch.noisy, batch.gt, batch.view_mask, dims)
        totals += (e_pos, e_acc, i_pos, i_acc, n)
    model.train()
    n = totals[4]
    return {k: float(v / n) for k, v in zip(("mpjpe", "accel", "input_mpjpe", "input_accel"), totals)}


def to_device(batch, device):
    return type(batch)(*(t.to(device, non_blocking=True) for t in (batch.noisy, batch.gt, batch.view_mask,
                                                                   batch.confidence)))


def save_optimizer(path: Path, opt: torch.optim.Optimizer, sched, epoch: int, best: float):
    """Optimizer state as safetensors tensors + scalars in the metadata (never pickle)."""
    state = opt.state_dict()
    tensors, meta = {}, {"epoch": str(epoch), "best": repr(float(best)), "sched_last_epoch": str(sched.last_epoch)}
    for pid, s in state["state"].items():
        for k, v in s.items():
            tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous() if torch.is_tensor(v) else torch.tensor(v)
    save_file(tensors, str(path), metadata=meta)


def load_optimizer(path: Path, opt: torch.optim.Optimizer, sched) -> tuple[int, float]:
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    state = opt.state_dict()
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state["state"].setdefault(int(pid), {})[name] = value
    opt.load_state_dict(state)
    sched.last_epoch = int(meta["sched_last_epoch"])
    for group, lr in zip(opt.param_groups, sched.get_last_lr() if hasattr(sched, "get_last_lr") else []):
        group["lr"] = lr
    return int(meta["epoch"]), float(meta["best"])


def plot_example(model, sampler: WindowSampler, device, path: Path):
    """Ground truth, input and output of one validation window run: a joint's trajectory (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    data = sampler.synthesize_epoch(0)
    frames = min(240, data.gt.shape[0])
    w = sampler.window
    noisy = torch.from_numpy(data.noisy[:1, :frames]).to(device)       # one view
    starts = torch.arange(frames - w + 1)
    windows = noisy[:, starts[:, None] + torch.arange(w)].permute(1, 0, 2, 3)   # (N, 1, W, C)
    with torch.no_grad():
        model.eval()
        out = model(windows)
        model.train()
    pred = out.refined if isinstance(out, tuple) else out
    refined = swaa_reference(pred[:, 0].cpu()).numpy()
    joint = 16 * 3 if data.gt.shape[1] >= 51 else 0   # right wrist x in H36M-17
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(data.gt[:frames, joint], "k", label="ground truth")
    ax.plot(data.noisy[0, :frames, joint], "r", alpha=0.5, label="input")
    ax.plot(refined[:, joint], "b", label="refined")
    ax.set_xlabel("frame"); ax.set_ylabel("r_wrist x (mm)"); ax.legend(loc="upper right")
    fig.tight_layout(); fig.savefig(path, dpi=100); plt.close(fig)
    return fig


def load_init_weights(model: torch.nn.Module, path: str) -> None:
    """Start from another run's weights. Settings without weights (body_frame, dropout) may change,
    and a part switched off here (use_refinement: false, a Tab. 5 ablation) leaves its weights
    out; every weight of this model must be there, with its shape."""
    state = {k: v.float() for k, v in load_file(path).items()}
    own = model.state_dict()
    grown = own["embed.weight"].shape[1] - state["embed.weight"].shape[1] if "embed.weight" in state else 0
    if grown > 0:   # confidence_input adds embedding inputs: they start at zero weight
        state["embed.weight"] = torch.cat([state["embed.weight"], state["embed.weight"].new_zeros(len(state["embed.weight"]), grown)], 1)
    left_out = sorted(state.keys() - own.keys())
    try:
        model.load_state_dict({k: v for k, v in state.items() if k in own})
    except RuntimeError as err:
        raise ValueError(f"init_from {path}: its weights do not fit this run's model: {err}") from None
    if left_out:
        print(f"init_from {path}: left out {len(left_out)} tensors this model has no part for "
              f"({', '.join(sorted({k.split('.')[0] for k in left_out}))})", flush=True)


# The least value of each numeric setting that makes a run; every int and float is checked finite.
MINIMUM = {"epochs": 1, "batch_size": 1, "views": 1, "repeats": 1, "window_stride": 1, "log_every": 1,
           "segment_windows": 0, "lr": 0, "lr_decay": 0, "grad_clip": 0, "time_budget_min": 0, "threads": 0,
           "calibration_mm": 0, "calibration_deg": 0}


def load_config(path: str | None, overrides: list[str]) -> TrainConfig:
    """TrainConfig.load, then every number checked (type, finite, MINIMUM) and fps_range and
    init_from, so that a mistake is a one-line ValueError naming the file and key before out_dir
    is written (not a ZeroDivisionError after it)."""
    source = path or "overrides"
    try:   # YAML syntax, an unknown key, 'abc' for a number, a.b=1 where a is no mapping
        cfg = TrainConfig.load(path, overrides)
    except (yaml.YAMLError, ValueError, TypeError) as err:
        raise ValueError(f"{source}: {err}") from None
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.type not in ("int", "float"):
            continue
        kinds = int if f.type == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            raise ValueError(f"{source}: {f.name} must be a finite {f.type}, got {value!r}")
        if value < MINIMUM.get(f.name, -math.inf):
            raise ValueError(f"{source}: {f.name} must be >= {MINIMUM[f.name]}, got {value!r}")
    rates = cfg.fps_range
    if rates is not None and not (len(rates) == 2 and all(isinstance(r, (int, float)) for r in rates)
                                  and 0 < rates[0] <= rates[1] < math.inf):
        raise ValueError(f"{source}: fps_range must be [low, high] frame rates, 0 < low <= high, or null; "
                         f"got {list(rates)}")
    if cfg.init_from and not Path(cfg.init_from).is_file():
        raise FileNotFoundError(f"{source}: init_from {cfg.init_from} not found")
    return cfg


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="experiment YAML (training/configs/*.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from out_dir/last.safetensors")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    train_seqs, val_seqs = load_sequences(cfg)
    model = build_model(cfg, get_skeleton(train_seqs[0].skeleton)).to(device)
    if cfg.init_from:
        load_init_weights(model, cfg.init_from)
    mcfg = model.cfg
    data_dims = 2 if cfg.smoothnet_kind == "2D" else 3
    if cfg.smoothnet_dir and mcfg.dims != data_dims:
        raise ValueError(f"smoothnet_kind {cfg.smoothnet_kind} data need model_config dims {data_dims} "
                         f"(2D: and norm_scale in pixels, e.g. 500)")
    errors = None if uses_detections(cfg) else error_model_from_config(cfg.errors)
    common = dict(window=mcfg.window, num_views=cfg.views, error_model=errors, fps_range=cfg.fps_range,
                  calibration_mm=cfg.calibration_mm, calibration_deg=cfg.calibration_deg, seed=cfg.seed,
                  confidence_informative_prob=cfg.confidence_informative_prob)
    if cfg.segment_windows and (cfg.model != "synsp" or cfg.segment_windows < mcfg.window + 2):
        raise ValueError(f"segment_windows (SWAA-aware training) needs model: synsp and at least window + 2 = "
                         f"{mcfg.window + 2} windows (3 fully merged frames), got {cfg.segment_windows}")
    segment = cfg.segment_windows + mcfg.window - 1 if cfg.segment_windows else mcfg.window
    sampler = WindowSampler(train_seqs, augmentation=Augmentation(**cfg.augmentation) if cfg.augment else None,
                            random_live_views=cfg.random_live_views, repeats=cfg.repeats,
                            stride=cfg.window_stride, conventions=ConventionSampler() if cfg.conventions else None,
                            view_correlation_prob=cfg.view_correlation_prob, **{**common, "window": segment})
    val_errors = error_model_from_config(cfg.val_errors) if cfg.val_errors else errors
    val_convention = get_convention(cfg.val_convention) if cfg.val_convention else None
    val_sampler = WindowSampler(val_seqs, augmentation=None, random_live_views=False,
                                conventions=val_convention and (lambda rng: val_convention),
                                **{**common, "seed": cfg.seed + 1, "error_model": val_errors})

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, amsgrad=cfg.amsgrad)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    out_dir = Path(cfg.out_dir)
    start_epoch, best = 0, math.inf
    if args.resume and (out_dir / "last.safetensors").is_file():
        info = read_checkpoint_info(out_dir / "last.safetensors")
        if info["config"] != mcfg.to_dict():
            raise ValueError(f"{out_dir}/last.json: model config differs from this run's; cannot resume")
        state = load_file(str(out_dir / "last.safetensors"))
        model.load_state_dict({k: v.float() for k, v in state.items()})
        start_epoch, best = load_optimizer(out_dir / "last_optim.safetensors", opt, sched)
        start_epoch += 1
    train_model = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
        writer = SummaryWriter(str(out_dir / "tb"))
    from tqdm import tqdm

    amp = cfg.amp and device.type == "cuda"
    t0, step = time.time(), start_epoch * 10**6
    history = []
    for epoch in range(start_epoch, cfg.epochs):
        data = sampler.synthesize_epoch(epoch)
        bar = tqdm(sampler.batches(epoch, cfg.batch_size, rank=rank, world_size=world, data=data),
                   total=math.ceil(data.num_windows / world / cfg.batch_size), disable=rank != 0,
                   desc=f"epoch {epoch}", mininterval=10)
        for batch in bar:
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss, parts = loss_fn(train_model, batch, cfg, mcfg.norm_scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            if writer and step % cfg.log_every == 0:
                writer.add_scalar("loss/total", loss.item(), step)
                for k, v in parts.items():
                    writer.add_scalar(f"loss/{k}", v, step)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if cfg.time_budget_min and time.time() - t0 > cfg.time_budget_min * 60:
                break
        sched.step()
        if rank == 0:
            val = validate(model, val_sampler, device)
            history.append({"epoch": epoch, **val, "minutes": (time.time() - t0) / 60})
            for k, v in val.items():
                writer.add_scalar(f"val/{k}", v, epoch)
            writer.add_scalar("lr", opt.param_groups[0]["lr"], epoch)
            print(f"epoch {epoch}: val MPJPE {val['mpjpe']:.2f} mm (input {val['input_mpjpe']:.2f}), "
                  f"Accel {val['accel']:.2f} (input {val['input_accel']:.2f}) mm/frame^2, "
                  f"{(time.time() - t0) / 60:.1f} min", flush=True)
            meta = {"train_config": asdict(cfg), "epoch": epoch, "val": val}
            if val["mpjpe"] < best:
                best = val["mpjpe"]
                save_checkpoint(out_dir / "best.safetensors", model, meta, half=cfg.half_weights)
            save_checkpoint(out_dir / "last.safetensors", model, meta, half=cfg.half_weights)
            if cfg.keep_epochs:
                save_checkpoint(out_dir / f"epoch_{epoch}.safetensors", model, meta, half=cfg.half_weights)
            save_optimizer(out_dir / "last_optim.safetensors", opt, sched, epoch, best)
        if cfg.time_budget_min and time.time() - t0 > cfg.time_budget_min * 60:
            break
    if rank == 0:
        writer.add_figure("example", plot_example(model, val_sampler, device, out_dir / "example.png"))
        writer.close()
    if distributed:
        dist.destroy_process_group()
    return {"best_val_mpjpe": best, "history": history}


def cli_main() -> int:
    """The synsp-train command: exit status 0 after training, 2 with a one-line error on a mistake."""
    return run_command("synsp-train", main)


if __name__ == "__main__":
    sys.exit(cli_main())
