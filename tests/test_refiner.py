"""Offline refinement (Refiner) and the synsp-refine command."""
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from synsp_core.bones import BoneLengthPrior
from synsp_core.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from synsp_core.cli import main as refine_main
from synsp_core.model import SynSP, SynSPConfig
from synsp_core.refiner import (NOISE_MM, PROBE_MM, ROOT_PATH_SIGMA, SMOOTH_SIGMA, AGREEMENT_K, ModelPass, Refiner,
                                agreement_k, bone_jitter, bone_rigidity, bound_by_view_agreement, classical_mean,
                                input_jitter_mm, input_noise_mm, noise_levels_mm, rms_level, root_path,
                                bone_stretch_mm, structured_sigma, sure_blend, whiteness)
from synsp_core.skeletons import H36M17
from synsp_core.swaa import swaa_reference

BONES = np.array(H36M17.bones)
TINY_CMU = Path(__file__).parent / "data" / "cmu17_tiny_120fps.npz"   # 300 frames of 2 CMU takes, mm
TINY = dict(d_model=16, n_heads=2, head_dim=8, d_ffn=16, n_local_layers=1, n_global_layers=1,
            n_base_shared_layers=1, n_refine_layers=1, dropout=0.0, attn_dropout=0.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = SynSP(SynSPConfig(**TINY))
    torch.nn.init.normal_(m.refine_head.correction.weight, std=0.1)
    return m.eval()


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", model, {"note": "test"})


def poses(*shape, seed=0):
    return (np.random.default_rng(seed).normal(size=shape) * 100).astype(np.float32)


def test_refine_equals_windows_plus_swaa(model):
    x = poses(2, 20, 17, 3)
    plain = Refiner.from_model(model, bone_lengths=False, smoothing=False, agreement_bound=False, white_blend=False)
    refined, fused = plain.refine_views(x)
    with torch.no_grad():
        seq = torch.from_numpy(x.reshape(2, 20, 51))
        out = model(torch.stack([seq[:, k:k + 8] for k in range(13)])).refined
    expected = swaa_reference(out.permute(1, 0, 2, 3)).numpy().reshape(2, 20, 17, 3)
    np.testing.assert_allclose(refined, expected, atol=1e-3)
    np.testing.assert_allclose(fused, expected.mean(axis=0), atol=1e-3)
    # the smoothing stage: a Gaussian over time, SMOOTH_SIGMA[0] on clean input, [1] on noisy input
    # (these random poses jump ~100 mm a frame, far from the model's output: noisy everywhere)
    assert (input_jitter_mm(x, expected) > NOISE_MM[1]).all()
    smoothed = Refiner.from_model(model, bone_lengths=False, agreement_bound=False,
                                  white_blend=False).refine_views(x)[0]
    np.testing.assert_allclose(smoothed, gaussian_filter1d(expected.astype(np.float64), SMOOTH_SIGMA[1], axis=1,
                                                           mode="nearest"), atol=1e-3)


def test_jitter_counts_frame_to_frame_noise_not_a_smooth_model_error():
    """input_jitter_mm measures i.i.d. noise of s mm per coordinate as about s * sqrt(3) (its 3D
    RMS), and an output that lags the input smoothly (a model on fast motion) as about 0, where
    input_noise_mm counts the lag in full."""
    rng = np.random.default_rng(2)
    t = np.arange(300)[:, None, None]
    truth = np.concatenate([200 * np.sin(t / 10.0), 100 * np.cos(t / 7.0), 0 * t], axis=-1) + np.zeros((1, 17, 3))
    noisy = truth + rng.normal(0, 5.0, truth.shape)
    jitter = input_jitter_mm(noisy[None], truth[None])
    assert np.median(jitter) == pytest.approx(5.0 * np.sqrt(3), rel=0.1)
    lagging = np.roll(truth, 1, axis=0)[None]           # the output one frame behind: ~20 mm off
    lagging[:, 0] = truth[0]
    assert np.median(input_noise_mm(truth[None], lagging)) > 15.0
    assert np.median(input_jitter_mm(truth[None], lagging)) < 2.0


def test_views_that_agree_bound_the_fused_pose_to_the_classical_estimate():
    """The multi-view floor: with views that agree (1 mm of noise), a correction far off (a model
    adding 50 mm) is cut to about the classical estimate's own error; with views that disagree
    (200 mm), it is left as it is."""
    rng = np.random.default_rng(5)
    truth = np.cumsum(rng.normal(0, 5, (60, 1, 3)), axis=0) + rng.normal(0, 200, (1, 17, 3))
    for noise_mm, expect_cut in ((1.0, True), (200.0, False)):
        views = truth[None] + rng.normal(0, noise_mm, (4, 60, 17, 3))
        observed = np.ones(views.shape[:3], bool)
        classical = gaussian_filter1d(views.mean(axis=0), 1.0, axis=0, mode="nearest")
        fused = classical + np.array([50.0, 0.0, 0.0])
        bounded = bound_by_view_agreement(fused, views, observed)
        moved = np.linalg.norm(bounded - classical, axis=-1)
        if expect_cut:
            assert moved.max() < 3 * noise_mm
        else:
            np.testing.assert_allclose(moved, 50.0, rtol=1e-6)
    # a joint seen by one view only is left as it is
    observed[1:, :, 3] = False
    bounded = bound_by_view_agreement(fused, views, observed)
    np.testing.assert_allclose(bounded[:, 3], fused[:, 3])


def test_agreement_k_is_tight_only_where_the_views_errors_are_white_and_small():
    """The fusion bound's width: AGREEMENT_K[0] for 4 views with 5 mm of i.i.d. noise (the white
    level is read from the input alone, fast motion or not), AGREEMENT_K[1] for 20 mm of i.i.d. noise
    and for views that each drift (their spread is more than white noise explains); missing joints
    do not enter the level, and a recording too short to read it keeps the wide bound."""
    rng = np.random.default_rng(3)
    t = np.arange(300)[:, None, None]
    truth = np.concatenate([300 * np.sin(t / 4.0), 100 * np.cos(t / 7.0), 0 * t], axis=-1) + rng.normal(0, 200, (1, 17, 3))
    observed = np.ones((4, 300, 17), bool)
    white5 = truth[None] + rng.normal(0, 5.0, (4, 300, 17, 3))
    assert rms_level(noise_levels_mm(white5, observed)) == pytest.approx(5.0, rel=0.1)
    assert agreement_k(white5, observed) == AGREEMENT_K[0]
    assert agreement_k(truth[None] + rng.normal(0, 20.0, (4, 300, 17, 3)), observed) == AGREEMENT_K[1]
    drifting = white5 + np.cumsum(rng.normal(0, 3.0, (4, 300, 17, 3)), axis=1)
    assert agreement_k(drifting, observed) == AGREEMENT_K[1]
    gaps = observed.copy()
    gaps[:, 100:110] = False
    assert agreement_k(np.where(gaps[..., None], white5, 1e4), gaps) == AGREEMENT_K[0]
    assert agreement_k(white5[:, :4], observed[:, :4]) == AGREEMENT_K[1]


def walking_skeleton(frames: int, seed: int) -> np.ndarray:
    """(frames, 17, 3) mm: a rigid H36M17 skeleton (random bone directions, fixed lengths) whose
    joints swing at up to ~1.5 m/s, so that bones keep their length as a person's do."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    out = np.zeros((frames, 17, 3))
    for j, parent in enumerate(H36M17.parents):
        if parent < 0:
            out[:, j] = np.concatenate([300 * np.sin(t / 20.0), 200 * np.cos(t / 30.0), 0 * t + 900], axis=1)
            continue
        angles = rng.uniform(0, 2 * np.pi, 2) + rng.uniform(0.02, 0.08, 2) * t
        direction = np.concatenate([np.cos(angles[:, :1]) * np.cos(angles[:, 1:]),
                                    np.sin(angles[:, :1]) * np.cos(angles[:, 1:]), np.sin(angles[:, 1:])], axis=1)
        out[:, j] = out[:, parent] + rng.uniform(100, 400) * direction
    return out


def depth_heavy(rng, shape, std_mm: float, ratio: float) -> np.ndarray:
    """i.i.d. Gaussian noise (shape (..., 3), mm), ratio x stronger along one horizontal direction."""
    depth = np.array([np.cos(1.0), np.sin(1.0), 0.0])
    noise = rng.normal(0, std_mm, shape)
    return noise + (ratio - 1) * (noise @ depth)[..., None] * depth


HAND_SCALE = np.ones(17)
HAND_SCALE[[3, 6, 13, 16]] = 4.0   # feet and hands: 4x the noise of the rest


def test_noise_levels_read_each_joint_and_axis():
    """noise_levels_mm reads the white-noise level of every joint and axis from the input alone
    (motion barely enters a 4th difference), and spikes do not raise it."""
    rng = np.random.default_rng(6)
    truth = walking_skeleton(400, seed=4)
    axes = np.array([2.0, 5.0, 10.0])
    expected = np.broadcast_to(HAND_SCALE[:, None] * axes, (17, 3))
    noisy = truth + rng.normal(0, 1.0, truth.shape) * expected
    spiked = noisy.copy()
    spiked[rng.random(400) < 0.02, 5] += 300.0
    observed = np.ones((1, 400, 17), bool)
    for views in (noisy, spiked):
        np.testing.assert_allclose(noise_levels_mm(views[None], observed)[0], expected, rtol=0.2)
    gaps = observed.copy()
    gaps[0, :, 2] = False
    assert np.isnan(noise_levels_mm(noisy[None], gaps)[0, 2]).all()
    assert rms_level(noise_levels_mm(noisy[None], observed)) == pytest.approx(np.sqrt((expected ** 2).mean()), rel=0.1)


def test_whiteness_tells_white_errors_from_structured():
    """White input errors read as white (bone_jitter about 1), whatever their level per joint and
    axis: i.i.d. Gaussian or uniform, 5 or 20 mm, 3x stronger in a horizontal depth direction or 2x
    on z, 4x at the hands and feet, one view or four. A drifting bias per joint reads as structured
    (0): no white-noise floor there. Four views whose errors drift apart (each view as a whole)
    are structured too, though their bones keep their length."""
    rng = np.random.default_rng(7)
    truth = walking_skeleton(300, seed=1)
    one, four = np.ones((1, 300, 17), bool), np.ones((4, 300, 17), bool)
    for noise in (rng.normal(0, 5.0, (1, 300, 17, 3)), rng.normal(0, 20.0, (4, 300, 17, 3)),
                  rng.uniform(-40, 40, (1, 300, 17, 3)), depth_heavy(rng, (1, 300, 17, 3), 5.0, 3.0),
                  depth_heavy(rng, (4, 300, 17, 3), 5.0, 3.0),
                  rng.normal(0, 5.0, (4, 300, 17, 3)) * HAND_SCALE[:, None],
                  rng.normal(0, 1.0, (1, 300, 17, 3)) * [5.0, 5.0, 10.0]):   # depth on z: data in a camera frame
        views = truth[None] + noise
        observed = one if len(views) == 1 else four
        assert bone_jitter(views, observed, BONES) == pytest.approx(1.0, abs=0.1)
        assert whiteness(views, observed, BONES) == 1.0
    drift = np.cumsum(rng.normal(0, 2.0, (1, 300, 17, 3)), axis=1)
    assert whiteness(truth[None] + rng.normal(0, 5.0, (1, 300, 17, 3)) + drift, one, BONES) == 0.0
    assert whiteness(truth[None] + rng.normal(0, 5.0, (4, 300, 17, 3)) + 0.5 * np.cumsum(
        rng.normal(0, 3.0, (4, 300, 1, 3)), axis=1), four, BONES) == 0.0     # bones intact, views apart


def test_sure_blend_picks_the_better_of_model_and_filter_from_the_input_alone():
    """The white-noise floor on 5 mm of i.i.d. noise: an estimate that is the truth (a model that
    removes the noise: no divergence) is kept; an estimate that is the input itself (a model that
    does nothing: divergence 1 per coordinate) gives way to the filter. Both come out at least as
    close to the truth, root-relative, as the best Gaussian filter of the grid; structured input
    (white 0) is left as it is. Missing joints stay finite."""
    rng = np.random.default_rng(8)
    truth = walking_skeleton(300, seed=2)
    views = truth[None] + rng.normal(0, 5.0, (1, 300, 17, 3))
    observed = np.ones(views.shape[:3], bool)
    probe, step = 5.0 * rng.standard_normal(views.shape), PROBE_MM / 5.0   # a draw of the noise (mm)

    def error(x):
        rel = lambda p: p - p[:, :1]
        return np.linalg.norm(rel(x) - rel(truth), axis=-1).mean()
    best_filter = min(error(gaussian_filter1d(views[0], s, axis=0, mode="nearest")) for s in (0.5, 1.0, 1.5, 2.0))
    kept = sure_blend(truth, truth, views, probe, step, observed, (0,), 1.0)
    assert error(kept) < 0.3 * best_filter
    idle = sure_blend(views[0], views[0] + step * probe[0], views, probe, step, observed, (0,), 1.0)
    assert error(idle) <= 1.02 * best_filter and error(idle) < 0.7 * error(views[0])
    np.testing.assert_array_equal(sure_blend(views[0], views[0], views, probe, step, observed, (0,), 0.0), views[0])
    gaps = observed.copy()
    gaps[:, 100:120, 4] = False
    out = sure_blend(truth, truth, np.where(gaps[..., None], views, np.nan), probe * gaps[..., None], step, gaps,
                     (0,), 1.0)
    assert np.isfinite(out).all()


def test_refine_views_probes_white_input_only(model):
    """The white-noise floor's extra model pass runs on white input (and its output differs from
    the floor left out), with a probe as strong as the input's noise per joint, and not at all on
    structured input, whose output is then exactly that of the Refiner without the floor."""
    rng = np.random.default_rng(9)
    truth = walking_skeleton(120, seed=3)
    white = (truth + rng.normal(0, 5.0, truth.shape) * HAND_SCALE[:, None]).astype(np.float32)
    drifting = (white + np.cumsum(rng.normal(0, 2.0, truth.shape), axis=0)).astype(np.float32)
    refiner, without = Refiner.from_model(model), Refiner.from_model(model, white_blend=False)
    conf = np.ones((1, 120, 17), np.float32)
    for views, probed in ((white, True), (drifting, False)):
        raw = refiner.model_pass(views[None], conf)
        probe = refiner.probe_pass(views[None], conf, raw)
        assert (probe is not None) == probed
        if probed:   # the hands' probe 4x the rest's
            rms = np.sqrt((probe[0] ** 2).mean(axis=(0, 1, 3)))
            assert rms[HAND_SCALE > 1].min() > 2.5 * rms[HAND_SCALE == 1].max()
        same = np.allclose(refiner.refine(views), without.refine(views))
        assert same != probed


def test_bone_stage_projects_the_refined_output(model):
    """By default, 3D output goes through the bone-length stage: lengths from the views' mean
    along the fused output's bones, from the output itself on one view."""
    x = poses(3, 30, 17, 3)
    # the floors come after the stage: left out (random poses read as white noise)
    raw_views, raw_fused = Refiner.from_model(model, bone_lengths=False, agreement_bound=False,
                                              white_blend=False).refine_views(x)
    refiner = Refiner.from_model(model, agreement_bound=False, white_blend=False)
    refined, fused = refiner.refine_views(x)
    prior = BoneLengthPrior(H36M17)
    lengths = prior.recording_lengths(x.astype(np.float64).mean(axis=0), along=raw_fused)
    # a bone whose views point against the output's (this untrained model's) keeps its length
    assert (lengths > 0).any() and (lengths < 0).any()
    lengths = np.where(lengths > 0, lengths, prior.bone_lengths(raw_fused.astype(np.float64)))
    np.testing.assert_allclose(fused, prior.project(raw_fused, lengths), atol=1e-3)
    np.testing.assert_allclose(refined, prior.project(raw_views, lengths), atol=1e-3)
    assert not np.allclose(fused, raw_fused, atol=1.0)
    single = refiner.refine(x[0])
    raw_single = Refiner.from_model(model, bone_lengths=False, white_blend=False).refine(x[0])
    np.testing.assert_allclose(single, prior.project(raw_single, prior.recording_lengths(raw_single)), atol=1e-3)


