"""One inference interface for the node and offline refinement.

    backend = create_backend(checkpoint=None, backend="auto")
    refined, quality = backend(poses, view_mask)   # (B, V, T, J*D) float32, (B, V) bool

Only the eager backend exists so far; the deployment work adds AOTInductor and TensorRT.
"""
from __future__ import annotations

from pathlib import Path

import torch

from synsp_core.checkpoint import load_checkpoint
from synsp_core.model import SynSP, SynSPConfig


class EagerBackend:
    """Plain PyTorch inference on CPU or CUDA."""

    name = "eager"

    def __init__(self, model: SynSP, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config: SynSPConfig = model.cfg

    @torch.inference_mode()
    def __call__(self, poses: torch.Tensor, view_mask: torch.Tensor | None = None):
        poses = poses.to(self.device, torch.float32)
        if view_mask is not None:
            view_mask = view_mask.to(self.device)
        out = self.model(poses, view_mask)
        return out.refined, out.quality


def create_backend(checkpoint: str | Path | None = None, backend: str = "auto",
                   device: str | None = None) -> EagerBackend:
    """Load a checkpoint (None: the shipped weights) behind the requested backend."""
    if backend not in ("auto", "eager", "cpu"):
        raise ValueError(f"backend {backend!r} is not available; this build has 'auto', 'eager', 'cpu'")
    model = load_checkpoint(checkpoint)
    return EagerBackend(model, device or "cpu")
