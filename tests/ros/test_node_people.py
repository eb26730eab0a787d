"""refine_node with several people: SkeletonArray cameras with their own ids, an Azure Kinect
body-tracking camera, and bad messages. The node runs in its own process (random identity
checkpoint); the tests wait for conditions, never for a fixed time, and judge what arrived."""
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point
from rclpy.serialization import serialize_message
from visualization_msgs.msg import Marker, MarkerArray

from ros_harness import REPO, RELIABLE, NodeProcess, Probe, latest_diagnostics, now_ns, random_checkpoint
from synsp_core.skeletons import AZURE_KINECT32, H36M17, azure_kinect32_to_h36m17
from synsp_msgs.msg import Skeleton, SkeletonArray
from synsp_ros.conversions import ns_to_stamp, skeleton_array_to_people, stamp_to_ns
from synsp_ros.refine_node import PARAMETERS

pytestmark = pytest.mark.ros
FRAME_NS = 33_333_333
EMIT_DELAY = 3
J = 17
WAIT_S = 90.0   # bounds a hang on a loaded machine; not a speed check


def room(frames: int, people: int) -> np.ndarray:
    """(P, T, J, 3) mm: real CMU motion, people 1.5 m apart, walking slowly along x."""
    clips = np.load(REPO / "synsp_core" / "data" / "cmu_test_clips_120fps.npz")
    out = []
    for p, name in enumerate(["walking_1", "soccer_1", "basketball_1"][:people]):
        clip = clips[name][::4][:frames].astype(np.float64)
        clip = clip - clip[:1, :1]
        clip[..., 1] += 1500.0 * p
        clip[..., 0] += np.linspace(0, 600, frames)[:, None]
        out.append(clip)
    return np.stack(out)


def skeleton_array(stamp_ns: int, people, frame_id: str = "world", layout: str = "h36m17") -> SkeletonArray:
    """people: [(id, joints (N, 3) mm, confidence (N,) or None)] -> SkeletonArray (any shapes: bad ones too)."""
    msg = SkeletonArray(layout=layout)
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp_ns), frame_id
    for person_id, joints, confidence in people:
        skeleton = Skeleton(id=int(person_id))
        skeleton.joints = [Point(x=x, y=y, z=z) for x, y, z in (np.asarray(joints) / 1000.0).tolist()]
        if confidence is not None:
            skeleton.confidence = [float(c) for c in confidence]
        msg.skeletons.append(skeleton)
    return msg


@dataclass
class PeopleSetup:
    node: NodeProcess
    probe: Probe
    publishers: list
    people: list        # SkeletonArray messages of /refine_node/people
    markers: list       # MarkerArray messages of /refine_node/markers
    diagnostics: list


@contextmanager
def people_node(tmp_path, topics, types, probe_name, **params):
    """A refine_node taking `topics` of `types` (random checkpoint, reliable inputs, fast
    diagnostics), and a probe publishing on them, subscribed to its outputs."""
    message = {"skeleton_array": SkeletonArray, "azure_kinect": MarkerArray}
    node = NodeProcess("synsp_ros.refine_node", {
        "checkpoint": str(random_checkpoint(tmp_path)), "input_topics": list(topics), "input_types": list(types),
        "input_qos": "reliable", "diagnostics_period": 0.2, "emit_delay": EMIT_DELAY, "view_timeout": 10.0,
        **params}, tmp_path, "refine")
    probe = Probe(probe_name)
    try:
        kinds = types * len(topics) if len(types) == 1 else types
        publishers = [probe.node.create_publisher(message[kind], topic, RELIABLE) for topic, kind in zip(topics, kinds)]
        setup = PeopleSetup(node, probe, publishers, probe.subscribe(SkeletonArray, "/refine_node/people"),
                            probe.subscribe(MarkerArray, "/refine_node/markers"),
                            probe.subscribe(DiagnosticArray, "/diagnostics"))
        probe.wait_for_subscribers(publishers, node)
        yield setup
    finally:
        probe.close()
        assert node.stop() == 0


def received_people(setup: PeopleSetup) -> list:
    """[(stamp ns, PeopleFrame)] of the ~/people messages so far."""
    return [(stamp_to_ns(msg.header.stamp), skeleton_array_to_people(msg))
            for _, msg in setup.probe.snapshot(setup.people)]