def test_bone_rigidity_tells_rigid_bones_from_ones_that_stretch_with_the_pose():
    """Four views with 3 mm of noise on a CMU clip: its bones are rigid, and read about 1; a
    forearm made to stretch by 10% of its length over time (a convention with the wrist off the bone)
    reads near 0, with its left twin; a bone no view sees twice reads 1."""
    rng = np.random.default_rng(3)
    truth = np.load(TINY_CMU)["test/soccer_1"].astype(np.float64)   # 300 frames, mm
    prior = BoneLengthPrior(H36M17)
    forearms = [b for b, (p, c) in enumerate(prior.bones) if H36M17.joint_names[c].endswith("wrist")]
    observed = np.ones((4, len(truth), 17), bool)
    seen = np.ones((len(truth), len(prior.bones)))
    views = truth[None] + rng.normal(0, 3.0, (4, *truth.shape))
    rigid = bone_rigidity(prior, views, observed, classical_mean(views, observed), seen)
    assert rigid.mean() > 0.8 and rigid.min() > 0.5
    stretched = truth.copy()
    elbow, wrist = prior.bones[forearms[0]]
    stretched[:, wrist] += (stretched[:, wrist] - stretched[:, elbow]) * 0.1 * np.sin(np.arange(len(truth)) / 5.0)[:, None]
    views = stretched[None] + rng.normal(0, 3.0, (4, *truth.shape))
    rigid = bone_rigidity(prior, views, observed, classical_mean(views, observed), seen)
    assert rigid[forearms].max() < 0.2 and np.delete(rigid, forearms).min() > 0.5
    observed[1:, :, wrist] = False
    assert bone_rigidity(prior, views, observed, classical_mean(views, observed), seen)[forearms[0]] == 1.0


