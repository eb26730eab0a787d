"""The node's multi-person path without ROS (synsp_core/people_pipeline.py): per-person checks,
interpolation of detections, tracker -> batched refiner -> frames assembled by stamp."""
import numpy as np
import pytest
import torch

from synsp_core.bones import BoneLengthPrior
from synsp_core.model import SynSP, SynSPConfig
from synsp_core.people import Detection
from synsp_core.people_pipeline import (PeopleAssembler, PeopleInput, PeoplePipeline, SkeletonGate,
                                        interpolate_detections)
from synsp_core.runtime import EagerBackend
from synsp_core.skeletons import H36M17
from synsp_core.streaming import RefinedFrame

torch.set_num_threads(1)
CLIPS = "synsp_core/data/cmu_test_clips_120fps.npz"
FPS, J, W = 30.0, 17, 8
DT = 1 / FPS


def identity_backend() -> EagerBackend:
    """A small random SynSP with zero correction heads: it returns its input (as the ROS tests' one)."""
    torch.manual_seed(0)
    cfg = SynSPConfig(window=W, d_model=32, n_heads=2, head_dim=16, d_ffn=32, n_local_layers=1,
                      n_global_layers=1, n_base_shared_layers=1, n_refine_layers=1)
    return EagerBackend(SynSP(cfg))


def room(frames: int = 60, people: int = 3) -> np.ndarray:
    """(P, T, J, 3) mm: CMU clips placed 1.5 m apart, walking slowly along x."""
    from pathlib import Path
    clips = np.load(Path(__file__).resolve().parents[1] / CLIPS)
    out = []
    for p, name in enumerate(["walking_1", "soccer_1", "basketball_1"][:people]):
        clip = clips[name][::4][:frames].astype(np.float64)
        clip = clip - clip[:1, :1]                               # starts at the origin
        clip[..., 1] += 1500.0 * p                               # people apart
        clip[..., 0] += np.linspace(0, 600, frames)[:, None]    # walking
        out.append(clip)
    return np.stack(out)


def camera_frames(truth: np.ndarray, views: int, seed: int = 0, noise_mm: float = 20.0):
    """Per frame, per camera: detections with the camera's own ids (and its own order)."""
    rng = np.random.default_rng(seed)
    P, T = truth.shape[:2]
    ids = [rng.permutation(100)[:P] for _ in range(views)]
    frames = []
    for t in range(T):
        cameras = []
        for v in range(views):
            order = rng.permutation(P)
            cameras.append([Detection(truth[p, t] + rng.normal(0, noise_mm, (J, 3)), int(ids[v][p])) for p in order])
        frames.append(cameras)
    return frames


def run(pipeline, frames, t0: float = 100.0):
    outputs = []
    for t, detections in enumerate(frames):
        outputs += pipeline.push(t0 + t * DT, detections, tag=t)
    return outputs


def make_pipeline(views: int, emit_delay: int = 3) -> PeoplePipeline:
    return PeoplePipeline(identity_backend(), views, emit_delay, max_gap_s=0.5,
                          bone_prior_factory=lambda: BoneLengthPrior(H36M17, horizon_frames=300))


def test_people_come_out_with_stable_ids_one_frame_per_stamp_close_to_the_truth():
    truth = room()
    frames = camera_frames(truth, views=3)
    pipeline = make_pipeline(3, emit_delay=3)
    outputs = run(pipeline, frames) + pipeline.flush()
    assert [o.tag for o in outputs] == list(range(len(frames)))   # every frame, once, in order
    stamps = [o.stamp_s for o in outputs]
    assert (np.diff(stamps) > 0).all()
    assert all(o.ids == [] for o in outputs[:2])                   # births after birth_frames
    steady = outputs[5:]
    assert all(o.ids == [0, 1, 2] for o in steady)
    # each global id is one true person all along
    who = {pid: None for pid in range(3)}
    for o in steady:
        assert np.isfinite(o.joints).all() and o.joints.shape == (3, J, 3)
        assert ((o.quality >= 0) & (o.quality <= 1)).all()
        errors = np.linalg.norm(o.joints[:, None] - truth[None, :, o.tag], axis=-1).mean(axis=-1)   # (ids, people)
        for row, pid in enumerate(o.ids):
            person = int(errors[row].argmin())
            assert who[pid] in (None, person), f"id {pid} changed person at frame {o.tag}"
            who[pid] = person
            assert errors[row, person] < 30.0, errors   # 3 cameras of 20 mm noise, averaged
    assert sorted(who.values()) == [0, 1, 2]
    assert pipeline.refiner.stats.model_calls == pipeline.refiner.stats.frames_in - 2   # one call per frame
    assert pipeline.tracker.stats.born == 3 and pipeline.assembler.stats.late_person_frames == 0


