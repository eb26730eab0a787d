"""replay_node: a bundled real CMU motion clip as V live camera streams, with estimator-like errors.

Publishes, at `rate` Hz, one geometry_msgs/PoseArray per camera on `<topic_prefix>_<i>/skeleton`
(metres, `frame_id`, stamped with the capture time = now, plus a per-camera stamp jitter) holding
the clip corrupted by synthesized estimator errors (synsp_core.errors, 'realistic' by default,
independent per camera), and the clean clip on `~/ground_truth` with the un-jittered stamp.
Looping plays the clip forward then backward, so the motion never jumps; each pass draws new errors.
Optional message drops and a camera stall exercise the refine node's synchronization.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import ParameterType
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

import synsp_core
from synsp_core.errors import make_error_model, synthesize_views
from synsp_core.motion import resample
from synsp_ros.conversions import mm_to_pose_array, ns_to_stamp
from synsp_ros.node_utils import describe, run_node, usage

BUNDLED_CLIPS = Path(synsp_core.__file__).resolve().parent / "data" / "cmu_test_clips_120fps.npz"

_T = ParameterType
PARAMETERS = {
    "data_file": ("", describe(_T.PARAMETER_STRING, "npz of (T, J, 3) mm clips; '' = the bundled CMU test clips")),
    "clip": ("soccer_1", describe(_T.PARAMETER_STRING, "key of the clip in data_file")),
    "clip_fps": (120.0, describe(_T.PARAMETER_DOUBLE, "frame rate of the clip in data_file, Hz",
                                 float_range=(1.0, 1000.0))),
    "rate": (30.0, describe(_T.PARAMETER_DOUBLE, "publishing rate, Hz (the clip is resampled to it)",
                            float_range=(1.0, 240.0))),
    "num_views": (4, describe(_T.PARAMETER_INTEGER, "number of cameras", int_range=(1, 8))),
    "error_model": ("realistic", describe(_T.PARAMETER_STRING,
                                          "synthetic estimator errors: none, gaussian, uniform, realistic")),
    "seed": (0, describe(_T.PARAMETER_INTEGER, "random seed of the errors, jitter and drops",
                         int_range=(0, 2**31 - 1))),
    "loop": (True, describe(_T.PARAMETER_BOOL, "play forward then backward forever (True) or stop at the end")),
    "frame_id": ("world", describe(_T.PARAMETER_STRING, "frame_id of every message")),
    "topic_prefix": ("camera", describe(_T.PARAMETER_STRING, "camera i publishes on <topic_prefix>_<i>/skeleton")),
    "stamp_jitter": (0.002, describe(_T.PARAMETER_DOUBLE, "s, std of each camera's capture stamp jitter",
                                     float_range=(0.0, 0.1))),
    "drop_probability": (0.0, describe(_T.PARAMETER_DOUBLE, "chance that a camera message is not sent",
                                       float_range=(0.0, 1.0))),
    "stall_camera": (-1, describe(_T.PARAMETER_INTEGER, "camera that goes silent for a while (-1 = none)",
                                  int_range=(-1, 7))),
    "stall_start": (5.0, describe(_T.PARAMETER_DOUBLE, "s after start when the stall begins",
                                  float_range=(0.0, 1e6))),
    "stall_duration": (2.0, describe(_T.PARAMETER_DOUBLE, "s the stalled camera stays silent",
                                     float_range=(0.0, 1e6))),
}


def load_clip(data_file: str, clip: str) -> np.ndarray:
    """(T, J, 3) mm from an npz of clips; a clear error names what is missing."""
    path = Path(data_file) if data_file else BUNDLED_CLIPS
    if not path.is_file():
        raise FileNotFoundError(f"clip file not found: {path}")
    with np.load(path) as clips:
        if clip not in clips.files:
            raise KeyError(f"clip {clip!r} is not in {path}; it has {sorted(clips.files)}")
        poses = clips[clip].astype(np.float32)
    if poses.ndim != 3 or poses.shape[-1] != 3 or len(poses) < 2:
        raise ValueError(f"clip {clip!r} in {path} must be shaped (T >= 2, J, 3), got {poses.shape}")
    return poses


class ReplayNode(Node):
    def __init__(self, **kwargs):
        super().__init__("replay_node", **kwargs)
        for name, (default, descriptor) in PARAMETERS.items():
            self.declare_parameter(name, default, descriptor)
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self.p = p
        gt = resample(load_clip(p["data_file"], p["clip"]), p["clip_fps"], p["rate"])
        self.cycle = np.concatenate([gt, gt[-2:0:-1]]) if p["loop"] else gt  # forward, then backward
        self.error_model = make_error_model(p["error_model"])
        self.rng = np.random.default_rng(p["seed"])
        self.num_views = p["num_views"]
        self.frame = 0
        self.views = self.new_errors()
        self.start_s = self.now_s()
        self.camera_pubs = [self.create_publisher(PoseArray, f"{p['topic_prefix']}_{i}/skeleton",
                                                  qos_profile_sensor_data) for i in range(self.num_views)]
        self.gt_pub = self.create_publisher(PoseArray, "~/ground_truth",
                                            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.timer = self.create_timer(1.0 / p["rate"], self.tick)
        self.get_logger().info(
            f"replaying {p['clip']} ({len(gt)} frames at {p['rate']} Hz) as {self.num_views} cameras "
            f"with {p['error_model']} errors on {[pub.topic_name for pub in self.camera_pubs]}")

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def new_errors(self) -> np.ndarray:
        """(V, T, J, 3) mm: the current pass of the clip as every camera sees it."""
        return synthesize_views(self.cycle, self.num_views, self.error_model, self.p["rate"], self.rng)

    def tick(self) -> None:
        if self.frame == len(self.cycle):
            if not self.p["loop"]:
                self.get_logger().info("clip finished", once=True)
                return
            self.frame = 0
            self.views = self.new_errors()
        p, stamp_ns = self.p, self.get_clock().now().nanoseconds
        elapsed = stamp_ns * 1e-9 - self.start_s
        stalled = p["stall_start"] <= elapsed < p["stall_start"] + p["stall_duration"]
        jitter_ns = np.rint(self.rng.normal(0.0, p["stamp_jitter"] * 1e9, self.num_views)).astype(np.int64)
        drops = self.rng.random(self.num_views) < p["drop_probability"]
        for view, pub in enumerate(self.camera_pubs):
            if drops[view] or (stalled and view == p["stall_camera"]):
                continue
            stamp = ns_to_stamp(stamp_ns + int(jitter_ns[view]))
            pub.publish(mm_to_pose_array(self.views[view, self.frame], stamp, p["frame_id"]))
        self.gt_pub.publish(mm_to_pose_array(self.cycle[self.frame], ns_to_stamp(stamp_ns), p["frame_id"]))
        self.frame += 1


TOPICS = [
    ("<topic_prefix>_<i>/skeleton  (geometry_msgs/PoseArray)", "camera i: the clip with synthetic estimator errors"),
    ("~/ground_truth  (geometry_msgs/PoseArray)", "the clean clip, stamped with the un-jittered capture time"),
]
HELP = usage("replay_node", __doc__.split("\n\n")[0], TOPICS, PARAMETERS)


def main(args=None) -> int:
    return run_node(ReplayNode, "replay_node", args, HELP)


if __name__ == "__main__":
    sys.exit(main())