def test_fused_bones_are_projected_again_after_the_multi_view_bound():
    """The multi-view floor pulls joints toward the views' mean, whose bones are noisy; the fused
    pose is then projected on the bone lengths again (rigid bones: the truth's): its bones vary
    far less over time than those of the bound alone, and the bound still acts (a model's 40 mm
    errors are cut)."""
    rng = np.random.default_rng(7)
    truth = np.load(TINY_CMU)["test/soccer_1"].astype(np.float64)   # 300 frames, mm
    views = truth[None] + rng.normal(0, 3.0, (4, *truth.shape))
    observed = np.ones(views.shape[:3], bool)
    fused = truth + rng.normal(0, 40.0, truth.shape) * (rng.random((len(truth), 17, 1)) < 0.3)   # the model's misses
    raw = ModelPass(views, observed, views.copy(), fused, np.ones(truth.shape[:2]))
    prior = BoneLengthPrior(H36M17)
    out = Refiner.bound_stages(raw, prior, agreement_bound=True)[1]
    bounded_only = bound_by_view_agreement(Refiner.bound_stages(raw, prior, agreement_bound=False)[1], views, observed)
    spread = lambda x: prior.bone_lengths(x).std(axis=0).mean()   # mm, over time
    assert spread(bounded_only) > 1.0
    assert spread(out) < 0.5 * spread(bounded_only)
    error = lambda x: np.linalg.norm(x - truth, axis=-1).mean()
    assert error(out) < 0.5 * error(fused)