def wait_for_last_frame(setup: PeopleSetup, stamps: list, what: str) -> list:
    """Until the output of the last frame that must come out while the cameras still send
    (emit_delay frames before the end); every output stamp a capture stamp, increasing."""
    last_expected = stamps[-1 - EMIT_DELAY]
    setup.probe.wait_for(lambda: max([s for s, _ in received_people(setup)], default=0) >= last_expected,
                         WAIT_S, what)
    out = received_people(setup)
    got = [s for s, _ in out]
    unsent = sorted(set(got) - set(stamps))
    assert not unsent, f"not capture stamps: {[(s - stamps[0]) / FRAME_NS for s in unsent]} frames after the first"
    assert (np.diff(got) > 0).all(), "stamps increasing"
    assert setup.node.alive()
    return out


def assign(out, truth, stamps, tolerance_mm: float, warm_up: int = 6) -> dict:
    """Check every person in every output after warm-up: finite, close to one true person, and a
    global id stays with its person. Returns {global id: true person}."""
    who = {}
    index = {s: k for k, s in enumerate(stamps)}
    for stamp, frame in out:
        t = index[stamp]
        if t < warm_up:
            continue
        for person in frame.people:
            assert np.isfinite(person.joints_mm).all() and person.joints_mm.shape == (J, 3)
            assert person.confidence is not None and ((person.confidence >= 0) & (person.confidence <= 1)).all()
            errors = np.linalg.norm(person.joints_mm[None] - truth[:, t], axis=-1).mean(axis=-1)
            p = int(errors.argmin())
            assert errors[p] < tolerance_mm, f"person {person.id} at frame {t}: {errors[p]:.0f} mm from the truth"
            assert who.setdefault(person.id, p) == p, f"global id {person.id} moved to another person at frame {t}"
    return who


def test_people_on_skeleton_array_cameras_get_stable_global_ids(tmp_path):
    """3 people, 3 cameras, each camera with its own ids and order (camera 2 switches ids halfway,
    camera 1 misses person 0 for a while): ~/people has the 3 of them with stable global ids.
    With people_window_budget 1 (one person's window per frame, the newcomers' at once), every
    frame still has everyone."""
    topics = [f"people_cam_{v}/skeletons" for v in range(3)]
    frames, views, P = 60, 3, 3
    truth = room(frames, P)
    rng = np.random.default_rng(1)
    ids = np.stack([rng.permutation(90)[:P] + 10 * v for v in range(views)])   # camera v's id of person p
    with people_node(tmp_path, topics, ["skeleton_array"], "people_probe", people_window_budget=1) as setup:
        t0 = now_ns()
        stamps = [t0 + k * FRAME_NS for k in range(frames)]
        for t, stamp in enumerate(stamps):
            if t == 30:
                ids[2] = ids[2][::-1] + 500                                    # camera 2's tracker restarts
            for v, publisher in enumerate(setup.publishers):
                seen = [p for p in rng.permutation(P) if not (v == 1 and p == 0 and 20 <= t < 35)]
                publisher.publish(skeleton_array(stamp, [(ids[v, p], truth[p, t] + rng.normal(0, 20, (J, 3)),
                                                          rng.uniform(0.6, 1.0, J)) for p in seen]))
            time.sleep(1 / 15)   # half real time: a loaded machine keeps up

        out = wait_for_last_frame(setup, stamps, "~/people up to the last complete frame")
        who = assign(out, truth, stamps, tolerance_mm=60.0)
        assert sorted(who) == [0, 1, 2] and sorted(who.values()) == [0, 1, 2]
        steady = [frame for stamp, frame in out if stamps.index(stamp) >= 6]
        assert len(steady) >= 20 and all(len(frame.people) == 3 for frame in steady)
        setup.probe.wait_for(lambda: latest_diagnostics(setup.probe, setup.diagnostics, "people").get("tracked") == "3",
                             30, "tracked 3 in /diagnostics")
        values = latest_diagnostics(setup.probe, setup.diagnostics, "people")
        assert values["born"] == "3" and values["lost"] == "0" and int(values["id_switches_absorbed"]) >= 3
        refiner = latest_diagnostics(setup.probe, setup.diagnostics, "refiner")
        assert int(refiner["model_calls"]) <= int(refiner["frames_in"]) and refiner["max_batch"] == "3"
        assert int(refiner["skipped_windows"]) >= int(refiner["windows"]) > 0   # 2 of 3 skipped
        # markers: a colour per person and its id as text
        setup.probe.wait_for(lambda: setup.probe.snapshot(setup.markers), 30, "~/markers")
        markers = setup.probe.snapshot(setup.markers)[-1][1].markers
        texts = {m.ns: m.text for m in markers if m.type == Marker.TEXT_VIEW_FACING}
        assert texts == {f"person_{i}": str(i) for i in range(3)}
        colours = {m.ns: (m.color.r, m.color.g, m.color.b) for m in markers if m.type == Marker.SPHERE_LIST}
        assert len(set(colours.values())) == 3
    assert "person 0 tracked" in setup.node.log() and "changed its id of person" in setup.node.log()


