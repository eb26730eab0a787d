"""Classical smoothers (synsp_core/filters.py): they smooth, keep shapes, and respect time and fps."""
import math

import numpy as np
import pytest

from synsp_core import filters
from synsp_core.metrics import accel_error

FPS = 60.0
DEFAULT_PARAMS = {
    "one_euro": {"fps": FPS, "min_cutoff": 1.0, "beta": 0.01},
    "savgol": {"window": 9, "polyorder": 2},
    "gaussian": {"sigma": 2.0},
    "moving_average": {"window": 5},
}


def sine_poses(num_frames, fps, seed=0, noise_mm=0.0):
    """(T, 6, 3) joints on ~1 Hz sines of 100 mm, plus Gaussian noise; the same motion at any fps."""
    rng = np.random.default_rng(seed)
    time_s = np.arange(num_frames) / fps
    freq_hz = rng.uniform(0.5, 1.5, size=(1, 6, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 6, 3))
    clean = 100.0 * np.sin(2 * np.pi * freq_hz * time_s[:, None, None] + phase)
    return clean + noise_mm * rng.normal(size=clean.shape), clean


@pytest.mark.parametrize("name", sorted(filters.FILTERS))
def test_filter_reduces_accel_error(name):
    noisy, clean = sine_poses(240, FPS, noise_mm=5.0)
    smoothed = filters.make_filter(name, **DEFAULT_PARAMS[name])(noisy)
    assert accel_error(smoothed, clean) < 0.5 * accel_error(noisy, clean)


@pytest.mark.parametrize("name", sorted(filters.FILTERS))
@pytest.mark.parametrize("num_frames", [1, 2, 3, 4, 7, 50])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_and_short_sequences(name, num_frames, dtype):
    noisy, _ = sine_poses(num_frames, FPS, noise_mm=5.0)
    smoothed = filters.make_filter(name, **DEFAULT_PARAMS[name])(noisy.astype(dtype))
    assert smoothed.shape == noisy.shape and smoothed.dtype == dtype
    assert np.isfinite(smoothed).all()
    if num_frames == 1:  # nothing to smooth against
        np.testing.assert_allclose(smoothed, noisy, rtol=1e-6)


def test_latency_frames():
    assert filters.make_filter("one_euro", fps=30).latency_frames == 0
    assert filters.make_filter("savgol", window=31).latency_frames == 15
    assert filters.make_filter("moving_average", window=7).latency_frames == 3
    assert filters.make_filter("gaussian", sigma=2.0).latency_frames == 8  # truncate 4 sigmas


def test_one_euro_is_causal():
    noisy, _ = sine_poses(100, FPS, noise_mm=5.0)
    one_euro = filters.make_filter("one_euro", **DEFAULT_PARAMS["one_euro"])
    perturbed = noisy.copy()
    perturbed[41:] += np.random.default_rng(1).normal(size=perturbed[41:].shape) * 50
    before, after = one_euro(noisy), one_euro(perturbed)
    np.testing.assert_array_equal(before[:41], after[:41])
    assert not np.allclose(before[41:], after[41:])


@pytest.mark.parametrize("beta, tolerance", [(0.0, 0.05), (0.01, 0.3)])
def test_one_euro_uses_fps(beta, tolerance):
    """The same motion sampled at 2x fps (2x frames) is smoothed about the same way in seconds.

    With beta = 0 only the discretisation of the low-pass differs (~2% of the lag); with beta > 0
    the adaptive cutoff reaches ~10 Hz, where the original filter's first-order smoothing factor
    drifts more with fps (~25%). Ignoring fps would put the outputs ~45% of the lag apart.
    """
    params = {"min_cutoff": 1.0, "beta": beta}
    slow_clean = sine_poses(120, 60.0)[0]
    fast_clean = sine_poses(240, 120.0)[0]
    slow = filters.OneEuroFilter(fps=60.0, **params)(slow_clean)
    fast = filters.OneEuroFilter(fps=120.0, **params)(fast_clean)[::2]
    fast_wrong_fps = filters.OneEuroFilter(fps=60.0, **params)(fast_clean)[::2]
    lag_mm = np.abs(slow - slow_clean)[10:].mean()
    assert lag_mm > 1.0  # the filter does smooth (and lag) this motion
    assert np.abs(fast - slow)[10:].mean() < tolerance * lag_mm
    assert np.abs(fast_wrong_fps - slow)[10:].mean() > 0.35 * lag_mm  # fps ignored would be caught


