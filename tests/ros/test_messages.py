"""synsp_msgs/SkeletonArray and the input adapters: a real round trip through DDS (two contexts in
this process, and a publisher in another process), numpy <-> message both ways, the fast CDR
reader against rclpy's deserializer, each malformed case refused with InvalidSkeletons (never
another exception), and the Azure Kinect body-tracking MarkerArray."""
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from geometry_msgs.msg import Point
from rclpy.serialization import serialize_message
from visualization_msgs.msg import Marker, MarkerArray

from ros_harness import REPO, RELIABLE, Probe, wait_for
from synsp_core.skeletons import AZURE_KINECT32, H36M17, azure_kinect32_to_h36m17
from synsp_msgs.msg import Skeleton, SkeletonArray
from synsp_ros.conversions import (INVALID_REASONS, InvalidSkeletons, PeopleFrame, azure_markers_to_bodies,
                                   azure_markers_to_people, ns_to_stamp, parse_skeleton_array,
                                   people_to_skeleton_array, skeleton_array_to_people, stamp_to_ns)

pytestmark = pytest.mark.ros
STAMP_NS = 1_795_309_601_141_553_172
TIMEOUT_S = 60.0   # bounds a hang on a loaded machine; not a speed check


def people(num_people: int = 3, joints: int = 17, seed: int = 0):
    """ids, (P, J, 3) mm with a few NaN joints, (P, J) confidence in [0, 1]."""
    rng = np.random.default_rng(seed)
    poses = rng.normal(0, 400, (num_people, joints, 3))
    poses[:, 3, :] = np.nan                      # joint 3 of everyone not detected
    confidence = rng.uniform(0, 1, (num_people, joints))
    confidence[:, 0] = (0.0, 1.0, 0.5)[:num_people] if num_people <= 3 else 1.0
    return [7, 3, 42][:num_people] if num_people <= 3 else list(range(num_people)), poses, confidence


def assert_people_equal(frame: PeopleFrame, ids, poses, confidence, layout="h36m17", frame_id="world"):
    assert (stamp_to_ns(frame.stamp), frame.frame_id, frame.layout) == (STAMP_NS, frame_id, layout)
    assert [p.id for p in frame.people] == list(ids)
    for p, person in enumerate(frame.people):
        assert person.joints_mm.dtype == np.float64 and person.joints_mm.shape == poses[p].shape
        np.testing.assert_array_equal(np.isnan(person.joints_mm), np.isnan(poses[p]))
        np.testing.assert_allclose(person.joints_mm, poses[p], rtol=0, atol=1e-9)   # float64 in the message
        if confidence is None:
            assert person.confidence is None
        else:
            np.testing.assert_allclose(person.confidence, confidence[p], rtol=0, atol=1e-7)   # float32


def test_numpy_message_round_trip():
    ids, poses, confidence = people()
    msg = people_to_skeleton_array(ids, poses, ns_to_stamp(STAMP_NS), "world", "h36m17", confidence)
    assert isinstance(msg, SkeletonArray) and len(msg.skeletons) == 3 and len(msg.skeletons[0].joints) == 17
    assert msg.skeletons[1].joints[0].x == pytest.approx(poses[1, 0, 0] / 1000)   # metres
    assert_people_equal(skeleton_array_to_people(msg), ids, poses, confidence)
    assert_people_equal(parse_skeleton_array(serialize_message(msg)), ids, poses, confidence)
    without = people_to_skeleton_array(ids, poses, ns_to_stamp(STAMP_NS), "world", "h36m17")
    assert all(len(s.confidence) == 0 for s in without.skeletons)
    assert_people_equal(skeleton_array_to_people(without), ids, poses, None)


def test_output_confidence_is_made_valid_and_shapes_checked():
    ids, poses, confidence = people(2)
    confidence[0, :3] = (np.nan, 1.0000001, -1e-9)   # a quality computed in floating point
    msg = people_to_skeleton_array(ids, poses, ns_to_stamp(STAMP_NS), "world", "h36m17", confidence)
    assert list(msg.skeletons[0].confidence[:3]) == [0.0, 1.0, 0.0]
    skeleton_array_to_people(msg)   # valid
    nobody = people_to_skeleton_array([], np.zeros((0, 17, 3)), ns_to_stamp(STAMP_NS), "world", "h36m17")
    assert nobody.skeletons == [] and skeleton_array_to_people(nobody).people == []
    for bad_ids, bad_poses, bad_conf in (([1, 2, 3], poses, None), ([1, 1], poses, None),
                                         (ids, poses[..., :2], None), (ids, poses, confidence[:, :5])):
        with pytest.raises(ValueError):
            people_to_skeleton_array(bad_ids, bad_poses, ns_to_stamp(STAMP_NS), "world", "h36m17", bad_conf)


