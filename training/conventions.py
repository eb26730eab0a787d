"""Skeleton conventions: where a data set puts each joint, and how long its segments are.

The CMU-derived 17-joint data here is one convention (pelvis about 100 mm above the hip
midpoint, short spine segments, a long head segment); Human3.6M's own skeleton, COCO/OpenPose-
derived ones and every estimator differ per segment by factors of 0.5-2 and place joint centres
elsewhere. A model trained on one convention learns it as the truth and pulls other people's
skeletons toward it. So training redraws the convention of every sequence (`random_convention`),
and validation scores fixed conventions (`NAMED_CONVENTIONS`) that training never drew exactly.

A `Convention` changes H36M-17 poses (T, 17, 3) in three steps, in the person's body frame
(x: right to left hip, z: up the torso, y: forward):
1. pelvis: moved along the hip-midpoint -> pelvis line, to `pelvis_height` x its distance
   (0 = the hip midpoint, as in Human3.6M and COCO-derived skeletons; 1 = as given);
2. joint centres: constant offsets (mm, body frame) of the hips, shoulders, neck and head,
   mirrored between left and right;
3. segment lengths: each bone (parent -> joint) scaled, left and right alike, keeping its
   direction (`scale_bones`); `target_lengths_mm` instead sets chosen bones to a length.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synsp_core.skeletons import H36M17
from synsp_training.data import scale_bones

J = {name: i for i, name in enumerate(H36M17.joint_names)}
TORSO_HEAD_BONES = ("spine", "thorax", "neck", "head")   # bones ending at these joints
WIDTH_BONES = ("hip", "shoulder")                         # hip width (pelvis -> hip), shoulder width
LIMB_BONES = ("knee", "ankle", "elbow", "wrist")
OFFSET_JOINTS = ("hip", "shoulder", "neck", "head")      # joint centres a convention may move


def body_axes(poses: np.ndarray) -> np.ndarray:
    """Per frame, rows x (right -> left hip), y (forward), z (up the torso): (T, 3, 3)."""
    lateral = poses[:, J["l_hip"]] - poses[:, J["r_hip"]]
    up = (poses[:, J["l_shoulder"]] + poses[:, J["r_shoulder"]] - poses[:, J["l_hip"]] - poses[:, J["r_hip"]]) / 2
    x = lateral / np.maximum(np.linalg.norm(lateral, axis=-1, keepdims=True), 1e-9)
    z = up - (up * x).sum(-1, keepdims=True) * x
    z /= np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-9)
    return np.stack([x, np.cross(z, x), z], axis=1)


def _sides(name: str) -> list[tuple[int, float]]:
    """(joint index, sign of x) of a joint name: both sides for 'hip' / 'shoulder', the mid joint else."""
    if f"l_{name}" in J:
        return [(J[f"l_{name}"], 1.0), (J[f"r_{name}"], -1.0)]
    return [(J[name], 1.0)]


@dataclass
class Convention:
    """One skeleton convention relative to the CMU-17 data (module docstring).

    offsets_mm: joint name ('hip', 'shoulder', 'neck', 'head') -> (x, y, z) offset in the body
    frame, given for the left side (x outward = +x); the right side gets x negated.
    bone_scale: bone name (the joint it ends at, without l_/r_) -> length factor.
    target_lengths_mm: bone name -> length in mm (overrides bone_scale; from the first frame).
    """

    name: str = "custom"
    pelvis_height: float = 1.0
    offsets_mm: dict = field(default_factory=dict)
    bone_scale: dict = field(default_factory=dict)
    target_lengths_mm: dict = field(default_factory=dict)

    def apply(self, poses: np.ndarray) -> np.ndarray:
        """(T, 17, 3) H36M-17 poses in mm -> the same motion in this convention, float64."""
        p = np.array(poses, dtype=np.float64)
        if p.ndim != 3 or p.shape[1:] != (17, 3):
            raise ValueError(f"conventions apply to H36M-17 3D poses (T, 17, 3), got {p.shape}")
        hip_mid = (p[:, J["l_hip"]] + p[:, J["r_hip"]]) / 2
        p[:, J["pelvis"]] = hip_mid + self.pelvis_height * (p[:, J["pelvis"]] - hip_mid)
        if self.offsets_mm:
            axes = body_axes(p)
            for name, offset in self.offsets_mm.items():
                for joint, sign in _sides(name):
                    p[:, joint] += (np.array(offset) * (sign, 1.0, 1.0)) @ axes
        names = [n[2:] if n[:2] in ("l_", "r_") else n for n in H36M17.joint_names]
        factors = np.array([self.bone_scale.get(n, 1.0) for n in names])
        if self.target_lengths_mm:
            length = np.linalg.norm(p[0] - p[0, list(H36M17.parents)], axis=-1)   # bone ending at j
            for j, n in enumerate(names):
                if n in self.target_lengths_mm and H36M17.parents[j] >= 0:
                    factors[j] = self.target_lengths_mm[n] / max(length[j], 1e-6)
        return scale_bones(p, H36M17, factors)


# Fixed conventions for validation (docs/training.md). Lengths from the Human3.6M skeleton; the
# COCO-like one places the hips wider and lower, the shoulders higher, neck and head forward
# (head ~ nose), as skeletons built from COCO / OpenPose keypoints do.
NAMED_CONVENTIONS = {
    "cmu": Convention("cmu"),
    "h36m": Convention("h36m", pelvis_height=0.0, target_lengths_mm={
        "hip": 130.0, "spine": 230.0, "thorax": 260.0, "neck": 100.0, "head": 115.0, "shoulder": 150.0,
        "elbow": 280.0, "wrist": 250.0, "knee": 450.0, "ankle": 450.0}),
    "coco": Convention("coco", pelvis_height=0.0, offsets_mm={
        "hip": (30.0, 0.0, -40.0), "shoulder": (15.0, 0.0, 25.0), "neck": (0.0, 40.0, -10.0),
        "head": (0.0, 80.0, -70.0)}),
}


def get_convention(name: str) -> Convention:
    try:
        return NAMED_CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton convention {name!r}; known: {sorted(NAMED_CONVENTIONS)}") from None


@dataclass
class ConventionSampler:
    """Draws a random convention per sequence over the ranges of the transfer issue.

    pelvis_height uniform in pelvis_height; torso, neck and head segments log-uniform in
    torso_head_scale; hip and shoulder widths in width_scale; limbs in limb_scale (left and
    right alike); each of the hips, shoulders, neck and head moved with offset_prob by an offset
    of uniform length up to offset_max_mm in a random direction.
    """

    pelvis_height: tuple[float, float] = (0.0, 1.05)
    torso_head_scale: tuple[float, float] = (0.5, 2.2)
    width_scale: tuple[float, float] = (0.6, 1.5)
    limb_scale: tuple[float, float] = (0.75, 1.35)
    offset_prob: float = 0.6
    offset_max_mm: float = 70.0

    def __call__(self, rng: np.random.Generator) -> Convention:
        def draw(bounds):
            return float(np.exp(rng.uniform(*np.log(bounds))))
        scale = {n: draw(self.torso_head_scale) for n in TORSO_HEAD_BONES}
        scale |= {n: draw(self.width_scale) for n in WIDTH_BONES}
        scale |= {n: draw(self.limb_scale) for n in LIMB_BONES}
        offsets = {}
        for name in OFFSET_JOINTS:
            if rng.random() < self.offset_prob:
                direction = rng.standard_normal(3)
                offsets[name] = rng.uniform(0, self.offset_max_mm) * direction / np.linalg.norm(direction)
        return Convention("random", float(rng.uniform(*self.pelvis_height)), offsets, scale)

