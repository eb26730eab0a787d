"""GPU runtime backends against eager CUDA, on a GPU machine (`python benchmarks/gpu_check.py`).

TensorRT fp32 and fp16 engines (built here, about a minute each), CUDA Graphs and eager CUDA, for
the default SynSPConfig with random non-zero correction heads. Skipped, with the reason, without
a CUDA device or without torch_tensorrt; nothing is installed.
"""
import pytest
import torch

from synsp_core.artifacts import nan_aware_max_error, random_windows, tensorrt_unavailable_reason
from synsp_core.checkpoint import save_checkpoint
from synsp_core.model import SynSP, SynSPConfig
from synsp_core.runtime import create_backend

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (or a CPU-only torch)")
needs_tensorrt = pytest.mark.skipif(tensorrt_unavailable_reason() is not None,
                                    reason=f"TensorRT unavailable: {tensorrt_unavailable_reason()}")
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}   # relative to the data scale (mm), see synsp_core.artifacts
# (batch, views): node steps, padding below the engine's views, and a batch split above its max (1024)
SHAPES = [(1, 4), (1, 1), (7, 3), (1500, 4)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNSP_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        torch.manual_seed(0)
        model = SynSP(SynSPConfig())
        for layer in model.modules():   # the zero-initialised correction FCs
            if isinstance(layer, torch.nn.Linear) and not layer.weight.any():
                torch.nn.init.normal_(layer.weight, std=0.05)
        yield save_checkpoint(tmp_path_factory.mktemp("weights") / "default.safetensors", model)


@pytest.fixture(scope="module")
def eager_cuda(checkpoint):
    return create_backend(checkpoint, "eager", device="cuda")


def assert_close(backend, reference, precision, shapes=SHAPES):
    for seed, (batch, views) in enumerate(shapes):
        poses, view_mask, confidence = random_windows(reference.config, batch, views, seed=seed)
        expected, got = reference(poses, view_mask, confidence), backend(poses, view_mask, confidence)
        scale = max(reference.config.norm_scale, float(poses.nan_to_num().abs().max()))
        refined_error = nan_aware_max_error(got[0], expected[0])
        quality_error = nan_aware_max_error(got[1], expected[1])
        print(f"{backend.name} batch {batch} views {views}: refined {refined_error:.3g} mm, quality {quality_error:.3g}")
        assert refined_error <= TOLERANCE[precision] * scale, (batch, views)
        assert quality_error <= 10 * TOLERANCE[precision], (batch, views)   # see synsp_core.artifacts


def test_eager_cuda_matches_eager_cpu(checkpoint, eager_cuda):
    assert_close(eager_cuda, create_backend(checkpoint, "eager"), "fp32", SHAPES[:3])


def test_cuda_graphs_match_eager_cuda_and_replay(checkpoint, eager_cuda):
    backend = create_backend(checkpoint, "cuda")
    assert backend.name == "cuda-graphs"
    assert_close(backend, eager_cuda, "fp32")
    assert_close(backend, eager_cuda, "fp32")   # second pass: replays of the captured graphs
    assert len(backend.graphs) == len(SHAPES)


@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_matches_eager_cuda(checkpoint, eager_cuda, precision):
    backend = create_backend(checkpoint, "tensorrt", precision=precision)
    assert backend.name == f"tensorrt-{precision}" and backend.artifact.is_file()
    assert_close(backend, eager_cuda, precision)


@needs_tensorrt
def test_auto_picks_the_cached_tensorrt_engine(checkpoint, caplog):
    create_backend(checkpoint, "tensorrt")   # built by the test above, or here
    with caplog.at_level("INFO", logger="synsp_core"):
        backend = create_backend(checkpoint, "auto")
    assert backend.name == "tensorrt-fp32" and "building" not in caplog.text
