"""Transfer training and validation: skeleton conventions, mixed error families, missing joints,
confidence, and the transfer matrix (no ../shared: the tiny CMU slice in tests/data)."""
from pathlib import Path

import numpy as np
import pytest

from synsp_core.errors import MissingJoints, MixedErrors, make_error_model, simulated_confidence, synthesize_views
from synsp_core.skeletons import H36M17
from synsp_training.conventions import NAMED_CONVENTIONS, Convention, ConventionSampler, body_axes
from synsp_training.data import WindowSampler, load_cmu

ROOT = Path(__file__).resolve().parents[1]
TINY_CMU = ROOT / "tests/data/cmu17_tiny_120fps.npz"
J = {name: i for i, name in enumerate(H36M17.joint_names)}


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    return load_cmu(str(TINY_CMU), "train")[0].poses[::4].astype(np.float64)   # 30 fps


def length(poses, a, b):
    return np.linalg.norm(poses[:, J[a]] - poses[:, J[b]], axis=-1)


def test_named_conventions(walk):
    hip_mid = (walk[:, J["l_hip"]] + walk[:, J["r_hip"]]) / 2
    assert np.linalg.norm(walk[:, J["pelvis"]] - hip_mid, axis=-1).mean() > 90   # CMU: well above the hips
    np.testing.assert_allclose(NAMED_CONVENTIONS["cmu"].apply(walk), walk)
    h36m = NAMED_CONVENTIONS["h36m"].apply(walk)
    # Human3.6M: the pelvis is the hip midpoint, and the set segment lengths hold (set on frame 0; the
    # CMU pelvis segment is rigid to within a mm)
    np.testing.assert_allclose(h36m[:, J["pelvis"]], (h36m[:, J["l_hip"]] + h36m[:, J["r_hip"]]) / 2, atol=1e-6)
    np.testing.assert_allclose(length(h36m, "pelvis", "spine"), 230.0, rtol=0.01)
    np.testing.assert_allclose(length(h36m, "neck", "head"), 115.0, rtol=0.01)
    np.testing.assert_allclose(length(h36m, "r_elbow", "r_wrist"), 250.0, rtol=0.01)
    # COCO-like: hips moved outward and down, mirrored between left and right, in the body frame
    coco = NAMED_CONVENTIONS["coco"].apply(walk)
    axes = body_axes(walk)
    for joint, sign in (("l_hip", 1.0), ("r_hip", -1.0)):
        moved = np.einsum("tij,tj->ti", axes, coco[:, J[joint]] - walk[:, J[joint]])
        np.testing.assert_allclose(moved, np.tile([30.0 * sign, 0.0, -40.0], (len(walk), 1)), atol=1e-6)


def test_random_conventions_cover_the_issue_ranges(walk):
    rng = np.random.default_rng(0)
    sampler = ConventionSampler()
    pelvis_offsets, spine_factors = [], []
    hip_mid = (walk[:, J["l_hip"]] + walk[:, J["r_hip"]]) / 2
    base = np.linalg.norm(walk[:, J["pelvis"]] - hip_mid, axis=-1).mean()
    for _ in range(200):
        convention = sampler(rng)
        out = convention.apply(walk)
        assert np.isfinite(out).all() and out.shape == walk.shape
        mid = (out[:, J["l_hip"]] + out[:, J["r_hip"]]) / 2
        pelvis_offsets.append(np.linalg.norm(out[:, J["pelvis"]] - mid, axis=-1).mean() / base)
        spine_factors.append(convention.bone_scale["spine"])
        # left and right stay alike: a convention never makes one arm longer than the other
        np.testing.assert_allclose(length(out, "l_elbow", "l_wrist"), length(out, "r_elbow", "r_wrist"),
                                   rtol=0.02 + 0.25 * ("shoulder" in convention.offsets_mm))
    assert min(spine_factors) < 0.6 and max(spine_factors) > 1.9
    assert min(pelvis_offsets) < 0.1 and max(pelvis_offsets) > 0.9


