"""The compiled SWAA (synsp_core._swaa behind synsp_core.swaa) against the Python reference.

The C++ batched SWAA sums window rows in the reference's order, so results are compared bit for
bit; the C++ streaming SWAA sums in float64 like StreamingSWAAReference and is compared frame by
frame, also exactly. The CUDA kernel is checked in tests/gpu/ (skipped without a GPU).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import synsp_core.swaa as swaa_module
from synsp_core.swaa import StreamingSWAA, StreamingSWAACpp, StreamingSWAAReference, num_frames, swaa, swaa_reference

ext = pytest.importorskip("synsp_core._swaa", reason="extension not built: pip install --no-build-isolation -e .")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_shapes(rng, count):
    """(lead dims, N, W, C, stride) with N = 1 and N < W - 1 well represented."""
    shapes = []
    for _ in range(count):
        window = int(rng.integers(1, 13))
        num_windows = int(rng.choice([1, rng.integers(1, max(2, window - 1)), rng.integers(1, 40)]))
        lead = [(), (int(rng.integers(0, 4)),), (2, int(rng.integers(1, 4)))][rng.integers(0, 3)]
        shapes.append((lead, num_windows, window, int(rng.integers(1, 10)), int(rng.integers(1, window + 1))))
    return shapes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_equals_reference_bit_for_bit(dtype):
    rng = np.random.default_rng(7)
    for lead, n, w, c, stride in random_shapes(rng, 300):
        windows = (rng.normal(size=(*lead, n, w, c)) * 100).astype(dtype)
        merged = swaa(windows, stride, backend="cpu")
        assert merged.dtype == dtype and merged.shape == (*lead, num_frames(n, w, stride), c)
        np.testing.assert_array_equal(merged, swaa_reference(windows, stride), err_msg=f"{lead} {n} {w} {c} {stride}")


@pytest.mark.parametrize("stride", [1, 3, 8])
def test_threads_split_frames_exactly(stride):
    windows = np.random.default_rng(stride).normal(size=(3, 4000, 8, 11)).astype(np.float32)  # big enough for 2 threads
    one, two = ext.swaa(windows, stride, num_threads=1), ext.swaa(windows, stride, num_threads=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(two, swaa_reference(windows, stride))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_cpu_tensors_keep_type_and_dtype(dtype):
    windows = torch.randn(2, 9, 6, 5, dtype=dtype, generator=torch.Generator().manual_seed(0))
    merged = swaa(windows, 2)
    assert isinstance(merged, torch.Tensor) and merged.dtype == dtype and merged.shape == (2, 22, 5)
    assert torch.equal(merged, swaa_reference(windows, 2))
    transposed = windows.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, not C-contiguous
    assert not transposed.is_contiguous()
    assert torch.equal(swaa(transposed, 2, backend="cpu"), merged)


def test_auto_uses_the_extension_and_the_reference_only_where_needed(monkeypatch):
    calls = []
    monkeypatch.setattr(swaa_module, "swaa_reference", lambda *args: calls.append(args) or "reference")
    windows = np.ones((4, 8, 3), dtype=np.float32)
    assert isinstance(swaa(windows), np.ndarray) and isinstance(swaa(torch.from_numpy(windows)), torch.Tensor)
    assert calls == []
    assert swaa(windows.astype(np.int32)) == "reference"             # other dtypes
    assert swaa(torch.ones(4, 8, 3, requires_grad=True)) == "reference"  # gradients
    with torch.no_grad():
        assert isinstance(swaa(torch.ones(4, 8, 3, requires_grad=True)), torch.Tensor)
    assert len(calls) == 2


def test_auto_keeps_gradients():
    windows = torch.randn(5, 4, 3, dtype=torch.float64, requires_grad=True)
    swaa(windows, 2).sum().backward()
    reference = windows.detach().clone().requires_grad_()
    swaa_reference(reference, 2).sum().backward()
    torch.testing.assert_close(windows.grad, reference.grad)


def test_nan_propagates_to_exactly_its_frame():
    windows = np.ones((6, 4, 3), dtype=np.float32)
    windows[2, 3, 1] = np.nan  # window 2, offset 3: frame 2 * 2 + 3
    merged = swaa(windows, 2)
    expected = np.zeros(merged.shape, dtype=bool)
    expected[7, 1] = True
    np.testing.assert_array_equal(np.isnan(merged), expected)
    np.testing.assert_array_equal(merged, swaa_reference(windows, 2))


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="shaped"):
        swaa(np.zeros((8, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        swaa(np.zeros((0, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="stride"):
        swaa(np.zeros((4, 8, 3), dtype=np.float32), stride=0)
    with pytest.raises(ValueError, match="stride"):
        swaa(torch.zeros(4, 8, 3), stride=9, backend="cpu")
    with pytest.raises(ValueError, match="backend"):
        swaa(np.zeros((4, 8, 3)), backend="gpu")
    for wrong in (np.int32, np.float16, np.dtype(">f4")):
        with pytest.raises(TypeError, match="float32 or float64"):
            swaa(np.zeros((4, 8, 3), dtype=wrong), backend="cpu")
    with pytest.raises(ValueError, match="CUDA tensor"):
        swaa(np.zeros((4, 8, 3), dtype=np.float32), backend="cuda")
    with pytest.raises(ValueError, match="differentiable"):
        swaa(torch.zeros(4, 8, 3, requires_grad=True), backend="cpu")


def test_raw_binding_refuses_what_it_cannot_read_safely():
    windows = np.zeros((4, 8, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        ext.swaa(windows[:, :, ::2])
    with pytest.raises(ValueError, match="aligned"):
        ext.swaa(np.frombuffer(bytes(4 * 8 * 3 * 4 + 1), dtype=np.float32, offset=1).reshape(4, 8, 3))
    with pytest.raises(TypeError, match="float32 or float64"):
        ext.swaa(windows.astype(np.int64))
    with pytest.raises(ValueError, match="shaped"):
        ext.swaa(windows[0])
    with pytest.raises(ValueError, match="stride"):
        ext.swaa(windows, 9)
    if ext.has_cuda:  # host or null pointers: an error, never a launch (no driver here: RuntimeError)
        with pytest.raises((RuntimeError, ValueError), match="swaa_cuda"):
            ext.swaa_cuda(windows.ctypes.data, windows.ctypes.data, "float32", 1, 4, 8, 6, 1, 0)
        with pytest.raises(TypeError, match="dtype"):
            ext.swaa_cuda(0, 0, "float16", 1, 4, 8, 6, 1, 0)


@pytest.mark.skipif(os.environ.get("SYNSP_CUDA") != "1", reason="only when SYNSP_CUDA=1 made CUDA a build requirement")
def test_cuda_kernel_compiled_when_required():
    assert ext.has_cuda


def final_frames(frames):
    return [(f.index, f.count, f.value) for f in frames]


def assert_same_frames(fast, reference):
    assert [(i, n) for i, n, _ in fast] == [(i, n) for i, n, _ in reference]
    for (_, _, fast_value), (_, _, reference_value) in zip(fast, reference):
        np.testing.assert_array_equal(fast_value, reference_value)


@pytest.mark.parametrize("seed", range(6))
def test_streaming_cpp_equals_reference_frame_by_frame(seed):
    rng = np.random.default_rng(seed)
    window, channels = int(rng.integers(1, 12)), int(rng.integers(1, 60))
    delay = int(rng.integers(0, window))
    fast, reference = StreamingSWAACpp(window, channels, delay), StreamingSWAAReference(window, channels, delay)
    assert StreamingSWAA is StreamingSWAACpp
    for step in range(150):
        action = rng.random()
        if action < 0.2:
            fast.emit_delay = reference.emit_delay = int(rng.integers(0, window))
        elif action < 0.23:
            assert_same_frames(final_frames(fast.flush()), final_frames(reference.flush()))
        elif action < 0.25:
            fast.reset()
            reference.reset()
        dtype = np.float32 if step % 2 else np.float64
        output = rng.normal(size=(window, channels)).astype(dtype)
        assert_same_frames(final_frames(fast.push(output)), final_frames(reference.push(output)))
    assert_same_frames(final_frames(fast.flush()), final_frames(reference.flush()))
    assert fast.emit_delay == reference.emit_delay and fast.window == window and fast.channels == channels


def test_streaming_cpp_equals_batched():
    windows = np.random.default_rng(3).normal(size=(40, 8, 51))
    stream = StreamingSWAACpp(8, 51)
    frames = [frame for output in windows for frame in stream.push(output)] + stream.flush()
    assert [f.index for f in frames] == list(range(47))
    assert [f.count for f in frames] == [1, 2, 3, 4, 5, 6, 7] + [8] * 33 + [7, 6, 5, 4, 3, 2, 1]
    np.testing.assert_allclose(np.stack([f.value for f in frames]), swaa(windows), rtol=1e-12, atol=1e-12)


def test_streaming_cpp_accepts_what_the_reference_accepts():
    stream, reference = StreamingSWAACpp(2, 3, emit_delay=1), StreamingSWAAReference(2, 3, emit_delay=1)
    for output in (torch.ones(2, 3), [[3, 3, 3], [5, 5, 5]], np.arange(6, dtype=np.int16).reshape(2, 3)):
        assert_same_frames(final_frames(stream.push(output)), final_frames(reference.push(output)))
    assert [(f.index, f.count, f.value.tolist()) for f in stream.flush()] == [(3, 1, [3.0, 4.0, 5.0])]
    with pytest.raises(ValueError, match="window output"):
        stream.push(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="emit_delay"):
        stream.emit_delay = 2
    with pytest.raises(ValueError, match="window and channels"):
        StreamingSWAACpp(0, 3)


def run_python(code):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120)


def test_without_the_extension_everything_falls_back_to_python_with_one_warning():
    result = run_python("""
        import sys, warnings
        import numpy as np
        sys.modules["synsp_core._swaa"] = None  # as if it was never built
        from synsp_core.swaa import StreamingSWAA, StreamingSWAAReference, swaa, swaa_reference
        windows = np.random.default_rng(0).normal(size=(5, 4, 3))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert np.array_equal(swaa(windows, 2), swaa_reference(windows, 2))
            swaa(windows)
        assert [str(w.message).count("not built") for w in caught] == [1], caught
        assert StreamingSWAA is StreamingSWAAReference
        try:
            swaa(windows, backend="cpu")
        except RuntimeError as error:
            assert "not built" in str(error)
        else:
            raise AssertionError("backend='cpu' without the extension must raise")
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_threads_work_in_a_forked_child():
    """GNU OpenMP hangs in a forked child whose parent used threads; the child must run on one."""
    result = run_python("""
        import os
        import numpy as np
        from synsp_core import _swaa
        windows = np.ones((1, 20000, 8, 51), dtype=np.float32)
        _swaa.swaa(windows, 1, 2)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if _swaa.swaa(windows, 1, 2).shape == (1, 20007, 51) else 1)
        print("ok" if os.waitpid(pid, 0)[1] == 0 else "child failed")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
