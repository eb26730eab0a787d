"""PoseArray bytes -> numpy: the node's fast CDR reader agrees with rclpy's deserializer and
refuses bad bytes with MalformedMessage (the node then counts the message as invalid_malformed)."""
import struct

import numpy as np
import pytest
from rclpy.serialization import serialize_message

from synsp_ros.conversions import MalformedMessage, mm_to_pose_array, ns_to_stamp, parse_pose_array, pose_array_to_mm


@pytest.mark.parametrize("joints, frame_id", [(17, "world"), (14, "a_longer_frame_id"), (3, "w"), (0, "abc")])
def test_fast_reader_equals_rclpy(joints, frame_id):
    msg = mm_to_pose_array(np.random.default_rng(joints).normal(0, 300, (joints, 3)),
                           ns_to_stamp(1_795_309_601_141_553_172), frame_id)
    stamp, frame, positions = parse_pose_array(serialize_message(msg))
    assert (stamp.sec, stamp.nanosec, frame) == (msg.header.stamp.sec, msg.header.stamp.nanosec, frame_id)
    assert np.array_equal(positions, pose_array_to_mm(msg))


def test_big_endian_cdr():
    positions_m = np.arange(6, dtype=np.float64).reshape(2, 3) / 10
    name = b"world\x00"
    raw = b"\x00\x00\x00\x00" + struct.pack(">iII", 12, 345, len(name)) + name + b"\x00\x00" + struct.pack(">I", 2)
    assert (len(raw) - 4) % 8 == 0   # the poses start 8-aligned after the encapsulation header
    for p in positions_m:
        raw += struct.pack(">7d", *p, 0.0, 0.0, 0.0, 1.0)
    stamp, frame, positions = parse_pose_array(raw)
    assert (stamp.sec, stamp.nanosec, frame) == (12, 345, "world")
    assert np.allclose(positions, positions_m * 1000)


def test_bad_bytes_are_malformed():
    raw = serialize_message(mm_to_pose_array(np.ones((17, 3)), ns_to_stamp(5), "world"))
    for bad in (b"", raw[:10], raw[:20], raw[:-8], b"\x00\x01\x00\x00" + b"\xff" * 40):
        with pytest.raises(MalformedMessage):
            parse_pose_array(bad)
