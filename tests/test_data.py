"""Training data: loaders, augmentation, and the window sampler (errors drawn once per frame)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from synsp_core.errors import GaussianNoise, NoErrors, RealisticErrors
from synsp_core.skeletons import H36M17, LSP14
from synsp_training.data import (Augmentation, Sequence, WindowSampler, bone_classes, load_cmu, load_cmu_more,
                                 load_npz_arrays, load_smoothnet, make_test_case, mirror, rotate_about_axis,
                                 scale_bones)

ROOT = Path(__file__).parents[1]
TINY_CMU = ROOT / "tests/data/cmu17_tiny_120fps.npz"          # 300 frames of train/walking_1 and test/soccer_1
WORLD_CLIP = ROOT / "synsp_core/data/cmu_world_clip_60fps.npz"


H36M17_TO_LSP14 = [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]


def bone_lengths(poses: np.ndarray, skeleton=H36M17) -> np.ndarray:
    """(T, J) length of the bone ending at each joint (0 for the root)."""
    parents = np.array(skeleton.parents)
    lengths = np.linalg.norm(poses - poses[:, np.maximum(parents, 0)], axis=-1)
    lengths[:, parents < 0] = 0.0
    return lengths


# ----------------------------------------------------------------------------- loaders

def test_cmu_loader_reads_splits_at_120_fps():
    train, test = load_cmu(str(TINY_CMU), "train"), load_cmu(str(TINY_CMU), "test")
    assert [s.name for s in train] == ["train/walking_1"] and [s.name for s in test] == ["test/soccer_1"]
    assert train[0].poses.shape == (299, 17, 3) and train[0].poses.dtype == np.float32   # glitched frame 0 dropped
    assert np.linalg.norm(np.diff(train[0].poses, axis=0), axis=-1).max() < 100.0
    assert train[0].fps == 120.0 and train[0].skeleton == "h36m17"
    assert np.allclose(train[0].poses[:, 0], 0.0)               # pelvis frame
    assert len(load_cmu(str(TINY_CMU), "all")) == 2
    with pytest.raises(ValueError, match="split"):
        load_cmu(str(TINY_CMU), "val")
    with pytest.raises(FileNotFoundError, match="cmu17_120fps.npz"):
        load_cmu(str(ROOT / "tests"), "train")


def test_cmu_more_loader_keeps_world_frame_or_makes_it_pelvis_relative():
    world = load_cmu_more(str(WORLD_CLIP))
    rel = load_cmu_more(str(WORLD_CLIP), root_relative=True)
    assert world[0].name == "cmu_more/walk_02_07" and world[0].fps == 60.0
    assert np.abs(world[0].poses[:, 0]).max() > 100.0            # the pelvis walks through the room
    assert np.allclose(rel[0].poses[:, 0], 0.0)
    assert np.allclose(rel[0].poses[:, 5] - rel[0].poses[:, 2], world[0].poses[:, 5] - world[0].poses[:, 2])


def write_smoothnet_folder(root: Path, gt_seqs, det_seqs, flat: bool) -> Path:
    """A fake data/poses/h36m_fcn_3D/ folder: one object array per key, 3D in metres."""
    folder = root / "h36m_fcn_3D"
    (folder / "groundtruth").mkdir(parents=True)
    (folder / "detected").mkdir()

    def pack(seqs):
        arr = np.empty(len(seqs), dtype=object)
        for i, s in enumerate(seqs):
            arr[i] = s.reshape(len(s), -1) if flat else s
        return arr

    names = pack([np.array([f"img_{i:05d}.jpg" for i in range(len(s))]) for s in gt_seqs])
    np.savez(folder / "groundtruth/h36m_gt_3D_test.npz", imgname=names, joints_3d=pack(gt_seqs))
    np.savez(folder / "detected/h36m_fcn_3D_test.npz", imgname=names, joints_3d=pack(det_seqs))
    return folder


@pytest.mark.parametrize("flat", [True, False], ids=["T_Jx3", "T_J_3"])
def test_smoothnet_loader_pairs_ground_truth_and_detected_in_mm(tmp_path, flat):
    rng = np.random.default_rng(0)
    gt_seqs = [rng.standard_normal((n, 17, 3)) for n in (40, 25)]            # metres
    det_seqs = [g + 0.05 * rng.standard_normal(g.shape) for g in gt_seqs]
    folder = write_smoothnet_folder(tmp_path, gt_seqs, det_seqs, flat)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_smoothnet(str(folder))
    pairs = load_smoothnet(str(folder), allow_pickle=True)
    assert [gt.name for gt, _ in pairs] == ["h36m_fcn_3D_test/0000", "h36m_fcn_3D_test/0001"]
    for (gt, det), gt_m, det_m in zip(pairs, gt_seqs, det_seqs):
        assert gt.fps == det.fps == 50.0 and gt.skeleton == det.skeleton == "h36m17"
        assert np.allclose(gt.poses, gt_m * 1000.0, atol=1e-3)
        assert np.allclose(det.poses, det_m * 1000.0, atol=1e-3)
        assert np.array_equal(gt.detected, det.poses)
    # the same files found from SmoothNet's data/poses/ folder by data set name
    named = load_smoothnet(str(tmp_path), "test", name="h36m_fcn", allow_pickle=True)
    assert all(np.array_equal(a.poses, b.poses) for (a, _), (b, _) in zip(named, pairs))
    noisy, truth = make_test_case(pairs[1][0], 50.0, error_model=None)    # the real estimator output
    assert noisy.shape == (1, 25, 17, 3) and np.allclose(noisy[0], pairs[1][1].poses)


def test_smoothnet_loader_rejects_mismatched_pairs(tmp_path):
    rng = np.random.default_rng(0)
    folder = write_smoothnet_folder(tmp_path, [rng.standard_normal((40, 17, 3))],
                                    [rng.standard_normal((39, 17, 3))], flat=True)
    with pytest.raises(ValueError, match="sequence 0"):
        load_smoothnet(str(folder), allow_pickle=True)
    with pytest.raises(FileNotFoundError, match="_gt_3D_train"):
        load_smoothnet(str(folder), split="train", allow_pickle=True)
    with pytest.raises(FileNotFoundError, match="h36m_vibe_3D, split test"):
        load_smoothnet(str(tmp_path), name="h36m_vibe", allow_pickle=True)


def test_npz_array_loader(tmp_path):
    np.savez(tmp_path / "a.npz", take_1=np.ones((12, 17, 3)), take_2=np.zeros((5, 17, 3)))
    seqs = load_npz_arrays(str(tmp_path / "a.npz"), fps=25.0)
    assert [(s.name, s.num_frames, s.fps) for s in seqs] == [("take_1", 12, 25.0), ("take_2", 5, 25.0)]
    np.savez(tmp_path / "b.npz", good=np.ones((12, 17, 3)), flat=np.ones((12, 51)))
    with pytest.raises(ValueError, match="'flat'"):
        load_npz_arrays(str(tmp_path / "b.npz"), fps=25.0)
    np.savez(tmp_path / "c.npz", coco=np.ones((12, 14, 3)))
    with pytest.raises(ValueError, match="14 joints"):
        load_npz_arrays(str(tmp_path / "c.npz"), fps=25.0, layout="h36m17")


# ----------------------------------------------------------------------------- augmentation

def walking() -> np.ndarray:
    return load_cmu(str(TINY_CMU), "train")[0].poses


def test_mirror_twice_is_identity_and_swaps_left_and_right():
    poses = walking()
    once = mirror(poses, H36M17, lateral_axis=0)
    assert np.allclose(mirror(once, H36M17, lateral_axis=0), poses)
    l_wrist, r_wrist = H36M17.joint_names.index("l_wrist"), H36M17.joint_names.index("r_wrist")
    # the new left wrist is where the right wrist was, reflected across the sagittal plane
    assert np.allclose(once[:, l_wrist], poses[:, r_wrist] * [-1, 1, 1])
    # relabelled, the mirrored body still has its right hip at negative x (the CMU convention)
    r_hip = H36M17.joint_names.index("r_hip")
    assert np.all(poses[:, r_hip, 0] < 0) and np.all(once[:, r_hip, 0] < 0)


def test_rotation_about_up_axis_keeps_height_and_shape():
    poses = walking()
    turned = rotate_about_axis(poses, 0.7, up_axis=2)
    assert np.allclose(turned[..., 2], poses[..., 2])
    assert np.allclose(bone_lengths(turned), bone_lengths(poses), atol=1e-3)
    assert not np.allclose(turned[..., 0], poses[..., 0])


def test_bone_scaling_changes_lengths_but_keeps_tree_and_directions():
    poses = walking().astype(np.float64)
    factors = np.linspace(0.85, 1.15, 17)
    scaled = scale_bones(poses, H36M17, factors)
    assert np.allclose(scaled[:, 0], poses[:, 0])
    assert np.allclose(bone_lengths(scaled)[:, 1:], bone_lengths(poses)[:, 1:] * factors[1:])
    for child, parent in ((c, p) for c, p in enumerate(H36M17.parents) if p >= 0):
        old, new = poses[:, child] - poses[:, parent], scaled[:, child] - scaled[:, parent]
        cos = (old * new).sum(-1) / np.linalg.norm(old, axis=-1) / np.linalg.norm(new, axis=-1)
        assert np.all(cos > 1 - 1e-9)


def test_bone_scaling_works_when_parents_come_after_children():
    """LSP-14 hangs from the neck (index 12): every joint is rebuilt after its parent."""
    poses = walking().astype(np.float64)[:, H36M17_TO_LSP14]
    factors = np.linspace(0.85, 1.15, 14)
    scaled = scale_bones(poses, LSP14, factors)
    root = LSP14.parents.index(-1)
    assert np.allclose(scaled[:, root], poses[:, root])
    bones = [j for j, p in enumerate(LSP14.parents) if p >= 0]
    assert np.allclose(bone_lengths(scaled, LSP14)[:, bones], bone_lengths(poses, LSP14)[:, bones] * factors[bones])


def test_lsp14_names_mirror_like_h36m17():
    poses = walking()
    assert np.allclose(mirror(poses, H36M17)[:, H36M17_TO_LSP14], mirror(poses[:, H36M17_TO_LSP14], LSP14))
    assert LSP14.root_position(poses[:, H36M17_TO_LSP14]) == pytest.approx(
        (poses[:, 1] + poses[:, 4]) / 2)


def test_bone_classes_pair_left_and_right_twins():
    classes = bone_classes(H36M17)
    for left, right in H36M17.left_right_pairs:
        assert classes[left] == classes[right]
    assert len(set(classes)) == 17 - len(H36M17.left_right_pairs)


def test_augmentation_makes_a_consistent_new_body_at_the_target_rate():
    poses = walking()
    out = Augmentation(speed_range=(1.25, 1.25)).apply(poses, 120.0, 30.0, H36M17, np.random.default_rng(0))
    assert out.shape == (int(np.floor(298 * 30.0 / 150.0)) + 1, 17, 3)   # 1.25x faster: 150 fps of motion
    lengths = bone_lengths(out)[:, 1:]
    assert np.allclose(lengths, lengths[0], rtol=0.02)         # one body over the whole sequence
    ratio = lengths[0] / bone_lengths(poses)[0, 1:]
    assert ratio.std() > 0.02                                   # bones scaled differently
    assert np.all((ratio > 0.85 * 0.9 - 0.02) & (ratio < 1.15 * 1.1 + 0.02))


# ----------------------------------------------------------------------------- windows

def sampler(**kw) -> WindowSampler:
    seqs = load_cmu(str(TINY_CMU), "all")
    defaults = dict(window=8, num_views=3, error_model=RealisticErrors(), fps_range=(20.0, 60.0), seed=5)
    return WindowSampler(seqs, **{**defaults, **kw})


def test_windows_have_the_promised_shapes_and_types():
    s = sampler()
    batch = next(iter(s.batches(0, batch_size=16)))
    assert batch.noisy.shape == (16, 3, 8, 51) and batch.noisy.dtype == torch.float32
    assert batch.gt.shape == (16, 3, 8, 51) and batch.gt.dtype == torch.float32
    assert batch.view_mask.shape == (16, 3) and batch.view_mask.dtype == torch.bool
    data = s.synthesize_epoch(0)
    assert sum(len(b.noisy) for b in s.batches(0, 16, data=data)) == data.num_windows
    assert np.all((data.fps >= 20.0) & (data.fps <= 60.0))


def test_a_frame_carries_the_same_error_in_every_window_that_contains_it():
    s = sampler(random_live_views=False)
    batch = next(iter(s.batches(0, batch_size=2, shuffle=False)))
    first, second = batch.noisy[0], batch.noisy[1]              # windows starting at frames 0 and 1
    assert torch.equal(first[:, 1:], second[:, :-1])
    assert torch.equal(batch.gt[0][:, 1:], batch.gt[1][:, :-1])
    assert not torch.equal(first, batch.gt[0])


def test_gt_is_the_true_pose_for_every_view_and_views_differ():
    batch = next(iter(sampler(random_live_views=False, calibration_mm=20.0, calibration_deg=3.0).batches(0, 8)))
    assert torch.equal(batch.gt[:, 0], batch.gt[:, 1]) and torch.equal(batch.gt[:, 0], batch.gt[:, 2])
    assert not torch.equal(batch.noisy[:, 0], batch.noisy[:, 1])


def test_view_mask_keeps_one_to_all_views_and_zeroes_the_rest():
    s = sampler(num_views=4)
    data = s.synthesize_epoch(0)
    live = data.view_mask.sum(axis=1)
    assert live.min() == 1 and live.max() == 4
    assert set(np.bincount(live)[1:] > 0.15 * len(live)) == {True}   # each count 1..4 is common
    batch = next(iter(s.batches(0, 64, data=data)))
    dead = ~batch.view_mask
    assert dead.any() and torch.all(batch.noisy[dead] == 0)
    assert torch.all(batch.noisy[batch.view_mask].abs().sum(-1).sum(-1) > 0)
    assert np.all(sampler(num_views=1).synthesize_epoch(0).view_mask)


def test_epochs_are_reproducible_and_differ_from_each_other():
    a = next(iter(sampler().batches(3, 32)))
    b = next(iter(sampler().batches(3, 32)))
    c = next(iter(sampler().batches(4, 32)))
    assert torch.equal(a.noisy, b.noisy) and torch.equal(a.view_mask, b.view_mask)
    assert not torch.equal(a.noisy, c.noisy)


def test_ranks_get_equal_disjoint_shares_of_one_epoch():
    s = sampler(error_model=NoErrors(), augmentation=None, num_views=1, fps_range=(30.0, 30.0))
    data = s.synthesize_epoch(0)
    shares = [torch.cat([b.gt[:, 0, 0] for b in s.batches(0, 10, rank=r, world_size=3, data=data)]) for r in range(3)]
    assert len({len(x) for x in shares}) == 1 and len(shares[0]) == data.num_windows // 3
    rows = torch.cat(shares)
    assert len(torch.unique(rows, dim=0)) == len(rows)         # no window on two ranks


def test_short_sequences_are_skipped_and_repeats_lengthen_the_epoch():
    s = sampler(window=8, augmentation=None, fps_range=(30.0, 30.0))
    long = sampler(window=8, augmentation=None, fps_range=(30.0, 30.0), repeats=3)
    assert long.synthesize_epoch(0).num_windows == 3 * s.synthesize_epoch(0).num_windows
    with pytest.raises(ValueError, match="no sequence has 200 frames"):
        sampler(window=200, augmentation=None, fps_range=(30.0, 30.0)).synthesize_epoch(0)


def test_test_cases_are_deterministic_per_sequence_and_seed():
    seq = load_cmu(str(TINY_CMU), "test")[0]
    noisy, gt = make_test_case(seq, 30.0, GaussianNoise(std_mm=10.0), num_views=2, seed=1)
    again, _ = make_test_case(seq, 30.0, GaussianNoise(std_mm=10.0), num_views=2, seed=1)
    other, _ = make_test_case(seq, 30.0, GaussianNoise(std_mm=10.0), num_views=2, seed=2)
    assert noisy.shape == (2, 75, 17, 3) and gt.shape == (75, 17, 3)      # 299 frames at 120 fps
    assert np.array_equal(noisy, again) and not np.array_equal(noisy, other)
    assert abs((noisy - gt).std() - 10.0) < 0.5
    with pytest.raises(ValueError, match="no detected poses"):
        make_test_case(seq, 30.0, None)


def test_sequence_validates_its_arrays():
    with pytest.raises(ValueError, match="'bad'.*NaN"):
        Sequence("bad", np.full((4, 17, 3), np.nan), 30.0)
    with pytest.raises(ValueError, match="'short'.*16 joints"):
        Sequence("short", np.zeros((4, 16, 3)), 30.0)