def test_mixed_errors_draw_every_family_and_missing_joints(walk):
    rng = np.random.default_rng(1)
    model = MixedErrors()
    errors, missing = [], 0
    for _ in range(60):
        noisy = model.apply(walk.astype(np.float32), 30.0, rng)
        missing += np.isnan(noisy).any()
        errors.append(np.nanmean(np.linalg.norm(noisy - walk, axis=-1)))
    assert 5 < missing < 55                            # some draws lose joints, most do not
    assert min(errors) < 5 and max(errors) > 40        # nearly clean to strong, per sequence
    hidden = MissingJoints(burst_rate_hz=2.0, frame_rate_hz=0.0).apply(walk, 30.0, rng)
    assert np.isnan(hidden).any() and np.isfinite(hidden[np.isfinite(hidden)]).all()
    assert (np.isnan(hidden).any(axis=-1) == np.isnan(hidden).all(axis=-1)).all()   # whole joints go missing


def test_confidence_and_correlated_views(walk):
    rng = np.random.default_rng(2)
    noisy = make_error_model("gaussian", std_mm=30).apply(walk, 30.0, rng)
    noisy[3, 5] = np.nan
    for informative in (0.0, 1.0):
        conf = simulated_confidence(noisy, walk, rng, informative)
        assert conf.shape == walk.shape[:2] and conf[3, 5] == 0 and ((conf >= 0) & (conf <= 1)).all()
    error = np.linalg.norm(np.nan_to_num(noisy - walk), axis=-1).ravel()
    assert np.corrcoef(conf.ravel()[error > 0], error[error > 0])[0, 1] < -0.15   # informative: high error, low confidence
    independent = synthesize_views(walk, 2, make_error_model("gaussian"), 30.0, np.random.default_rng(3)) - walk
    correlated = synthesize_views(walk, 2, make_error_model("gaussian"), 30.0, np.random.default_rng(3),
                                  correlation=0.7) - walk
    corr = lambda e: np.corrcoef(e[0].ravel(), e[1].ravel())[0, 1]   # noqa: E731
    assert abs(corr(independent)) < 0.05 and 0.6 < corr(correlated) < 0.8
    with pytest.raises(ValueError, match="correlation"):
        synthesize_views(walk, 2, make_error_model("gaussian"), 30.0, rng, correlation=1.0)


def test_window_sampler_with_conventions_and_missing_joints():
    seqs = load_cmu(str(TINY_CMU), "train")
    sampler = WindowSampler(seqs, window=8, num_views=3, error_model=MixedErrors(missing_prob=1.0, clean_prob=0.0),
                            conventions=ConventionSampler(), view_correlation_prob=0.5, repeats=4, seed=3)
    data = sampler.synthesize_epoch(0)
    assert np.isfinite(data.noisy).all()               # missing joints are 0 in the windows...
    missing = data.confidence == 0
    assert missing.any() and (data.noisy.reshape(*missing.shape, 3)[missing] == 0).all()   # ... with confidence 0
    batch = next(sampler.batches(0, 16, data=data))
    assert batch.confidence.shape == (16, 3, 8, 17)
    # each draw has its own convention: pelvis-to-hip distances differ between draws
    gt = data.gt.reshape(-1, 17, 3)
    offset = np.linalg.norm(gt[:, 0] - (gt[:, 1] + gt[:, 4]) / 2, axis=-1)
    assert offset.max() - offset.min() > 30


def test_custom_convention_rejects_other_layouts():
    with pytest.raises(ValueError, match=r"\(T, 17, 3\)"):
        Convention().apply(np.zeros((5, 14, 3)))


def test_stress_families_are_the_matrix_families_scaled():
    """`synsp-transfer --families realistic_x2 ...`: the same error draw as the matrix family, twice
    the size; triangulated x 0.5 half of it."""
    from synsp_training.transfer import make_cell
    seqs = load_cmu(str(TINY_CMU), "train")[:1]
    def error(family):
        cell = make_cell(seqs, family, "h36m", 1, 30.0, 0)
        return np.nanmean(np.linalg.norm(cell.noisy[0][0] - cell.gt[0], axis=-1))
    assert 1.7 < error("realistic_x2") / error("realistic") < 2.3
    assert 0.35 < error("triangulated_x0.5") / error("triangulated") < 0.65
