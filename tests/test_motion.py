"""Frame-rate conversion: lengths, exactness on linear motion, round trip, anti-aliasing."""
import numpy as np
import pytest

from synsp_core.motion import resample, to_root_relative
from synsp_core.skeletons import H36M17


def sine(freq_hz: float, fps: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * fps)) / fps
    return np.sin(2 * np.pi * freq_hz * t)[:, None, None] * np.ones((1, 17, 3))


def test_output_length_and_first_frame():
    seq = np.random.default_rng(0).standard_normal((121, 17, 3)).astype(np.float32)
    out = resample(seq, 120.0, 30.0)
    assert out.shape == (31, 17, 3) and out.dtype == np.float32
    assert resample(seq, 120.0, 50.0).shape[0] == 51          # floor(120 * 50 / 120) + 1
    assert resample(seq, 120.0, 240.0).shape[0] == 241
    assert np.array_equal(resample(seq, 120.0, 120.0), seq)


def test_upsampling_is_exact_on_linear_motion():
    t = np.arange(50, dtype=np.float64)
    seq = (3.0 * t - 7.0)[:, None, None] * np.ones((1, 17, 3))
    out = resample(seq, 25.0, 60.0)
    expected = (3.0 * (np.arange(len(out)) * 25.0 / 60.0) - 7.0)[:, None, None]
    assert np.allclose(out, expected)


def test_round_trip_keeps_human_speed_motion():
    seq = 100.0 * sine(1.5, 120.0, 4.0)
    back = resample(resample(seq, 120.0, 40.0), 40.0, 120.0)
    inner = slice(12, len(back) - 12)                           # away from the ends
    assert np.abs(back[inner] - seq[:len(back)][inner]).max() < 3.0   # mm, on a 100 mm amplitude


def test_downsampling_suppresses_motion_above_the_new_nyquist_rate():
    fast = 100.0 * sine(50.0, 120.0, 4.0)                       # 50 Hz: would alias to 10 Hz at 30 fps
    out = resample(fast, 120.0, 30.0)
    assert np.abs(out[8:-8]).max() < 1.0
    naive = fast[::4]
    assert np.abs(naive).max() > 50.0                           # what plain decimation would keep


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="frame rates"):
        resample(np.zeros((5, 17, 3)), 0.0, 30.0)
    with pytest.raises(ValueError, match="at least one frame"):
        resample(np.zeros((0, 17, 3)), 60.0, 30.0)


def test_root_relative_puts_the_pelvis_at_the_origin():
    poses = np.random.default_rng(0).standard_normal((4, 17, 3))
    rel = to_root_relative(poses, H36M17)
    assert np.allclose(rel[:, 0], 0.0)
    assert np.allclose(rel[:, 5] - rel[:, 3], poses[:, 5] - poses[:, 3])
