"""Loading a checkpoint refuses weights that would silently break every output: not floating point,
not finite, or a file that is no safetensors; each with a one-line error naming file and tensor."""
import pytest
import torch
from safetensors.torch import load_file, save_file

from synsp_core.checkpoint import load_checkpoint, save_checkpoint
from synsp_core.model import SynSP, SynSPConfig

TINY = SynSPConfig(d_model=16, n_heads=2, head_dim=8, d_ffn=16, n_local_layers=1, n_global_layers=1,
                   n_base_shared_layers=1, n_refine_layers=1)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "tiny.safetensors", SynSP(TINY))


def tamper(path, change):
    """Rewrite the checkpoint's weights with change(state) applied; returns the name it changed."""
    state = load_file(str(path))
    name = sorted(state)[0]
    state[name] = change(state[name])
    save_file(state, str(path))
    return name


def test_good_checkpoint_loads(checkpoint):
    assert load_checkpoint(checkpoint).cfg == TINY


@pytest.mark.parametrize("change, message", [
    (lambda w: w.to(torch.int32), "torch.int32, not floating point"),
    (lambda w: torch.full_like(w, float("nan")), "NaN or inf"),
    (lambda w: torch.full_like(w, float("inf")), "NaN or inf"),
    (lambda w: torch.full_like(w, 1e300, dtype=torch.float64), "NaN or inf"),   # inf in float32
])
def test_bad_weights_are_refused(checkpoint, change, message):
    name = tamper(checkpoint, change)
    with pytest.raises(ValueError, match=message) as err:
        load_checkpoint(checkpoint)
    assert str(checkpoint) in str(err.value) and repr(name) in str(err.value)


def test_unreadable_file_is_a_value_error(checkpoint):
    checkpoint.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_checkpoint(checkpoint)


def test_weights_of_another_shape_are_a_value_error(checkpoint):
    tamper(checkpoint, lambda w: torch.zeros(*w.shape[:-1], w.shape[-1] + 1))
    with pytest.raises(ValueError, match="do not match the config"):
        load_checkpoint(checkpoint)
