"""SynSP model: shapes, view masking, detached refinement inputs, PSE/PQE by hand, learning."""
import math

import pytest
import torch

from synsp_core.model import (PoseMixingHead, SynSP, SynSPConfig, body_frame_rotation, pose_quality_encoding,
                              pose_similarity_encoding, pqe_matrix)
from synsp_core.losses import synsp_loss

TINY = dict(d_model=32, n_heads=2, head_dim=16, d_ffn=32, n_local_layers=1, n_global_layers=1,
            n_base_shared_layers=1, n_refine_layers=1, dropout=0.0, attn_dropout=0.0)


def tiny_model(seed=0, **overrides) -> SynSP:
    torch.manual_seed(seed)
    model = SynSP(SynSPConfig(**{**TINY, **overrides}))
    # Corrections start at zero; give them weights so outputs depend on everything.
    for head in (model.pos_head, model.acc_head, getattr(model, "refine_head", None)):
        if head is not None:
            torch.nn.init.normal_(head.correction.weight, std=0.2)
    return model.eval()


@pytest.mark.parametrize("views", [1, 2, 4])
@pytest.mark.parametrize("dims", [2, 3])
def test_output_shapes(views, dims):
    model = tiny_model(dims=dims)
    x = torch.randn(3, views, 8, 17 * dims) * 100
    out = model(x)
    for tensor in out[:3]:
        assert tensor.shape == x.shape
        assert torch.isfinite(tensor).all()
    assert out.quality.shape == (3, views, 8)


def test_fresh_model_is_close_to_identity():
    """Untrained heads put most weight on the token itself and add no correction."""
    model = SynSP(SynSPConfig(**TINY)).eval()
    x = torch.randn(2, 2, 8, 51) * 300 + 1000
    err = (model(x).refined - x).abs().mean()
    spread = (x - x.mean(dim=(1, 2), keepdim=True)).abs().mean()
    assert err < 0.3 * spread


def test_mixing_head_is_a_convex_mix_of_the_input():
    cfg = SynSPConfig(**TINY)
    head = PoseMixingHead(cfg)
    h, tokens = torch.randn(2, 3, 8, 32), torch.randn(2, 24, 32)
    x = torch.randn(2, 3, 8, 51)
    mask = torch.ones(2, 24, dtype=torch.bool)
    full = torch.zeros(2, 24, 17)   # log confidence 0: every joint observed
    y = head(h, tokens, x, mask, full).unflatten(-1, (17, 3))
    lo = x.unflatten(-1, (17, 3)).amin(dim=(1, 2), keepdim=True)
    hi = x.unflatten(-1, (17, 3)).amax(dim=(1, 2), keepdim=True)
    assert (y >= lo - 1e-5).all() and (y <= hi + 1e-5).all()
    # a joint seen only in token 5 (the others at log(1e-4)) comes out as token 5's position
    seen_once = full.clone()
    seen_once[:, [k for k in range(24) if k != 5], 2] = math.log(1e-4) - 30
    y = head(h, tokens, x, mask, seen_once).unflatten(-1, (17, 3))
    torch.testing.assert_close(y[:, :, :, 2], x.unflatten(-1, (17, 3))[:, 0, 5, 2][:, None, None].expand(2, 3, 8, 3))
    with torch.no_grad():
        head.self_bias.fill_(1e4)
    torch.testing.assert_close(head(h, tokens, x, mask, full), x)


def test_translation_equivariance():
    model = tiny_model()
    x = torch.randn(2, 3, 8, 51) * 100
    shift = torch.tensor([500.0, -2000.0, 300.0]).repeat(17)
    torch.testing.assert_close(model(x + shift).refined, model(x).refined + shift, rtol=0, atol=1e-2)


