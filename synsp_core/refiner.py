"""Offline refinement of whole recordings: every stride-1 window through the model, then SWAA.

    from synsp_core import Refiner
    refiner = Refiner.from_pretrained()           # shipped weights, best available backend
    refined = refiner.refine(poses)               # (T, J, 3) or (V, T, J, 3), mm
    refined, fused = refiner.refine_views(views)  # (V, T, J, 3) -> per view and views averaged

3D output then goes through the bone-length stage (synsp_core.bones: a running estimate of the
person's bone lengths from the fused output, every output pose projected onto it), as in the node;
`bone_lengths=False` turns it off.

Sequences shorter than the window are padded by repeating their last frame, refined, and cut
back. With `fps`, a recording outside the frame-rate range the checkpoint was trained on is
resampled into it, refined, and resampled back to its own frames.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synsp_core.bones import BoneLengthPrior, bone_prior_for
from synsp_core.motion import resample
from synsp_core.swaa import swaa


def check_poses(poses, num_joints: int, dims: int, name: str = "poses") -> np.ndarray:
    """Validate a (T, J, D) or (V, T, J, D) array: finite, non-empty, the model's joint count and D."""
    arr = np.asarray(poses)
    if arr.ndim not in (3, 4):
        raise ValueError(f"{name}: expected (T, J, {dims}) or (V, T, J, {dims}), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array, shape {arr.shape}")
    if arr.shape[-2:] != (num_joints, dims):
        raise ValueError(f"{name}: the model takes {num_joints} joints x {dims} dims, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN/inf or is not numeric")
    return arr.astype(np.float32)


class Refiner:
    """Refines recorded sequences with a window model (SynSP, or anything with the same call)."""

    def __init__(self, infer, window: int, num_joints: int, dims: int, max_views: int,
                 fps_range: tuple[float, float] | None = None, batch_size: int = 1024,
                 bone_prior: BoneLengthPrior | None = None):
        """infer(poses (B, V, W, J*D) tensor mm, view_mask (B, V)) -> refined tensor of that shape;
        bone_prior: the bone-length stage after SWAA (None: off)."""
        self.infer, self.window, self.num_joints, self.dims = infer, window, num_joints, dims
        self.max_views, self.fps_range, self.batch_size = max_views, fps_range, batch_size
        self.bone_prior = bone_prior

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path | None = None, backend: str = "auto",
                        batch_size: int = 1024, bone_lengths: bool = True) -> "Refiner":
        """Load a SynSP checkpoint (None: the shipped weights) behind a runtime backend."""
        from synsp_core.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint_info
        from synsp_core.runtime import create_backend
        engine = create_backend(checkpoint, backend)
        info = read_checkpoint_info(checkpoint or DEFAULT_CHECKPOINT)
        fps_range = info.get("meta", {}).get("train_config", {}).get("fps_range")
        c = engine.config
        return cls(lambda poses, mask: engine(poses, mask)[0], c.window, c.num_joints, c.dims,
                   c.max_views, tuple(fps_range) if fps_range else None, batch_size, bone_prior_for(c, bone_lengths))

    @classmethod
    def from_model(cls, model: torch.nn.Module, batch_size: int = 1024, max_views: int = 8,
                   bone_lengths: bool = True) -> "Refiner":
        """Wrap an in-memory model (SynSP or SmoothNet) in eval mode, e.g. during evaluation."""
        model.eval()
        c = model.cfg

        @torch.inference_mode()
        def infer(poses, mask):
            out = model(poses, mask)
            return out.refined if isinstance(out, tuple) else out
        return cls(infer, c.window, c.num_joints, c.dims, getattr(c, "max_views", max_views), None, batch_size,
                   bone_prior_for(c, bone_lengths))

    def refine(self, poses, fps: float | None = None, name: str = "poses") -> np.ndarray:
        """(T, J, D) -> refined (T, J, D); (V, T, J, D) -> refined (V, T, J, D), all views at once."""
        arr = check_poses(poses, self.num_joints, self.dims, name)
        if arr.ndim == 3:
            return self.refine_views(arr[None], fps, name)[0][0]
        return self.refine_views(arr, fps, name)[0]

    def refine_views(self, views, fps: float | None = None, name: str = "poses") -> tuple[np.ndarray, np.ndarray]:
        """(V, T, J, D) views of one motion in one frame -> (refined (V, T, J, D), fused (T, J, D)).

        fused is the mean of the refined views; with the bone-length stage, both are then projected
        onto the lengths estimated from fused (so fused is no longer exactly the mean of refined)."""
        arr = check_poses(views, self.num_joints, self.dims, name)
        if arr.ndim == 3:
            arr = arr[None]
        rate = self._model_rate(fps)
        if rate is not None:
            inner = np.stack([resample(v, fps, rate) for v in arr])
            refined = self._refine_at_model_rate(inner)
            refined = np.stack([resample(v, rate, fps)[: arr.shape[1]] for v in refined])
        else:
            refined = self._refine_at_model_rate(arr)
        fused = refined.mean(axis=0)
        if self.bone_prior is None:
            return refined, fused
        lengths = self.bone_prior.stream_lengths(fused)   # one recording = one stream
        projected = self.bone_prior.project(np.concatenate([refined, fused[None]]), lengths)  # one call for all
        return projected[:-1], projected[-1]

    def _model_rate(self, fps: float | None) -> float | None:
        """The rate to refine at when fps lies outside the trained range, else None (no resampling)."""
        if fps is None or self.fps_range is None:
            return None
        lo, hi = self.fps_range
        return None if lo <= fps <= hi else float(np.clip(fps, lo, hi))

    def _refine_at_model_rate(self, views: np.ndarray) -> np.ndarray:
        v, t, j, d = views.shape
        if v > self.max_views:
            raise ValueError(f"{v} views, but the model takes at most {self.max_views}")
        w = self.window
        padded = np.concatenate([views, np.repeat(views[:, -1:], max(0, w - t), axis=1)], axis=1)
        seq = torch.from_numpy(padded.reshape(v, len(padded[0]), j * d))
        n = seq.shape[1] - w + 1
        windows = seq.unfold(1, w, 1).permute(1, 0, 3, 2)                 # (N, V, W, J*D)
        mask = torch.ones(1, v, dtype=torch.bool)
        outs = [self.infer(windows[i:i + self.batch_size].contiguous(), mask.expand(min(self.batch_size, n - i), v))
                for i in range(0, n, self.batch_size)]
        out = torch.cat(outs).float().cpu()                                # (N, V, W, J*D)
        merged = swaa(out.permute(1, 0, 2, 3).contiguous())                # (V, T_padded, J*D)
        return merged[:, :t].reshape(v, t, j, d).numpy()
