"""Export and runtime backends on the CPU.

ExportedProgram and AOTInductor outputs equal eager PyTorch; 'auto' and 'cpu' fall back for real
(this CI has neither CUDA nor torch_tensorrt: nothing is mocked); artifacts that are missing, do
not match their checkpoint or hold pickles are refused with errors naming what is wrong.
One tiny config is compiled once per module (AOTInductor takes about a minute on 2 cores).
"""
import contextlib
import io
import json
import logging
import pickle
import shutil
import time
import zipfile

import pytest
import torch

from synsp_core.artifacts import (ArtifactError, RefineModule, build_tensorrt, check_artifact, check_pickle_free,
                                  dynamic_shapes_to_verify, load_exported, nan_aware_max_error, random_windows,
                                  sidecar_path, verify)
from synsp_core.checkpoint import load_checkpoint, save_checkpoint
from synsp_core.model import SynSP, SynSPConfig
from synsp_core.runtime import EagerBackend, create_backend
from synsp_training.export import main as export_main

TINY = SynSPConfig(d_model=32, n_heads=2, head_dim=16, d_ffn=32, n_local_layers=1, n_global_layers=1,
                   n_base_shared_layers=1, n_refine_layers=1, body_frame=True)
SHAPES = [(1, 1), (1, 4), (5, 3), (64, 2)]   # (batch, views): one artifact serves them all
no_gpu_stack = pytest.mark.skipif(
    torch.cuda.is_available() or __import__("importlib").util.find_spec("torch_tensorrt") is not None,
    reason="exercises the fallback of a machine without CUDA and torch_tensorrt")


