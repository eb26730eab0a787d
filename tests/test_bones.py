"""The bone-length stage: running estimate, projection (C++ and numpy), and its effect on real motion."""
from pathlib import Path

import numpy as np
import pytest

from synsp_core import bones
from synsp_core.bones import BoneLengthPrior, bone_prior_for, project_bone_lengths_reference
from synsp_core.errors import RealisticErrors, synthesize_views
from synsp_core.metrics import mpjpe
from synsp_core.model import SynSPConfig
from synsp_core.motion import resample
from synsp_core.skeletons import COCO17, H36M17, LSP14

CLIPS = np.load(Path(__file__).parents[1] / "synsp_core/data/cmu_test_clips_120fps.npz")
needs_extension = pytest.mark.skipif(bones._swaa is None, reason="the extension synsp_core._swaa is not built")


def walking(fps: float = 30.0) -> np.ndarray:
    return resample(CLIPS["walking_1"], 120.0, fps).astype(np.float64)


def test_true_lengths_leave_a_true_pose_unchanged():
    prior = BoneLengthPrior(H36M17)
    gt = walking()[:20]
    np.testing.assert_allclose(prior.project(gt, prior.bone_lengths(gt)), gt, atol=1e-9)


def test_projection_restores_the_target_lengths():
    prior = BoneLengthPrior(H36M17, iterations=60)
    gt = walking()[:20]
    noisy = gt + np.random.default_rng(0).normal(0, 20, gt.shape)
    target = prior.bone_lengths(gt)
    assert np.abs(prior.bone_lengths(noisy) - target).max() > 20
    projected = prior.project(noisy, target)
    np.testing.assert_allclose(prior.bone_lengths(projected), target, atol=0.05)
    assert mpjpe(projected, gt) < mpjpe(noisy, gt)


@needs_extension
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpp_projection_equals_the_numpy_definition(dtype):
    prior = BoneLengthPrior(H36M17, iterations=5)
    rng = np.random.default_rng(1)
    poses = (walking()[:30] + rng.normal(0, 25, (30, 17, 3))).astype(dtype)
    lengths = prior.stream_lengths(poses)
    poses[3, 4] = poses[3, 5]   # a zero-length bone: left as it is by both
    expected = project_bone_lengths_reference(poses, prior.bones, lengths, 5)
    got = prior.project(poses, lengths)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected.astype(dtype), rtol=0, atol=1e-9 if dtype == np.float64 else 1e-3)


@needs_extension
def test_cpp_projection_rejects_bad_bones_and_shapes():
    poses, lengths = np.zeros((2, 17, 3)), np.ones((2, 2))
    with pytest.raises(ValueError, match="outside"):
        bones._swaa.project_bone_lengths(poses, np.array([[0, 1], [1, 17]]), lengths, 5)
    with pytest.raises(ValueError, match="itself"):
        bones._swaa.project_bone_lengths(poses, np.array([[0, 1], [2, 2]]), lengths, 5)
    with pytest.raises(ValueError, match=r"\(N, B\)"):
        bones._swaa.project_bone_lengths(poses, np.array([[0, 1], [1, 2]]), np.ones((3, 2)), 5)


def test_numpy_fallback_warns_once_and_agrees(monkeypatch):
    prior = BoneLengthPrior(H36M17)
    poses = walking()[:10] + np.random.default_rng(2).normal(0, 10, (10, 17, 3))
    lengths = prior.stream_lengths(poses)
    expected = project_bone_lengths_reference(poses, prior.bones, lengths, prior.iterations)
    monkeypatch.setattr(bones, "_swaa", None)
    monkeypatch.setattr(bones, "_warned", False)
    with pytest.warns(RuntimeWarning, match="not built"):
        got = prior.project(poses, lengths)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_estimate_is_a_running_mean_with_left_and_right_averaged():
    prior = BoneLengthPrior(H36M17, horizon_frames=1e9)   # no forgetting: the plain running mean
    rng = np.random.default_rng(3)
    poses = walking()[:40] + rng.normal(0, 3, (40, 17, 3))   # noise small enough that nothing is clipped
    observed = prior.bone_lengths(poses)
    running = np.cumsum(observed, axis=0) / np.arange(1, 41)[:, None]
    expected = 0.5 * (running + running[:, prior.twin])
    np.testing.assert_allclose(prior.stream_lengths(poses), expected, rtol=1e-9)
    names = H36M17.joint_names
    child = [names[c] for _, c in prior.bones]
    assert child[prior.twin[child.index("l_elbow")]] == "r_elbow" and child[prior.twin[child.index("spine")]] == "spine"


