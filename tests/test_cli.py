"""The command-line tools: a user's mistake is a one-line error with exit status 2 (no traceback, nothing
written), and success is exit status 0 whatever the command's main() returns."""
import importlib
import inspect
import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from synsp_core.checkpoint import save_checkpoint
from synsp_core.cli import FPS_RANGE, main as refine_main, run_command
from synsp_core.model import SynSP, SynSPConfig
from synsp_core.refiner import Refiner
from synsp_training import evaluate, export, train

SETUP = Path(__file__).resolve().parents[1] / "setup.py"

TINY = SynSPConfig(d_model=16, n_heads=2, head_dim=8, d_ffn=16, n_local_layers=1, n_global_layers=1,
                   n_base_shared_layers=1, n_refine_layers=1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", SynSP(TINY))


def poses(*shape, seed=0):
    return (np.random.default_rng(seed).normal(size=shape) * 100).astype(np.float32)


def refine(checkpoint, src, dst, *extra):
    return refine_main([str(src), str(dst), "--checkpoint", str(checkpoint), *extra])


def one_line_error(capsys, *words):
    """stderr is one "synsp-refine: error: ..." line holding every word."""
    err = capsys.readouterr().err
    assert err.startswith("synsp-refine: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


def test_npy_input_is_a_one_line_error(checkpoint, tmp_path, capsys):
    src, dst = tmp_path / "in.npy", tmp_path / "out.npz"
    np.save(src, poses(20, 17, 3))
    assert refine(checkpoint, src, dst) == 2
    one_line_error(capsys, "(.npy)", "np.savez")
    assert not dst.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("backend", ["cuda", "tensorrt"])
def test_gpu_backend_without_gpu_is_a_one_line_error(checkpoint, tmp_path, capsys, backend):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, a=poses(20, 17, 3))
    assert refine(checkpoint, src, dst, "--backend", backend) == 2
    one_line_error(capsys, f"backend {backend!r}")
    assert not dst.exists()


@pytest.mark.parametrize("fps", ["nan", "inf", "-inf", "0", "-30", "1e-9", "0.5", "1e9", "abc"])
def test_frame_rate_outside_the_range_is_refused(checkpoint, tmp_path, capsys, fps):
    src = tmp_path / "in.npz"
    np.savez(src, a=poses(20, 17, 3))
    with pytest.raises(SystemExit) as exit_:
        refine(checkpoint, src, tmp_path / "out.npz", f"--fps={fps}")   # = : "-30" is no option
    assert exit_.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("synsp-refine: error: argument --fps: frame rate") and fps in err
    if fps != "abc":
        assert f"{FPS_RANGE[0]:g} to {FPS_RANGE[1]:g} fps" in err


@pytest.mark.parametrize("fps", [f"{FPS_RANGE[0]:g}", "29.97", f"{FPS_RANGE[1]:g}"])
def test_frame_rates_in_the_range_are_taken(checkpoint, tmp_path, fps):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, a=poses(20, 17, 3))
    assert refine(checkpoint, src, dst, "--fps", fps) == 0


def test_missing_output_folder_is_an_error_and_is_not_created(checkpoint, tmp_path, capsys):
    src, folder = tmp_path / "in.npz", tmp_path / "no" / "such"
    np.savez(src, a=poses(20, 17, 3))
    assert refine(checkpoint, src, folder / "out.npz") == 2
    one_line_error(capsys, str(folder), "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_mode_honours_the_umask(checkpoint, tmp_path, umask):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, a=poses(20, 17, 3))
    old = os.umask(umask)
    try:
        assert refine(checkpoint, src, dst) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz", "out.npz"]   # no temporary file left


def test_non_finite_output_is_an_error_and_nothing_is_written(checkpoint, tmp_path, capsys, monkeypatch):
    """Whatever goes wrong inside (weights, a runtime), NaN or inf never reaches OUTPUT."""
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, good=poses(2, 20, 17, 3), broken=poses(20, 17, 3))
    refine_one = Refiner.refine   # the command's call for the one-view key "broken"

    def overflowing(self, *args, **kwargs):
        refined = refine_one(self, *args, **kwargs)
        refined[5, 3, 0] = np.inf
        return refined
    monkeypatch.setattr(Refiner, "refine", overflowing)
    assert refine(checkpoint, src, dst) == 2
    one_line_error(capsys, "broken", "NaN or inf", "nothing written")
    assert not dst.exists()


