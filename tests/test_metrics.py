"""Metrics against hand-computed values and their invariances (synsp_core/metrics.py)."""
import math

import numpy as np
import pytest

from synsp_core import metrics
from synsp_core.skeletons import COCO17, H36M17


def random_rotation(rng, dim):
    """A proper rotation (det +1) drawn from the QR of a Gaussian matrix."""
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def tiny_pair():
    """3 frames, 2 joints: joint 1 sits (3, 4, 0) * c_t from the root in pred, on the root in gt."""
    c = np.array([1.0, 3.0, 2.0])
    gt = np.zeros((3, 2, 3))
    pred = np.zeros((3, 2, 3))
    pred[:, 1] = c[:, None] * np.array([3.0, 4.0, 0.0])
    pred += np.array([[[10.0, -7.0, 2.0]], [[0.0, 5.0, 1.0]], [[-3.0, 0.0, 8.0]]])  # root moves around
    return pred, gt


def test_hand_computed_values():
    pred, gt = tiny_pair()
    # joint errors 5 c_t and 0 (root): per-frame 2.5, 7.5, 5
    np.testing.assert_allclose(metrics.mpjpe_per_frame(pred, gt), [[2.5, 7.5, 5.0]])
    assert metrics.mpjpe(pred, gt) == pytest.approx(5.0)
    assert metrics.worst_mpjpe(pred, gt) == pytest.approx(7.5)
    # second difference of c is 1 - 6 + 2 = -3 -> joint 1 error 15, root 0 -> 7.5 over one frame
    assert metrics.accel_error(pred, gt) == pytest.approx(7.5)
    assert metrics.accel_error(pred, gt, pad_like_smoothnet=True) == pytest.approx(7.5 / 3)
    result = metrics.evaluate_sequence(pred, gt)
    assert set(result) == set(metrics.METRIC_NAMES)
    assert all(type(v) is float for v in result.values())
    assert result["mpjpe"] == pytest.approx(5.0) and result["accel"] == pytest.approx(7.5)


def test_pa_mpjpe_hand_cases():
    gt = np.array([[[-1.0, 0.0], [1.0, 0.0]]])
    # rotated by 90 degrees and scaled by 2: aligns exactly
    assert metrics.pa_mpjpe(np.array([[[0.0, -2.0], [0.0, 2.0]]]), gt) == pytest.approx(0.0, abs=1e-12)
    # collapsed prediction: best scale is 0, both joints land on the gt centre, 1 away each
    assert metrics.pa_mpjpe(np.zeros((1, 2, 2)), gt) == pytest.approx(1.0)
    # a mirror image of an asymmetric shape cannot be undone by a proper rotation
    shape = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]])
    assert metrics.pa_mpjpe(shape * np.array([1.0, 1.0, -1.0]), shape) > 0.1


def test_pa_mpjpe_matches_brute_force_2d():
    """2D: search all rotation angles with the least-squares scale, as an independent check."""
    rng = np.random.default_rng(3)
    gt, pred = rng.normal(size=(1, 6, 2)), rng.normal(size=(1, 6, 2))
    x, y = pred[0] - pred[0].mean(0), gt[0] - gt[0].mean(0)
    angle = np.linspace(0, 2 * np.pi, 400_001)[:, None, None]
    cos, sin = np.cos(angle), np.sin(angle)
    rotated = np.concatenate([x[None, :, :1] * cos + x[None, :, 1:] * sin,
                              -x[None, :, :1] * sin + x[None, :, 1:] * cos], axis=-1)  # (angles, J, 2)
    scale = np.maximum((rotated * y).sum(axis=(1, 2)) / (x ** 2).sum(), 0.0)[:, None, None]
    residual = scale * rotated - y
    best = (residual ** 2).sum(axis=(1, 2)).argmin()
    best_err = np.linalg.norm(residual[best], axis=-1).mean()
    assert metrics.pa_mpjpe(pred, gt) == pytest.approx(best_err, rel=1e-6)


@pytest.mark.parametrize("dim", [2, 3])
def test_pa_mpjpe_invariant_to_similarity_of_pred(dim):
    rng = np.random.default_rng(dim)
    gt = rng.normal(size=(2, 20, 17, dim)) * 100
    pred = gt + rng.normal(size=gt.shape) * 15
    moved = np.empty_like(pred)
    for n in range(2):
        for t in range(20):  # a different transform per frame: alignment must be per frame
            rot, scale, shift = random_rotation(rng, dim), rng.uniform(0.2, 5.0), rng.normal(size=dim) * 500
            moved[n, t] = scale * pred[n, t] @ rot.T + shift
    assert metrics.pa_mpjpe(moved, gt) == pytest.approx(metrics.pa_mpjpe(pred, gt), rel=1e-6)
    np.testing.assert_allclose(metrics.pa_mpjpe_per_frame(moved, gt), metrics.pa_mpjpe_per_frame(pred, gt), rtol=1e-6)
    assert metrics.mpjpe(moved, gt) > 2 * metrics.mpjpe(pred, gt)  # the transform really changed pred


