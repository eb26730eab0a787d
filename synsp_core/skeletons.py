"""Joint layouts: names, parent tree, root and left/right pairs.

A layout tells the model which joint is the root (for root-relative encodings, Eq. 1),
the data pipeline how to mirror a pose (swap left and right), and the node how to draw bones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A joint layout.

    root: indices of the joints whose mean is the root (pelvis); COCO has no pelvis joint,
    so its root is the mid-point of the two hips.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    root: tuple[int, ...]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def ancestors(self) -> tuple[tuple[int, ...], ...]:
        """Per joint, its ancestors in the parent tree, nearest first (the tree's root: none)."""
        chains = []
        for j in range(self.num_joints):
            chain, p = [], self.parents[j]
            while p >= 0:
                chain.append(p)
                p = self.parents[p]
            chains.append(tuple(chain))
        return tuple(chains)

    @property
    def depths(self) -> tuple[int, ...]:
        """Per joint, its number of ancestors (the tree's root: 0)."""
        return tuple(len(chain) for chain in self.ancestors)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) pairs, for drawing and bone-length augmentation."""
        return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)

    @property
    def left_right_pairs(self) -> tuple[tuple[int, int], ...]:
        """(left, right) joint index pairs, matched by name ('l_x' <-> 'r_x')."""
        index = {n: i for i, n in enumerate(self.joint_names)}
        return tuple((i, index["r_" + n[2:]]) for i, n in enumerate(self.joint_names) if n.startswith("l_"))

    def left_right_pair(self, name: str) -> tuple[int, int]:
        """(left, right) indices of the joints 'l_<name>' and 'r_<name>', e.g. 'hip'."""
        index = {n: i for i, n in enumerate(self.joint_names)}
        try:
            return index["l_" + name], index["r_" + name]
        except KeyError:
            raise ValueError(f"layout {self.name!r} has no l_{name} / r_{name} joints") from None

    @property
    def mirror_permutation(self) -> np.ndarray:
        """Joint order after swapping left and right: pose[..., perm, :] relabels a mirrored pose."""
        perm = np.arange(self.num_joints)
        for left, right in self.left_right_pairs:
            perm[left], perm[right] = right, left
        return perm

    def root_position(self, poses: np.ndarray) -> np.ndarray:
        """Root position of poses shaped (..., J, D) -> (..., D)."""
        return poses[..., list(self.root), :].mean(axis=-2)


H36M17 = Skeleton(
    name="h36m17",
    joint_names=(
        "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
        "thorax", "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    root=(0,),
)

COCO17 = Skeleton(
    name="coco17",
    joint_names=(
        "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
        "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
    ),
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    root=(11, 12),
)

# The 14-joint LSP order of SmoothNet's 3DPW and AIST++ 3D files (SPIN / VIBE evaluation joints,
# H36M17 indices [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]). No pelvis: the root is the
# mid-point of the hips; the tree hangs from the neck.
LSP14 = Skeleton(
    name="lsp14",
    joint_names=(
        "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow", "r_shoulder",
        "l_shoulder", "l_elbow", "l_wrist", "neck", "head",
    ),
    parents=(1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, -1, 12),
    root=(2, 3),
)

SKELETONS = {s.name: s for s in (H36M17, COCO17, LSP14)}
# the layout a data file with this many joints is read in when none is given
DEFAULT_LAYOUT_BY_JOINTS = {17: "h36m17", 14: "lsp14"}


def get_skeleton(name: str) -> Skeleton:
    """Look a layout up by name ('h36m17', 'coco17', 'lsp14'); unknown names raise ValueError."""
    try:
        return SKELETONS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown skeleton layout {name!r}; known: {sorted(SKELETONS)}") from None


# The Azure Kinect Body Tracking SDK's 32 joints (k4abt_joint_id_t, SDK 1.0 and later), as its ROS
# driver publishes them on `body_tracking_data` (marker id = body id * 100 + joint index). Input
# only: the model runs on H36M17 (`azure_kinect32_to_h36m17`); not a layout the model takes, so it
# is not in SKELETONS. Left and right are the person's own, as in every layout here.
AZURE_KINECT32 = Skeleton(
    name="azure_kinect32",
    joint_names=(
        "pelvis", "spine_navel", "spine_chest", "neck", "l_clavicle", "l_shoulder", "l_elbow", "l_wrist",
        "l_hand", "l_handtip", "l_thumb", "r_clavicle", "r_shoulder", "r_elbow", "r_wrist", "r_hand",
        "r_handtip", "r_thumb", "l_hip", "l_knee", "l_ankle", "l_foot", "r_hip", "r_knee", "r_ankle",
        "r_foot", "head", "nose", "l_eye", "l_ear", "r_eye", "r_ear",
    ),
    parents=(-1, 0, 1, 2, 2, 4, 5, 6, 7, 8, 7, 2, 11, 12, 13, 14, 15, 14, 0, 18, 19, 20, 0, 22, 23, 24,
             3, 26, 26, 26, 26, 26),
    root=(0,),
)

# How far the head top lies beyond the Azure HEAD joint (the centre of the head, about ear height),
# as a fraction of the NECK -> HEAD distance, along that direction. Adult averages: the vertex is
# about 13-14 cm above the ear openings, which are about 18 cm above the base of the neck.
AZURE_HEAD_TOP_FRACTION = 0.75

# H36M17 joint <- the Azure joints it is made of (their mean; head: extrapolated, see below).
_AZURE_TO_H36M17_SOURCES = {
    "pelvis": ("l_hip", "r_hip"),          # Human3.6M puts the pelvis at the hip midpoint
    "r_hip": ("r_hip",), "r_knee": ("r_knee",), "r_ankle": ("r_ankle",),
    "l_hip": ("l_hip",), "l_knee": ("l_knee",), "l_ankle": ("l_ankle",),
    "spine": ("spine_navel", "spine_chest"),   # mid-torso, about halfway from pelvis to thorax
    "thorax": ("neck",),                   # base of the neck, between the shoulders
    "neck": ("head",),                     # Human3.6M's "neck/nose" joint: head height, below the top
    "head": ("neck", "head"),              # head top: extrapolated along neck -> head
    "l_shoulder": ("l_shoulder",), "l_elbow": ("l_elbow",), "l_wrist": ("l_wrist",),
    "r_shoulder": ("r_shoulder",), "r_elbow": ("r_elbow",), "r_wrist": ("r_wrist",),
}


def _azure_sources(name: str) -> list[int]:
    index = {n: i for i, n in enumerate(AZURE_KINECT32.joint_names)}
    return [index[s] for s in _AZURE_TO_H36M17_SOURCES[name]]


def azure_kinect32_to_h36m17(joints32: np.ndarray) -> np.ndarray:
    """Azure Kinect body tracking joints (..., 32, 3) -> Human3.6M-17 joints (..., 17, 3), float64,
    same unit. NaN (joint not detected) propagates: a joint made from a missing one is NaN (all
    three coordinates, also when the input had only one coordinate NaN).

    Each H36M17 joint is the Azure joint of the same name, except:
    - pelvis: midpoint of the two hips (Human3.6M's pelvis is the hip midpoint; Azure's PELVIS
      is the root of its spine chain, not defined as that midpoint);
    - spine: midpoint of SPINE_NAVEL and SPINE_CHEST (Human3.6M's spine is about halfway up the
      torso, between Azure's two spine joints);
    - thorax: NECK (Azure's neck joint is the base of the neck, where Human3.6M's thorax is);
    - neck: HEAD (Human3.6M's "neck/nose" joint is at about the height of Azure's head centre);
    - head (the top of the head, which Azure does not track): HEAD + AZURE_HEAD_TOP_FRACTION x
      (HEAD - NECK), i.e. on the neck -> head line beyond the head centre.
    Hands, hand tips, thumbs, feet, clavicles and the face joints are not used. Estimators differ
    from Human3.6M in where they put these joints anyway; the model is trained across such
    conventions (training/conventions.py).
    """
    j = np.asarray(joints32, dtype=np.float64)
    if j.ndim < 2 or j.shape[-2:] != (AZURE_KINECT32.num_joints, 3):
        raise ValueError(f"expected Azure Kinect joints shaped (..., 32, 3), got {j.shape}")
    j = np.where(np.isnan(j).any(axis=-1, keepdims=True), np.nan, j)   # a joint is detected or not
    out = np.empty(j.shape[:-2] + (H36M17.num_joints, 3), dtype=np.float64)
    for k, name in enumerate(H36M17.joint_names):
        sources = _azure_sources(name)
        with np.errstate(over="ignore", invalid="ignore"):   # inf input: inf or NaN out, no warning
            if name == "head":
                neck, head = j[..., sources[0], :], j[..., sources[1], :]
                out[..., k, :] = head + AZURE_HEAD_TOP_FRACTION * (head - neck)
            else:
                out[..., k, :] = j[..., sources, :].mean(axis=-2)   # NaN if any source is NaN
    return out


def azure_kinect32_confidence_to_h36m17(confidence32: np.ndarray) -> np.ndarray:
    """Per-joint confidence (..., 32) in the Azure order -> (..., 17) in H36M17's: each joint gets
    the lowest confidence of the Azure joints it is made of (see `azure_kinect32_to_h36m17`)."""
    c = np.asarray(confidence32, dtype=np.float64)
    if c.ndim < 1 or c.shape[-1] != AZURE_KINECT32.num_joints:
        raise ValueError(f"expected Azure Kinect confidences shaped (..., 32), got {c.shape}")
    return np.stack([c[..., _azure_sources(name)].min(axis=-1) for name in H36M17.joint_names], axis=-1)
