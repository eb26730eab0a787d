"""The CUDA SWAA kernel against the reference, on a GPU machine.

Run there with `python -m pytest -q tests/gpu` (needs a CUDA build of torch and synsp_core._swaa
built with nvcc). Skipped, with the reason, everywhere else; CI only compile-checks the kernel.
"""
import numpy as np
import pytest
import torch

import synsp_core.swaa as swaa_module
from synsp_core.swaa import num_frames, swaa, swaa_reference

ext = pytest.importorskip("synsp_core._swaa", reason="extension not built: pip install --no-build-isolation -e .")
pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (or a CPU-only torch)"),
    pytest.mark.skipif(not ext.has_cuda, reason="synsp_core._swaa was built without CUDA (no nvcc, or SYNSP_CUDA=0)"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_equals_reference_bit_for_bit(dtype):
    rng = np.random.default_rng(11)
    for _ in range(200):
        window = int(rng.integers(1, 13))
        n, c, stride = int(rng.integers(1, 40)), int(rng.integers(1, 60)), int(rng.integers(1, window + 1))
        lead = [(), (int(rng.integers(0, 4)),), (2, 3)][rng.integers(0, 3)]
        windows = torch.from_numpy(rng.normal(size=(*lead, n, window, c)) * 100).to(dtype)
        merged = swaa(windows.cuda(), stride, backend="cuda")
        assert merged.is_cuda and merged.dtype == dtype and merged.shape == (*lead, num_frames(n, window, stride), c)
        assert torch.equal(merged.cpu(), swaa_reference(windows, stride)), (lead, n, window, c, stride)


def test_auto_runs_the_kernel_on_the_current_stream(monkeypatch):
    monkeypatch.setattr(swaa_module, "swaa_reference", lambda *args: pytest.fail("auto must not use the reference"))
    windows = torch.randn(100, 993, 8, 51, device="cuda")  # 100 sequences of 1,000 frames at once
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        merged = swaa(windows)
    stream.synchronize()
    expected = ext.swaa(windows.cpu().numpy(), 1)
    np.testing.assert_array_equal(merged.cpu().numpy(), expected)


def test_non_contiguous_and_other_device_pointers_are_handled():
    windows = torch.randn(6, 51, 8, device="cuda").transpose(1, 2)  # (N, W, C) view, not contiguous
    assert torch.equal(swaa(windows, 2).cpu(), swaa_reference(windows.cpu(), 2))
    host = torch.zeros(6, 8, 51)
    with pytest.raises(ValueError, match="not CUDA device memory"):
        ext.swaa_cuda(host.data_ptr(), host.data_ptr(), "float32", 1, 6, 8, 51, 1, 0)