def azure_markers(stamp_ns: int, bodies: dict, frame_id: str = "depth_camera_link", deleteall: bool = True):
    """The Azure Kinect driver's body_tracking_data: one marker per joint, id = body id * 100 + joint."""
    msg = MarkerArray()
    if deleteall:
        msg.markers.append(Marker(action=Marker.DELETEALL))
    for body_id, joints32 in bodies.items():
        for j, (x, y, z) in enumerate((joints32 / 1000.0).tolist()):
            marker = Marker(id=body_id * 100 + j, type=Marker.SPHERE, action=Marker.ADD)
            marker.header.stamp, marker.header.frame_id = ns_to_stamp(stamp_ns), frame_id
            marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = x, y, z
            marker.pose.orientation.w = 1.0
            msg.markers.append(marker)
    return msg


def h36m_to_azure(joints17: np.ndarray) -> np.ndarray:
    """An Azure Kinect 32-joint body from a Human3.6M-17 one (each Azure joint at the nearest H36M joint)."""
    h = {name: joints17[i] for i, name in enumerate(H36M17.joint_names)}
    source = {"pelvis": "pelvis", "spine_navel": "spine", "spine_chest": "spine", "neck": "thorax",
              "l_clavicle": "thorax", "r_clavicle": "thorax", "head": "neck", "nose": "neck", "l_eye": "neck",
              "r_eye": "neck", "l_ear": "neck", "r_ear": "neck", "l_hand": "l_wrist", "l_handtip": "l_wrist",
              "l_thumb": "l_wrist", "r_hand": "r_wrist", "r_handtip": "r_wrist", "r_thumb": "r_wrist",
              "l_foot": "l_ankle", "r_foot": "r_ankle"}
    return np.stack([h[source.get(name, name)] for name in AZURE_KINECT32.joint_names])