def drifting_bias(rng, shape, std_mm: float, frames: float) -> np.ndarray:
    """A slowly drifting offset per joint and axis: white noise smoothed over `frames`, std std_mm."""
    bias = gaussian_filter1d(rng.normal(size=shape), frames, axis=-3)
    return bias * std_mm / bias.std()


def test_bone_stretch_reads_structured_errors_not_white_noise_or_motion():
    """White noise of 20 mm reads about 0, however fast the motion (the clip at 120 and at 30 fps);
    a drifting bias of 20 mm per axis stretches bones by about its size along a bone (~28 mm:
    both ends' offsets), several views alike per view."""
    rng = np.random.default_rng(5)
    truth = np.load(TINY_CMU)["test/soccer_1"].astype(np.float64)   # 300 frames at 120 fps, mm
    for clip in (truth, truth[::4]):
        white = clip[None] + rng.normal(0, 20.0, (1, *clip.shape))
        assert bone_stretch_mm(white, np.ones(white.shape[:3], bool), BONES) < 5.0
    biased = truth[None] + drifting_bias(rng, (4, *truth.shape), 20.0, 10.0) + rng.normal(0, 5.0, (4, *truth.shape))
    assert 20.0 < bone_stretch_mm(biased, np.ones(biased.shape[:3], bool), BONES) < 36.0
    observed = np.zeros(biased.shape[:3], bool)
    assert bone_stretch_mm(biased, observed, BONES) == 0.0


