"""SmoothNet (Zeng et al., ECCV 2022), the basic FCN of its Fig. 5: a baseline trained by our loop.

Fully connected layers along the time axis, shared by every coordinate (Eq. 1 of its paper),
with residual blocks. It takes the same (B, V, T, J*D) input and normalization contract as
SynSP (window centred on its mean root, divided by norm_scale) and refines each view alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from synsp_core.model import SynSPConfig


@dataclass
class SmoothNetConfig:
    num_joints: int = 17
    dims: int = 3
    window: int = 32            # SmoothNet's default window T
    hidden: int = 512
    res_hidden: int = 256
    num_blocks: int = 3
    dropout: float = 0.5
    root_joints: tuple[int, ...] = (0,)
    norm_scale: float = 1000.0
    skeleton: str = "h36m17"
    units: str = "mm"

    # the same JSON round trip as SynSPConfig (root_joints as a list, unknown keys refused)
    to_dict = SynSPConfig.to_dict
    from_dict = classmethod(SynSPConfig.from_dict.__func__)


class ResidualBlock(nn.Module):
    def __init__(self, cfg: SmoothNetConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.hidden, cfg.res_hidden), nn.LeakyReLU(0.2), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.res_hidden, cfg.hidden), nn.LeakyReLU(0.2), nn.Dropout(cfg.dropout))

    def forward(self, x):
        return x + self.net(x)


class SmoothNet(nn.Module):
    def __init__(self, cfg: SmoothNetConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(nn.Linear(cfg.window, cfg.hidden), nn.LeakyReLU(0.2), nn.Dropout(cfg.dropout))
        self.blocks = nn.Sequential(*(ResidualBlock(cfg) for _ in range(cfg.num_blocks)))
        self.decoder = nn.Linear(cfg.hidden, cfg.window)

    def forward(self, poses: torch.Tensor, view_mask: torch.Tensor | None = None) -> torch.Tensor:
        """poses (B, V, T, J*D) in data units -> refined, same shape and units. view_mask is unused
        (views are refined independently) but accepted so both models share one call."""
        c = self.cfg
        p = poses.unflatten(-1, (c.num_joints, c.dims))
        centre = p[..., list(c.root_joints), :].mean(dim=-2, keepdim=True).mean(dim=2, keepdim=True)
        x = ((p - centre) / c.norm_scale).flatten(-2)          # (B, V, T, C)
        y = self.decoder(self.blocks(self.encoder(x.transpose(-1, -2)))).transpose(-1, -2)
        return (y.unflatten(-1, (c.num_joints, c.dims)) * c.norm_scale + centre).flatten(-2)