def test_absurd_input_value_never_gives_non_finite_output(checkpoint, tmp_path):
    """A finite but absurd value (1e30 mm) is either refused or refined into finite output."""
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    huge = poses(20, 17, 3)
    huge[5, 3, 0] = 1e30
    np.savez(src, huge=huge)
    if refine(checkpoint, src, dst) == 0:
        with np.load(dst) as out:
            assert np.isfinite(out["huge"]).all()
    else:
        assert not dst.exists()


def test_input_key_that_fused_output_would_overwrite_is_an_error(checkpoint, tmp_path, capsys):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, **{"a": poses(2, 20, 17, 3), "a/fused": poses(20, 17, 3)})
    assert refine(checkpoint, src, dst) == 2
    one_line_error(capsys, "a/fused", "overwrite")
    assert not dst.exists()


def test_fused_key_next_to_a_single_view_key_is_refined_as_its_own(checkpoint, tmp_path):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, **{"a": poses(20, 17, 3), "a/fused": poses(20, 17, 3, seed=1)})
    assert refine(checkpoint, src, dst) == 0
    with np.load(dst) as out:
        assert sorted(out.files) == ["a", "a/fused"]


@pytest.mark.parametrize("key, confidence, message", [
    ("a/confidence", np.full((20, 17, 1), 0.5), "shaped (20, 17)"),
    ("a/confidence", np.full((20, 17), 1.5), "in [0, 1]"),
    ("a/confidence", np.full((20, 17), np.nan), "in [0, 1]"),
    ("b/confidence", np.full((20, 17), 0.5), "no array 'b'"),
])
def test_bad_confidence_is_an_error(checkpoint, tmp_path, capsys, key, confidence, message):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, **{"a": poses(20, 17, 3), key: confidence})
    assert refine(checkpoint, src, dst) == 2
    one_line_error(capsys, key, message)
    assert not dst.exists()


@pytest.mark.skipif("confidence" not in inspect.signature(Refiner.refine_views).parameters,
                    reason="Refiner.refine/refine_views take confidence= once refiner.py has it")
def test_confidence_is_passed_to_the_refiner_and_not_written(checkpoint, tmp_path, monkeypatch):
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    single, multi = poses(20, 17, 3), poses(2, 20, 17, 3, seed=1)
    single_conf = np.random.default_rng(2).uniform(size=(20, 17)).astype(np.float32)
    multi_conf = np.random.default_rng(3).uniform(size=(2, 20, 17)).astype(np.float32)
    np.savez(src, **{"single": single, "single/confidence": single_conf, "multi": multi,
                     "multi/confidence": multi_conf, "plain": single})
    seen = {}
    for method in ("refine", "refine_views"):
        original = getattr(Refiner, method)

        def spy(self, *args, _original=original, **kwargs):
            if "name" in kwargs:   # the command's own calls, which name the key
                seen[kwargs["name"]] = kwargs.get("confidence")
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(Refiner, method, spy)
    assert refine(checkpoint, src, dst) == 0
    np.testing.assert_array_equal(seen["single"], single_conf)
    np.testing.assert_array_equal(seen["multi"], multi_conf)
    assert seen["plain"] is None
    with np.load(dst) as out:
        assert sorted(out.files) == ["multi", "multi/fused", "plain", "single"]


def test_run_command_exit_status(capsys):
    assert run_command("tool", lambda: {"best_val_mpjpe": 1.0}) == 0   # a returned dict is no failure
    assert run_command("tool", lambda: []) == 0

    def mistake():
        raise ValueError("config.yaml: batch_size must be >= 1, got 0")
    assert run_command("tool", mistake) == 2
    assert capsys.readouterr().err == "tool: error: config.yaml: batch_size must be >= 1, got 0\n"


def console_scripts() -> dict[str, str]:
    """{command: "module:function"} of setup.py's synsp-* console scripts."""
    return dict(re.findall(r'"(synsp-[a-z]+) = ([\w.]+:\w+)"', SETUP.read_text()))


