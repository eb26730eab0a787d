"""StreamingRefiner: online multi-view refinement with the weighted streaming SWAA (no ROS)."""
import numpy as np
import pytest
import torch

from synsp_core.bones import BoneLengthPrior
from synsp_core.model import SynSP, SynSPConfig
from synsp_core.runtime import EagerBackend
from synsp_core.skeletons import H36M17
from synsp_core.streaming import StreamingRefiner
from synsp_core.swaa import swaa_reference

W, J, D, V = 8, 17, 3, 3
torch.set_num_threads(1)   # tiny matrices: extra threads only contend on a shared machine


def make_backend(seed: int = 0) -> EagerBackend:
    """A small random SynSP whose correction heads are NOT zero, so it is far from the identity."""
    torch.manual_seed(seed)
    cfg = SynSPConfig(window=W, d_model=32, n_heads=2, head_dim=16, d_ffn=32, n_local_layers=1,
                      n_global_layers=1, n_base_shared_layers=1, n_refine_layers=1)
    model = SynSP(cfg)
    for head in (model.pos_head, model.acc_head, model.refine_head):
        torch.nn.init.normal_(head.correction.weight, std=0.05)
    return EagerBackend(model)


def make_poses(frames: int, views: int = V, seed: int = 0) -> np.ndarray:
    """(V, T, J, D) mm: a smooth random walk of a skeleton plus per-view noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 300, (J, D)) + np.cumsum(rng.normal(0, 5, (frames, 1, D)), axis=0)
    return (base[None] + rng.normal(0, 20, (views, frames, J, D))).astype(np.float32)


def run(refiner, poses, stamps, live=None):
    frames = []
    for t, stamp in enumerate(stamps):
        frame_live = None if live is None else live[t]
        views = [None if frame_live is not None and not frame_live[v] else poses[v, t]
                 for v in range(poses.shape[0])]
        frames += refiner.push(stamp, views, frame_live)
    return frames + refiner.flush()


def offline_refinement(backend, poses):
    """The model on every stride-1 window of the front-padded sequence, merged by swaa_reference."""
    v, t = poses.shape[:2]
    padded = np.concatenate([np.repeat(poses[:, :1], W - 1, axis=1), poses], axis=1)
    windows = np.stack([padded[:, k:k + W] for k in range(t)])                  # (T, V, W, J, D)
    x = torch.from_numpy(windows.reshape(t, v, W, J * D))
    refined, quality = backend(x, torch.ones(t, v, dtype=torch.bool))
    refined = swaa_reference(refined.numpy().transpose(1, 0, 2, 3))              # (V, T+W-1, J*D)
    quality = swaa_reference(quality.numpy().transpose(1, 0, 2)[..., None])      # (V, T+W-1, 1)
    return refined[:, W - 1:].reshape(v, t, J, D), quality[:, W - 1:, 0]


@pytest.mark.parametrize("emit_delay", [0, 3, W - 1])
def test_every_stamp_comes_out_once_in_order(emit_delay):
    poses = make_poses(30)
    stamps = 100.0 + np.arange(30) / 30
    frames = run(StreamingRefiner(make_backend(), V, emit_delay), poses, stamps)
    assert [f.stamp_s for f in frames] == list(stamps)
    for f in frames:
        assert f.fused.shape == (J, D) and f.per_view.shape == (V, J, D)
        assert f.views.all() and np.isfinite(f.fused).all()


def test_full_delay_equals_offline_swaa():
    backend = make_backend()
    poses = make_poses(25)
    frames = run(StreamingRefiner(backend, V, emit_delay=W - 1), poses, np.arange(25) * 0.04)
    expected, expected_quality = offline_refinement(backend, poses)
    per_view = np.stack([f.per_view for f in frames], axis=1)
    np.testing.assert_allclose(per_view, expected, atol=1e-3)
    np.testing.assert_allclose(np.stack([f.quality for f in frames], axis=1), expected_quality, atol=1e-5)
    np.testing.assert_allclose(np.stack([f.fused for f in frames]), expected.mean(axis=0), atol=1e-3)
    assert not np.allclose(per_view, poses, atol=1.0), "the test model must not be the identity"
    # a frame in the middle is averaged over all W windows covering it, the last one over 1
    assert frames[12].windows.tolist() == [W] * V and frames[-1].windows.tolist() == [1] * V


def test_causal_output_is_the_newest_window_row():
    backend = make_backend()
    poses = make_poses(12)
    refiner = StreamingRefiner(backend, V, emit_delay=0)
    for t in range(12):
        frames = refiner.push(t * 0.1, list(poses[:, t]))
        assert [f.stamp_s for f in frames] == [t * 0.1]
        window = torch.from_numpy(refiner.buffers.reshape(1, V, W, J * D))
        newest = backend(window, torch.ones(1, V, dtype=torch.bool))[0][0, :, -1].numpy()
        np.testing.assert_allclose(frames[0].per_view.reshape(V, -1), newest, atol=1e-3)
        assert frames[0].windows.tolist() == [1] * V


def test_emit_delay_changes_at_run_time_without_losing_frames():
    poses = make_poses(20)
    refiner = StreamingRefiner(make_backend(), V, emit_delay=W - 1)
    out = [refiner.push(t, list(poses[:, t])) for t in range(10)]
    assert sum(map(len, out[:W - 1])) == 0 and len(out[W - 1]) == 1   # frame 0 waits W - 1 frames
    refiner.emit_delay = 0
    released = refiner.push(10, list(poses[:, 10]))
    assert [f.stamp_s for f in released] == [3, 4, 5, 6, 7, 8, 9, 10]  # the held frames, then the new one
    refiner.emit_delay = 2
    assert refiner.push(11, list(poses[:, 11])) == []                   # pauses until 2 frames behind
    assert refiner.push(12, list(poses[:, 12])) == []
    assert [f.stamp_s for f in refiner.push(13, list(poses[:, 13]))] == [11]
    with pytest.raises(ValueError, match="emit_delay"):
        refiner.emit_delay = W


def test_view_drops_out_and_rejoins():
    poses = make_poses(40)
    live = np.ones((40, V), dtype=bool)
    live[10:20, 1] = False                         # camera 1 times out, then comes back
    refiner = StreamingRefiner(make_backend(), V, emit_delay=W - 1)
    frames = run(refiner, poses, np.arange(40) * 0.1, live)
    assert len(frames) == 40
    views = np.stack([f.views for f in frames])
    np.testing.assert_array_equal(views, live)
    for f in frames[10:20]:                        # fused from the remaining views only
        np.testing.assert_allclose(f.fused, f.per_view[[0, 2]].mean(axis=0), atol=1e-3)
        assert f.quality[1] == 0 and not f.per_view[1].any()
    assert frames[20].windows[1] == W              # the rejoined view's first frame: all its windows
    assert frames[19].windows[0] == W


def test_lost_message_is_held_but_not_emitted():
    poses = make_poses(20)
    live = np.ones((20, V), dtype=bool)
    refiner = StreamingRefiner(make_backend(), V, emit_delay=W - 1)
    frames = []
    for t in range(20):
        views = list(poses[:, t])
        if t == 9:
            views[2] = None                        # live, but its message for frame 9 is missing
        frames += refiner.push(t, views, live[t])
    frames += refiner.flush()
    assert frames[9].views.tolist() == [True, True, False]
    assert frames[8].views.all() and frames[10].views.all()
    np.testing.assert_allclose(frames[9].fused, frames[9].per_view[:2].mean(axis=0), atol=1e-3)


def test_backwards_stamp_or_gap_flushes_and_starts_a_new_stream():
    poses = make_poses(30)
    refiner = StreamingRefiner(make_backend(), V, emit_delay=W - 1, max_gap_s=1.0)
    stamps = list(np.arange(10) * 0.1) + list(np.arange(10) * 0.1) + list(5 + np.arange(10) * 0.1)
    frames = run(refiner, poses, stamps)
    assert [f.stamp_s for f in frames] == stamps   # held frames flushed before each new stream
    assert refiner.stats.resets == 2
    assert refiner.push(5.9, list(poses[:, 0])) == [] and refiner.stats.duplicate_stamps == 1


def test_bone_stage_projects_each_stream_onto_its_running_lengths():
    """With a BoneLengthPrior, output = the plain output projected onto the lengths estimated so
    far from the views' mean along the plain fused output's bones; a new stream (here after a
    gap) starts a new estimate."""
    backend, poses = make_backend(), make_poses(40)
    stamps = np.concatenate([np.arange(25) * 0.04, 10 + np.arange(15) * 0.04])
    plain = run(StreamingRefiner(backend, V, emit_delay=3, max_gap_s=1.0), poses, stamps)
    staged = run(StreamingRefiner(backend, V, emit_delay=3, max_gap_s=1.0,
                                  bone_prior=BoneLengthPrior(H36M17, horizon_frames=10)), poses, stamps)
    assert [f.stamp_s for f in staged] == [f.stamp_s for f in plain] == list(stamps)
    prior = BoneLengthPrior(H36M17, horizon_frames=10)
    fused, per_view = np.stack([f.fused for f in plain]), np.stack([f.per_view for f in plain])
    mean = poses.astype(np.float64).mean(axis=0)
    lengths = np.concatenate([prior.stream_lengths(mean[:25], along=fused[:25]),
                              prior.stream_lengths(mean[25:], along=fused[25:])])
    np.testing.assert_allclose(np.stack([f.fused for f in staged]), prior.project(fused, lengths), atol=1e-3)
    np.testing.assert_allclose(np.stack([f.per_view for f in staged]), prior.project(per_view, lengths[:, None]),
                               atol=1e-3)
    assert not np.allclose(np.stack([f.fused for f in staged]), fused, atol=1.0)


class NanBackend:
    """Wraps a backend; puts NaN into the chosen views' outputs."""

    def __init__(self, backend, nan_views):
        self.backend, self.config, self.nan_views = backend, backend.config, nan_views

    def __call__(self, poses, view_mask, confidence=None):
        refined, quality = self.backend(poses, view_mask, confidence)
        refined = refined.clone()
        refined[:, self.nan_views] = float("nan")
        return refined, quality