def test_emit_delay_frames_of_latency_and_an_occluded_person_holds_nobody_back():
    truth = room()
    frames = camera_frames(truth, views=2)
    for t in range(30, 34):                                  # person 1 unseen by both cameras
        frames[t] = [[d for d in camera if d.joints_mm[0, 1] < 750 or d.joints_mm[0, 1] > 2250] for camera in frames[t]]
    pipeline = make_pipeline(2, emit_delay=3)
    released_at = {}
    for t, detections in enumerate(frames):
        for o in pipeline.push(100 + t * DT, detections, tag=t):
            released_at[o.tag] = (t, o.ids)
    for tag in range(10, 60 - 3):   # a frame comes out emit_delay frames after it was captured
        assert released_at[tag][0] == tag + 3, (tag, released_at[tag])
    for tag in range(30, 34):
        assert len(released_at[tag][1]) == 2                 # the unseen person is not in them
    assert released_at[40][1] == released_at[20][1] == [0, 1, 2]   # and keeps the id afterwards
    assert pipeline.tracker.stats.born == 3 and pipeline.tracker.stats.lost == 0


def test_a_lost_person_is_flushed_and_leaves_the_output():
    truth = room()
    frames = camera_frames(truth, views=2)
    for t in range(20, 60):
        frames[t] = [[d for d in camera if d.joints_mm[0, 1] < 2250] for camera in frames[t]]   # person 2 leaves
    pipeline = make_pipeline(2, emit_delay=7)
    outputs = run(pipeline, frames) + pipeline.flush()
    assert [o.tag for o in outputs] == list(range(60))
    with_2 = [o.tag for o in outputs if 2 in o.ids]
    assert with_2 == list(range(2, 20))                      # every frame it was seen in came out
    assert pipeline.tracker.stats.lost == 1 and 2 not in pipeline.refiner.refiners
    assert pipeline.refiner.stats.removed == 1


def test_stamps_going_back_restart_everything():
    truth = room(40)
    frames = camera_frames(truth, views=2)
    pipeline = make_pipeline(2, emit_delay=3)
    first = run(pipeline, frames[:20], t0=100.0)
    second = run(pipeline, frames[20:], t0=50.0)             # a bag loop
    assert [o.tag for o in first + second][:20] == list(range(20))   # the first stream flushed in full
    assert all(np.diff([o.stamp_s for o in second[second.index(next(o for o in second if o.stamp_s < 100)):]]) > 0)
    assert pipeline.tracker.stats.resets == 1
    assert pipeline.push(50.0 + 19 * DT, frames[-1]) == [] and pipeline.duplicate_stamps == 1


def test_person_input_checks_each_person():
    inputs = PeopleInput(num_views=2, num_joints=J)
    truth = room(1, 1)[0, 0]
    far = truth.copy()
    far[4] = [1e12, 0, 0]                                    # one joint beyond 10 km
    off = truth.copy()
    off[9] += 5000.0                                          # one joint 5 m off the body
    detections, notes = inputs.check(1, 0.0, [
        (1, truth, None), (2, np.full((J, 3), np.nan), None), (3, far, None), (4, off, np.full(J, 0.5)),
        (5, np.full((J, 3), 1e12), None)])
    assert [d.producer_id for d in detections] == [1, 3, 4]
    assert np.isnan(detections[1].joints_mm[4]).all() and np.isnan(detections[2].joints_mm[9]).all()
    assert np.isfinite(detections[0].joints_mm).all() and detections[2].confidence[0] == 0.5
    assert inputs.counters["nonfinite"].tolist() == [0, 1] and inputs.counters["implausible"].tolist() == [0, 1]
    assert inputs.people.tolist() == [0, 5]
    assert inputs.gate.counters["out_of_range"][1] == 1 + J and inputs.gate.counters["off_body"][1] == 1
    assert inputs.gate.counters["nonfinite"][1] == J and inputs.gate.counters["jump"][1] == 0
    assert [(n[0], n[1]) for n in notes] == [(2, "nonfinite"), (3, "gated"), (4, "gated"), (5, "implausible")]


