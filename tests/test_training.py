"""Training loop (single process, resume, 2-process DDP) and the evaluation table, on tiny data."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from synsp_core.checkpoint import load_checkpoint, read_checkpoint_info
from synsp_training import evaluate, train

DATA = Path(__file__).parent / "data" / "cmu17_tiny_120fps.npz"
TINY_MODEL = ("model_config={d_model: 16, n_heads: 2, head_dim: 8, d_ffn: 16, n_local_layers: 1, "
              "n_global_layers: 1, n_base_shared_layers: 1, n_refine_layers: 1}")


@pytest.fixture(scope="module")
def cmu_dir(tmp_path_factory):
    """A CMU-format file with a train take, a validation take (suffix _5) and a test take."""
    src = np.load(DATA)
    train_key, test_key = sorted(k for k in src.files if k.startswith("train/"))[0], \
        sorted(k for k in src.files if k.startswith("test/"))[0]
    folder = tmp_path_factory.mktemp("cmu")
    seq = src[train_key]
    np.savez(folder / "cmu17_120fps.npz", **{"train/walking_1": seq[:200], "train/walking_5": seq[150:],
                                             "test/soccer_1": src[test_key]})
    return folder


def overrides(cmu_dir, out_dir, *extra):
    return [f"cmu_dir={cmu_dir}", f"out_dir={out_dir}", "epochs=2", "batch_size=32", "threads=1",
            "fps_range=[25, 30]", TINY_MODEL, *extra]


def test_train_writes_checkpoints_and_resumes(cmu_dir, tmp_path):
    out = tmp_path / "run"
    result = train.main(["--config", str(train.CONFIG_DIR / "synsp_multiview.yaml"), *overrides(cmu_dir, out)])
    assert [h["epoch"] for h in result["history"]] == [0, 1]
    for name in ("last.safetensors", "last.json", "best.safetensors", "last_optim.safetensors", "example.png"):
        assert (out / name).is_file(), name
    info = read_checkpoint_info(out / "best.safetensors")
    assert info["model"] == "synsp" and info["config"]["max_views"] == 4
    assert np.isfinite(result["best_val_mpjpe"])
    # resume: continues at epoch 2 and stops after epoch 3
    resumed = train.main(["--resume", "--config", str(train.CONFIG_DIR / "synsp_multiview.yaml"),
                          *overrides(cmu_dir, out, "epochs=4")])
    assert [h["epoch"] for h in resumed["history"]] == [2, 3]
    assert json.loads((out / "last.json").read_text())["meta"]["epoch"] == 3


def test_fine_tuning_may_change_settings_but_not_weight_shapes(cmu_dir, tmp_path):
    config = ["--config", str(train.CONFIG_DIR / "synsp_multiview.yaml")]
    train.main([*config, *overrides(cmu_dir, tmp_path / "base", "epochs=1")])
    start = f"init_from={tmp_path / 'base' / 'last.safetensors'}"
    # lr 0: the fine-tuned weights are the loaded ones, under the new setting
    train.main([*config, *overrides(cmu_dir, tmp_path / "tuned", "epochs=1", "lr=0", start,
                                    "model_config.body_frame=true")])
    base, tuned = (load_checkpoint(tmp_path / run / "last.safetensors") for run in ("base", "tuned"))
    assert tuned.cfg.body_frame and not base.cfg.body_frame
    for name, weight in base.state_dict().items():
        assert torch.equal(weight, tuned.state_dict()[name]), name
    with pytest.raises(ValueError, match="do not fit"):
        train.main([*config, *overrides(cmu_dir, tmp_path / "bad", "epochs=1", start, "model_config.d_model=32")])
    # Tab. 5 ablation: the refinement stage switched off keeps every other weight
    train.main([*config, *overrides(cmu_dir, tmp_path / "no_refine", "epochs=1", "lr=0", start,
                                    "model_config.use_refinement=false")])
    ablated = load_checkpoint(tmp_path / "no_refine" / "last.safetensors")
    assert not hasattr(ablated, "refine_decoder")
    for name, weight in ablated.state_dict().items():
        assert torch.equal(weight, base.state_dict()[name]), name


def test_segments_split_into_their_stride1_windows_and_merge_by_swaa():
    from synsp_core.losses import sequence_loss
    from synsp_core.swaa import swaa_reference
    from synsp_training.data import WindowBatch
    g = torch.Generator().manual_seed(0)
    b, v, s, c, w = 2, 3, 13, 6, 4
    segments = WindowBatch(torch.randn(b, v, s, c, generator=g), torch.randn(b, v, s, c, generator=g),
                           torch.tensor([[True, False, True], [True, True, True]]), torch.ones(b, v, s, c // 3))
    windows = train.split_segments(segments, w)
    n = s - w + 1
    assert windows.noisy.shape == (b * n, v, w, c)
    for seg in range(b):
        for k in (0, n - 1):
            assert torch.equal(windows.noisy[seg * n + k], segments.noisy[seg, :, k:k + w])
            assert torch.equal(windows.view_mask[seg * n + k], segments.view_mask[seg])
    cfg = train.TrainConfig(swaa_accel_lambda=2.0)
    # windows that are exactly the ground truth merge into it: no loss
    assert float(train.merged_loss(windows.gt, segments, cfg, 1.0)) == 0.0
    # otherwise: Eq. 4 on the SWAA of each segment's windows, over the frames all windows cover
    pred = windows.noisy.view(b, n, v, w, c).transpose(1, 2)
    merged = swaa_reference(pred)[:, :, w - 1:s - w + 1]
    expected = sequence_loss(merged, segments.gt[:, :, w - 1:s - w + 1], 2.0, segments.view_mask)
    assert torch.allclose(train.merged_loss(windows.noisy, segments, cfg, 1.0), expected)
    # fused_weight adds Eq. 4 on the mean of each segment's live views
    live = segments.view_mask[:, :, None, None].float()
    fused = (merged * live).sum(1, keepdim=True) / live.sum(1, keepdim=True)
    fused_loss = sequence_loss(fused, segments.gt[:, :1, w - 1:s - w + 1], 2.0)
    cfg.fused_weight = 0.5
    assert torch.allclose(train.merged_loss(windows.noisy, segments, cfg, 1.0), expected + 0.5 * fused_loss)


def test_relative_loss_weighs_views_by_their_input_error():
    """relative_loss_mm: a view's weight is 1 / (its mean joint error + c), mean 1 over live views;
    missing joints (confidence 0) and dead views do not count."""
    from synsp_training.data import WindowBatch
    gt = torch.zeros(1, 3, 4, 6)                                   # 2 joints x 3D
    noisy = gt.clone()
    noisy[0, 0, :, 0] = 10.0                                       # view 0: 10 mm error
    noisy[0, 1, :, 0] = 30.0                                       # view 1: 30 mm
    noisy[0, 1, :, 3] = 1e6                                        # ... and a missing joint full of junk
    confidence = torch.ones(1, 3, 4, 2)
    confidence[0, 1, :, 1] = 0.0
    batch = WindowBatch(noisy, gt, torch.tensor([[True, True, False]]), confidence)
    assert torch.equal(train.view_weights(batch, train.TrainConfig(), 3), batch.view_mask.float())
    weights = train.view_weights(batch, train.TrainConfig(relative_loss_mm=10.0), 3)
    # mean errors over observed joints: view 0 (10 + 0) / 2 = 5 mm, view 1 30 mm (its junk joint is missing)
    expected = torch.tensor([1 / 15, 1 / 40, 0.0])
    torch.testing.assert_close(weights[0], expected * 2 / expected.sum())


def test_swaa_aware_training_runs(cmu_dir, tmp_path):
    out = tmp_path / "segments"
    result = train.main(["--config", str(train.CONFIG_DIR / "synsp_multiview.yaml"),
                         *overrides(cmu_dir, out, "epochs=1", "segment_windows=10", "window_stride=4",
                                    "batch_size=4")])
    assert np.isfinite(result["best_val_mpjpe"])
    with pytest.raises(ValueError, match="segment_windows"):
        train.main(["--config", str(train.CONFIG_DIR / "synsp_multiview.yaml"),
                    *overrides(cmu_dir, out, "segment_windows=9")])


def test_smoothnet_config_trains(cmu_dir, tmp_path):
    out = tmp_path / "smoothnet"
    train.main(["--config", str(train.CONFIG_DIR / "smoothnet.yaml"), f"cmu_dir={cmu_dir}", f"out_dir={out}",
                "epochs=1", "batch_size=32", "threads=1", "fps_range=[25, 30]",
                "model_config={window: 16, hidden: 32, res_hidden: 16}"])
    assert read_checkpoint_info(out / "last.safetensors")["model"] == "smoothnet"


def test_bad_override_is_rejected():
    with pytest.raises(ValueError, match="unknown config keys"):
        train.TrainConfig.load(None, ["no_such_key=1"])


def test_ddp_two_cpu_processes(cmu_dir, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(Path(train.__file__)), "--config", str(train.CONFIG_DIR / "synsp_single.yaml"),
           *overrides(cmu_dir, out, "epochs=1")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(out / "last.safetensors").cfg.d_model == 16


def test_evaluate_table(cmu_dir, tmp_path):
    out = tmp_path / "run"
    train.main(["--config", str(train.CONFIG_DIR / "synsp_single.yaml"), *overrides(cmu_dir, out, "epochs=1")])
    table = evaluate.main(["--cmu-dir", str(cmu_dir), "--fps", "30", "--views", "2",
                           "--synsp", str(out / "best.safetensors"), "--out", str(tmp_path / "eval")])
    methods = [row["method"] for row in table]
    assert methods[0] == "Input" and methods[1] == "Mean of 2 views"
    assert any(m.startswith("Gaussian1d") for m in methods) and any(m.startswith("SynSP") for m in methods)
    for row in table:
        assert all(np.isfinite(row[k]) for k in ("mpjpe", "pa_mpjpe", "accel", "worst1_mpjpe"))
    # the mean of two independent views is better than one view
    assert table[1]["mpjpe"] < table[0]["mpjpe"]
    for name in ("table.md", "table.csv", "mpjpe_vs_accel.png"):
        assert (tmp_path / "eval" / name).is_file()
    # the same data in a y-down camera frame: the filters and the mean do not care, the model does
    turned = evaluate.main(["--cmu-dir", str(cmu_dir), "--fps", "30", "--views", "2", "--rotate-x-deg", "90",
                            "--synsp", str(out / "best.safetensors"), "--out", str(tmp_path / "eval_turned")])
    assert [row["method"] for row in turned] == methods
    for row, turned_row in zip(table, turned):
        if row["method"].startswith("SynSP"):
            assert abs(turned_row["mpjpe"] - row["mpjpe"]) > 1e-3, row["method"]
        else:
            assert turned_row["mpjpe"] == pytest.approx(row["mpjpe"], rel=1e-4), row["method"]