def test_never_returns_nan():
    poses = make_poses(16)
    refiner = StreamingRefiner(NanBackend(make_backend(), [0]), V)
    frames = run(refiner, poses, np.arange(16))
    assert len(frames) == 16 and refiner.stats.nonfinite_windows == 16
    assert all(np.isfinite(f.fused).all() and np.isfinite(f.per_view).all() and not f.views[0] for f in frames)

    refiner = StreamingRefiner(NanBackend(make_backend(), [0, 1, 2]), V)
    assert run(refiner, poses, np.arange(16)) == []
    assert refiner.stats.dropped_frames == 16


def test_bad_input_is_named():
    refiner = StreamingRefiner(make_backend(), V)
    good = np.zeros((J, D), dtype=np.float32)
    with pytest.raises(ValueError, match="expected 3 poses"):
        refiner.push(0.0, [good, good])
    with pytest.raises(ValueError, match=r"view 1: pose must be shaped \(17, 3\)"):
        refiner.push(0.0, [good, np.zeros((16, 3)), good])
    with pytest.raises(ValueError, match=r"view 1: confidence must be 17 values in \[0, 1\]"):
        refiner.push(0.0, [good, good, good], confidences=[None, np.full(J, 1.5), None])


def test_missing_joints_and_confidence():
    """NaN joints are missing, not errors: outputs stay finite, a joint no view saw gets quality 0,
    an all-missing pose counts as no pose, and missing joints are counted."""
    backend = make_backend()
    refiner = StreamingRefiner(backend, V, emit_delay=W - 1,
                               bone_prior=BoneLengthPrior(H36M17))
    poses = make_poses(20)
    poses[:, :, 10] = np.nan                 # the head: no view ever sees it
    poses[1, 5:9, 2:4] = np.nan              # a view loses two joints for 4 frames
    poses[2, 12] = np.nan                    # one view's whole pose missing in one frame
    confidences = [np.linspace(0.2, 1.0, J).astype(np.float32)] * V
    frames = []
    for t in range(20):
        frames += refiner.push(t / 30, [poses[v, t] for v in range(V)], confidences=confidences)
    frames += refiner.flush()
    assert len(frames) == 20
    for frame in frames:
        assert np.isfinite(frame.fused).all() and np.isfinite(frame.per_view[frame.views]).all()
        assert frame.joint_quality[10] == 0 and (frame.joint_quality[[0, 1, 16]] > 0).all()
    assert not frames[12].views[2] and frames[11].views[2]
    assert refiner.stats.missing_joints == 20 * V + 4 * 2 + (J - 1)
    # the missing joints' coordinates do not matter: junk there with confidence 0 gives the same output
    junk_refiner = StreamingRefiner(backend, V, emit_delay=W - 1, bone_prior=BoneLengthPrior(H36M17))
    junk = np.nan_to_num(poses, nan=5e3)
    junk_frames = []
    for t in range(20):
        conf = [np.where(np.isnan(poses[v, t]).any(axis=-1), 0.0, confidences[v]) for v in range(V)]
        junk_frames += junk_refiner.push(t / 30, [junk[v, t] for v in range(V)], confidences=conf)
    junk_frames += junk_refiner.flush()
    np.testing.assert_allclose(np.stack([f.fused for f in junk_frames[:12]]),
                               np.stack([f.fused for f in frames[:12]]), atol=1e-3)