def test_skeleton_gate_has_no_memory():
    gate = SkeletonGate(1, J)
    pose = room(1, 1)[0, 0]
    for k in range(10):
        gate.check(0, k * DT, pose)
    assert gate.check(0, 10 * DT, pose + 50_000.0).all()    # 50 m away: another person, not a jump
    assert gate.counters["jump"][0] == 0


def test_interpolate_detections():
    a = np.zeros((J, 3))
    b = np.full((J, 3), 100.0)
    a[2] = np.nan
    before = [Detection(a, 7, np.full(J, 0.2)), Detection(a + 1000, 8), Detection(a - 1000, None)]
    after = [Detection(b + 5000, 9), Detection(b, 7, np.full(J, 0.6))]
    mid = interpolate_detections(before, after, 0.25)
    assert [d.producer_id for d in mid] == [7, 8, None]     # the nearer message's people
    np.testing.assert_allclose(mid[0].joints_mm[0], [25, 25, 25])
    assert np.isnan(mid[0].joints_mm[2]).all()               # missing in the nearer message: stays missing
    np.testing.assert_allclose(mid[0].confidence[0], 0.3)
    assert mid[1] is before[1] and mid[2] is before[2]
    late = interpolate_detections(before, after, 0.75)
    assert [d.producer_id for d in late] == [9, 7]
    np.testing.assert_allclose(late[1].joints_mm[0], [75, 75, 75])
    np.testing.assert_allclose(late[1].joints_mm[2], [100, 100, 100])   # only the nearer one has it
    assert interpolate_detections([], after, 0.9) == after and interpolate_detections(before, [], 0.1) == before
    twice = [Detection(a, 7), Detection(a + 1, 7)]             # repeated ids are not matched
    assert interpolate_detections(twice, after, 0.2) == twice


def frame(stamp_s: float, value: float = 0.0) -> RefinedFrame:
    return RefinedFrame(stamp_s, np.full((J, 3), value, np.float32), np.zeros((1, J, 3), np.float32),
                        np.ones(1, np.float32), np.ones(1, bool), np.ones(1, np.int64), np.ones(J, np.float32))


def test_assembler_orders_drops_and_forces():
    assembler = PeopleAssembler(max_held=3)
    for k in range(3):
        assembler.add_frame(float(k), tag=k)
    assembler.add(5, [frame(0.0), frame(1.0, np.nan)])
    assembler.add(2, [frame(0.0)])
    assert [(o.tag, o.ids) for o in assembler.release(held=[1.0])] == [(0, [2, 5])]
    assert assembler.stats.nonfinite_people == 1
    assembler.add(2, [frame(0.0)])                            # already out
    assert assembler.stats.late_person_frames == 1
    with pytest.raises(ValueError, match="increase"):
        assembler.add_frame(2.0)
    assembler.add_frame(3.0)
    assembler.add_frame(4.0)
    out = assembler.release(held=[1.0])                       # 4 held > max_held: the oldest goes anyway
    assert [o.stamp_s for o in out] == [1.0] and assembler.stats.forced_releases == 1
    assert out[0].ids == [] and out[0].joints.shape == (0, 0, 3)
    assert [o.stamp_s for o in assembler.release(everything=True)] == [2.0, 3.0, 4.0]


def test_emit_delay_changes_live_and_the_backend_can_be_swapped():
    truth = room(50, 2)
    frames = camera_frames(truth, views=2)
    pipeline = make_pipeline(2, emit_delay=7)
    outputs = run(pipeline, frames[:20])
    pipeline.emit_delay = 0                                   # frames held so far come out at the next push
    assert all(r.emit_delay == 0 for r in pipeline.refiner.refiners.values())
    backend = identity_backend()
    pipeline.backend = backend                                # e.g. the node switching to AOTInductor
    assert pipeline.refiner.backend is backend and all(r.backend is backend for r in pipeline.refiner.refiners.values())
    outputs += [o for t, detections in enumerate(frames[20:], 20) for o in pipeline.push(100 + t * DT, detections, t)]
    assert [o.tag for o in outputs] == list(range(50))       # none lost, none twice, in order
    assert all(o.ids == [0, 1] for o in outputs[3:])
    with pytest.raises(ValueError):
        pipeline.emit_delay = W