@pytest.mark.parametrize("num_people, with_confidence, frame_id, layout",
                         [(0, False, "world", "h36m17"), (1, True, "w", "coco17"), (3, True, "a_longer_frame", "h36m17"),
                          (3, False, "map", "lsp14"), (6, True, "", "h36m17")])
def test_fast_reader_equals_rclpy(num_people, with_confidence, frame_id, layout):
    from synsp_core.skeletons import get_skeleton
    ids, poses, confidence = people(num_people, get_skeleton(layout).num_joints, seed=num_people)
    msg = people_to_skeleton_array(ids, poses, ns_to_stamp(STAMP_NS), frame_id, layout,
                                   confidence if with_confidence else None)
    raw = serialize_message(msg)
    fast, reference = parse_skeleton_array(raw), skeleton_array_to_people(msg)
    assert (fast.stamp, fast.frame_id, fast.layout) == (reference.stamp, reference.frame_id, reference.layout)
    assert len(fast.people) == len(reference.people) == num_people
    for a, b in zip(fast.people, reference.people):
        assert a.id == b.id
        np.testing.assert_array_equal(a.joints_mm, b.joints_mm)
        assert (a.confidence is None) == (b.confidence is None)
        if a.confidence is not None:
            np.testing.assert_array_equal(a.confidence, b.confidence)


def skeleton_array(layout="h36m17", joints=(17, 17), confidences=(17, 17), ids=(1, 2), conf_value=0.5):
    msg = SkeletonArray(layout=layout)
    msg.header.stamp = ns_to_stamp(STAMP_NS)
    msg.header.frame_id = "world"
    for person_id, n_joints, n_conf in zip(ids, joints, confidences):
        msg.skeletons.append(Skeleton(id=person_id, joints=[Point(x=0.1 * j, y=1.0, z=2.0) for j in range(n_joints)],
                                      confidence=[conf_value] * n_conf))
    return msg


MALFORMED = {   # reason -> a message with that defect
    "layout": skeleton_array(layout="body25"),
    "empty_skeleton": skeleton_array(joints=(17, 0), confidences=(17, 0)),
    "joint_count": skeleton_array(joints=(17, 16), confidences=(17, 16)),
    "confidence_length": skeleton_array(confidences=(17, 5)),
    "confidence_range": skeleton_array(conf_value=1.5),
    "duplicate_id": skeleton_array(ids=(4, 4)),
}


@pytest.mark.parametrize("reason", sorted(MALFORMED))
def test_malformed_content_is_refused_clearly(reason):
    msg = MALFORMED[reason]
    for parse in (skeleton_array_to_people, lambda m: parse_skeleton_array(serialize_message(m))):
        with pytest.raises(InvalidSkeletons) as error:
            parse(msg)
        assert error.value.reason == reason and reason in INVALID_REASONS and isinstance(error.value, ValueError)


@pytest.mark.parametrize("bad", [np.nan, -0.01, np.inf])
def test_confidence_nan_or_outside_is_refused(bad):
    msg = skeleton_array()
    msg.skeletons[1].confidence[4] = bad
    for parse in (skeleton_array_to_people, lambda m: parse_skeleton_array(serialize_message(m))):
        with pytest.raises(InvalidSkeletons, match="confidence_range"):
            parse(msg)


def test_layout_not_accepted_by_the_caller():
    msg = skeleton_array()
    assert skeleton_array_to_people(msg, layouts=("h36m17",)).layout == "h36m17"
    with pytest.raises(InvalidSkeletons, match="layout"):
        parse_skeleton_array(serialize_message(msg), layouts=("coco17",))
    with pytest.raises(InvalidSkeletons, match="layout"):
        skeleton_array_to_people(skeleton_array(layout=""))