def test_azure_kinect_camera_end_to_end(tmp_path):
    """One Azure Kinect driver (MarkerArray, 32 joints, its frame) and one SkeletonArray camera: 2
    people out with stable ids; nobody-in-view arrays, DELETEALL markers and bad arrays handled."""
    topics = ["azure/body_tracking_data", "people_cam/skeletons"]
    frames, P = 50, 2
    truth17 = room(frames, P)
    azure = np.stack([[h36m_to_azure(truth17[p, t]) for t in range(frames)] for p in range(P)])
    truth = azure_kinect32_to_h36m17(azure)   # what the mapping makes of it: the truth to compare with
    rng = np.random.default_rng(2)
    bad = {20: "duplicate_marker", 25: "mixed_frames", 30: "frame_id"}
    with people_node(tmp_path, topics, ["azure_kinect", "skeleton_array"], "azure_probe",
                     frame_id="depth_camera_link") as setup:
        t0 = now_ns()
        stamps = [t0 + k * FRAME_NS for k in range(frames)]
        for t, stamp in enumerate(stamps):
            bodies = {body_id: azure[p, t] + rng.normal(0, 15, (32, 3)) for p, body_id in enumerate((1, 2))}
            msg = azure_markers(stamp, bodies)
            if t in (40, 41):   # nobody in the Azure's view: the driver's array has no marker, so no stamp
                msg = azure_markers(0, {})
            elif bad.get(t) == "duplicate_marker":
                msg.markers.append(msg.markers[5])
            elif bad.get(t) == "mixed_frames":
                msg.markers[7].header.frame_id = "camera_base"
            elif bad.get(t) == "frame_id":
                msg = azure_markers(stamp, bodies, frame_id="camera_base")
            setup.publishers[0].publish(msg)
            setup.publishers[1].publish(skeleton_array(stamp, [(7 - p, truth[p, t] + rng.normal(0, 20, (J, 3)), None)
                                                               for p in range(P)], frame_id="depth_camera_link"))
            time.sleep(1 / 15)

        out = wait_for_last_frame(setup, stamps, "~/people up to the last complete frame")
        who = assign(out, truth, stamps, tolerance_mm=60.0)
        assert sorted(who) == [0, 1] and sorted(who.values()) == [0, 1]
        assert sum(len(frame.people) == 2 for _, frame in out) >= 20
        expected = {"invalid_duplicate_id": "1", "invalid_mixed_frames": "1", "invalid_frame_id": "1",
                    "markers_ignored_deleteall": str(frames - 2), "unstamped_estimated": "2", "dropped_duplicate": "0",
                    "dropped_out_of_order": "0"}
        setup.probe.wait_for(
            lambda: expected.items() <= latest_diagnostics(setup.probe, setup.diagnostics, "camera 0").items(), 30,
            f"{expected} in camera 0's diagnostics")
        assert latest_diagnostics(setup.probe, setup.diagnostics, "camera 0")["input_type"] == "azure_kinect"
        # frames 40 and 41 (nobody in the Azure's view, at the capture times the node estimated) came
        # out at those very stamps, with the people camera 1 saw
        estimated = [frame for stamp, frame in out if stamp in stamps[40:42]]
        assert len(estimated) == 2 and all(len(frame.people) == 2 for frame in estimated)
        assert setup.node.alive()
    assert "skipping a message: duplicate_id" in setup.node.log()


# frame -> bad content camera 0 sends INSTEAD of its message (2 people, ids 4 and 5)
BAD = {10: "joint_count", 14: "all_nan_person", 18: "duplicate_ids", 22: "frame_id", 26: "layout",
       30: "malformed", 34: "confidence_range", 38: "far_joint", 42: "nan_joints"}
EXPECTED = {"invalid_joint_count": "1", "invalid_duplicate_id": "1", "invalid_frame_id": "1", "invalid_layout": "1",
            "invalid_malformed": "1", "invalid_confidence_range": "1", "invalid_error": "0",
            "person_nonfinite": "1", "person_implausible": "0", "gated_out_of_range": "1", "gated_nonfinite": str(J + 2)}


def bad_message(kind: str, stamp_ns: int, people: list):
    """Camera 0's message of this kind from its good people [(id, joints, confidence)]."""
    people = [(i, j.copy(), c) for i, j, c in people]
    frame_id, layout = "world", "h36m17"
    if kind == "joint_count":
        people[0] = (people[0][0], people[0][1][:16], None)
    elif kind == "all_nan_person":
        people[1] = (people[1][0], np.full((J, 3), np.nan), None)
    elif kind == "duplicate_ids":
        people[1] = (people[0][0], people[1][1], people[1][2])
    elif kind == "frame_id":
        frame_id = "camera_link"
    elif kind == "layout":
        layout = "coco17"
    elif kind == "confidence_range":
        people[0] = (people[0][0], people[0][1], np.full(J, 1.5))
    elif kind == "far_joint":
        people[0][1][4] = 1e12                                   # mm: beyond 10 km
    elif kind == "nan_joints":
        people[0][1][[2, 3]] = np.nan                            # not detected: missing joints, no warning
    msg = skeleton_array(stamp_ns, people, frame_id, layout)
    return serialize_message(msg)[:-40] if kind == "malformed" else msg