def test_trajectory_centre_follows_a_walking_person_and_ignores_noise():
    """With trajectory_centre, a person moving at a constant velocity (walking through the room)
    gives the output moved the same way, even with missing joints; without it, it does not. A
    person on the spot with noisy joints gets (nearly) no velocity: a slope fitted to noise is
    shrunk away."""
    pose = standing_poses(1, 1, seed=1)[0, 0, 0]                     # one pose, held, the limbs moving:
    x = pose + torch.zeros(2, 3, 8, 51)
    x[..., 3 * 13:] += 20 * torch.randn(2, 3, 8, 12, generator=torch.Generator().manual_seed(2))
    drift = (torch.arange(8.0)[:, None] * torch.tensor([40.0, -25.0, 3.0])).repeat(1, 17)   # mm per frame
    confidence = torch.ones(2, 3, 8, 17)
    confidence[0, 1, 2:5, 0] = 0.0                                   # the root missing for a while
    confidence[1, :, :, 5] = 0.0                                     # a joint missing everywhere
    moving = tiny_model(trajectory_centre=True)
    torch.testing.assert_close(moving(x + drift, confidence=confidence).refined,
                               moving(x, confidence=confidence).refined + drift, rtol=0, atol=0.5)
    still = tiny_model(trajectory_centre=False)
    assert not torch.allclose(still(x + drift).refined, still(x).refined + drift, atol=5.0)
    noisy = pose + 60 * torch.randn(200, 3, 8, 51, generator=torch.Generator().manual_seed(3))   # on the spot
    centre = moving.window_centre(noisy, torch.ones(200, 3, 8, 17))  # (B, 1, T, 1, 3)
    root = noisy[..., :3].mean(dim=1)                                # (B, T, 3): the root, mean of views
    t = torch.arange(8.0)[None, :, None] - 3.5
    fitted_slope = (t * (root - root.mean(dim=1, keepdim=True))).sum(dim=1) / (t ** 2).sum(dim=1)
    shrunk_slope = centre[:, 0, 1, 0] - centre[:, 0, 0, 0]
    assert shrunk_slope.norm(dim=-1).mean() < 0.3 * fitted_slope.norm(dim=-1).mean()


