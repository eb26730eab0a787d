"""The room demo's scoring, plot and offline path (synsp_ros/demo_room.py), without ROS."""
import json

import numpy as np
import pytest
import torch

from synsp_core.room import Room, RoomConfig
from synsp_ros import demo_room
from synsp_ros.demo_room import RoomScorer, nan_scores

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def room() -> Room:
    return Room(RoomConfig(people=3, cameras=4, duration_s=4.0, seed=0))


def test_nan_scores_leave_out_missing_joints_and_frames():
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 300, (10, 17, 3))
    pred = gt + np.array([0.0, 0.0, 0.0])
    pred[:, 1:] += 10.0                                    # every joint but the pelvis 10 mm off along x, y, z
    expected = np.sqrt(300.0) * 16 / 17                    # root-relative: the pelvis' own error is 0
    assert nan_scores(pred, gt)["mpjpe"] == pytest.approx(expected)
    assert nan_scores(pred, gt)["accel"] == pytest.approx(0.0, abs=1e-9)
    pred[3, 5] = np.nan                                    # a missing joint: left out, not an error
    pred[6] = np.nan                                       # a missing frame: left out
    scores = nan_scores(pred, gt)
    assert scores["mpjpe"] == pytest.approx(expected, rel=0.01) and scores["frames"] == 9
    assert np.isfinite(scores["accel"])


def test_scorer_checks_the_ids_against_the_truth(room):
    scorer = RoomScorer(room)
    T = len(room)
    for t in range(T):
        for p in range(3):
            gid = 10 + p
            if p == 2 and t >= T // 2:
                gid = 12 if t < T - 10 else 99                  # person 2 changes id near the end
            if p in (0, 1) and T // 3 <= t < T // 3 + 5:
                gid = 11 - p                                   # persons 0 and 1 swap ids for 5 frames
            scorer.add(t, gid, room.truth[p, t])
    scores = scorer.scores()
    ids = scores["ids"]
    assert ids["people"][2] == {"ids": [12, 99], "id_switches": 1}
    assert ids["people"][0]["id_switches"] == 2 and ids["people"][1]["id_switches"] == 2
    assert ids["output_id_switches"] == 5 and ids["ids_mixing_people"] == [10, 11]
    assert ids["camera_id_switches"] == room.id_switches
    for p in range(3):
        assert scores[p]["refined"]["mpjpe"] == pytest.approx(0.0, abs=1e-3) and scores[p]["frames"] == T
        assert scores[p]["input"]["mpjpe"] > scores[p]["camera_mean"]["mpjpe"] > 0
    assert scores["all"]["frames"] == 3 * T


def test_scorer_leaves_far_outputs_unmatched(room):
    scorer = RoomScorer(room)
    scorer.add(0, 5, room.truth[0, 0] + 1000.0)             # a ghost 1.7 m away from person 0
    scorer.add(1, 5, room.truth[0, 1] + 10.0)
    scorer.add(len(room) + 3, 5, room.truth[0, 0])          # a frame the room does not have: ignored
    ids, poses = scorer.matched()
    assert ids[0].tolist() == [-1, -1, -1] and ids[1].tolist() == [5, -1, -1]
    assert np.isnan(poses[0, 0]).all() and np.isfinite(poses[0, 1]).all()


def test_offline_demo_scores_and_plots(tmp_path):
    """The --offline path end to end on a short room with the shipped weights: every person keeps
    one global id through the cameras' id switches, the refined output is better than the cameras
    and far smoother than their mean, the files are written. (No MPJPE bar against the mean of the
    cameras: on a room this short the stream's ends, finalized from fewer windows, weigh a lot.)"""
    out = tmp_path / "room"
    assert demo_room.main(["--offline", "--duration", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    scores, ids = summary["scores"], summary["scores"]["ids"]
    assert ids["global_ids"] == 3 and ids["output_id_switches"] == 0 and ids["ids_mixing_people"] == []
    assert ids["absorbed"] == ids["camera_id_switches"]
    assert scores["all"]["frames"] > 3 * 110
    assert scores["all"]["refined"]["mpjpe"] < scores["all"]["input"]["mpjpe"]
    assert scores["all"]["camera_mean"]["mpjpe"] < scores["all"]["input"]["mpjpe"]
    assert scores["all"]["refined"]["accel"] < 0.5 * scores["all"]["camera_mean"]["accel"]
    assert (out / "room_top_view.png").stat().st_size > 10_000