def test_bad_bytes_raise_only_invalid_skeletons():
    """Truncations, flipped bytes and garbage: parsed or refused with InvalidSkeletons, nothing else."""
    ids, poses, confidence = people()
    raw = serialize_message(people_to_skeleton_array(ids, poses, ns_to_stamp(STAMP_NS), "world", "h36m17", confidence))
    for bad in (b"", raw[:3], raw[:10], raw[:40], raw[:-4], raw[:-200], b"\x00\x01\x00\x00" + b"\xff" * 64):
        with pytest.raises(InvalidSkeletons) as error:
            parse_skeleton_array(bad)
        assert error.value.reason == "malformed"
    rng = np.random.default_rng(0)
    for trial in range(300):
        corrupted = bytearray(raw)
        for at in rng.integers(4, len(raw), 3):
            corrupted[at] = rng.integers(0, 256)
        if trial % 10 == 0:   # another encapsulation: rclpy's deserializer reads it
            corrupted[1] = 3
        try:
            frame = parse_skeleton_array(bytes(corrupted))
        except InvalidSkeletons:
            continue
        assert isinstance(frame, PeopleFrame)


# ---------------------------------------------------------------- through DDS

def test_round_trip_through_a_subscription():
    """Publisher and subscribers in two contexts (two DDS participants): the typed and the raw
    (serialized) subscription both give back what was sent."""
    ids, poses, confidence = people()
    sender, receiver = Probe("skeleton_sender"), Probe("skeleton_receiver")
    try:
        typed = receiver.subscribe(SkeletonArray, "/test_messages/people")
        raw = []
        receiver.node.create_subscription(SkeletonArray, "/test_messages/people", raw.append, RELIABLE, raw=True)
        publisher = sender.node.create_publisher(SkeletonArray, "/test_messages/people", RELIABLE)
        wait_for(lambda: publisher.get_subscription_count() >= 2, TIMEOUT_S, "the two subscriptions")
        publisher.publish(people_to_skeleton_array(ids, poses, ns_to_stamp(STAMP_NS), "world", "h36m17", confidence))
        wait_for(lambda: receiver.snapshot(typed) and raw, TIMEOUT_S, "the message")
        assert_people_equal(skeleton_array_to_people(receiver.snapshot(typed)[0][1]), ids, poses, confidence)
        assert_people_equal(parse_skeleton_array(raw[0]), ids, poses, confidence)
    finally:
        sender.close()
        receiver.close()


PUBLISHER = textwrap.dedent("""
    import sys, time, numpy as np, rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from synsp_msgs.msg import SkeletonArray
    from synsp_ros.conversions import ns_to_stamp, people_to_skeleton_array
    rclpy.init()
    node = rclpy.create_node("skeleton_publisher_process")
    pub = node.create_publisher(SkeletonArray, "/test_messages/from_process",
                                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    poses = np.arange(2 * 17 * 3, dtype=np.float64).reshape(2, 17, 3)
    msg = people_to_skeleton_array([5, 9], poses, ns_to_stamp(%d), "world", "h36m17", np.full((2, 17), 0.25))
    end = time.monotonic() + %f
    while time.monotonic() < end:   # until the test has its message and stops this process
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.1)
""") % (STAMP_NS, TIMEOUT_S + 30)