def test_streaming_updates_equal_one_offline_update():
    prior = BoneLengthPrior(H36M17, horizon_frames=20)
    poses = walking()[:50] + np.random.default_rng(4).normal(0, 15, (50, 17, 3))
    offline = prior.stream_lengths(poses)
    prior.reset()
    online = np.concatenate([prior.update(poses[t:t + 1]) for t in range(50)])
    np.testing.assert_allclose(online, offline, rtol=1e-12)
    prior.reset()
    np.testing.assert_allclose(prior.update(poses[:1])[0], 0.5 * (prior.bone_lengths(poses[0]) +
                                                                  prior.bone_lengths(poses[0])[prior.twin]))


@pytest.mark.parametrize("skeleton", [H36M17, COCO17, LSP14])
def test_every_3d_layout_pairs_its_bones(skeleton):
    prior = BoneLengthPrior(skeleton)
    assert len(prior.bones) == skeleton.num_joints   # the tree's bones, then the hip width
    assert sorted(prior.bones[-1]) == sorted(skeleton.left_right_pair("hip"))
    assert prior.twin[-1] == len(prior.bones) - 1
    assert (prior.twin[prior.twin] == np.arange(len(prior.bones))).all()
    assert (prior.twin != np.arange(len(prior.bones))).sum() >= 8   # arms and legs have twins


def test_stage_is_off_for_2d_and_when_disabled():
    assert bone_prior_for(SynSPConfig(dims=2)) is None
    assert bone_prior_for(SynSPConfig(), enabled=False) is None
    assert bone_prior_for(SynSPConfig(skeleton="coco17")).skeleton is COCO17
    with pytest.raises(ValueError, match="horizon"):
        BoneLengthPrior(H36M17, horizon_frames=0)
    with pytest.raises(ValueError, match="iterations"):
        BoneLengthPrior(H36M17, iterations=0)


@pytest.mark.parametrize("clip", ["walking_1", "soccer_1", "basketball_1"])
def test_stage_lowers_the_error_of_views_averaged_under_realistic_errors(clip):
    """The point of the stage: drifting per-joint errors change bone lengths, the person's do not."""
    gt = resample(CLIPS[clip], 120.0, 30.0)
    views = synthesize_views(gt, 4, RealisticErrors(), 30.0, np.random.default_rng(5))
    mean = views.mean(axis=0)
    prior = BoneLengthPrior(H36M17)
    staged = prior.project(mean, prior.stream_lengths(mean))
    assert mpjpe(staged, gt) < 0.95 * mpjpe(mean, gt)


def test_estimate_resists_outliers_and_learns_only_from_observed_bones():
    prior = BoneLengthPrior(H36M17)
    poses = walking()[:60].astype(np.float64)
    true = prior.bone_lengths(poses[0])
    far = poses.copy()
    far[40, 13] += 1e6                       # one joint a kilometre off in one frame
    np.testing.assert_allclose(prior.stream_lengths(far)[-1], prior.stream_lengths(poses)[-1], rtol=0.02)
    # a bone whose joints were never observed keeps no weight: its estimate follows the output
    weights = np.ones((60, len(prior.bones)))
    wrist = [b for b, (_, c) in enumerate(prior.bones) if H36M17.joint_names[c] == "l_wrist"][0]
    weights[:, wrist] = 0.0
    stretched = poses.copy()
    stretched[:, 13] += (stretched[:, 13] - stretched[:, 12]) * 0.5   # forearm 1.5x as predicted
    lengths = prior.stream_lengths(stretched, weights)
    twin = prior.twin[wrist]
    assert abs(lengths[-1, wrist] - 0.5 * (1.5 * true[wrist] + true[twin])) < 1.0


def stretched_thigh(poses: np.ndarray, prior: BoneLengthPrior, mm: float) -> tuple[np.ndarray, int, np.ndarray]:
    """The left thigh lengthened by `mm` x (cos of the knee angle - its mean), as a convention
    whose knee centre is not on a rigid bone: (poses, that bone's index, its true lengths (T,))."""
    hip, knee, ankle = (H36M17.joint_names.index(n) for n in ("l_hip", "l_knee", "l_ankle"))
    bone = [b for b, (p, c) in enumerate(prior.bones) if (p, c) == (hip, knee)][0]
    thigh, shin = poses[:, knee] - poses[:, hip], poses[:, ankle] - poses[:, knee]
    cos = (thigh * shin).sum(-1) / np.linalg.norm(thigh, axis=-1) / np.linalg.norm(shin, axis=-1)
    shift = thigh / np.linalg.norm(thigh, axis=-1, keepdims=True) * (mm * (cos - cos.mean()))[:, None]
    out = poses.copy()
    out[:, [knee, ankle]] += shift[:, None]            # the knee and the shin below it move along the thigh
    return out, bone, prior.bone_lengths(out)[:, bone]