def test_structured_sigma_grows_with_the_error_and_spares_fast_motion():
    """The smoothing of stage 5: none under STRUCTURED_MM[0] of error for the views' mean, more
    above; four views' mean halves the error; an output moving fast gets less than a slow one."""
    slow = np.load(TINY_CMU)["test/soccer_1"].astype(np.float64)   # 300 frames at 120 fps, mm
    fast = slow[::4]                                                 # the same motion at 30 fps
    assert structured_sigma(slow, 15.0, 1) == 0.0
    assert 0.0 < structured_sigma(slow, 30.0, 1) < structured_sigma(slow, 45.0, 1)
    assert structured_sigma(slow, 45.0, 4) < structured_sigma(slow, 45.0, 1)
    assert structured_sigma(fast, 45.0, 1) < structured_sigma(slow, 45.0, 1)


def test_final_stages_smooth_an_output_that_follows_large_structured_errors(model):
    """Stage 5: an output that took out most of a rough drifting bias of 30 mm (a random walk's
    wiggles) but followed a third of it comes out closer to the truth in Accel; with white
    input, or the smoothing off, it is left as it is."""
    rng = np.random.default_rng(6)
    truth = np.load(TINY_CMU)["test/soccer_1"].astype(np.float64)   # 300 frames, mm
    observed = np.ones((1, *truth.shape[:2]), bool)
    walk = np.cumsum(rng.normal(size=(1, *truth.shape)), axis=1)
    walk = 30.0 * (walk - gaussian_filter1d(walk, 30.0, axis=1)) / (walk - gaussian_filter1d(walk, 30.0, axis=1)).std()
    views = truth[None] + walk
    followed = truth + walk[0] / 3
    raw = ModelPass(views, observed, followed[None].copy(), followed.copy(), np.ones(truth.shape[:2]))
    refiner = Refiner.from_model(model)
    out = refiner.final_stages(raw, None, None, agreement_bound=False)[1]
    accel = lambda x: np.linalg.norm(np.diff(x - truth, n=2, axis=0), axis=-1).mean()
    assert accel(out) < 0.5 * accel(followed)
    refiner.smoothing = False
    np.testing.assert_allclose(refiner.final_stages(raw, None, None, agreement_bound=False)[1], followed, atol=1e-3)
    refiner.smoothing = True
    white = truth[None] + rng.normal(0, 20.0, truth.shape)
    raw = ModelPass(white, observed, truth[None].copy(), truth.copy(), np.ones(truth.shape[:2]))
    np.testing.assert_allclose(refiner.final_stages(raw, None, None, agreement_bound=False)[1], truth, atol=1e-3)


