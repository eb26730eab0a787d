"""Azure Kinect body tracking (32 joints) -> the model's Human3.6M-17 layout: each joint's source,
NaN propagation, batch shapes, left/right symmetry and a plausible standing body. No ROS."""
import numpy as np
import pytest

from synsp_core.skeletons import (AZURE_HEAD_TOP_FRACTION, AZURE_KINECT32, H36M17, SKELETONS,
                                  azure_kinect32_confidence_to_h36m17, azure_kinect32_to_h36m17)

A = {name: i for i, name in enumerate(AZURE_KINECT32.joint_names)}
H = {name: i for i, name in enumerate(H36M17.joint_names)}


def standing_body_m() -> np.ndarray:
    """A person standing upright (z up, x to the person's left, metres), Azure's 32 joints."""
    j = np.zeros((32, 3))
    j[A["pelvis"]] = (0, 0, 0.95)
    j[A["spine_navel"]] = (0, 0, 1.13)
    j[A["spine_chest"]] = (0, 0, 1.30)
    j[A["neck"]] = (0, 0, 1.50)
    j[A["head"]] = (0, 0.02, 1.67)
    j[A["nose"]] = (0, 0.11, 1.66)
    for side, x in (("l", 1.0), ("r", -1.0)):
        j[A[f"{side}_clavicle"]] = (0.04 * x, 0, 1.45)
        j[A[f"{side}_shoulder"]] = (0.18 * x, 0, 1.44)
        j[A[f"{side}_elbow"]] = (0.20 * x, 0, 1.16)
        j[A[f"{side}_wrist"]] = (0.21 * x, 0, 0.90)
        j[A[f"{side}_hand"]] = (0.21 * x, 0, 0.84)
        j[A[f"{side}_handtip"]] = (0.21 * x, 0, 0.76)
        j[A[f"{side}_thumb"]] = (0.19 * x, 0.03, 0.82)
        j[A[f"{side}_hip"]] = (0.09 * x, 0, 0.92)
        j[A[f"{side}_knee"]] = (0.10 * x, 0.01, 0.50)
        j[A[f"{side}_ankle"]] = (0.10 * x, 0, 0.08)
        j[A[f"{side}_foot"]] = (0.10 * x, 0.14, 0.02)
        j[A[f"{side}_eye"]] = (0.03 * x, 0.09, 1.70)
        j[A[f"{side}_ear"]] = (0.075 * x, 0.0, 1.67)
    return j


def test_the_sdk_joint_order():
    """k4abt_joint_id_t (SDK 1.0+): 32 joints, a few indices checked against the SDK's table."""
    assert AZURE_KINECT32.num_joints == 32 and "azure_kinect32" not in SKELETONS   # input only
    for index, name in ((0, "pelvis"), (3, "neck"), (5, "l_shoulder"), (11, "r_clavicle"), (14, "r_wrist"),
                        (18, "l_hip"), (22, "r_hip"), (24, "r_ankle"), (26, "head"), (27, "nose"), (31, "r_ear")):
        assert AZURE_KINECT32.joint_names[index] == name
    parents = AZURE_KINECT32.parents
    assert parents[A["head"]] == A["neck"] and parents[A["r_clavicle"]] == A["spine_chest"]
    assert parents[A["l_thumb"]] == A["l_wrist"] and parents[A["r_hip"]] == A["pelvis"]


def test_each_joint_source():
    j = np.random.default_rng(0).normal(0, 500, (32, 3))
    h = azure_kinect32_to_h36m17(j)
    assert h.shape == (17, 3) and h.dtype == np.float64
    for name in ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
                 "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist"):
        np.testing.assert_array_equal(h[H[name]], j[A[name]])
    np.testing.assert_allclose(h[H["pelvis"]], (j[A["l_hip"]] + j[A["r_hip"]]) / 2)
    np.testing.assert_allclose(h[H["spine"]], (j[A["spine_navel"]] + j[A["spine_chest"]]) / 2)
    np.testing.assert_array_equal(h[H["thorax"]], j[A["neck"]])
    np.testing.assert_array_equal(h[H["neck"]], j[A["head"]])
    np.testing.assert_allclose(h[H["head"]], j[A["head"]] + AZURE_HEAD_TOP_FRACTION * (j[A["head"]] - j[A["neck"]]))


def test_standing_body_is_plausible():
    h = azure_kinect32_to_h36m17(standing_body_m() * 1000)   # mm in, mm out
    z = {name: h[H[name], 2] for name in H}
    assert z["pelvis"] < z["spine"] < z["thorax"] < z["neck"] < z["head"]
    assert 100 < z["head"] - z["neck"] < 160            # head top 10-16 cm above the head centre
    assert np.allclose(h[H["pelvis"]], (0, 0, 920))
    bones = np.linalg.norm(h[1:] - h[list(H36M17.parents[1:])], axis=-1)
    assert (bones > 50).all() and (bones < 500).all()   # no collapsed or absurd bone


def test_nan_propagates_only_to_joints_made_from_it():
    j = standing_body_m()
    for missing, expected in (("l_hip", {"pelvis", "l_hip"}), ("spine_chest", {"spine"}),
                              ("neck", {"thorax", "head"}), ("head", {"neck", "head"}),
                              ("r_wrist", {"r_wrist"}), ("l_handtip", set()), ("nose", set()), ("pelvis", set())):
        k = j.copy()
        k[A[missing], 1] = np.nan   # one coordinate is enough
        h = azure_kinect32_to_h36m17(k)
        assert {name for name in H if np.isnan(h[H[name]]).any()} == expected, missing
        assert all(np.isnan(h[H[name]]).all() for name in expected)


def test_batches_and_bad_shapes():
    rng = np.random.default_rng(1)
    batch = rng.normal(0, 1, (4, 3, 32, 3))   # (T, P, 32, 3)
    h = azure_kinect32_to_h36m17(batch)
    assert h.shape == (4, 3, 17, 3)
    np.testing.assert_allclose(h[2, 1], azure_kinect32_to_h36m17(batch[2, 1]))
    for bad in (np.zeros((17, 3)), np.zeros((32, 2)), np.zeros(96), np.zeros((5, 26, 3))):
        with pytest.raises(ValueError, match="32, 3"):
            azure_kinect32_to_h36m17(bad)


def test_mirroring_commutes_with_the_mapping():
    """Swapping left and right and flipping x before the mapping equals doing it after: the
    mapping treats both sides alike and keeps them on their sides."""
    j = np.random.default_rng(2).normal(0, 300, (32, 3))
    flip = np.array([-1.0, 1.0, 1.0])
    mirrored_first = azure_kinect32_to_h36m17(j[AZURE_KINECT32.mirror_permutation] * flip)
    mirrored_after = azure_kinect32_to_h36m17(j)[H36M17.mirror_permutation] * flip
    np.testing.assert_allclose(mirrored_first, mirrored_after)


def test_confidence_is_the_weakest_source():
    c = np.linspace(0.01, 0.99, 32)
    h = azure_kinect32_confidence_to_h36m17(c)
    assert h.shape == (17,)
    assert h[H["pelvis"]] == min(c[A["l_hip"]], c[A["r_hip"]])
    assert h[H["head"]] == min(c[A["neck"]], c[A["head"]]) and h[H["r_elbow"]] == c[A["r_elbow"]]
    assert azure_kinect32_confidence_to_h36m17(np.ones((5, 32))).shape == (5, 17)
    with pytest.raises(ValueError):
        azure_kinect32_confidence_to_h36m17(np.ones(17))
