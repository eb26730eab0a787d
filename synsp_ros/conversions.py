"""Message <-> numpy conversions shared by the nodes, the demo, the tests and the benchmark.

Skeleton message contract: geometry_msgs/PoseArray, header.stamp = capture time,
header.frame_id = the common frame, poses[j].position = joint j in metres; orientation unused
(written as the identity quaternion). Inside synsp_core poses are numpy arrays in millimetres.

Several people: synsp_msgs/SkeletonArray (header as above, `layout`, one Skeleton per person: id,
joints in metres with NaN = not detected, per-joint confidence or empty), read by
`skeleton_array_to_people` / `parse_skeleton_array` (serialized) and written by
`people_to_skeleton_array`. Body-tracking drivers' visualization_msgs/MarkerArray (Azure Kinect):
`azure_markers_to_people`. All readers give a `PeopleFrame` and refuse malformed content with
`InvalidSkeletons` (a ValueError whose `reason` names the case, for the node's counters).
"""
from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, Pose, PoseArray
from visualization_msgs.msg import Marker, MarkerArray

from synsp_core.skeletons import AZURE_KINECT32, SKELETONS, azure_kinect32_to_h36m17

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


class InvalidSkeletons(ValueError):
    """A SkeletonArray (or body-tracker MarkerArray) whose content breaks the contract. `reason` is
    one of INVALID_REASONS (a counter name for diagnostics); the message says what was read."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


INVALID_REASONS = ("malformed", "layout", "empty_skeleton", "joint_count", "confidence_length",
                   "confidence_range", "duplicate_id", "mixed_frames")


class Person(NamedTuple):
    id: int                        # the producer's id (input) or the node's global id (output)
    joints_mm: np.ndarray          # (J, 3) float64 mm, NaN = not detected
    confidence: np.ndarray | None  # (J,) float64 in [0, 1], None = unknown


class PeopleFrame(NamedTuple):
    stamp: Time | None   # capture time (None: a MarkerArray without joint markers, nobody seen)
    frame_id: str
    layout: str          # a name of synsp_core.skeletons.SKELETONS
    people: list[Person]


def _check_people(layout: str, people: list[Person], layouts) -> None:
    """Raises InvalidSkeletons unless `layout` is one of `layouts` (names of SKELETONS), every
    person fits it (joint count, confidence length and range) and the ids are unique. No people
    is valid: nobody in view."""
    layouts = (layouts,) if isinstance(layouts, str) else layouts
    if layout not in layouts or layout not in SKELETONS:
        raise InvalidSkeletons("layout", f"layout {layout!r} not accepted (accepted: {sorted(layouts)})")
    num_joints = SKELETONS[layout].num_joints
    seen = set()
    for person in people:
        joints = len(person.joints_mm)
        if joints == 0:
            raise InvalidSkeletons("empty_skeleton", f"person {person.id} has no joints")
        if joints != num_joints:
            raise InvalidSkeletons("joint_count", f"person {person.id} has {joints} joints, layout "
                                                  f"{layout} has {num_joints}")
        if person.confidence is not None:
            if len(person.confidence) != joints:
                raise InvalidSkeletons("confidence_length", f"person {person.id}: {len(person.confidence)} "
                                                            f"confidences for {joints} joints")
            if not ((person.confidence >= 0) & (person.confidence <= 1)).all():   # NaN fails too
                bad = person.confidence[~((person.confidence >= 0) & (person.confidence <= 1))]
                raise InvalidSkeletons("confidence_range", f"person {person.id}: confidence {bad[0]} "
                                                           "outside [0, 1]")
        if person.id in seen:
            raise InvalidSkeletons("duplicate_id", f"person id {person.id} appears twice")
        seen.add(person.id)


def skeleton_array_to_people(msg, layouts=tuple(SKELETONS)) -> PeopleFrame:
    """synsp_msgs/SkeletonArray -> PeopleFrame (joints in mm, float64; confidence None where the
    message has none). `layouts`: the layout names accepted (default: every known layout; a node
    passes its own).
    Raises InvalidSkeletons on malformed content (see _check_people)."""
    people = []
    for skeleton in msg.skeletons:
        joints = np.array([(p.x, p.y, p.z) for p in skeleton.joints], dtype=np.float64).reshape(-1, 3)
        with np.errstate(over="ignore"):   # beyond 1.8e305 m: inf, which the node's gate refuses
            joints = joints * MM_PER_M
        confidence = np.asarray(skeleton.confidence, dtype=np.float64) if len(skeleton.confidence) else None
        people.append(Person(int(skeleton.id), joints, confidence))
    _check_people(msg.layout, people, layouts)
    return PeopleFrame(msg.header.stamp, msg.header.frame_id, msg.layout, people)


class _Cdr:
    """A cursor over classic CDR (XCDR1) bytes; alignment counts from the end of the 4-byte
    encapsulation header. Reading past the end raises InvalidSkeletons('malformed')."""

    def __init__(self, body: memoryview, order: str):
        self.body, self.order, self.at = body, order, 0
        self.scalars = struct.Struct(f"{order}i"), struct.Struct(f"{order}I")   # struct: ~10x numpy per scalar

    def skip(self, size: int, align: int) -> int:
        """Align, check that `size` bytes follow, step over them; returns where they start."""
        self.at = (self.at + align - 1) & ~(align - 1)
        if size < 0 or self.at + size > len(self.body):
            raise InvalidSkeletons("malformed", f"truncated at byte {self.at} of {len(self.body)}")
        self.at += size
        return self.at - size

    def take(self, size: int, align: int) -> memoryview:
        start = self.skip(size, align)
        return self.body[start:start + size]

    def u32(self) -> int:
        return self.scalars[1].unpack_from(self.body, self.skip(4, 4))[0]

    def i32(self) -> int:
        return self.scalars[0].unpack_from(self.body, self.skip(4, 4))[0]

    def string(self) -> str:
        length = self.u32()
        raw = self.take(length, 1)
        if length < 1 or raw[-1] != 0:
            raise InvalidSkeletons("malformed", "bad string")
        return bytes(raw[:-1]).decode("utf-8", errors="replace")

    def array(self, count: int, dtype: str, itemsize: int) -> np.ndarray:
        if count > len(self.body):   # a count no message of this size can hold
            raise InvalidSkeletons("malformed", f"sequence of {count} in {len(self.body)} bytes")
        if count == 0:
            return np.zeros(0, dtype=dtype)
        return np.frombuffer(self.take(count * itemsize, itemsize), dtype=f"{self.order}{dtype}")


def parse_skeleton_array(raw: bytes, layouts=tuple(SKELETONS)) -> PeopleFrame:
    """Serialized synsp_msgs/SkeletonArray (as a raw subscription delivers it) -> PeopleFrame, read
    straight into numpy for classic CDR (any other encapsulation goes through rclpy's
    deserializer), same result as `skeleton_array_to_people`. Raises InvalidSkeletons, reason
    'malformed' for bytes that are not a SkeletonArray."""
    raw = memoryview(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] not in (0, 1):
        from rclpy.serialization import deserialize_message
        from synsp_msgs.msg import SkeletonArray
        try:
            msg = deserialize_message(bytes(raw), SkeletonArray)
        except Exception as error:   # rclpy raises plain RuntimeErrors / ValueErrors on bad bytes
            raise InvalidSkeletons("malformed", f"not a SkeletonArray: {error}") from None
        return skeleton_array_to_people(msg, layouts)
    cdr = _Cdr(raw[4:], "<" if raw[1] == 1 else ">")
    sec, nanosec = cdr.i32(), cdr.u32()
    if not 0 <= nanosec < 1_000_000_000:
        raise InvalidSkeletons("malformed", f"bad stamp nanoseconds {nanosec}")
    frame_id, layout = cdr.string(), cdr.string()
    count = cdr.u32()
    if count > len(raw):
        raise InvalidSkeletons("malformed", f"{count} skeletons in {len(raw)} bytes")
    people = []
    with np.errstate(over="ignore"):
        for _ in range(count):
            person_id = cdr.i32()
            joints = cdr.array(3 * cdr.u32(), "f8", 8).reshape(-1, 3)   # geometry_msgs/Point: x, y, z float64
            confidence = cdr.array(cdr.u32(), "f4", 4)
            people.append(Person(person_id, joints * MM_PER_M,
                                 confidence.astype(np.float64) if len(confidence) else None))
    _check_people(layout, people, layouts)
    return PeopleFrame(Time(sec=sec, nanosec=nanosec), frame_id, layout, people)


def people_to_skeleton_array(ids, joints_mm: np.ndarray, stamp: Time, frame_id: str, layout: str,
                             confidence: np.ndarray | None = None):
    """The node's output: ids (P,), joints (P, J, 3) mm, per-joint quality (P, J) or None ->
    synsp_msgs/SkeletonArray in metres. Confidence NaN becomes 0 and values are clipped to [0, 1]
    (the message's range). Raises ValueError on shapes that do not match or repeated ids."""
    from synsp_msgs.msg import Skeleton, SkeletonArray
    joints = np.asarray(joints_mm, dtype=np.float64)
    ids = [int(i) for i in np.asarray(ids).reshape(-1)]
    if not ids and joints.size == 0:   # nobody
        joints = joints.reshape(0, 0, 3)
    if joints.ndim != 3 or joints.shape[-1] != 3 or len(ids) != len(joints):
        raise ValueError(f"expected {len(ids)} people's joints shaped (P, J, 3), got {np.shape(joints_mm)}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"person ids repeat: {ids}")
    if confidence is not None:
        confidence = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0), 0.0, 1.0)
        if confidence.shape != joints.shape[:2]:
            raise ValueError(f"confidence shaped {confidence.shape}, joints {joints.shape}")
    msg = SkeletonArray()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.layout = layout
    skeletons = []
    for p, person_id in enumerate(ids):
        skeleton = Skeleton(id=person_id)
        skeleton.joints = [Point(x=x, y=y, z=z) for x, y, z in (joints[p] / MM_PER_M).tolist()]
        if confidence is not None:
            skeleton.confidence = confidence[p].tolist()
        skeletons.append(skeleton)
    msg.skeletons = skeletons
    return msg