def test_pose_dependence_follows_a_bone_that_stretches_with_the_pose():
    prior = BoneLengthPrior(H36M17)
    poses, bone, true = stretched_thigh(walking(), prior, 60.0)
    rng = np.random.default_rng(0)
    views = (poses + rng.normal(0, 2.0, poses.shape))[None]       # one view, nearly clean
    observed = np.ones(views.shape[:3], dtype=bool)
    weights = np.ones((len(poses), len(prior.bones)))
    output = poses + rng.normal(0, 1.0, poses.shape)                 # the model's output, a little off
    term = bones.pose_dependence(prior, output, views, observed, weights)
    varying = true - true.mean()
    assert varying.std() > 3.0                                       # the bone does stretch
    assert np.sqrt(np.mean((term[:, bone] - varying) ** 2)) < 0.25 * varying.std()
    others = np.delete(term, bone, axis=1)
    assert np.abs(others).max() < 0.5 * varying.std()                # the rigid bones stay (nearly) rigid


def test_pose_dependence_is_nothing_on_rigid_bones_under_noise():
    prior = BoneLengthPrior(H36M17)
    poses = walking()
    rng = np.random.default_rng(1)
    views = np.stack([poses + rng.normal(0, 20.0, poses.shape) for _ in range(2)])
    observed = np.ones(views.shape[:3], dtype=bool)
    observed[0, :, 3] = False                                         # a foot one camera never saw
    term = bones.pose_dependence(prior, poses, views, observed, np.ones((len(poses), len(prior.bones))))
    assert np.sqrt(np.mean(term ** 2)) < 0.5 and np.isfinite(term).all()
    few = bones.pose_dependence(prior, poses[:30], views[:, :30], observed[:, :30], np.ones((30, len(prior.bones))))
    assert (few == 0).all()                                           # too few frames to fit: rigid


def test_recording_lengths_use_the_whole_recording_and_resist_outliers():
    """Offline, the first frames get the whole recording's estimate (the running one rests on
    the first frames alone), a joint a kilometre off in one frame barely moves it, an unseen
    bone takes its twin's, and one never seen is NaN."""
    prior = BoneLengthPrior(H36M17)
    poses = walking()[:60]
    true = prior.bone_lengths(poses).mean(axis=0)
    wrist = [b for b, (_, c) in enumerate(prior.bones) if H36M17.joint_names[c] == "l_wrist"][0]
    twin = prior.twin[wrist]
    late = poses.copy()
    late[30:, 13] += (late[30:, 13] - late[30:, 12]) * 0.2   # forearm 1.2x in the second half
    lengths = prior.recording_lengths(late)
    assert lengths.shape == (len(prior.bones),)
    expected = 0.5 * (1.1 * true[wrist] + true[twin])       # the whole recording's, twins averaged
    assert abs(lengths[wrist] - expected) < 1.0
    assert abs(prior.stream_lengths(late)[0, wrist] - 0.5 * (true[wrist] + true[twin])) < 1.0
    far = poses.copy()
    far[40, 13] += 1e6
    np.testing.assert_allclose(prior.recording_lengths(far), prior.recording_lengths(poses), rtol=0.02)
    weights = np.ones((60, len(prior.bones)))
    weights[:, wrist] = 0.0
    stretched = poses.copy()
    stretched[:, 13] += (stretched[:, 13] - stretched[:, 12]) * 0.5   # predicted, never seen: left out
    np.testing.assert_allclose(prior.recording_lengths(stretched, weights)[wrist], true[twin], atol=1.0)
    weights[:, twin] = 0.0
    assert np.isnan(prior.recording_lengths(stretched, weights)[[wrist, twin]]).all()


def test_recording_lengths_along_other_directions_are_not_lengthened_by_noise():
    """The norm of a noisy bone vector is longer than the bone; its projection on a good
    direction is not (the Refiner's several views: their mean along the refined pose)."""
    prior = BoneLengthPrior(H36M17)
    poses = np.concatenate([walking()] * 4)                              # 360 frames
    true = prior.recording_lengths(poses)
    noisy = poses + np.random.default_rng(0).normal(0, 20, poses.shape)   # mm per coordinate
    lengthened = prior.recording_lengths(noisy) - true
    along = prior.recording_lengths(noisy, along=poses) - true
    assert lengthened.mean() > 3.0 and lengthened.min() > 0              # about 2 x 20^2 / length
    assert abs(along.mean()) < 1.0 and np.abs(along).max() < 5.0         # seeds 0-7: |mean| <= 0.5
    np.testing.assert_allclose(prior.recording_lengths(poses, along=poses), true, atol=1e-9)
    running = prior.stream_lengths(noisy, along=poses)[-1] - true                  # the node's, causal
    assert abs(running.mean()) < 1.0 and np.abs(running).max() < 8.0
    noisy[:, 13] = np.nan                                                 # a wrist never seen: along's own
    assert np.isfinite(prior.stream_lengths(noisy, along=poses)).all()
