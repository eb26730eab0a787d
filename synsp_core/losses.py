"""Training losses (Eq. 4 of SynSP): L1 position + lambda * L1 acceleration along the frame axis."""
from __future__ import annotations

import torch

from synsp_core.model import SynSPOutput

# lambda of Eq. 4 for each output: Position branch, Acceleration branch, final (refined) output
BRANCH_LAMBDAS = {"position": 0.0, "acceleration": 1.0, "refined": 0.5}


def acceleration(poses: torch.Tensor, frame_dim: int = -2) -> torch.Tensor:
    """Second difference along the frame axis: A_t = P_{t+2} - 2 P_{t+1} + P_t (T - 2 frames)."""
    return poses.diff(n=2, dim=frame_dim)


def sequence_loss(pred: torch.Tensor, target: torch.Tensor, lam: float,
                  view_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 4: mean |P - P_gt| + lam * mean |A - A_gt| over live views, frames and coordinates.

    pred, target (B, V, T, C); view_mask (B, V) bool, True = view counts, or float weights per view.
    """
    pos = (pred - target).abs().mean(dim=(-2, -1))                                   # (B, V)
    acc = (acceleration(pred) - acceleration(target)).abs().mean(dim=(-2, -1))       # (B, V)
    per_view = pos + lam * acc
    if view_mask is None:
        return per_view.mean()
    w = view_mask.to(per_view.dtype)
    return (per_view * w).sum() / w.sum().clamp(min=1)


def synsp_loss(out: SynSPOutput, target: torch.Tensor, view_mask: torch.Tensor | None = None,
               lambdas: dict[str, float] = BRANCH_LAMBDAS) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of Eq. 4 over the three outputs with their own lambda; returns (total, per-output values)."""
    parts = {name: sequence_loss(getattr(out, name), target, lam, view_mask) for name, lam in lambdas.items()}
    return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}