@pytest.mark.parametrize("frames", [1, 3, 7, 8, 9])
def test_short_sequences(model, frames):
    out = Refiner.from_model(model).refine(poses(frames, 17, 3))
    assert out.shape == (frames, 17, 3) and np.isfinite(out).all()


def test_bad_input_is_a_clear_error(model):
    refiner = Refiner.from_model(model)
    with pytest.raises(ValueError, match="17 joints"):
        refiner.refine(poses(10, 16, 3))
    with pytest.raises(ValueError, match="no finite joint"):
        refiner.refine(np.full((10, 17, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="empty"):
        refiner.refine(np.zeros((0, 17, 3), np.float32))
    with pytest.raises(ValueError, match="expected an array of poses, got the str 'clip.npz'"):
        refiner.refine("clip.npz")
    with pytest.raises(ValueError, match=r"confidence: expected numbers shaped \(10, 17\)"):
        refiner.refine(poses(10, 17, 3), confidence=np.ones((10, 16)))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        refiner.refine(poses(10, 17, 3), confidence=np.full((10, 17), 2.0))


def test_missing_joints_give_finite_outputs_of_the_input_shape(model):
    """NaN joints (some frames, a joint in every frame of a view, whole frames, inf and absurd values)
    come back finite, at any frame rate, with the input's shape; a joint no view saw has quality 0."""
    refiner = Refiner.from_model(model)
    refiner.fps_range = (20.0, 60.0)
    views = poses(2, 40, 17, 3, seed=4)
    views[0, 5:9, 3] = np.nan          # a joint for a few frames
    views[1, :, 7] = np.nan            # a joint view 1 never saw
    views[:, 20:22] = np.nan           # whole frames in every view
    views[0, 30, 2] = [np.inf, 0, 0]   # inf and absurd values count as missing too
    views[1, 31, 5] = [1e12, 0, 0]
    views[:, :, 10] = np.nan           # the head, missing in every view and frame
    for fps in (15.0, 30.0, 100.0, 120.0, 240.0):
        refined, fused, quality = refiner.refine_views(views, fps, return_quality=True)
        assert refined.shape == views.shape and fused.shape == views.shape[1:] and quality.shape == (40, 17)
        assert np.isfinite(refined).all() and np.isfinite(fused).all()
        assert (quality[:, 10] == 0).all() and (quality[20:22] == 0).all() and (quality[:20, 0] > 0).all()
    single = refiner.refine(views[0], 120.0)
    assert single.shape == views[0].shape and np.isfinite(single).all()


def test_checkpoint_round_trip_and_no_pickle(model, checkpoint, tmp_path):
    loaded = load_checkpoint(checkpoint)
    x = torch.from_numpy(poses(1, 2, 8, 51))
    torch.testing.assert_close(loaded(x).refined, model(x).refined)
    assert read_checkpoint_info(checkpoint)["meta"] == {"note": "test"}
    pickled = tmp_path / "model.pt"
    torch.save(model.state_dict(), pickled)
    with pytest.raises(ValueError, match="safetensors"):
        load_checkpoint(pickled)


def test_cli_refines_every_key(checkpoint, tmp_path):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, single=poses(30, 17, 3), multi=poses(3, 12, 17, 3, seed=1))
    assert refine_main([str(src), str(dst), "--checkpoint", str(checkpoint)]) == 0
    with np.load(dst) as out:
        assert sorted(out.files) == ["multi", "multi/fused", "single"]
        assert out["single"].shape == (30, 17, 3) and out["multi"].shape == (3, 12, 17, 3)
        assert out["multi/fused"].shape == (12, 17, 3)
        assert not np.allclose(out["single"], poses(30, 17, 3))


def test_cli_rejects_bad_key_and_writes_nothing(checkpoint, tmp_path, capsys):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, good=poses(10, 17, 3), broken=poses(10, 16, 3))
    assert refine_main([str(src), str(dst), "--checkpoint", str(checkpoint)]) == 2
    assert "broken" in capsys.readouterr().err
    assert not dst.exists()