def test_bad_messages_are_counted_and_skipped(tmp_path):
    topics = ["bad_cam_0/skeletons", "bad_cam_1/skeletons"]
    frames, P = 50, 2
    truth = room(frames, P)
    rng = np.random.default_rng(3)
    with people_node(tmp_path, topics, ["skeleton_array", "skeleton_array"], "people_bad_probe") as setup:
        t0 = now_ns()
        stamps = [t0 + k * FRAME_NS for k in range(frames)]
        for t, stamp in enumerate(stamps):
            for v, publisher in enumerate(setup.publishers):
                people = [(4 + p, truth[p, t] + rng.normal(0, 20, (J, 3)), None) for p in range(P)]
                publisher.publish(bad_message(BAD[t], stamp, people) if v == 0 and t in BAD
                                  else skeleton_array(stamp, people))
            time.sleep(1 / 15)

        out = wait_for_last_frame(setup, stamps, "~/people up to the last complete frame")
        setup.probe.wait_for(
            lambda: EXPECTED.items() <= latest_diagnostics(setup.probe, setup.diagnostics, "camera 0").items(), 30,
            "the bad messages counted in camera 0's diagnostics")
        camera_1 = latest_diagnostics(setup.probe, setup.diagnostics, "camera 1")
        assert all(camera_1[key] == "0" for key in EXPECTED)
        who = assign(out, truth, stamps, tolerance_mm=80.0)
        assert sorted(who) == [0, 1]
        steady = [frame for stamp, frame in out if stamps.index(stamp) >= 6]
        assert len(steady) >= 20 and all(len(frame.people) == 2 for frame in steady)   # camera 1 saw both
        assert setup.node.alive()
    log = setup.node.log()
    assert "camera 0 (bad_cam_0/skeletons): skipping a message: joint_count (person 4 has 16 joints" in log
    assert "skipping person 5: no joint passes the plausibility gate (nonfinite)" in log
    assert "Traceback" not in log


def test_input_types_must_fit_the_topics(tmp_path):
    node = NodeProcess("synsp_ros.refine_node", {
        "checkpoint": str(random_checkpoint(tmp_path)), "input_topics": ["a", "b", "c"],
        "input_types": ["skeleton_array", "pose_array"]}, tmp_path, "refine_types")
    assert node.wait_exit() == 1
    assert "input_types lists 2 types for 3 input_topics" in node.log() and "Traceback" not in node.log()
    node = NodeProcess("synsp_ros.refine_node", {
        "checkpoint": str(random_checkpoint(tmp_path)), "input_types": ["kinect"]}, tmp_path, "refine_kinect")
    assert node.wait_exit() == 1
    assert "input_types must be among" in node.log()
    assert PARAMETERS["input_types"][0] == ["pose_array"] and PARAMETERS["multi_person"][0] is False


def test_pose_array_cameras_with_multi_person(tmp_path):
    """multi_person with plain PoseArray cameras (one person per message): ~/people, and no ~/refined."""
    from geometry_msgs.msg import PoseArray
    from synsp_ros.conversions import mm_to_pose_array
    topics = ["pose_cam_0/skeleton", "pose_cam_1/skeleton"]
    frames = 40
    truth = room(frames, 1)
    rng = np.random.default_rng(4)
    node = NodeProcess("synsp_ros.refine_node", {
        "checkpoint": str(random_checkpoint(tmp_path)), "input_topics": topics, "multi_person": True,
        "input_qos": "reliable", "emit_delay": EMIT_DELAY, "view_timeout": 10.0}, tmp_path, "refine")
    probe = Probe("pose_people_probe")
    try:
        publishers = [probe.node.create_publisher(PoseArray, topic, RELIABLE) for topic in topics]
        setup = PeopleSetup(node, probe, publishers, probe.subscribe(SkeletonArray, "/refine_node/people"), [], [])
        probe.wait_for_subscribers(publishers, node)
        t0 = now_ns()
        stamps = [t0 + k * FRAME_NS for k in range(frames)]
        for t, stamp in enumerate(stamps):
            for publisher in publishers:
                publisher.publish(mm_to_pose_array(truth[0, t] + rng.normal(0, 20, (J, 3)), ns_to_stamp(stamp), "world"))
            time.sleep(1 / 15)
        out = wait_for_last_frame(setup, stamps, "~/people up to the last complete frame")
        assert assign(out, truth, stamps, tolerance_mm=60.0) == {0: 0}
        assert probe.node.count_publishers("/refine_node/people") == 1
        assert probe.node.count_publishers("/refine_node/refined") == 0
    finally:
        probe.close()
        assert node.stop() == 0
