"""Malformed skeleton messages: skipped and counted per camera; the node lives on and publishes no NaN."""
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseArray
from rclpy.serialization import serialize_message

from ros_harness import CameraRig, latest_diagnostics, now_ns, refine_node_with_cameras, refined_poses
from synsp_ros.conversions import mm_to_pose_array, ns_to_stamp
from synsp_ros.refine_node import PARAMETERS

pytestmark = pytest.mark.ros
TOPICS = PARAMETERS["input_topics"][0]
FRAME_NS = 33_333_333


def bad_message(kind: str, rig: CameraRig, frame: int, stamp_ns: int) -> PoseArray | bytes:
    """A bad message of this kind; "malformed": serialized bytes cut short, published as they are."""
    joints = rig.pose(frame)
    if kind == "malformed":
        return serialize_message(mm_to_pose_array(joints, ns_to_stamp(stamp_ns), rig.frame_id))[:-100]
    if kind == "joint_count":
        joints = joints[:16]
    elif kind == "nan":
        joints[3, 1] = np.nan
    elif kind == "inf":
        joints[5, 2] = np.inf
    elif kind == "float32_overflow":
        joints[7, 0] = 3.4e41    # mm: 3.4e38 m, finite in the message (float64), inf in float32
    elif kind == "far":
        joints[16, 2] = 1e9      # mm: one joint 1000 km away
    elif kind == "empty":
        joints = joints[:0]
    return mm_to_pose_array(joints, ns_to_stamp(stamp_ns), "camera_link" if kind == "frame_id" else rig.frame_id)


# frame -> kind: camera 0 sends the bad message INSTEAD of its pose, camera 1 sends it IN ADDITION
BAD_FRAMES = {10: "joint_count", 15: "nan", 20: "inf", 25: "empty", 30: "frame_id", 35: "malformed",
              38: "float32_overflow", 41: "far"}
GATED = ("nan", "inf", "float32_overflow", "far")   # one bad joint: the plausibility gate's business
# gated joints go on as missing: their messages still count
EXPECTED = {"invalid_joint_count": "1", "invalid_empty": "1", "invalid_frame_id": "1", "invalid_malformed": "1",
            "invalid_nonfinite": "0", "invalid_implausible": "0",
            "gated_nonfinite": "2", "gated_out_of_range": "2", "invalid_error": "0"}


def test_malformed_messages_are_skipped_and_counted(tmp_path):
    with refine_node_with_cameras(tmp_path, TOPICS, "bad_input_probe", view_timeout=10.0) as setup:
        node, probe, rig, refined, diagnostics = setup.node, setup.probe, setup.rig, setup.refined, setup.diagnostics
        t0 = now_ns()
        stamps = [t0 + k * FRAME_NS for k in range(60)]
        for frame, stamp in enumerate(stamps):
            kind = BAD_FRAMES.get(frame)
            for view in range(len(TOPICS)):
                if kind and view in (0, 1):
                    rig.publishers[view].publish(bad_message(kind, rig, frame, stamp))
                if not kind or view != 0:
                    rig.send(view, frame, stamp)
            time.sleep(1 / 15)   # half real time: a loaded machine keeps up

        last_expected = stamps[-1 - PARAMETERS["emit_delay"][0]]
        probe.wait_for(lambda: stamps[-1] > refined_poses(probe, refined)[0].max(initial=0) >= last_expected, 60,
                       "the output of the last complete frame")
        for camera in ("camera 0", "camera 1"):
            probe.wait_for(lambda: EXPECTED.items() <= latest_diagnostics(probe, diagnostics, camera).items(), 30,
                           f"invalid counters of {camera} in /diagnostics")
        assert all(latest_diagnostics(probe, diagnostics, "camera 2")[key] == "0" for key in EXPECTED)
        # camera 0's skipped messages were lost to the synchronizer: those frames went out without it
        skipped = [kind for kind in BAD_FRAMES.values() if kind not in GATED]
        assert latest_diagnostics(probe, diagnostics, "camera 0")["missed"] == str(len(skipped))
        assert latest_diagnostics(probe, diagnostics, "camera 1")["missed"] == "0"
        # ... and left gaps in its stamps, where messages lost before the callback would show too
        assert latest_diagnostics(probe, diagnostics, "camera 0")["lost_in_gaps"] == str(len(skipped))
        assert latest_diagnostics(probe, diagnostics, "camera 1")["lost_in_gaps"] == "0"
        assert node.alive()
        out_stamps, poses = refined_poses(probe, refined)
        assert np.isfinite(poses).all() and poses.shape[1:] == (17, 3)
        assert set(out_stamps) <= set(stamps) and (np.diff(out_stamps) > 0).all()
        # every frame came out, also those camera 0 sent no valid pose for
        assert set(stamps[:50]) <= set(out_stamps)
        assert "camera 0 (camera_0/skeleton): skipping a message: joint_count (16 poses, expected 17" in node.log()