@pytest.mark.parametrize("skeleton", [H36M17, COCO17])
def test_position_metrics_are_root_relative(skeleton):
    rng = np.random.default_rng(7)
    gt = rng.normal(size=(30, 17, 3)) * 100
    pred = gt + rng.normal(size=gt.shape) * 10
    shifted = pred + rng.normal(size=(30, 1, 3)) * 1000  # a different translation every frame
    before, after = metrics.evaluate_sequence(pred, gt, skeleton), metrics.evaluate_sequence(shifted, gt, skeleton)
    for name in metrics.METRIC_NAMES:
        assert after[name] == pytest.approx(before[name], rel=1e-9)
    # the root matters: the same error measured around another root joint differs
    assert metrics.mpjpe(pred, gt, root=(5,)) != pytest.approx(metrics.mpjpe(pred, gt, root=skeleton.root))


def test_coco_root_is_hip_midpoint():
    gt = np.zeros((3, 17, 3))
    pred = np.zeros((3, 17, 3))
    pred[:, 11] = [2.0, 0.0, 0.0]  # left hip moves: the root (hip mid-point) moves by 1
    # every joint but joint 11 is 1 off, joint 11 is 1 off the other way
    assert metrics.evaluate_sequence(pred, gt, "coco17")["mpjpe"] == pytest.approx(1.0)
    assert metrics.mpjpe(pred, gt) == pytest.approx(2.0 / 17)  # root joint 0: only joint 11 is off


@pytest.mark.parametrize("shape", [(10, 5, 3), (3, 12, 4, 2)])
def test_accel_padded_relation(shape):
    rng = np.random.default_rng(11)
    gt, pred = rng.normal(size=shape), rng.normal(size=shape)
    num_frames = shape[-3]
    unpadded = metrics.accel_error(pred, gt)
    padded = metrics.accel_error(pred, gt, pad_like_smoothnet=True)
    assert padded == pytest.approx(unpadded * (num_frames - 2) / num_frames, rel=1e-12)
    assert padded < unpadded


def test_worst_one_percent():
    gt = np.zeros((200, 2, 3))
    pred = np.zeros((200, 2, 3))
    pred[:, 1, 0] = np.arange(200.0)  # per-frame MPJPE t / 2
    assert metrics.worst_mpjpe(pred, gt) == pytest.approx((199 + 198) / 4)  # top 2 of 200 frames
    assert metrics.worst_fraction_mean(np.arange(150.0)) == pytest.approx(148.5)  # ceil(1.5) = 2
    rng = np.random.default_rng(5)
    gt, pred = rng.normal(size=(40, 17, 3)), rng.normal(size=(40, 17, 3))
    result = metrics.evaluate_sequence(pred, gt)
    assert result["worst1_mpjpe"] >= result["mpjpe"]


def test_evaluate_sequences_pools_frames():
    rng = np.random.default_rng(9)
    gt_a, gt_b = rng.normal(size=(120, 17, 3)), rng.normal(size=(30, 17, 3))
    pred_a, pred_b = gt_a + rng.normal(size=gt_a.shape), gt_b + 3 * rng.normal(size=gt_b.shape)
    pooled = metrics.evaluate_sequences([(pred_a, gt_a), (pred_b, gt_b)], H36M17)
    joined_pred, joined_gt = np.concatenate([pred_a, pred_b]), np.concatenate([gt_a, gt_b])
    assert pooled["mpjpe"] == pytest.approx(metrics.mpjpe(joined_pred, joined_gt))
    assert pooled["pa_mpjpe"] == pytest.approx(metrics.pa_mpjpe(joined_pred, joined_gt))
    assert pooled["worst1_mpjpe"] == pytest.approx(metrics.worst_mpjpe(joined_pred, joined_gt))
    weighted_accel = (118 * metrics.accel_error(pred_a, gt_a) + 28 * metrics.accel_error(pred_b, gt_b)) / 146
    assert pooled["accel"] == pytest.approx(weighted_accel)
    # not the plain mean of the two sequences' values
    plain_mean = (metrics.mpjpe(pred_a, gt_a) + metrics.mpjpe(pred_b, gt_b)) / 2
    assert pooled["mpjpe"] != pytest.approx(plain_mean)


def test_bad_input_raises():
    good = np.zeros((5, 17, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mpjpe(good, np.zeros((6, 17, 3)))
    nan = good.copy()
    nan[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="pred contains NaN"):
        metrics.mpjpe(nan, good)
    with pytest.raises(ValueError, match="gt contains NaN"):
        metrics.evaluate_sequence(good, nan)
    with pytest.raises(ValueError, match="infinite"):
        metrics.pa_mpjpe(good + np.inf, good)
    with pytest.raises(ValueError, match="D = 2 or 3"):
        metrics.mpjpe(np.zeros((5, 17, 4)), np.zeros((5, 17, 4)))
    with pytest.raises(ValueError, match=r"\(T, J, D\)"):
        metrics.mpjpe(np.zeros((17, 3)), np.zeros((17, 3)))
    with pytest.raises(ValueError, match="at least 3 frames"):
        metrics.accel_error(good[:2], good[:2])
    with pytest.raises(ValueError, match="root joints"):
        metrics.mpjpe(good, good, root=(17,))
    with pytest.raises(ValueError, match="has 17 joints"):
        metrics.evaluate_sequence(np.zeros((5, 16, 3)), np.zeros((5, 16, 3)), H36M17)
    with pytest.raises(ValueError, match="at least one"):
        metrics.evaluate_sequences([])
    assert math.isfinite(metrics.mpjpe(good, good))