def make_checkpoint(path, seed):
    """A tiny random SynSP whose correction FCs are not zero, so it is far from the identity."""
    torch.manual_seed(seed)
    model = SynSP(TINY)
    for layer in model.modules():   # the zero-initialised correction FCs
        if isinstance(layer, torch.nn.Linear) and not layer.weight.any():
            torch.nn.init.normal_(layer.weight, std=0.05)
    return save_checkpoint(path, model)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("cache")
        patch.setenv("SYNSP_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("weights") / "tiny.safetensors", seed=0)


@pytest.fixture(scope="module")
def built(checkpoint, cache):
    """synsp-export of both CPU formats into the cache, once; returns paths and what it printed."""
    start = time.perf_counter()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exported, aoti = export_main(["--checkpoint", str(checkpoint), "--formats", "exported", "aoti"])
    print(f"\nexport + AOTInductor build of the tiny config took {time.perf_counter() - start:.0f} s")
    return {"exported": exported, "aoti": aoti, "printed": printed.getvalue()}


def assert_matches_eager(run, checkpoint):
    reference = EagerBackend(load_checkpoint(checkpoint))
    for seed, (batch, views) in enumerate(SHAPES):
        poses, view_mask, confidence = random_windows(TINY, batch, views, seed=100 + seed)
        expected, got = reference(poses, view_mask, confidence), run(poses, view_mask, confidence)
        assert got[0].shape == poses.shape and got[1].shape == poses.shape[:3]
        assert torch.isfinite(got[0][view_mask]).all()               # missing joints are filled
        scale = max(TINY.norm_scale, float(poses.nan_to_num().abs().max()))   # mm
        assert nan_aware_max_error(got[0], expected[0]) <= 1e-4 * scale, (batch, views)
        assert nan_aware_max_error(got[1], expected[1]) <= 1e-3, (batch, views)   # quality: 10x, see artifacts
        assert (expected[0] - poses)[view_mask].nan_to_num().abs().max() > 1.0   # the model does change poses
        assert torch.isnan(got[0][~view_mask]).all()                # masked views come back as given (NaN)


def test_export_cli_writes_verified_artifacts_with_sidecars(built, checkpoint):
    for kind in ("exported", "aoti"):
        info = json.loads(sidecar_path(built[kind]).read_text())
        assert info["config"] == TINY.to_dict() and info["checkpoint"] == checkpoint.name
        assert info["verification"]["refined_mm"] / info["verification"]["scale_mm"] <= 1e-4
    assert built["printed"].count("max abs error refined") == 2
    assert built["exported"].name.endswith(".exported.pt2") and built["aoti"].name.endswith(".aoti-cpu.pt2")


def test_exported_program_matches_eager(built, checkpoint):
    assert_matches_eager(load_exported(built["exported"], checkpoint), checkpoint)


def test_aoti_backend_matches_eager(built, checkpoint):
    backend = create_backend(checkpoint, "aoti")
    assert backend.name == "aoti-cpu" and backend.artifact == built["aoti"] and backend.config == TINY
    assert_matches_eager(backend, checkpoint)


@no_gpu_stack
def test_auto_and_cpu_fall_back_to_the_aoti_package(built, checkpoint, caplog):
    with caplog.at_level(logging.INFO, logger="synsp_core.runtime"):
        assert create_backend(checkpoint, "auto").name == "aoti-cpu"
    assert "torch_tensorrt is not installed" in caplog.text and "no CUDA device" in caplog.text
    assert "backend 'auto' chose aoti-cpu" in caplog.text
    assert create_backend(checkpoint, "cpu").name == "aoti-cpu"


@no_gpu_stack
def test_auto_without_any_artifact_falls_back_to_eager_cpu(checkpoint, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SYNSP_CACHE_DIR", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="synsp_core.runtime"):
        backend = create_backend(checkpoint, "auto")
    assert backend.name == "eager-cpu" and backend.device == torch.device("cpu")
    assert "no AOTInductor package" in caplog.text and "synsp-export" in caplog.text
    with pytest.raises(FileNotFoundError, match=r"aoti-cpu\.pt2.*synsp-export"):
        create_backend(checkpoint, "aoti")


@no_gpu_stack
def test_gpu_backends_without_gpu_say_what_is_missing(checkpoint, tmp_path):
    with pytest.raises(RuntimeError, match="torch_tensorrt is not installed.*no CUDA device"):
        create_backend(checkpoint, "tensorrt")
    with pytest.raises(RuntimeError, match="needs a CUDA device"):
        create_backend(checkpoint, "cuda")
    with pytest.raises(RuntimeError, match="cannot build a TensorRT engine: torch_tensorrt is not installed"):
        build_tensorrt(checkpoint, "fp16")
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(stderr):
        export_main(["--checkpoint", str(checkpoint), "--formats", "tensorrt-fp16", "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "torch_tensorrt is not installed" in stderr.getvalue()
    assert not list(tmp_path.iterdir())


def test_artifact_of_other_weights_is_refused(built, tmp_path):
    other = make_checkpoint(tmp_path / "other.safetensors", seed=1)   # same config, other weights
    with pytest.raises(ArtifactError, match=r"does not match .*other\.safetensors[\s\S]*weights: artifact built from"):
        create_backend(other, "aoti", artifact=built["aoti"])


def test_artifact_with_other_config_names_the_differences(built, checkpoint, tmp_path):
    artifact = tmp_path / "copy.aoti-cpu.pt2"
    shutil.copy(built["aoti"], artifact)
    info = json.loads(sidecar_path(built["aoti"]).read_text())
    info["config"].update(num_joints=14, window=16)
    sidecar_path(artifact).write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match=r"copy\.aoti-cpu\.pt2[\s\S]*num_joints: artifact 14, checkpoint 17"
                                            r"[\s\S]*window: artifact 16, checkpoint 8"):
        check_artifact(artifact, checkpoint, "aoti-cpu")
    with pytest.raises(ArtifactError, match="kind: artifact 'exported', wanted 'aoti-cpu'"):
        create_backend(checkpoint, "aoti", artifact=built["exported"])


def test_changed_or_orphaned_artifact_is_refused(built, checkpoint, tmp_path):
    artifact = tmp_path / built["aoti"].name
    shutil.copy(built["aoti"], artifact)
    with pytest.raises(FileNotFoundError, match=r"sidecar not found: .*aoti-cpu\.pt2\.json"):
        create_backend(checkpoint, "aoti", artifact=artifact)
    shutil.copy(sidecar_path(built["aoti"]), sidecar_path(artifact))
    with artifact.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        create_backend(checkpoint, "cpu", artifact=artifact)
    with pytest.raises(FileNotFoundError, match=r"artifact not found: .*missing\.pt2"):
        create_backend(checkpoint, "aoti", artifact=tmp_path / "missing.pt2")


def test_pickle_files_are_refused(built, checkpoint, tmp_path):
    torch.save(load_checkpoint(checkpoint).state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match="no pickle files"):
        create_backend(tmp_path / "model.pt", "eager")
    with pytest.raises(ArtifactError, match="pickle files .* are never loaded"):
        create_backend(checkpoint, "aoti", artifact=tmp_path / "model.pt")

    check_pickle_free(built["exported"])   # ours: raw tensors and JSON only
    with zipfile.ZipFile(built["exported"]) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}

    def rewritten(name, change):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            for entry, data in entries.items():
                archive.writestr(entry, change(entry, data))
        return path

    def pickled_weight(entry, data):
        if not entry.endswith("_weights_config.json"):
            return data
        config = json.loads(data)
        next(iter(config["config"].values()))["use_pickle"] = True
        return json.dumps(config)
    with pytest.raises(ArtifactError, match="stored as a Python pickle"):
        check_pickle_free(rewritten("weights.pt2", pickled_weight))

    def pickled_inputs(entry, data):
        return pickle.dumps(tmp_path) if "/data/sample_inputs/" in entry else data
    with pytest.raises(ArtifactError, match="holds more than tensors"):
        check_pickle_free(rewritten("inputs.pt2", pickled_inputs))


def test_fp16_module_stays_within_its_tolerance(checkpoint):
    """The half-precision graph TensorRT fp16 compiles, run on the CPU: close to float32, not equal."""
    model = load_checkpoint(checkpoint)
    result = verify(RefineModule(model, "fp16"), RefineModule(model), dynamic_shapes_to_verify(TINY), "fp16")
    assert 1e-6 < result.refined_mm / result.scale_mm <= 1e-2 and result.quality <= 0.1
    with pytest.raises(ValueError, match="precision must be one of"):
        RefineModule(model, "int8")


def test_bad_requests_and_inputs_are_named(checkpoint):
    with pytest.raises(ValueError, match="backend must be one of"):
        create_backend(checkpoint, "gpu")
    with pytest.raises(ValueError, match="device= applies to backend 'eager' only"):
        create_backend(checkpoint, "cpu", device="cpu")
    backend = create_backend(checkpoint, "eager")
    poses, view_mask, _ = random_windows(TINY, 2, 3)
    with pytest.raises(ValueError, match=r"shaped \(B, V, 8, 51\).*got \(2, 3, 7, 51\)"):
        backend(poses[:, :, :7], view_mask)
    with pytest.raises(ValueError, match=r"got \(2, 3, 8, 48\)"):
        backend(poses[..., :48], view_mask)
    with pytest.raises(ValueError, match=r"view_mask must be a bool tensor shaped \(2, 3\)"):
        backend(poses, view_mask.float())
    with pytest.raises(ValueError, match="at least one live view"):
        backend(poses, torch.zeros(2, 3, dtype=torch.bool))



def test_backends_accept_strided_inputs(built, checkpoint):
    """An expanded (stride-0) view mask and non-contiguous poses give the eager result (the offline
    Refiner passes such a mask; AOTI once read it wrongly and treated views as missing)."""
    eager, aoti = create_backend(checkpoint, "eager"), create_backend(checkpoint, "aoti", artifact=built["aoti"])
    poses = (torch.randn(6, 8, 3, TINY.num_joints * TINY.dims) * 100).transpose(1, 2)   # (6, 3, 8, C), strided
    mask = torch.ones(1, 3, dtype=torch.bool).expand(6, 3)
    reference = eager(poses.contiguous(), mask.contiguous())[0]
    torch.testing.assert_close(aoti(poses, mask)[0], reference, rtol=0, atol=1e-2)
