"""Message <-> numpy conversions shared by the nodes, the demo, the tests and the benchmark.

Skeleton message contract: geometry_msgs/PoseArray, header.stamp = capture time,
header.frame_id = the common frame, poses[j].position = joint j in metres; orientation unused
(written as the identity quaternion). Inside synsp_core poses are numpy arrays in millimetres.
"""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Pose, PoseArray

MM_PER_M = 1000.0


def stamp_to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_to_ns(stamp: Time) -> int:
    """Exact integer nanoseconds (a float of seconds since 1970 keeps only ~0.2 us)."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def ns_to_stamp(nanoseconds: int) -> Time:
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def pose_array_to_mm(msg: PoseArray) -> np.ndarray:
    """(N, 3) float64 joint positions in mm (N = len(msg.poses), possibly 0 or non-finite)."""
    return np.array([(p.position.x, p.position.y, p.position.z) for p in msg.poses],
                    dtype=np.float64).reshape(-1, 3) * MM_PER_M


def mm_to_pose_array(joints_mm: np.ndarray, stamp: Time, frame_id: str) -> PoseArray:
    """(J, 3) mm -> PoseArray in metres with the given capture stamp and frame."""
    msg = PoseArray()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    poses = []
    for x, y, z in (np.asarray(joints_mm, dtype=np.float64) / MM_PER_M).tolist():
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = x, y, z
        poses.append(pose)
    msg.poses = poses
    return msg


def diagnostic_values(msg: DiagnosticArray) -> dict[str, dict[str, str]]:
    """{status name: {key: value}} of a DiagnosticArray, for readers of the node's diagnostics."""
    return {status.name: {kv.key: kv.value for kv in status.values} for status in msg.status}
