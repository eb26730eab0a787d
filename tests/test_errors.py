"""Synthetic estimator errors: statistics of each error type, views, calibration, config."""
from pathlib import Path

import numpy as np
import pytest

from synsp_core.errors import (GaussianNoise, NoErrors, RealisticErrors, TriangulatedDetections, UniformNoise,
                               error_model_from_config, make_error_model, synthesize_views, triangulate)
from synsp_core.motion import resample
from synsp_core.skeletons import H36M17

CLIPS = np.load(Path(__file__).parents[1] / "synsp_core/data/cmu_test_clips_120fps.npz")

# Every RealisticErrors component switched off: tests switch one back on at a time.
SILENT = dict(quality_log_std=0.0, jitter_root_mm=0.0, jitter_extremity_mm=0.0, bias_std_mm=0.0,
              occlusion_rate_hz=0.0, outlier_rate_hz=0.0, swap_rate_hz=0.0)


def static_pose_sequence(num_frames: int) -> np.ndarray:
    """A T-frame sequence of one real pose, so every change comes from the error model."""
    return np.repeat(CLIPS["walking_1"][:1], num_frames, axis=0)


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts, ends - starts))


def test_gaussian_noise_std_is_per_coordinate_in_mm():
    gt = np.zeros((4000, 17, 3), np.float32)
    err = GaussianNoise(std_mm=25.0).apply(gt, 30.0, np.random.default_rng(0))
    assert err.dtype == np.float32
    assert abs(err.std() - 25.0) < 0.3 and abs(err.mean()) < 0.2


def test_gaussian_noise_depth_ratio_stretches_one_horizontal_direction():
    """With depth_ratio, the noise's covariance has one horizontal eigenvector with depth_ratio x
    std_mm and two with std_mm (the image plane, z included)."""
    gt = np.zeros((4000, 17, 3), np.float32)
    err = GaussianNoise(std_mm=5.0, depth_ratio=3.0).apply(gt, 30.0, np.random.default_rng(0)).reshape(-1, 3)
    values, vectors = np.linalg.eigh(np.cov(err.T))
    np.testing.assert_allclose(np.sqrt(values), [5.0, 5.0, 15.0], rtol=0.03)
    assert abs(vectors[2, 2]) < 0.02   # the depth direction is horizontal


def test_uniform_noise_spans_minus_k_to_k():
    gt = np.zeros((4000, 17, 3), np.float32)
    err = UniformNoise(max_mm=50.0).apply(gt, 30.0, np.random.default_rng(0))
    assert err.min() >= -50.0 and err.max() <= 50.0
    assert err.min() < -49.9 and err.max() > 49.9
    assert abs(err.std() - 50.0 / np.sqrt(3)) < 0.3


def test_realistic_errors_look_like_a_mid_quality_estimator():
    errors, accels, gt_accels = [], [], []
    for seed in range(4):
        for i, key in enumerate(CLIPS.files):
            gt = resample(CLIPS[key], 120.0, 30.0)
            noisy = RealisticErrors().apply(gt, 30.0, np.random.default_rng([seed, i]))
            errors.append(np.linalg.norm(noisy - gt, axis=-1).mean())
            accel = lambda p: p[2:] - 2 * p[1:-1] + p[:-2]
            accels.append(np.linalg.norm(accel(noisy) - accel(gt), axis=-1).mean())
            gt_accels.append(np.linalg.norm(accel(gt), axis=-1).mean())
    assert 30.0 < np.mean(errors) < 70.0
    assert np.mean(accels) > 3 * np.mean(gt_accels)


def test_realistic_scale_zero_is_ground_truth_and_larger_scale_is_worse():
    gt = resample(CLIPS["soccer_1"], 120.0, 30.0)
    assert np.array_equal(RealisticErrors(scale=0.0).apply(gt, 30.0, np.random.default_rng(0)), gt)
    mild = RealisticErrors(scale=0.5).apply(gt, 30.0, np.random.default_rng(0))
    harsh = RealisticErrors(scale=2.0).apply(gt, 30.0, np.random.default_rng(0))
    assert np.abs(harsh - gt).mean() > 2 * np.abs(mild - gt).mean()


def test_jitter_is_larger_on_extremities_than_on_the_pelvis():
    gt = static_pose_sequence(3000)
    model = RealisticErrors(**{**SILENT, "jitter_root_mm": 3.0, "jitter_extremity_mm": 12.0})
    std = (model.apply(gt, 30.0, np.random.default_rng(0)) - gt).std(axis=(0, 2))
    wrist, pelvis = H36M17.joint_names.index("r_wrist"), 0
    assert abs(std[pelvis] - 3.0) < 0.2 and abs(std[wrist] - 12.0) < 0.5


