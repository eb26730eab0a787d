"""Eq. 4 losses against hand-computed values."""
import torch

from synsp_core.losses import BRANCH_LAMBDAS, acceleration, sequence_loss, synsp_loss
from synsp_core.model import SynSPOutput


def test_acceleration_is_second_difference_along_frames():
    p = torch.tensor([0.0, 1.0, 4.0, 9.0]).view(1, 1, 4, 1)     # t^2: acceleration 2
    torch.testing.assert_close(acceleration(p), torch.full((1, 1, 2, 1), 2.0))


def test_sequence_loss_by_hand():
    target = torch.zeros(1, 1, 4, 1)
    pred = torch.tensor([0.0, 1.0, 0.0, 0.0]).view(1, 1, 4, 1)
    # position: mean |.| = 1/4; acceleration of pred: (0-2+0, 1-0+0... ) = [-2, 1] -> mean |.| = 1.5
    torch.testing.assert_close(sequence_loss(pred, target, 0.0), torch.tensor(0.25))
    torch.testing.assert_close(sequence_loss(pred, target, 0.5), torch.tensor(0.25 + 0.75))


def test_acceleration_is_taken_along_frames_not_views():
    """Views moving apart by a constant offset have zero frame acceleration."""
    target = torch.zeros(1, 3, 5, 2)
    pred = torch.arange(3.0).view(1, 3, 1, 1).expand(1, 3, 5, 2) * 10   # view v offset 10 v
    loss0 = sequence_loss(pred, target, 0.0)
    torch.testing.assert_close(sequence_loss(pred, target, 1.0), loss0)


def test_view_mask_excludes_views():
    target = torch.zeros(1, 2, 4, 1)
    pred = torch.stack([torch.zeros(4, 1), torch.ones(4, 1)])[None]
    mask = torch.tensor([[True, False]])
    assert float(sequence_loss(pred, target, 1.0, mask)) == 0.0
    assert float(sequence_loss(pred, target, 1.0)) == 0.5


def test_synsp_loss_uses_branch_lambdas():
    assert BRANCH_LAMBDAS == {"position": 0.0, "acceleration": 1.0, "refined": 0.5}
    target = torch.zeros(1, 1, 4, 1)
    wiggle = torch.tensor([0.0, 1.0, 0.0, 0.0]).view(1, 1, 4, 1)   # pos 0.25, acc 1.5
    out = SynSPOutput(wiggle, wiggle, wiggle, torch.ones(1, 1, 4))
    total, parts = synsp_loss(out, target)
    assert parts == {"position": 0.25, "acceleration": 1.75, "refined": 1.0}
    torch.testing.assert_close(total, torch.tensor(3.0))