def test_shipped_weights_improve_a_held_out_clip():
    """The shipped model on a bundled CMU test clip with synthetic errors: better than its input,
    and 4 refined views better than their plain average."""
    from importlib.resources import files

    from synsp_core.errors import make_error_model, synthesize_views
    from synsp_core.metrics import evaluate_sequence
    from synsp_core.motion import resample

    with np.load(files("synsp_core") / "data" / "cmu_test_clips_120fps.npz") as clips:
        gt = resample(clips["soccer_1"], 120.0, 30.0).astype(np.float32)
    noisy = synthesize_views(gt, 4, make_error_model("realistic"), 30.0, np.random.default_rng(0))
    refiner = Refiner.from_pretrained(backend="cpu")
    single = evaluate_sequence(refiner.refine(noisy[0], fps=30.0), gt)
    single_in = evaluate_sequence(noisy[0], gt)
    assert single["mpjpe"] < 0.95 * single_in["mpjpe"] and single["accel"] < 0.5 * single_in["accel"]
    _, fused = refiner.refine_views(noisy, fps=30.0)
    fused_m, mean_in = evaluate_sequence(fused, gt), evaluate_sequence(noisy.mean(axis=0), gt)
    assert fused_m["mpjpe"] < mean_in["mpjpe"] and fused_m["accel"] < 0.5 * mean_in["accel"]