def test_bias_drifts_slowly_with_its_correlation_time():
    fps = 30.0
    gt = static_pose_sequence(30000)
    bias = RealisticErrors(**{**SILENT, "bias_std_mm": 20.0, "bias_time_s": 1.0}).apply(
        gt, fps, np.random.default_rng(0)) - gt
    assert abs(bias.std() - 20.0) < 2.0
    lag = int(fps)   # one correlation time: autocorrelation exp(-1)
    corr = (bias[lag:] * bias[:-lag]).mean() / bias.var()
    assert abs(corr - np.exp(-1)) < 0.08


def test_outliers_are_single_frame_jumps_of_one_joint():
    fps = 30.0
    gt = static_pose_sequence(6000)
    model = RealisticErrors(**{**SILENT, "outlier_rate_hz": 0.2})
    size = np.linalg.norm(model.apply(gt, fps, np.random.default_rng(3)) - gt, axis=-1)   # (T, J)
    hit_frames, hit_joints = np.nonzero(size > 1e-3)
    assert 20 <= len(hit_frames) <= 65                       # Poisson, mean 0.2 Hz * 200 s = 40
    assert np.all((size[hit_frames, hit_joints] > 99.9) & (size[hit_frames, hit_joints] < 300.1))
    for joint in range(17):
        assert all(length == 1 for _, length in runs(size[:, joint] > 1e-3))


def test_occlusion_bursts_push_a_limb_for_several_frames():
    fps = 30.0
    gt = static_pose_sequence(12000)
    model = RealisticErrors(**{**SILENT, "occlusion_rate_hz": 0.05})
    offset = model.apply(gt, fps, np.random.default_rng(1)) - gt
    moved = np.linalg.norm(offset, axis=-1) > 1e-3          # (T, J)
    bursts = runs(moved.any(axis=1))
    assert 10 <= len(bursts) <= 35                           # Poisson, mean 0.05 Hz * 400 s = 20
    for start, length in bursts:
        assert 3 <= length <= 15                             # 0.1-0.5 s at 30 fps
        limb = np.flatnonzero(moved[start:start + length].any(axis=0))
        assert 1 <= len(limb) <= 3 and 0 not in limb
        parents = {H36M17.parents[j] for j in limb} - set(limb)
        assert len(parents) == 1                             # a joint and its descendants
        burst = offset[start:start + length][:, limb]
        assert np.allclose(burst, burst[:, :1], atol=1e-3)   # the limb moves as one
        peak = np.linalg.norm(burst[:, 0], axis=-1).max()
        assert 49.9 < peak < 150.1


def test_left_right_confusion_swaps_limb_pairs_for_a_few_frames():
    fps = 60.0
    gt = resample(CLIPS["walking_1"], 120.0, fps)
    gt = np.concatenate([gt] * 20)
    model = RealisticErrors(**{**SILENT, "swap_rate_hz": 0.2})
    noisy = model.apply(gt, fps, np.random.default_rng(2))
    changed = np.abs(noisy - gt).max(axis=-1) > 1e-3         # (T, J)
    perm = H36M17.mirror_permutation
    frames, joints = np.nonzero(changed)
    assert len(frames) > 0
    assert np.allclose(noisy[frames, joints], gt[frames, perm[joints]], atol=1e-3)
    assert np.all(changed[frames, perm[joints]])             # both sides of the pair trade places
    for _, length in runs(changed.any(axis=1)):
        assert length <= 2 * int(round(0.2 * fps))           # brief: 0.05-0.2 s (two may touch)


def test_triangulation_recovers_exact_detections_and_weighs_cameras_by_score():
    gt = resample(CLIPS["walking_1"], 120.0, 30.0)[:60].astype(np.float64)
    rig = TriangulatedDetections(num_cameras=4)
    cameras = rig._cameras(gt, np.random.default_rng(0), H36M17)
    homogeneous = np.concatenate([gt, np.ones((*gt.shape[:2], 1))], axis=-1)
    image = np.einsum("cik,tjk->ctji", cameras, homogeneous)
    assert (image[..., 2] > 3000).all()                       # every camera 3.5 m or more away, in front
    pixels = image[..., :2] / image[..., 2:]
    scores = np.ones(pixels.shape[:3])
    np.testing.assert_allclose(triangulate(cameras, pixels, scores), gt, atol=1e-6)
    wrong = pixels.copy()
    wrong[0] += 40.0                                          # camera 0 misdetects everything by 40 px
    error = {}
    for score in (1.0, 0.2):
        scores[0] = score
        error[score] = np.linalg.norm(triangulate(cameras, wrong, scores) - gt, axis=-1).mean()
    assert error[1.0] > 2 * error[0.2] > 0
    scores[1:] = 0.05                                          # below min_score: one camera left, too few
    assert np.isnan(triangulate(cameras, pixels, scores)).all()