def test_round_trip_between_processes(tmp_path):
    """Another process (the node's situation) loads the generated type support and publishes."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    log = tmp_path / "publisher.log"
    probe = Probe("skeleton_listener")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", PUBLISHER], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        received = probe.subscribe(SkeletonArray, "/test_messages/from_process")
        wait_for(lambda: probe.snapshot(received) or proc.poll() is not None, TIMEOUT_S, "a message from the other process")
        assert proc.poll() is None, f"publisher exited:\n{log.read_text()}"
        frame = skeleton_array_to_people(probe.snapshot(received)[0][1])
        assert [p.id for p in frame.people] == [5, 9] and stamp_to_ns(frame.stamp) == STAMP_NS
        np.testing.assert_allclose(frame.people[1].joints_mm, np.arange(51, 102).reshape(17, 3))
        np.testing.assert_allclose(frame.people[0].confidence, 0.25)
    finally:
        probe.close()
        proc.terminate()
        proc.wait(30)


# ---------------------------------------------------------------- Azure Kinect MarkerArray

def azure_marker_array(bodies: dict[int, np.ndarray], stamp_ns=STAMP_NS, frame_id="depth_camera_link",
                       delete_all_first=True, skip=()) -> MarkerArray:
    """What the Azure Kinect ROS driver publishes: (optionally) a DELETEALL marker, then one SPHERE
    per joint, id = body id * 100 + joint index, position in metres; `skip`: (body, joint) left out."""
    msg = MarkerArray()
    if delete_all_first:
        msg.markers.append(Marker(action=Marker.DELETEALL))
    for body_id, joints_mm in bodies.items():
        for j, (x, y, z) in enumerate((joints_mm / 1000).tolist()):
            if (body_id, j) in skip:
                continue
            marker = Marker(id=body_id * 100 + j, type=Marker.SPHERE, action=Marker.ADD)
            marker.header.stamp = ns_to_stamp(stamp_ns)
            marker.header.frame_id = frame_id
            marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = x, y, z
            marker.pose.orientation.w = 1.0
            msg.markers.append(marker)
    return msg


def azure_body(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 300, (AZURE_KINECT32.num_joints, 3)) + (0, 0, 2000)


def test_azure_markers_to_people():
    bodies = {12: azure_body(1), 3: azure_body(2)}
    msg = azure_marker_array(bodies, skip={(3, 18)})   # body 3's left hip has no marker
    extra = Marker(id=12 * 100 + 45, action=Marker.ADD)   # not a joint index of the SDK
    extra.header = msg.markers[1].header
    msg.markers += [extra, Marker(id=1, action=Marker.DELETE)]
    frame, ignored = azure_markers_to_people(msg)
    assert ignored == {"deleteall": 1, "other_action": 1, "unknown_joint": 1}
    assert (stamp_to_ns(frame.stamp), frame.frame_id, frame.layout) == (STAMP_NS, "depth_camera_link", "h36m17")
    assert [p.id for p in frame.people] == [3, 12] and all(p.confidence is None for p in frame.people)
    expected_12 = azure_kinect32_to_h36m17(bodies[12])
    np.testing.assert_allclose(frame.people[1].joints_mm, expected_12, atol=1e-9)
    body3 = frame.people[0].joints_mm
    missing = [H36M17.joint_names.index(n) for n in ("pelvis", "l_hip")]   # made from the left hip
    assert np.isnan(body3[missing]).all() and np.isfinite(np.delete(body3, missing, axis=0)).all()
    raw = azure_markers_to_bodies(msg)
    assert [b for b, _ in raw.bodies] == [3, 12] and np.isnan(raw.bodies[0][1][18]).all()
    np.testing.assert_allclose(raw.bodies[1][1], bodies[12], atol=1e-9)


def test_azure_markers_nobody_and_bad_arrays():
    for msg in (MarkerArray(), azure_marker_array({})):   # the driver with nobody in view
        frame, ignored = azure_markers_to_people(msg)
        assert frame.stamp is None and frame.people == [] and ignored["unknown_joint"] == 0
    mixed = azure_marker_array({1: azure_body(1)})
    mixed.markers[5].header.stamp = ns_to_stamp(STAMP_NS + 33_000_000)
    other_frame = azure_marker_array({1: azure_body(1), 2: azure_body(2)})
    other_frame.markers[-1].header.frame_id = "rgb_camera_link"
    twice = azure_marker_array({1: azure_body(1)})
    twice.markers.append(twice.markers[7])
    for msg, reason in ((mixed, "mixed_frames"), (other_frame, "mixed_frames"), (twice, "duplicate_id")):
        with pytest.raises(InvalidSkeletons) as error:
            azure_markers_to_people(msg)
        assert error.value.reason == reason


def test_azure_markers_through_a_subscription():
    """The MarkerArray as it arrives from DDS (the driver's topic name) parses the same."""
    bodies = {0: azure_body(5)}
    sender, receiver = Probe("azure_sender"), Probe("azure_receiver")
    try:
        received = receiver.subscribe(MarkerArray, "/body_tracking_data")
        publisher = sender.node.create_publisher(MarkerArray, "/body_tracking_data", RELIABLE)
        wait_for(lambda: publisher.get_subscription_count() >= 1, TIMEOUT_S, "the subscription")
        publisher.publish(azure_marker_array(bodies))
        wait_for(lambda: receiver.snapshot(received), TIMEOUT_S, "the markers")
        frame, _ = azure_markers_to_people(receiver.snapshot(received)[0][1])
        np.testing.assert_allclose(frame.people[0].joints_mm, azure_kinect32_to_h36m17(bodies[0]), atol=1e-9)
    finally:
        sender.close()
        receiver.close()