def random_rotation(seed: int) -> torch.Tensor:
    """A uniformly random 3D rotation (det +1), float32."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return (q if torch.det(q) > 0 else -q).float()


def standing_poses(batch: int, views: int, seed: int = 0) -> torch.Tensor:
    """(B, V, 8, 51) noisy poses of a person standing in the H36M-17 layout, z up, mm."""
    from synsp_core.skeletons import H36M17
    g = torch.Generator().manual_seed(seed)
    rest = torch.zeros(17, 3)
    rest[[1, 4], 0] = torch.tensor([-130.0, 130.0])                    # hips at -x (right), +x (left)
    rest[[2, 5], 2], rest[[3, 6], 2] = -450.0, -900.0                  # knees, ankles below the hips
    rest[[2, 5, 3, 6], 0] = torch.tensor([-130.0, 130.0, -130.0, 130.0])
    rest[7:11, 2] = torch.tensor([250.0, 500.0, 600.0, 700.0])         # spine .. head
    rest[[11, 12, 13], 0], rest[[14, 15, 16], 0] = 180.0, -180.0       # left / right arm
    rest[[11, 14], 2] = 480.0
    rest[[12, 15], 2], rest[[13, 16], 2] = 200.0, -50.0
    assert len(H36M17.joint_names) == len(rest)
    return (rest + 30 * torch.randn(batch, views, 8, 17, 3, generator=g)).flatten(-2)


def test_body_frame_rotation_is_a_rotation_onto_the_hips_and_torso():
    cfg = SynSPConfig(**TINY, body_frame=True)
    turn = random_rotation(0)
    x = (standing_poses(4, 2).unflatten(-1, (17, 3)) @ turn.T).flatten(-2)
    mask = torch.ones(4, 2, 8, 17)   # every joint observed
    rotation = body_frame_rotation(x, mask, cfg)
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.det(rotation), torch.ones(4))
    # the standing person was made with hips along +x and the torso up +z: R undoes `turn`, up to the noise
    assert ((rotation @ turn - torch.eye(3)).abs() < 0.1).all()
    # a degenerate window (every joint in one place) keeps the identity, without NaN
    torch.testing.assert_close(body_frame_rotation(torch.zeros(1, 1, 8, 51), mask[:1, :1], cfg), torch.eye(3)[None])


def test_body_frame_model_is_rotation_equivariant():
    """With body_frame, any rotation of the input (not only about the vertical) rotates the output."""
    x = standing_poses(2, 3, seed=1)
    for body_frame in (True, False):
        model = tiny_model(body_frame=body_frame)
        turn = random_rotation(1)
        turned = model((x.unflatten(-1, (17, 3)) @ turn.T).flatten(-2)).refined
        expected = (model(x).refined.unflatten(-1, (17, 3)) @ turn.T).flatten(-2)
        error = (turned - expected).abs().max()
        if body_frame:
            assert error < 0.05, error
        else:   # control: without the body frame the model does depend on the data's axes
            assert error > 1.0, error


def test_body_frame_is_3d_only():
    with pytest.raises(ValueError, match="3D"):
        SynSPConfig(**TINY, dims=2, body_frame=True)


@pytest.mark.parametrize("body_frame", [False, True])
def test_masked_view_does_not_change_other_views(body_frame):
    model = tiny_model(body_frame=body_frame)
    x = torch.randn(2, 4, 8, 51) * 100
    mask = torch.tensor([[True, False, True, True], [True, True, True, False]])
    out = model(x, mask)
    y = x.clone()
    y[0, 1] = torch.randn(8, 51) * 1e4       # garbage in the masked views
    y[1, 3] = float("nan")
    out_y = model(y, mask)
    for a, b in zip(out[:3], out_y[:3]):
        torch.testing.assert_close(a[mask], b[mask], rtol=0, atol=0)
    # a masked view's output is its input, its quality 0
    torch.testing.assert_close(out_y.refined[0, 1], y[0, 1])
    assert out_y.quality[0, 1].abs().max() == 0
    # and masking equals leaving the view out (the model is view-permutation equivariant)
    without = model(x[:1, [0, 2, 3]])
    torch.testing.assert_close(out.refined[0, [0, 2, 3]], without.refined[0], rtol=1e-4, atol=1e-3)


def test_unmasked_views_do_interact():
    """Control for the masking test: changing a LIVE view does change the others."""
    model = tiny_model()
    x = torch.randn(1, 3, 8, 51) * 100
    y = x.clone()
    y[0, 1] += 50.0
    assert (model(x).refined[0, 0] - model(y).refined[0, 0]).abs().max() > 1e-3


def test_refinement_stage_gets_no_gradient_through_branches():
    model = tiny_model().train()
    x = torch.randn(2, 2, 8, 51) * 100
    model(x).refined.sum().backward()
    branch_params = [*model.base_pos_layer.parameters(), *model.acc_head.parameters(),
                     *model.pos_head.parameters(), *model.base_acc_layer.parameters()]
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in branch_params)
    assert model.refine_head.correction.weight.grad.abs().max() > 0
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in model.base_shared.parameters())


def test_pse_by_hand():
    cfg = SynSPConfig(num_joints=2, dims=1, root_joints=(0,))
    # (B=1, V=2, T=1, J*D=2): view 0 root 0, joint 1; view 1 root 1, joint 3 -> rel 1 and 2
    poses = torch.tensor([[[[0.0, 1.0]], [[1.0, 3.0]]]])
    pse = pose_similarity_encoding(poses, cfg, torch.ones(1, 2, 1, 2))
    assert pse.shape == (1, 2, 2, 1)
    expected_off = math.exp(-((1.0 - 2.0) ** 2))      # root terms are 0 - 0
    torch.testing.assert_close(pse[0, :, :, 0], torch.tensor([[1.0, expected_off], [expected_off, 1.0]]))
    # joint 1 unseen by view 1: nothing left to compare, the views count as alike
    pse = pose_similarity_encoding(poses, cfg, torch.tensor([[[[1.0, 1.0]], [[1.0, 0.0]]]]))
    torch.testing.assert_close(pse[0, :, :, 0], torch.ones(2, 2))


def test_pqe_by_hand():
    cfg = SynSPConfig(num_joints=3, dims=1, pqe_sigma=1e-6)
    p_pos = torch.zeros(1, 1, 1, 3)
    p_acc = torch.tensor([[[[0.0, 1.0, 2.0]]]])       # distances 0, 1, 2; max 2
    q = pose_quality_encoding(p_acc, p_pos, cfg)
    expected = (1 + math.exp(-1 / (2 + 1e-6)) + math.exp(-2 / (2 + 1e-6))) / 3
    torch.testing.assert_close(q, torch.tensor([[[expected]]]))
    full = pqe_matrix(torch.tensor([[[0.5, 0.7], [0.9, 0.3]]]))   # (B=1, V=2, T=2)
    assert full.shape == (1, 2, 2, 2)
    torch.testing.assert_close(full[0, 0, 0], torch.tensor([0.5, 0.7]))
    assert full[0, 0, 1].abs().max() == 0 and full[0, 1, 0].abs().max() == 0


def test_ablation_switches_change_the_model():
    x = torch.randn(2, 2, 8, 51) * 100
    base = tiny_model()
    no_rs = tiny_model(use_refinement=False)
    assert not hasattr(no_rs, "refine_decoder")
    out = no_rs(x)
    torch.testing.assert_close(out.refined, (out.position + out.acceleration) / 2, rtol=0, atol=1e-3)
    no_pqe = tiny_model(use_pqe=False)
    no_pqe.load_state_dict(base.state_dict())
    assert (base(x).refined - no_pqe(x).refined).abs().max() > 1e-4


def test_config_round_trip():
    cfg = SynSPConfig(root_joints=(11, 12), use_pse2=False)
    assert SynSPConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        SynSPConfig.from_dict({"bogus": 1})


def test_training_steps_reduce_loss():
    """A few hundred steps on a tiny synthetic set: smooth motions plus noise."""
    torch.manual_seed(0)
    model = SynSP(SynSPConfig(**TINY))
    t = torch.linspace(0, 1, 8)
    freq = torch.rand(64, 1, 1, 51) * 3
    phase = torch.rand(64, 1, 1, 51) * 6
    gt = 200 * torch.sin(2 * math.pi * freq * t[None, None, :, None] + phase)   # (64, 1, 8, 51) mm
    noisy = gt + 20 * torch.randn_like(gt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_now():
        out = model(noisy)
        return synsp_loss(type(out)(*(o / 1000 for o in out[:3]), out.quality), gt / 1000)[0]
    first = float(loss_now())
    for _ in range(200):
        loss = loss_now()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert float(loss_now()) < 0.7 * first


def test_missing_joints_and_confidence():
    """NaN joints and confidence 0 are missing: outputs stay finite, a joint missing in every view
    is still predicted, and what a missing joint's coordinates hold does not matter."""
    torch.manual_seed(0)
    model = tiny_model(body_frame=True, confidence_input=True)
    x = standing_poses(2, 3, seed=2)
    conf = torch.rand(2, 3, 8, 17) * 0.9 + 0.1
    holes = x.clone().unflatten(-1, (17, 3))
    holes[0, :, :, 13] = float("nan")          # left wrist missing in every view and frame
    holes[1, 1, 2:5, :4] = float("nan")        # a few joints of one view for 3 frames
    out = model(holes.flatten(-2), confidence=conf)
    assert all(torch.isfinite(o).all() for o in out)
    garbage = holes.nan_to_num(12345.0)       # the same joints given as junk with confidence 0
    zero = conf * torch.isfinite(holes).all(dim=-1)
    torch.testing.assert_close(model(garbage.flatten(-2), confidence=zero).refined, out.refined)
    # confidence matters: the same poses weighted otherwise give other outputs
    assert (model(x, confidence=conf).refined - model(x).refined).abs().max() > 1e-3
