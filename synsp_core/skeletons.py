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
