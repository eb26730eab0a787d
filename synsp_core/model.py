"""SynSP: Synergy of Smoothness and Precision in pose sequence refinement (Wang et al., CVPR 2024).

Read top to bottom: config, normalization contract, transformer blocks, the two encodings
(Eq. 1 PSE, Eq. 3 PQE), then the model (Fig. 2): embedding -> Local / Global Correlation
Encoders -> Base Decoder (Eq. 2: Position and Acceleration branches) -> Refinement stage.

Normalization contract (stored with every checkpoint through SynSPConfig):
    the model takes poses in the data's units (mm for 3D, pixels for 2D), shaped (B, V, T, J*D).
    Inside, each window is centred on the mean root position over its frames and live views, and
    divided by `norm_scale` (1000 for mm, i.e. metres inside). With `trajectory_centre`, each
    frame is centred instead on the straight line fitted to the window's root positions (its mean
    plus a constant velocity), so a person walking through the room looks to the network like one
    walking on the spot, and the output follows a window moving at a constant velocity (without
    it, the newest frames of a walking person trailed by ~3 frames; figures in docs/ros.md). With `body_frame` (3D), it is also
    rotated into the person's body frame (`body_frame_rotation`), so the data's own axes (world
    z-up, camera y-down) and the person's heading do not matter. Outputs are mapped back to the
    data's units and frame. PSE and PQE see normalized coordinates.

Differences from the paper, on purpose (measured: with plain FC heads emitting poses or
corrections, training on CPU stayed at the identity for epochs):
- every head (P_pos, P_acc, refined) is a PoseMixingHead: a learned convex mix of the input
  joints over the window's (view, frame) tokens plus a zero-initialised FC correction, so an
  untrained model is close to the identity, and smoothing over time and robust fusion across
  views are directly representable;
- the Refinement Decoder's query is the output of the 3 shared Base Decoder layers (Q^3), and
  PSE II is computed on the mean of the two detached branches;
- optional `body_frame` (3D): windows are rotated into the person's body frame first, so the
  model never has to learn invariance to the data's axes (world or camera frame) and heading;
- missing joints and per-joint confidence (B, V, T, J) in [0, 1] (0 or a NaN coordinate =
  missing): the mixing heads weigh each observation by its confidence (log c added to the
  attention logits, so a missing joint gets ~1e-4 of an observed one's weight), PSE compares
  only joints both views observed, the window centre and body frame use observed joints only,
  and a missing joint's input is filled (`fill_missing`: its mean over the window's observed
  tokens, else its parent's position); with `confidence_input` the confidence is embedded too.
  A joint missing in every view is so predicted from the rest (by the correction heads).

Beyond the model (synsp_core/refiner.py, offline): learned corrections carry a few mm of error of
their own, more than a classical filter has on nearly clean input, so the Refiner bounds the fused
pose of several views to the classical estimate by the views' own disagreement, and smooths with
a width that follows the input's noise. Training (training/configs/synsp_transfer.yaml) draws a
new skeleton convention and error mix per sequence and weighs each view by 1 / its input error.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from synsp_core.skeletons import get_skeleton


TRAJECTORY_SHRINK = 4.0   # trajectory_centre: velocity shrunk by |v|^2 / (|v|^2 + this x its variance from noise)


@dataclass
class SynSPConfig:
    num_joints: int = 17          # J
    dims: int = 3                 # D: 3 for 3D, 2 for 2D
    window: int = 8               # T: frames per window
    max_views: int = 4            # V: most views the checkpoint was trained with (any V works)
    d_model: int = 128
    n_heads: int = 4
    head_dim: int = 32
    d_ffn: int = 128
    n_local_layers: int = 4       # Local Correlation Encoder (LCE)
    n_global_layers: int = 4      # Global Correlation Encoder (GCE)
    n_base_shared_layers: int = 3 # DLayer 1-3 of the Base Decoder; DLayer 4 and 5 are the branches
    n_refine_layers: int = 4      # Refinement Decoder
    dropout: float = 0.2
    attn_dropout: float = 0.1
    # Ablation switches of Tab. 5
    use_pse1: bool = True
    use_refinement: bool = True
    use_pse2: bool = True
    use_pqe: bool = True
    # Normalization contract (see module docstring)
    root_joints: tuple[int, ...] = (0,)  # joints whose mean is the root (pelvis)
    norm_scale: float = 1000.0           # data units per normalized unit (mm -> m)
    skeleton: str = "h36m17"
    units: str = "mm"
    pqe_sigma: float = 1e-6              # sigma of Eq. 3
    body_frame: bool = False             # 3D: rotate each window into the body frame (see above)
    confidence_input: bool = False       # embed per-joint confidence next to the poses (see above)
    trajectory_centre: bool = False      # centre each frame on the window's straight-line root path (see above)

    def __post_init__(self):
        if self.body_frame and self.dims != 3:
            raise ValueError("body_frame needs 3D poses (dims 3)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["root_joints"] = list(self.root_joints)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SynSPConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        d = dict(d)
        if "root_joints" in d:
            d["root_joints"] = tuple(d["root_joints"])
        return cls(**d)


class SynSPOutput(NamedTuple):
    """All in the input's units, shaped (B, V, T, J*D); quality is PQE, (B, V, T), in [1/e, 1]."""

    position: torch.Tensor      # P_pos, Position branch (precision)
    acceleration: torch.Tensor  # P_acc, Acceleration branch (smoothness)
    refined: torch.Tensor       # final output of the Refinement stage
    quality: torch.Tensor       # PQE diagonal: 1 = the two branches agree (good input)


