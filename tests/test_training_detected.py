"""Training and evaluation on real estimator output (SmoothNet-format data, 3D and 2D), on tiny fake data."""
from pathlib import Path

import numpy as np
import pytest

from synsp_core.checkpoint import read_checkpoint_info
from synsp_core.metrics import evaluate_sequences
from synsp_training import evaluate, train
from synsp_training.data import Augmentation, Sequence, WindowSampler, load_smoothnet

MOTION = Path(__file__).parent / "data" / "cmu17_tiny_120fps.npz"   # mm, z up
TINY_MODEL = ["model_config.d_model=16", "model_config.n_heads=2", "model_config.head_dim=8",
              "model_config.d_ffn=16", "model_config.n_local_layers=1", "model_config.n_global_layers=1",
              "model_config.n_base_shared_layers=1", "model_config.n_refine_layers=1"]
DETECTED_STD = {"3D": 0.03, "2D": 4.0}   # per coordinate: 30 mm (written in metres), 4 px


def write_split(folder: Path, dataset: str, estimator: str, kind: str, split: str, gt_seqs, det_seqs):
    """One split of a SmoothNet data set folder: object arrays of (T, J*D) per sequence."""
    key = "joints_3d" if kind == "3D" else "joints_2d"

    def pack(seqs):
        arr = np.empty(len(seqs), dtype=object)
        arr[:] = [s.reshape(len(s), -1) for s in seqs]
        return arr

    names = pack([np.array([f"img_{i:05d}.jpg" for i in range(len(s))]) for s in gt_seqs])
    for sub, file, seqs in (("groundtruth", f"{dataset}_gt_{kind}_{split}.npz", gt_seqs),
                            ("detected", f"{dataset}_{estimator}_{kind}_{split}.npz", det_seqs)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        np.savez(folder / sub / file, imgname=names, **{key: pack(seqs)})


@pytest.fixture(scope="module")
def poses_dir(tmp_path_factory):
    """SmoothNet's data/poses/ with h36m_fcn_3D (metres) and h36m_hrnet_2D (pixels): 5 train and
    2 test sequences each, detections = ground truth + i.i.d. noise."""
    root = tmp_path_factory.mktemp("poses")
    src = np.load(MOTION)
    motion = np.concatenate([src[k][1:] for k in sorted(src.files)])          # (598, 17, 3) mm
    clips = [motion[i * 80:(i + 1) * 80] for i in range(7)]                    # 80 frames each
    rng = np.random.default_rng(0)
    for kind, estimator in (("3D", "fcn"), ("2D", "hrnet")):
        if kind == "3D":
            gts = [c / 1000.0 for c in clips]                                  # metres
        else:
            gts = [np.stack([500 + 0.3 * c[..., 0], 500 - 0.3 * c[..., 2]], axis=-1) for c in clips]   # px
        dets = [g + DETECTED_STD[kind] * rng.standard_normal(g.shape) for g in gts]
        folder = root / f"h36m_{estimator}_{kind}"
        write_split(folder, "h36m", estimator, kind, "train", gts[:5], dets[:5])
        write_split(folder, "h36m", estimator, kind, "test", gts[5:], dets[5:])
    return root


# ----------------------------------------------------------------------------- WindowSampler

def test_sampler_windows_are_the_detected_poses(poses_dir):
    pairs = load_smoothnet(str(poses_dir), "train", name="h36m_fcn", allow_pickle=True)
    sampler = WindowSampler([gt for gt, _ in pairs], window=8, error_model=None, fps_range=None,
                            augmentation=None)
    batch = next(sampler.batches(epoch=0, batch_size=10_000, shuffle=False))
    # windows run through the sequences in order, 80 - 8 + 1 per sequence
    assert batch.noisy.shape == (5 * 73, 1, 8, 51)
    for i, (gt, det) in enumerate(pairs):
        for start in (0, 40, 72):
            row = i * 73 + start
            assert np.array_equal(batch.noisy[row, 0].numpy(), det.poses[start:start + 8].reshape(8, -1))
            assert np.array_equal(batch.gt[row, 0].numpy(), gt.poses[start:start + 8].reshape(8, -1))


def test_sampler_augments_detections_with_the_ground_truth():
    """A constant detection offset stays one constant vector after augmentation (the same speed,
    scale, mirror and rotation moved both), rotated about z and scaled by 0.9-1.1."""
    poses = np.load(MOTION)["train/walking_1"][1:]
    offset = np.array([30.0, -20.0, 10.0], dtype=np.float32)
    seq = Sequence("walk", poses, 120.0, detected=poses + offset)
    sampler = WindowSampler([seq], window=8, error_model=None, augmentation=Augmentation(), seed=3)
    turned = []
    for epoch in range(4):
        data = sampler.synthesize_epoch(epoch)
        diff = (data.noisy[0] - data.gt).reshape(len(data.gt), 17, 3)
        assert np.allclose(diff, diff[0, 0], atol=1e-2)
        ratio = np.linalg.norm(diff[0, 0]) / np.linalg.norm(offset)
        assert 0.9 - 1e-4 <= ratio <= 1.1 + 1e-4
        assert np.isclose(abs(diff[0, 0, 2]), abs(offset[2]) * ratio, atol=1e-2)   # z is the rotation axis
        turned.append(not np.allclose(diff[0, 0, :2], offset[:2] * ratio, atol=1.0))
    assert any(turned)


def test_sampler_without_detections_is_an_error():
    poses = np.zeros((20, 17, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="'clean' has no detected poses"):
        WindowSampler([Sequence("clean", poses, 50.0)], window=8, error_model=None)
    with pytest.raises(ValueError, match="2 detected view"):
        WindowSampler([Sequence("two", poses, 50.0, detected=np.stack([poses, poses]))], window=8,
                      error_model=None, num_views=1)


# ----------------------------------------------------------------------------- train.py / evaluate.py

def run_train(config: str, poses_dir: Path, out: Path, *extra: str) -> dict:
    return train.main(["--config", str(train.CONFIG_DIR / config), f"smoothnet_dir={poses_dir}",
                       "smoothnet_allow_pickle=true", f"out_dir={out}", "epochs=1", "batch_size=64",
                       "threads=1", "window_stride=1", *TINY_MODEL, *extra])


@pytest.fixture(scope="module")
def trained_3d(poses_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run3d")
    return run_train("synsp_smoothnet_3d.yaml", poses_dir, out), out


def test_train_3d_on_detections(trained_3d, poses_dir):
    result, out = trained_3d
    for name in ("last.safetensors", "best.safetensors", "last_optim.safetensors"):
        assert (out / name).is_file(), name
    assert read_checkpoint_info(out / "best.safetensors")["config"]["dims"] == 3
    # validation input = the held-out train sequence 0's real detection error (30 mm per coordinate)
    gt, det = load_smoothnet(str(poses_dir), "train", name="h36m_fcn", allow_pickle=True)[0]
    detection_error = np.linalg.norm(det.poses - gt.poses, axis=-1).mean()
    assert result["history"][0]["input_mpjpe"] == pytest.approx(detection_error, rel=0.05)
    assert np.isfinite(result["best_val_mpjpe"])


def test_train_2d_on_detections(poses_dir, tmp_path):
    result = run_train("synsp_2d.yaml", poses_dir, tmp_path)
    config = read_checkpoint_info(tmp_path / "last.safetensors")["config"]
    assert config["dims"] == 2 and config["norm_scale"] == 500
    assert result["history"][0]["input_mpjpe"] == pytest.approx(DETECTED_STD["2D"] * np.sqrt(np.pi / 2), rel=0.1)


def test_train_and_evaluate_14_joint_data(poses_dir, tmp_path):
    """SmoothNet's 3DPW / AIST++ 3D files hold 14 LSP joints: read as layout lsp14, and the model's
    layout (joints, root) follows the data."""
    h36m = poses_dir / "h36m_fcn_3D"
    folder = tmp_path / "pw3d_spin_3D"
    lsp = [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]
    for split in ("train", "test"):
        gt = np.load(h36m / "groundtruth" / f"h36m_gt_3D_{split}.npz", allow_pickle=True)["joints_3d"]
        det = np.load(h36m / "detected" / f"h36m_fcn_3D_{split}.npz", allow_pickle=True)["joints_3d"]
        write_split(folder, "pw3d", "spin", "3D", split, [s.reshape(len(s), 17, 3)[:, lsp] for s in gt],
                    [s.reshape(len(s), 17, 3)[:, lsp] for s in det])
    gt, _ = load_smoothnet(str(tmp_path), "test", name="pw3d_spin", allow_pickle=True)[0]
    assert gt.skeleton == "lsp14" and gt.poses.shape[1:] == (14, 3)
    out = tmp_path / "run"
    train.main(["--config", str(train.CONFIG_DIR / "synsp_smoothnet_3d.yaml"), f"smoothnet_dir={tmp_path}",
                "smoothnet_name=pw3d_spin", "smoothnet_allow_pickle=true", f"out_dir={out}", "epochs=1",
                "batch_size=64", "threads=1", *TINY_MODEL])
    config = read_checkpoint_info(out / "best.safetensors")["config"]
    assert (config["skeleton"], config["num_joints"], config["root_joints"]) == ("lsp14", 14, [2, 3])
    table = evaluate.main(["--smoothnet-dir", str(tmp_path), "--smoothnet-name", "pw3d_spin", "--allow-pickle",
                           "--errors", "detected", "--synsp", str(out / "best.safetensors"),
                           "--out", str(tmp_path / "eval")])
    assert all(np.isfinite(row["mpjpe"]) for row in table)
    with pytest.raises(ValueError, match="contradicts the data's layout"):
        train.main(["--config", str(train.CONFIG_DIR / "synsp_smoothnet_3d.yaml"), f"smoothnet_dir={tmp_path}",
                    "smoothnet_name=pw3d_spin", "smoothnet_allow_pickle=true", f"out_dir={out}",
                    "model_config.num_joints=17"])


def test_train_detected_rejects_cmu_data_and_wrong_dims(poses_dir, tmp_path):
    with pytest.raises(ValueError, match="set cmu_dir=''"):
        run_train("synsp_smoothnet_3d.yaml", poses_dir, tmp_path, f"cmu_dir={tmp_path}")
    with pytest.raises(ValueError, match="need model_config dims 2"):
        run_train("synsp_2d.yaml", poses_dir, tmp_path, "model_config.dims=3")


def test_evaluate_on_detections(trained_3d, poses_dir, tmp_path):
    _, run = trained_3d
    table = evaluate.main(["--smoothnet-dir", str(poses_dir), "--smoothnet-name", "h36m_fcn", "--allow-pickle",
                           "--errors", "detected", "--synsp", str(run / "best.safetensors"),
                           "--out", str(tmp_path / "eval")])
    methods = [row["method"] for row in table]
    assert methods[0] == "Input" and any(m.startswith("SynSP") for m in methods)
    for row in table:
        assert all(np.isfinite(row[k]) for k in ("mpjpe", "pa_mpjpe", "accel", "worst1_mpjpe")), row
    # the Input row is the real detections of the test split, at their own 50 fps
    pairs = load_smoothnet(str(poses_dir), "test", name="h36m_fcn", allow_pickle=True)
    expected = evaluate_sequences([(det.poses, gt.poses) for gt, det in pairs], skeleton="h36m17")
    assert table[0]["mpjpe"] == pytest.approx(expected["mpjpe"], rel=1e-5)
    # filters were tuned (on held-out train sequences), not left at their defaults
    assert all("=" in m for m in methods[1:4]), methods[1:4]
    assert "50 fps" in (tmp_path / "eval" / "table.md").read_text()


def test_evaluate_2d_detections_in_pixels(poses_dir, tmp_path):
    table = evaluate.main(["--smoothnet-dir", str(poses_dir), "--smoothnet-name", "h36m_hrnet", "--kind", "2D",
                           "--allow-pickle", "--errors", "detected", "--out", str(tmp_path)])
    # root-relative: the pelvis has no error, every other joint's is the difference of two i.i.d. errors
    assert table[0]["mpjpe"] == pytest.approx(16 / 17 * DETECTED_STD["2D"] * np.sqrt(np.pi), rel=0.1)
    assert table[1]["mpjpe"] < table[0]["mpjpe"]          # a tuned filter removes i.i.d. jitter
    assert "MPJPE (px)" in (tmp_path / "table.md").read_text()