def test_shipped_weights_work_in_any_frame():
    """The shipped model works in the person's body frame (`body_frame`): a clip expressed in a
    camera's frame (y down, pitched 20 degrees) refines to the same poses, rotated."""
    from importlib.resources import files

    from synsp_core.checkpoint import DEFAULT_CHECKPOINT
    from synsp_core.errors import make_error_model, synthesize_views
    from synsp_core.motion import resample

    assert read_checkpoint_info(DEFAULT_CHECKPOINT)["config"]["body_frame"]
    with np.load(files("synsp_core") / "data" / "cmu_test_clips_120fps.npz") as clips:
        gt = resample(clips["soccer_1"][:480], 120.0, 30.0).astype(np.float32)
    noisy = synthesize_views(gt, 2, make_error_model("realistic"), 30.0, np.random.default_rng(1))
    angle = np.deg2rad(110.0)
    to_camera = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    refiner = Refiner.from_pretrained(backend="cpu")
    _, fused_up = refiner.refine_views(noisy, fps=30.0)
    _, fused_camera = refiner.refine_views((noisy @ to_camera.T).astype(np.float32), fps=30.0)
    np.testing.assert_allclose(fused_camera, fused_up @ to_camera.T, atol=0.05)   # mm


def test_shipped_weights_refine_a_person_walking_through_the_room_as_on_the_spot():
    """The training motion is in the pelvis frame; people on a robot walk. A real walk in the world
    frame (CMU take 01_01, 10 s, 0.77 m/s) and the same motion with its root held at the origin,
    the same nearly clean errors: refined as well, root-relative, and better than the input in
    absolute terms (without the root path: 11.0 mm root-relative, against 6.1 on the spot)."""
    from pathlib import Path

    from synsp_core.metrics import mpjpe

    world = np.load(Path(__file__).parent / "data" / "cmu_world_01_01_30fps.npz")["poses"].astype(np.float64)
    spot = world - world[:, :1]
    noise = np.random.default_rng(0).normal(0, 5.0, world.shape)
    refiner = Refiner.from_pretrained(backend="cpu")
    on_spot = refiner.refine((spot + noise).astype(np.float32), fps=30.0)
    walking = refiner.refine((world + noise).astype(np.float32), fps=30.0)
    assert mpjpe(walking, world) < 1.1 * mpjpe(on_spot, spot) + 0.2          # root-relative
    absolute = lambda x: np.linalg.norm(x - world, axis=-1).mean()   # noqa: E731
    assert absolute(walking) < 0.9 * absolute(world + noise)                # without the path: 1.5x the input


def test_root_path_is_the_views_root_smoothed_and_survives_missing_roots():
    x = poses(2, 30, 17, 3)
    observed = np.ones(x.shape[:3], dtype=bool)
    expected = gaussian_filter1d(x[:, :, 0].mean(axis=0).astype(np.float64), ROOT_PATH_SIGMA, axis=0, mode="nearest")
    np.testing.assert_allclose(root_path(x, observed, (0,)), expected, atol=1e-6)
    observed[:, 10:15, 0] = False                       # no view saw the root: interpolated in time
    observed[1, :, 0] = False                           # one view never did: the other's
    path = root_path(np.where(observed[..., None], x, np.nan), observed, (0,))
    assert path.shape == (30, 3) and np.isfinite(path).all()
    observed[:, :, 0] = False                           # nobody ever: the mean of the observed joints
    assert np.isfinite(root_path(np.where(observed[..., None], x, np.nan), observed, (0,))).all()