def test_one_euro_hand_values_and_beta():
    # beta = 0: exponential smoothing with a = 1 / (1 + fps / (2 pi min_cutoff)); frame 0 passes through
    step = np.zeros((4, 1, 1))
    step[1:] = 1.0
    out = filters.OneEuroFilter(fps=10.0, min_cutoff=1.0, beta=0.0)(step)[:, 0, 0]
    a = 1.0 / (1.0 + 10.0 / (2 * math.pi))
    np.testing.assert_allclose(out, [0.0, a, a + (1 - a) * a, 1 - (1 - a) ** 3])
    # beta > 0, first step: dx = 1 unit * 10 fps, smoothed at d_cutoff = 2 Hz, raises the cutoff
    out = filters.OneEuroFilter(fps=10.0, min_cutoff=1.0, beta=0.5, d_cutoff=2.0)(step)[1, 0, 0]
    cutoff_hz = 1.0 + 0.5 * 10.0 / (1.0 + 10.0 / (2 * math.pi * 2.0))
    assert out == pytest.approx(1.0 / (1.0 + 10.0 / (2 * math.pi * cutoff_hz)))
    # beta > 0 raises the cutoff on fast motion: less lag on a ramp
    ramp = np.linspace(0.0, 1000.0, 60)[:, None, None]
    lag_fixed = np.abs(filters.OneEuroFilter(fps=60.0, beta=0.0)(ramp) - ramp)[-1, 0, 0]
    lag_adaptive = np.abs(filters.OneEuroFilter(fps=60.0, beta=0.05)(ramp) - ramp)[-1, 0, 0]
    assert lag_adaptive < 0.5 * lag_fixed


def test_moving_average_edges_and_centre():
    poses = np.array([0.0, 1.0, 2.0, 10.0])[:, None, None]
    out = filters.MovingAverageFilter(window=3)(poses)[:, 0, 0]
    np.testing.assert_allclose(out, [0.5, 1.0, 13.0 / 3.0, 6.0])


def test_savgol_window_shrinks_on_short_sequences():
    noisy, _ = sine_poses(5, FPS, noise_mm=5.0)
    from scipy.signal import savgol_filter
    expected = savgol_filter(noisy, 5, 2, axis=0, mode="interp")
    np.testing.assert_allclose(filters.SavGolFilter(window=9, polyorder=2)(noisy), expected)
    # 2 frames: window 1, polyorder 0 -> the input comes back
    np.testing.assert_allclose(filters.SavGolFilter(window=9, polyorder=2)(noisy[:2]), noisy[:2])
    # a window as long as the sequence keeps the filter a real smoother
    assert not np.allclose(filters.SavGolFilter(window=5, polyorder=2)(noisy), noisy)


def test_gaussian_matches_scipy_nearest():
    noisy, _ = sine_poses(30, FPS, noise_mm=5.0)
    from scipy.ndimage import gaussian_filter1d
    np.testing.assert_allclose(filters.GaussianFilter(sigma=1.5)(noisy),
                               gaussian_filter1d(noisy, 1.5, axis=0, mode="nearest"))


def test_bad_input_raises():
    with pytest.raises(ValueError, match="unknown filter"):
        filters.make_filter("kalman")
    with pytest.raises(ValueError, match="bad parameters"):
        filters.make_filter("one_euro")  # fps is required
    with pytest.raises(ValueError, match="bad parameters"):
        filters.make_filter("savgol", sigma=2.0)
    with pytest.raises(ValueError, match="odd"):
        filters.make_filter("savgol", window=8)
    with pytest.raises(ValueError, match="polyorder"):
        filters.make_filter("savgol", window=5, polyorder=5)
    with pytest.raises(ValueError, match="odd"):
        filters.make_filter("moving_average", window=0)
    with pytest.raises(ValueError, match="sigma"):
        filters.make_filter("gaussian", sigma=0.0)
    with pytest.raises(ValueError, match="fps"):
        filters.make_filter("one_euro", fps=-30.0)
    smoother = filters.make_filter("gaussian")
    with pytest.raises(ValueError, match=r"\(T, J, D\)"):
        smoother(np.zeros((10, 51)))
    with pytest.raises(ValueError, match="at least one frame"):
        smoother(np.zeros((0, 17, 3)))
    with pytest.raises(ValueError, match="NaN"):
        smoother(np.full((5, 17, 3), np.nan))
