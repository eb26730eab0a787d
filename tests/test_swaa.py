"""Reference and streaming SWAA (synsp_core/swaa.py) against a naive per-frame average."""
import itertools

import numpy as np
import pytest
import torch

from synsp_core.swaa import StreamingSWAA, swaa_reference

# (N, W, stride): N = 1, N < W - 1, stride = W, stride 1, odd strides
SHAPES = [(1, 1, 1), (1, 8, 1), (1, 8, 8), (2, 8, 1), (3, 8, 1), (3, 8, 8), (5, 8, 3), (7, 4, 2),
          (10, 1, 1), (16, 8, 1), (16, 8, 5), (4, 16, 7), (33, 32, 1), (9, 5, 5)]


def naive_swaa(windows, stride):
    """Frame by frame: mean of window k's frame t - k * stride over every window k covering t."""
    num_windows, window, channels = windows.shape
    num_frames = (num_windows - 1) * stride + window
    out = np.zeros((num_frames, channels))
    for t in range(num_frames):
        covering = [windows[k, t - k * stride] for k in range(num_windows) if 0 <= t - k * stride < window]
        out[t] = np.mean(covering, axis=0)
    return out


@pytest.mark.parametrize("num_windows, window, stride", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_matches_naive_numpy(num_windows, window, stride, dtype):
    windows = np.random.default_rng(num_windows * 100 + window).normal(size=(num_windows, window, 5)).astype(dtype)
    merged = swaa_reference(windows, stride)
    assert isinstance(merged, np.ndarray) and merged.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(merged, naive_swaa(windows.astype(np.float64), stride), rtol=tol, atol=tol)


@pytest.mark.parametrize("num_windows, window, stride", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reference_matches_naive_torch(num_windows, window, stride, dtype):
    windows = torch.randn(num_windows, window, 4, dtype=dtype, generator=torch.Generator().manual_seed(window))
    merged = swaa_reference(windows, stride)
    assert isinstance(merged, torch.Tensor) and merged.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(merged.numpy(), naive_swaa(windows.double().numpy(), stride), rtol=tol, atol=tol)


@pytest.mark.parametrize("as_torch", [False, True])
def test_reference_leading_batch_dims(as_torch):
    windows = np.random.default_rng(0).normal(size=(2, 3, 6, 8, 5))  # (B, V, N, W, C)
    merged = swaa_reference(torch.from_numpy(windows) if as_torch else windows, 3)
    merged = np.asarray(merged)
    assert merged.shape == (2, 3, 5 * 3 + 8, 5)
    for b, v in itertools.product(range(2), range(3)):
        np.testing.assert_allclose(merged[b, v], naive_swaa(windows[b, v], 3), rtol=1e-12, atol=1e-12)


def push_all(stream, windows, delays=None):
    """Push every window (with an optional emit_delay before each push), then flush.

    Returns the popped frames and, for each, the windows pushed by the time it was popped.
    """
    popped = []
    for k, window_output in enumerate(windows):
        if delays is not None:
            stream.emit_delay = delays[k]
        popped += [(frame, k + 1) for frame in stream.push(window_output)]
    popped += [(frame, len(windows)) for frame in stream.flush()]
    return popped


@pytest.mark.parametrize("num_windows, window", [(1, 1), (1, 6), (3, 6), (5, 5), (20, 1), (20, 8), (40, 16)])
def test_streaming_equals_batched(num_windows, window):
    windows = np.random.default_rng(window).normal(size=(num_windows, window, 7))
    popped = push_all(StreamingSWAA(window, 7), windows)
    assert [frame.index for frame, _ in popped] == list(range(num_windows + window - 1))
    np.testing.assert_allclose(np.stack([frame.value for frame, _ in popped]), swaa_reference(windows, 1),
                               rtol=1e-12, atol=1e-12)


def mean_of_pushed_windows(windows, frame, pushed):
    """Mean of frame `frame` over windows 0 .. pushed - 1 that cover it (window k covers k .. k + W - 1)."""
    window = windows.shape[1]
    covering = [windows[k, frame - k] for k in range(pushed) if 0 <= frame - k < window]
    return np.mean(covering, axis=0), len(covering)


@pytest.mark.parametrize("window", [2, 5, 8])
def test_emit_delay_averages_latest_windows(window):
    windows = np.random.default_rng(window).normal(size=(25, window, 3))
    for delay in range(window - 1):
        stream = StreamingSWAA(window, 3, emit_delay=delay)
        for k, window_output in enumerate(windows):
            ready = stream.push(window_output)
            newest_ready = k + window - 1 - delay  # the first push releases frames 0 .. W - 1 - delay
            assert [f.index for f in ready] == list(range(newest_ready if k else 0, newest_ready + 1))
            for frame in ready:
                expected, count = mean_of_pushed_windows(windows, frame.index, k + 1)
                assert frame.count == count == min(delay + 1, k + 1)
                np.testing.assert_allclose(frame.value, expected, rtol=1e-12, atol=1e-12)
        assert [f.index for f in stream.flush()] == list(range(25 + window - 1 - delay, 25 + window - 1))


@pytest.mark.parametrize("seed", range(5))
def test_changing_emit_delay_loses_and_duplicates_nothing(seed):
    rng = np.random.default_rng(seed)
    window, num_windows = 8, 60
    windows = rng.normal(size=(num_windows, window, 2))
    delays = rng.integers(0, window, size=num_windows)
    popped = push_all(StreamingSWAA(window, 2), windows, delays)
    assert [frame.index for frame, _ in popped] == list(range(num_windows + window - 1))
    for frame, pushed in popped:
        expected, count = mean_of_pushed_windows(windows, frame.index, pushed)
        assert frame.count == count
        np.testing.assert_allclose(frame.value, expected, rtol=1e-12, atol=1e-12)


def test_reset_starts_a_new_stream():
    windows = np.random.default_rng(1).normal(size=(6, 4, 3))
    stream = StreamingSWAA(4, 3)
    push_all(stream, windows[::-1])
    stream.reset()
    popped = push_all(stream, windows)
    np.testing.assert_allclose(np.stack([f.value for f, _ in popped]), swaa_reference(windows, 1), atol=1e-12)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="shaped"):
        swaa_reference(np.zeros((8, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        swaa_reference(np.zeros((0, 8, 3)))
    with pytest.raises(ValueError, match="stride"):
        swaa_reference(np.zeros((4, 8, 3)), stride=0)
    with pytest.raises(ValueError, match="stride"):
        swaa_reference(torch.zeros(4, 8, 3), stride=9)
    with pytest.raises(ValueError, match="window and channels"):
        StreamingSWAA(0, 3)
    with pytest.raises(ValueError, match="window and channels"):
        StreamingSWAA(8, 0)
    with pytest.raises(ValueError, match="emit_delay"):
        StreamingSWAA(8, 3, emit_delay=8)
    with pytest.raises(ValueError, match="emit_delay"):
        StreamingSWAA(8, 3, emit_delay=-1)
    stream = StreamingSWAA(8, 3)
    with pytest.raises(ValueError, match="emit_delay"):
        stream.emit_delay = 8
    with pytest.raises(ValueError, match="window output"):
        stream.push(np.zeros((8, 4)))
    with pytest.raises(ValueError, match="window output"):
        stream.push(np.zeros((7, 3)))