@pytest.mark.parametrize("command, returned", [("synsp-train", {"best_val_mpjpe": 1.0}),
                                               ("synsp-evaluate", [{"method": "Input"}]),
                                               ("synsp-export", [Path("a.pt2")])])
def test_training_commands_exit_0_after_success(monkeypatch, command, returned):
    """What main() returns (a dict, a list) is no exit status: the console script returns 0."""
    module, function = console_scripts()[command].split(":")
    module = importlib.import_module(module)
    monkeypatch.setattr(module, "main", lambda argv=None: returned)
    assert getattr(module, function)() == 0


def run_cli(monkeypatch, module, *argv) -> int:
    """module's console script with these arguments (as typed after the command)."""
    monkeypatch.setattr(sys, "argv", [module.__name__, *map(str, argv)])
    return module.cli_main()


@pytest.mark.parametrize("overrides, message", [
    (["batch_size=0"], "batch_size must be >= 1, got 0"),
    (["epochs=0"], "epochs must be >= 1"),
    (["epochs=2.5"], "epochs must be a finite int"),
    (["lr=-1e-3"], "lr must be >= 0"),
    (["lr=.nan"], "lr must be a finite float"),
    (["log_every=0"], "log_every must be >= 1"),
    (["fps_range=[60, 20]"], "fps_range must be [low, high]"),
    (["no_such_key=1"], "unknown config keys ['no_such_key']"),
    (["batch_size"], "is not key=value"),
    (["init_from=missing.safetensors"], "init_from missing.safetensors not found"),
    (["cmu_dir=no/such/folder"], "no/such/folder"),
    (["errors=gaussian", "errors.scale=2"], "does not support item assignment"),
])
def test_train_mistakes_are_one_line_errors_before_out_dir(monkeypatch, capsys, tmp_path, overrides, message):
    config = train.CONFIG_DIR / "synsp_single.yaml"
    out = tmp_path / "run"
    assert run_cli(monkeypatch, train, "--config", config, f"out_dir={out}", "threads=1", *overrides) == 2
    err = capsys.readouterr().err
    assert err.startswith("synsp-train: error: ") and err.count("\n") == 1 and message in err, err
    assert str(config) in err or "no/such/folder" in err
    assert not out.exists()


@pytest.mark.parametrize("text", ["key: [unclosed", "- a list, not a mapping", ""])
def test_train_bad_config_file_is_a_one_line_error(monkeypatch, capsys, tmp_path, text):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert run_cli(monkeypatch, train, "--config", config, f"out_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"synsp-train: error: {config}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_train_missing_config_file_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    assert run_cli(monkeypatch, train, "--config", tmp_path / "none.yaml") == 2
    err = capsys.readouterr().err
    assert err.startswith("synsp-train: error: ") and "none.yaml" in err and err.count("\n") == 1, err


def test_evaluate_missing_checkpoint_fails_before_any_work(monkeypatch, capsys, tmp_path):
    out = tmp_path / "eval"
    assert run_cli(monkeypatch, evaluate, "--cmu-dir", tmp_path, "--synsp", tmp_path / "none.safetensors",
                   "--out", out) == 2
    err = capsys.readouterr().err
    assert err.startswith("synsp-evaluate: error: checkpoint not found") and "none.safetensors" in err, err
    assert not out.exists()


@pytest.mark.parametrize("fps", ["nan", "inf", "0", "1e9"])
def test_evaluate_rejects_a_bad_frame_rate(monkeypatch, capsys, tmp_path, fps):
    with pytest.raises(SystemExit) as exit_:
        run_cli(monkeypatch, evaluate, "--cmu-dir", tmp_path, f"--fps={fps}")
    assert exit_.value.code == 2 and "argument --fps: frame rate" in capsys.readouterr().err


def test_export_bad_checkpoint_is_a_one_line_error(monkeypatch, capsys, checkpoint, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"no safetensors")
    (tmp_path / "broken.json").write_text(checkpoint.with_suffix(".json").read_text())
    for path, message in [(tmp_path / "none.safetensors", "No such file"), (broken, "not a readable safetensors")]:
        assert run_cli(monkeypatch, export, "--checkpoint", path, "--formats", "exported",
                       "--out-dir", tmp_path / "out") == 2
        err = capsys.readouterr().err
        assert err.startswith("synsp-export: error: ") and message in err and str(path) in err, err
        assert err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