AZURE_JOINTS_PER_BODY_ID = 100   # the Azure Kinect ROS driver: marker id = body id * 100 + joint index


class AzureBodies(NamedTuple):
    stamp: Time | None      # the joint markers' capture stamp; None when there is none (nobody seen)
    frame_id: str           # the markers' frame (the driver's depth camera frame)
    bodies: list[tuple[int, np.ndarray]]   # (body id, (32, 3) mm in the Azure order, NaN = no marker)
    ignored: dict[str, int]  # markers skipped: 'deleteall', 'other_action', 'unknown_joint'


def azure_markers_to_bodies(msg: MarkerArray) -> AzureBodies:
    """visualization_msgs/MarkerArray from the Azure Kinect ROS driver (`body_tracking_data`) ->
    AzureBodies: the markers grouped by body id (id // 100), each joint (id % 100, the SDK's
    32-joint order) at pose.position (metres -> mm), bodies in ascending id order. Skipped and
    counted: DELETEALL markers (some driver versions clear RViz with one first), other non-ADD
    actions, and joint indices outside 0..31 (or negative ids). Joints without a marker are NaN.
    Raises InvalidSkeletons: 'mixed_frames' when the joint markers disagree on stamp or frame,
    'duplicate_id' when one (body, joint) comes twice."""
    ignored = {"deleteall": 0, "other_action": 0, "unknown_joint": 0}
    joints: dict[int, np.ndarray] = {}
    stamp, frame_id = None, ""
    for marker in msg.markers:
        if marker.action == Marker.DELETEALL:
            ignored["deleteall"] += 1
            continue
        if marker.action != Marker.ADD:
            ignored["other_action"] += 1
            continue
        body, joint = divmod(int(marker.id), AZURE_JOINTS_PER_BODY_ID)
        if marker.id < 0 or joint >= AZURE_KINECT32.num_joints:
            ignored["unknown_joint"] += 1
            continue
        marker_stamp = (marker.header.stamp.sec, marker.header.stamp.nanosec)
        if stamp is None:
            stamp, frame_id = marker_stamp, marker.header.frame_id
        elif (marker_stamp, marker.header.frame_id) != (stamp, frame_id):
            raise InvalidSkeletons("mixed_frames", f"marker {marker.id} at {marker_stamp} in "
                                                   f"{marker.header.frame_id!r}, others at {stamp} in {frame_id!r}")
        body_joints = joints.setdefault(body, np.full((AZURE_KINECT32.num_joints, 3), np.nan))
        if not np.isnan(body_joints[joint]).all():
            raise InvalidSkeletons("duplicate_id", f"marker id {marker.id} (body {body}, joint {joint}) twice")
        p = marker.pose.position
        body_joints[joint] = (p.x * MM_PER_M, p.y * MM_PER_M, p.z * MM_PER_M)
    return AzureBodies(None if stamp is None else Time(sec=stamp[0], nanosec=stamp[1]), frame_id,
                       sorted(joints.items()), ignored)


def azure_markers_to_people(msg: MarkerArray) -> tuple[PeopleFrame, dict[str, int]]:
    """Azure Kinect body-tracking MarkerArray -> (PeopleFrame in layout h36m17, ids = the driver's
    body ids, confidence None: the markers carry none; the skipped-marker counts). The 32 joints
    are mapped by synsp_core.skeletons.azure_kinect32_to_h36m17. Raises InvalidSkeletons as
    `azure_markers_to_bodies`."""
    bodies = azure_markers_to_bodies(msg)
    people = [Person(body_id, azure_kinect32_to_h36m17(joints32), None) for body_id, joints32 in bodies.bodies]
    return PeopleFrame(bodies.stamp, bodies.frame_id, "h36m17", people), bodies.ignored


def diagnostic_values(msg: DiagnosticArray) -> dict[str, dict[str, str]]:
    """{status name: {key: value}} of a DiagnosticArray, for readers of the node's diagnostics."""
    return {status.name: {kv.key: kv.value for kv in status.values} for status in msg.status}
