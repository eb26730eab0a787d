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


class MalformedMessage(ValueError):
    """Serialized bytes that are not a well-formed CDR PoseArray."""


def parse_pose_array(raw: bytes) -> tuple[Time, str, np.ndarray]:
    """Serialized geometry_msgs/PoseArray (as a raw subscription delivers it) ->
    (header.stamp, header.frame_id, (N, 3) float64 positions in mm).

    Classic CDR (XCDR1, what rmw_fastrtps and rmw_cyclonedds send) is read straight into numpy
    instead of building N Pose objects (about 0.18 ms per 17-joint message in rclpy's
    deserializer, 0.02-0.035 ms here). Layout after the 4-byte encapsulation header (0x0001
    little-endian, 0x0000 big-endian): int32 sec, uint32 nanosec, uint32 length + string (with its
    NUL), pad to 4, uint32 N, pad to 8, N x 7 float64 (position xyz, orientation xyzw). Any other
    encapsulation goes through rclpy's deserializer. Raises MalformedMessage on bad bytes.
    """
    raw = memoryview(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] not in (0, 1):
        return _parse_with_rclpy(raw)
    if len(raw) < 16:
        raise MalformedMessage(f"{len(raw)} bytes is too short for a PoseArray")
    order = "<" if raw[1] == 1 else ">"
    body = raw[4:]
    sec, nanosec, length = np.frombuffer(body[:12], dtype=f"{order}i4, {order}u4, {order}u4")[0].tolist()
    end = 12 + length
    if length < 1 or end + 4 > len(body) or body[end - 1] != 0:
        raise MalformedMessage("bad frame_id string")
    frame_id = bytes(body[12:end - 1]).decode("utf-8", errors="replace")
    count_at = (end + 3) & ~3
    if count_at + 4 > len(body):
        raise MalformedMessage("truncated before the pose count")
    count = int(np.frombuffer(body[count_at:count_at + 4], dtype=f"{order}u4")[0])
    poses_at = (count_at + 4 + 7) & ~7 if count else count_at + 4
    if poses_at + 56 * count > len(body) or not 0 <= nanosec < 1_000_000_000:
        raise MalformedMessage(f"{count} poses do not fit in {len(body)} bytes, or a bad stamp")
    values = np.frombuffer(body[poses_at:poses_at + 56 * count], dtype=f"{order}f8").reshape(count, 7)
    return Time(sec=sec, nanosec=nanosec), frame_id, values[:, :3] * MM_PER_M


def _parse_with_rclpy(raw: memoryview) -> tuple[Time, str, np.ndarray]:
    from rclpy.serialization import deserialize_message
    try:
        msg = deserialize_message(bytes(raw), PoseArray)
    except Exception as error:   # rclpy raises plain RuntimeErrors / ValueErrors on bad bytes
        raise MalformedMessage(f"not a PoseArray: {error}") from None
    return msg.header.stamp, msg.header.frame_id, pose_array_to_mm(msg)


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