# ---------------------------------------------------------------------------------------------
# Transformer blocks (post-LayerNorm, as in the official code)
# ---------------------------------------------------------------------------------------------

class Attention(nn.Module):
    def __init__(self, cfg: SynSPConfig):
        super().__init__()
        inner = cfg.n_heads * cfg.head_dim
        self.n_heads, self.head_dim, self.attn_dropout = cfg.n_heads, cfg.head_dim, cfg.attn_dropout
        self.q = nn.Linear(cfg.d_model, inner)
        self.kv = nn.Linear(cfg.d_model, 2 * inner)
        self.out = nn.Linear(inner, cfg.d_model)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, key_mask: torch.Tensor | None = None,
                key_offset: torch.Tensor | None = None):
        """x (N, Lq, E) attends to memory (M, Lk, E); each memory serves N / M consecutive queries
        (the views of one window). key_mask (N, Lk) bool, True = may attend. key_offset (N, Lk): a
        scalar added to every channel of each memory token (the encodings of Sec. 3.2), applied after
        the projection, Linear(m + s) = Linear(m) + s * W.sum(1), so memory is projected once, not per view."""
        n, lq, _ = x.shape
        lk = memory.shape[1]
        q = self.q(x).view(n, lq, self.n_heads, self.head_dim).transpose(1, 2)
        kv = self.kv(memory)
        if kv.shape[0] != n:
            kv = kv.repeat_interleave(n // kv.shape[0], dim=0)
        if key_offset is not None:
            kv = kv + key_offset[..., None] * self.kv.weight.sum(dim=1)
        k, v = kv.view(n, lk, 2, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(n, lq, -1))


class FeedForward(nn.Sequential):
    def __init__(self, cfg: SynSPConfig):
        super().__init__(nn.Linear(cfg.d_model, cfg.d_ffn), nn.GELU(), nn.Dropout(cfg.dropout),
                         nn.Linear(cfg.d_ffn, cfg.d_model))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: SynSPConfig):
        super().__init__()
        self.attn, self.ffn = Attention(cfg), FeedForward(cfg)
        self.norm1, self.norm2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, key_mask=None):
        x = self.norm1(x + self.drop(self.attn(x, x, key_mask)))
        return self.norm2(x + self.drop(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Self-attention over the query frames, then cross-attention to the (encoded) memory."""

    def __init__(self, cfg: SynSPConfig):
        super().__init__()
        self.self_attn, self.cross_attn, self.ffn = Attention(cfg), Attention(cfg), FeedForward(cfg)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(cfg.d_model) for _ in range(3))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, memory, memory_mask=None, memory_offset=None):
        x = self.norm1(x + self.drop(self.self_attn(x, x)))
        x = self.norm2(x + self.drop(self.cross_attn(x, memory, memory_mask, memory_offset)))
        return self.norm3(x + self.drop(self.ffn(x)))


def correction_head(cfg: SynSPConfig) -> nn.Linear:
    """FC giving a per-frame pose correction; zero-initialised so it starts at no correction."""
    head = nn.Linear(cfg.d_model, cfg.num_joints * cfg.dims)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class PoseMixingHead(nn.Module):
    """The FCN of Eq. 2, made to converge fast: a pose = a convex mix of the INPUT joints + a correction.

    For query view v, frame t and joint j, attention weights over every live (view, frame) token
    of the window mix the input positions of joint j (smoothing over time and fusion across views
    are then one weighted average away), and a zero-initialised FC adds a correction. A learnable
    bias on the token itself (initialised to `self_bias`) makes the untrained head close to the
    identity. Translation-equivariant by construction.
    """

    def __init__(self, cfg: SynSPConfig, key_dim: int = 8, self_bias: float = 4.0):
        super().__init__()
        self.j, self.d, self.key_dim = cfg.num_joints, cfg.dims, key_dim
        self.query = nn.Linear(cfg.d_model, cfg.num_joints * key_dim)
        self.key = nn.Linear(cfg.d_model, cfg.num_joints * key_dim)
        self.self_bias = nn.Parameter(torch.tensor(self_bias))
        self.correction = correction_head(cfg)

    def forward(self, h, tokens, x, token_mask, log_confidence):
        """h (B, V, T, E) query states; tokens (B, V*T, E); x (B, V, T, J*D) normalized input;
        token_mask (B, V*T); log_confidence (B, V*T, J), added to the logits -> (B, V, T, J*D)."""
        b, v, t, _ = h.shape
        q = self.query(h).view(b, v * t, self.j, self.key_dim)
        k = self.key(tokens).view(b, v * t, self.j, self.key_dim)
        logits = torch.einsum("bqjc,bkjc->bjqk", q, k) / math.sqrt(self.key_dim)   # (B, J, VT, VT)
        eye = torch.eye(v * t, dtype=h.dtype, device=h.device)
        logits = logits + self.self_bias * eye + log_confidence.transpose(1, 2)[:, :, None, :]
        logits = logits.masked_fill(~token_mask[:, None, None, :], float("-inf"))
        weights = logits.softmax(dim=-1)
        joints = x.reshape(b, v * t, self.j, self.d)
        mixed = torch.einsum("bjqk,bkjd->bqjd", weights, joints).reshape(b, v, t, self.j * self.d)
        return mixed + self.correction(h)


# ---------------------------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------------------------

def root_relative(poses: torch.Tensor, cfg: SynSPConfig) -> torch.Tensor:
    """(B, V, T, J*D) -> (B, V, T, J, D) with the root subtracted in every frame."""
    p = poses.unflatten(-1, (cfg.num_joints, cfg.dims))
    return p - p[..., list(cfg.root_joints), :].mean(dim=-2, keepdim=True)


def pose_similarity_encoding(poses: torch.Tensor, cfg: SynSPConfig, observed: torch.Tensor) -> torch.Tensor:
    """Eq. 1: PSE[b, v1, v2, t] = exp(-sum_j |P^rel(v1,t,j) - P^rel(v2,t,j)|^2), root-relative.

    poses (B, V, T, J*D), normalized; observed (B, V, T, J) float, 1 = joint seen: the sum runs
    over the joints both views saw -> (B, V, V, T); the diagonal is exactly 1.
    """
    rel = root_relative(poses, cfg)                                 # (B, V, T, J, D)
    diff = ((rel[:, :, None] - rel[:, None, :]) ** 2).sum(dim=-1)   # (B, V1, V2, T, J)
    both = observed[:, :, None] * observed[:, None, :]
    return torch.exp(-(diff * both).sum(dim=-1))


def pose_quality_encoding(p_acc: torch.Tensor, p_pos: torch.Tensor, cfg: SynSPConfig) -> torch.Tensor:
    """Eq. 3 (diagonal): PQE[b, v, t] = mean_j exp(-dis_j / (max_j dis_j + sigma)).

    dis_j = |P_acc(v,t,j) - P_pos(v,t,j)| (Euclidean over D). The off-diagonal entries of Eq. 3
    are 0 by definition, so only the diagonal (B, V, T) is returned; see `pqe_matrix`.
    """
    dis = (p_acc - p_pos).unflatten(-1, (cfg.num_joints, cfg.dims)).norm(dim=-1)   # (B, V, T, J)
    return torch.exp(-dis / (dis.amax(dim=-1, keepdim=True) + cfg.pqe_sigma)).mean(dim=-1)


def pqe_matrix(quality: torch.Tensor) -> torch.Tensor:
    """Eq. 3 in full: (B, V, T) diagonal -> (B, V, V, T), zero where v1 != v2 (Fig. 3)."""
    eye = torch.eye(quality.shape[1], dtype=quality.dtype, device=quality.device)
    return eye[None, :, :, None] * quality[:, :, None, :]


def body_frame_rotation(poses: torch.Tensor, observed: torch.Tensor, cfg: SynSPConfig) -> torch.Tensor:
    """Rotation R (B, 3, 3) into the window's body frame; canonical = original @ R.T.

    Rows of R: x from the right to the left hip, z from the hips' to the shoulders' mid-point made
    orthogonal to x (the torso's up), y = z cross x. Both directions are means over the window's
    tokens (frames of live views) of poses (B, V, T, J*3) where their joints were observed
    (observed (B, V, T, J) float), so one rotation serves the whole window. A degenerate window
    (hips together or unseen, or torso along the hips) keeps the identity.
    """
    skeleton = get_skeleton(cfg.skeleton)
    (l_hip, r_hip), (l_shoulder, r_shoulder) = (skeleton.left_right_pair(name) for name in ("hip", "shoulder"))
    p = poses.unflatten(-1, (cfg.num_joints, 3))
    hips = (observed[..., l_hip] * observed[..., r_hip])[..., None]                # (B, V, T, 1)
    torso = hips * (observed[..., l_shoulder] * observed[..., r_shoulder])[..., None]
    lateral = ((p[..., l_hip, :] - p[..., r_hip, :]) * hips).sum(dim=(1, 2))       # (B, 3)
    up = ((p[..., l_shoulder, :] + p[..., r_shoulder, :] - p[..., l_hip, :] - p[..., r_hip, :]) * torso).sum(dim=(1, 2))
    x = F.normalize(lateral, dim=-1, eps=1e-12)
    z = up - (up * x).sum(dim=-1, keepdim=True) * x
    ok = (lateral.norm(dim=-1) > 1e-6) & (z.norm(dim=-1) > 1e-6 * up.norm(dim=-1).clamp_min(1e-12))
    z = F.normalize(z, dim=-1, eps=1e-12)
    rotation = torch.stack([x, torch.linalg.cross(z, x), z], dim=1)              # (B, 3, 3)
    eye = torch.eye(3, dtype=p.dtype, device=p.device).expand_as(rotation)
    return torch.where(ok[:, None, None], rotation, eye)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

class SynSP(nn.Module):
    def __init__(self, cfg: SynSPConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg
        self.embed = nn.Linear(c.num_joints * (c.dims + c.confidence_input), c.d_model)  # E: per frame
        self.time_embed = nn.Parameter(torch.randn(c.window, c.d_model) / math.sqrt(c.d_model))
        self.local_encoder = nn.ModuleList(EncoderLayer(c) for _ in range(c.n_local_layers))
        self.global_encoder = nn.ModuleList(EncoderLayer(c) for _ in range(c.n_global_layers))
        self.base_shared = nn.ModuleList(DecoderLayer(c) for _ in range(c.n_base_shared_layers))
        self.base_pos_layer, self.base_acc_layer = DecoderLayer(c), DecoderLayer(c)  # DLayer 4, 5
        self.pos_head, self.acc_head = PoseMixingHead(c), PoseMixingHead(c)
        if c.use_refinement:
            self.refine_decoder = nn.ModuleList(DecoderLayer(c) for _ in range(c.n_refine_layers))
            self.refine_head = PoseMixingHead(c)

    # -- normalization contract ---------------------------------------------------------------
    def observed_inputs(self, poses: torch.Tensor, view_mask: torch.Tensor, confidence: torch.Tensor | None):
        """(poses with every unobserved joint set to 0, confidence (B, V, T, J) in [0, 1], observed
        (B, V, T, J) float): a joint is observed when its view is live, its coordinates are finite
        and its confidence (None: 1; NaN: 0) is above 0."""
        c = self.cfg
        b, v, t, _ = poses.shape
        if confidence is None:
            confidence = torch.ones(b, v, t, c.num_joints, dtype=poses.dtype, device=poses.device)
        finite = torch.isfinite(poses.unflatten(-1, (c.num_joints, c.dims))).all(dim=-1)
        zero = torch.zeros((), dtype=poses.dtype, device=poses.device)
        confidence = torch.where(finite & view_mask[:, :, None, None],
                                 confidence.to(poses.dtype).nan_to_num(0.0).clamp(0, 1), zero)
        observed = (confidence > 0).to(poses.dtype)
        return torch.where(observed.repeat_interleave(c.dims, dim=-1) > 0, poses, zero), confidence, observed

    def window_centre(self, poses: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Mean observed root position over each window's tokens: (B, 1, 1, 1, D); with
        `trajectory_centre`, plus the root's velocity times the frame's offset from the window's
        middle: (B, 1, T, 1, D).

        poses (B, V, T, J*D) (unobserved entries finite, e.g. 0); observed (B, V, T, J) float.
        A window whose root joints were never observed is centred on its observed joints' mean
        (no velocity). The line passes through the mean of the root's per-frame positions at the
        mean of their frames; its velocity is the least-squares slope of the root's per-frame position (frames where
        some view saw it), shrunk by |v|^2 / (|v|^2 + TRAJECTORY_SHRINK * D * var(v)), var(v) from
        the fit's residuals: a person on the spot gets ~0 (a slope fitted to noise alone would add
        noise: +0.2 mm MPJPE, 1 view), one walking the full velocity.
        """
        joints = poses.unflatten(-1, (self.cfg.num_joints, self.cfg.dims))
        w = observed[..., None]
        roots = list(self.cfg.root_joints)

        def mean(js):
            return (joints[..., js, :] * w[..., js, :]).sum(dim=(1, 2, 3)) / w[..., js, :].sum(dim=(1, 2, 3)).clamp_min(1e-6)
        seen_root = w[..., roots, :].sum(dim=(1, 2, 3)) > 0                            # (B, 1)
        centre = torch.where(seen_root, mean(roots), mean(slice(None)))[:, None, None, None, :]
        if not self.cfg.trajectory_centre:
            return centre
        count = w[..., roots, :].sum(dim=(1, 3))                                       # (B, T, 1)
        root = (joints[..., roots, :] * w[..., roots, :]).sum(dim=(1, 3)) / count.clamp_min(1e-6)  # (B, T, D)
        seen = (count > 0).to(poses.dtype)
        frames = seen.sum(dim=1)                                                       # (B, 1)
        t = torch.arange(poses.shape[2], dtype=poses.dtype, device=poses.device)[None, :, None]
        t = t - (seen * t).sum(dim=1, keepdim=True) / frames[:, None].clamp_min(1)
        root_mean = (seen * root).sum(dim=1, keepdim=True) / frames[:, None].clamp_min(1)
        spread = (seen * t ** 2).sum(dim=1)                                            # (B, 1)
        velocity = (seen * t * (root - root_mean)).sum(dim=1) / spread.clamp_min(1e-6)  # (B, D) per frame
        residual = seen * (root - root_mean - velocity[:, None] * t)
        variance = (residual ** 2).sum(dim=(1, 2))[:, None] / (self.cfg.dims * (frames - 2).clamp_min(1))
        speed2 = (velocity ** 2).sum(dim=-1, keepdim=True)
        velocity = velocity * speed2 / (speed2 + TRAJECTORY_SHRINK * self.cfg.dims * variance
                                        / spread.clamp_min(1e-6)).clamp_min(1e-12)
        line = root_mean + velocity[:, None] * t                                       # (B, T, D)
        return torch.where(seen_root[:, None, None, None, :], line[:, None, :, None, :], centre)

    def fill_missing(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Normalized x (B, V, T, J*D) with each unobserved joint replaced by its mean over the
        window's observed tokens, or, unseen in the whole window, by its parent's (filled)
        position (the root: the window centre, 0). What the embedding sees; see the docstring."""
        c = self.cfg
        p = x.unflatten(-1, (c.num_joints, c.dims))
        w = observed[..., None]                                                        # (B, V, T, J, 1)
        count = w.sum(dim=(1, 2), keepdim=True)                                        # (B, 1, 1, J, 1)
        mean = (p * w).sum(dim=(1, 2), keepdim=True) / count.clamp_min(1e-6)
        fill = torch.where(count > 0, mean, torch.zeros_like(mean)).expand_as(p)
        seen = (count > 0).expand_as(p)
        skeleton = get_skeleton(c.skeleton)
        joints = list(fill.unbind(dim=-2))
        for j in sorted(range(c.num_joints), key=skeleton.depths.__getitem__):   # parents first
            parent = skeleton.parents[j]
            if parent >= 0:
                joints[j] = torch.where(seen[..., j, :], joints[j], joints[parent])
        return torch.where(w > 0, p, torch.stack(joints, dim=-2)).flatten(-2)

    def normalize(self, poses: torch.Tensor, centre: torch.Tensor, rotation: torch.Tensor | None) -> torch.Tensor:
        """Centred, scaled and (rotation (B, 3, 3), body frame) rotated: data -> model coordinates."""
        p = (poses.unflatten(-1, (self.cfg.num_joints, self.cfg.dims)) - centre) / self.cfg.norm_scale
        if rotation is not None:
            p = p @ rotation.transpose(1, 2)[:, None, None]
        return p.flatten(-2)

    def denormalize(self, poses: torch.Tensor, centre: torch.Tensor, rotation: torch.Tensor | None) -> torch.Tensor:
        """The inverse of `normalize`."""
        p = poses.unflatten(-1, (self.cfg.num_joints, self.cfg.dims))
        if rotation is not None:
            p = p @ rotation[:, None, None]
        return (p * self.cfg.norm_scale + centre).flatten(-2)

    # -- stages --------------------------------------------------------------------------------
    def decode(self, layers, query, memory_tokens, encoding, memory_mask):
        """Run decoder layers for every query view v1 against all views' tokens (v2, t).

        query (B, V, T, E); memory_tokens (B, V*T, E); encoding (B, V1, V2, T) is added to the
        memory of query view v1 as a per-token scalar broadcast over channels (Sec. 3.2).
        """
        b, v, t, e = query.shape
        x = query.reshape(b * v, t, e)
        offset = encoding.reshape(b * v, v * t)                                  # (B*V1, V2*T)
        mask = memory_mask[:, None].expand(b, v, v * t).reshape(b * v, v * t)
        for layer in layers:
            x = layer(x, memory_tokens, mask, offset)
        return x.view(b, v, t, e)

    def forward(self, poses: torch.Tensor, view_mask: torch.Tensor | None = None,
                confidence: torch.Tensor | None = None) -> SynSPOutput:
        """poses (B, V, T, J*D) in data units; view_mask (B, V) bool, True = view present;
        confidence (B, V, T, J) in [0, 1] per joint (None: 1), 0 = missing.

        Masked views may hold anything (NaN too): the live views ignore them, their outputs are
        their inputs unchanged and their quality is 0. Every window needs one live view. A joint
        with a non-finite coordinate is missing whatever its confidence; outputs are finite for
        every live view, missing joints included (module docstring).
        """
        c = self.cfg
        b, v, t, _ = poses.shape
        if view_mask is None:
            view_mask = torch.ones(b, v, dtype=torch.bool, device=poses.device)
        live = view_mask[:, :, None, None]
        raw = poses
        poses, confidence, observed = self.observed_inputs(poses, view_mask, confidence)
        centre = self.window_centre(poses, observed)
        rotation = body_frame_rotation(poses, observed, c) if c.body_frame else None
        x = self.fill_missing(self.normalize(poses, centre, rotation), observed)   # (B, V, T, J*D)
        token_mask = view_mask[:, :, None].expand(b, v, t).reshape(b, v * t)   # (B, V*T)
        log_confidence = torch.log(confidence + 1e-4).reshape(b, v * t, c.num_joints)

        # Embedding (+ confidence) + temporal position encoding, shared by both encoders
        features = torch.cat([x, confidence], dim=-1) if c.confidence_input else x
        emb = self.embed(features) + self.time_embed[:t]                        # (B, V, T, E)
        e = emb.shape[-1]

        # Local Correlation Encoder: each view on its own over its T frames -> query
        local = emb.reshape(b * v, t, e)
        for layer in self.local_encoder:
            local = layer(local)
        local = local.view(b, v, t, e)

        # Global Correlation Encoder: all V*T tokens together (missing views masked) -> keys/values
        glob = emb.reshape(b, v * t, e)
        for layer in self.global_encoder:
            glob = layer(glob, token_mask)

        # Base Decoder (Eq. 2) with PSE I (Eq. 1) on the input added to the memory
        zeros = poses.new_zeros(b, v, v, t)
        pse1 = pose_similarity_encoding(x, c, observed) if c.use_pse1 else zeros
        q3 = self.decode(self.base_shared, local, glob, pse1, token_mask)
        h_pos = self.decode([self.base_pos_layer], q3, glob, pse1, token_mask)
        h_acc = self.decode([self.base_acc_layer], q3, glob, pse1, token_mask)
        p_pos = self.pos_head(h_pos, glob, x, token_mask, log_confidence)
        p_acc = self.acc_head(h_acc, glob, x, token_mask, log_confidence)

        # Refinement stage: detached branches -> PQE (Eq. 3) and PSE II -> Refinement Decoder
        pos_d, acc_d = p_pos.detach(), p_acc.detach()
        quality = pose_quality_encoding(acc_d, pos_d, c) * view_mask[:, :, None]  # (B, V, T)
        if c.use_refinement:
            pse2 = pose_similarity_encoding((pos_d + acc_d) / 2, c, live.expand_as(observed).to(poses.dtype)) \
                if c.use_pse2 else zeros
            pqe = pqe_matrix(quality) if c.use_pqe else zeros
            h_ref = self.decode(self.refine_decoder, q3, glob, pse2 + pqe, token_mask)
            refined = self.refine_head(h_ref, glob, x, token_mask, log_confidence)
        else:
            refined = (p_pos + p_acc) / 2

        def out(p):
            return torch.where(live, self.denormalize(p, centre, rotation), raw)
        return SynSPOutput(out(p_pos), out(p_acc), out(refined), quality)