def test_triangulated_detections_have_structured_errors_and_missing_joints():
    gt = resample(CLIPS["walking_1"], 120.0, 30.0).astype(np.float32)
    noisy = TriangulatedDetections(missed_rate_hz=4.0, num_cameras=3).apply(gt, 30.0, np.random.default_rng(1))
    missing = np.isnan(noisy).any(axis=-1)
    assert noisy.shape == gt.shape and noisy.dtype == np.float32
    assert 0 < missing.mean() < 0.2 and np.isnan(noisy[missing]).all()
    error = np.linalg.norm(noisy - gt, axis=-1)[~missing]
    assert 5 < np.median(error) < 40                          # 2.5 px jitter + 3 px bias at 3.5-6 m
    assert np.percentile(error, 99.9) > 3 * np.median(error)  # misdetections: spikes
    clean = TriangulatedDetections(scale=0.0, missed_rate_hz=0.0, misdetection_rate_hz=0.0)
    np.testing.assert_allclose(clean.apply(gt, 30.0, np.random.default_rng(2)), gt, atol=1e-2)
    with pytest.raises(ValueError, match="3D"):
        TriangulatedDetections().apply(gt[..., :2], 30.0, np.random.default_rng(0))


def test_views_have_independent_errors():
    gt = resample(CLIPS["walking_1"], 120.0, 30.0)
    views = synthesize_views(gt, 3, GaussianNoise(std_mm=20.0), 30.0, np.random.default_rng(0))
    assert views.shape == (3,) + gt.shape and views.dtype == np.float32
    errors = (views - gt).reshape(3, -1)
    corr = np.corrcoef(errors)
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 0.05)
    assert np.allclose(errors.std(axis=1), 20.0, rtol=0.05)


def test_calibration_error_is_a_bounded_rigid_transform_per_view():
    gt = resample(CLIPS["walking_1"], 120.0, 30.0)[:20]
    views = synthesize_views(gt, 4, NoErrors(), 30.0, np.random.default_rng(0),
                             calibration_mm=30.0, calibration_deg=5.0)
    points_gt = gt.reshape(-1, 3).astype(np.float64)
    distances = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)
    for view in views:
        points = view.reshape(-1, 3).astype(np.float64)
        assert not np.allclose(points, points_gt, atol=1.0)
        assert np.allclose(distances(points), distances(points_gt), atol=0.05)   # rigid over the whole sequence
        # rotation angle from the Kabsch fit, translation of the pivot (mean root position)
        a, b = points_gt - points_gt.mean(0), points - points.mean(0)
        u, _, vt = np.linalg.svd(a.T @ b)
        rot = (u @ vt).T
        angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
        assert angle <= 5.0 + 1e-3
        pivot = gt[:, 0].mean(0)
        assert np.linalg.norm(view[:, 0].mean(0) - pivot) <= 30.0 + 1e-2


def test_make_error_model_by_name_with_overrides_and_yaml_mapping():
    assert isinstance(make_error_model("none"), NoErrors)
    assert make_error_model("gaussian", std_mm=7.0) == GaussianNoise(std_mm=7.0)
    assert make_error_model("Uniform", max_mm=9.0) == UniformNoise(max_mm=9.0)
    model = error_model_from_config({"name": "realistic", "scale": 1.5, "outlier_offset_mm": [120, 200]})
    assert model == RealisticErrors(scale=1.5, outlier_offset_mm=(120, 200))
    assert error_model_from_config("gaussian") == GaussianNoise()
    with pytest.raises(ValueError, match="no parameter.*std"):
        make_error_model("uniform", std_mm=3.0)
    with pytest.raises(ValueError, match="unknown error model 'laplace'"):
        make_error_model("laplace")
    with pytest.raises(ValueError, match="'name'"):
        error_model_from_config({"scale": 2.0})


def test_bad_input_is_a_clear_error():
    gt = np.zeros((10, 17, 3), np.float32)
    gt[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianNoise().apply(gt, 30.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(T, J, D\)"):
        RealisticErrors().apply(np.zeros((10, 51)), 30.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="14 joints"):
        RealisticErrors().apply(np.zeros((10, 14, 3)), 30.0, np.random.default_rng(0))
