"""refine_node parameters: defaults, rejected values (at start and at run time), emit_delay live."""
import pytest
import yaml
from geometry_msgs.msg import PoseArray

from ros_harness import REPO, CameraRig, NodeProcess, Probe, now_ns, random_checkpoint, refined_poses
from synsp_core.skeletons import SKELETONS
from synsp_ros.refine_node import PARAMETERS

pytestmark = pytest.mark.ros
NODE = "/refine_node"
TOPICS = PARAMETERS["input_topics"][0]
# reliable inputs: every message arrives; a long view timeout: slow steps never drop a camera
TEST_PARAMS = {"input_qos": "reliable", "view_timeout": 10.0}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    work = tmp_path_factory.mktemp("params")
    node = NodeProcess("synsp_ros.refine_node", {"checkpoint": str(random_checkpoint(work)), **TEST_PARAMS},
                       work, "refine")
    probe = Probe("params_probe")
    rig = CameraRig(probe, TOPICS)
    refined = probe.subscribe(PoseArray, f"{NODE}/refined")
    try:
        probe.wait_for_subscribers(rig.publishers, node)
        yield node, probe, rig, refined
    finally:
        probe.close()
        node.stop()


def test_yaml_holds_the_declared_defaults():
    config = yaml.safe_load((REPO / "config" / "refine.yaml").read_text())
    assert config["/**"]["ros__parameters"] == {name: default for name, (default, _) in PARAMETERS.items()}


def test_node_reports_defaults(running):
    node, probe, _, _ = running
    values = probe.get_parameters(NODE, list(PARAMETERS))
    expected = {name: default for name, (default, _) in PARAMETERS.items()}
    expected.update(TEST_PARAMS, aoti_build=False, checkpoint=values["checkpoint"])
    assert values == expected
    assert values["checkpoint"].endswith("random_synsp.safetensors")


@pytest.mark.parametrize("name, value, reason", [
    ("emit_delay", 8, "out of range. Min: 0, Max: 7"),
    ("emit_delay", -1, "range"),
    ("emit_delay", "3", "type"),
    ("layout", "coco17", "read-only"),
    ("sync_slop", 0.01, "read-only"),
])
def test_invalid_run_time_values_are_rejected(running, name, value, reason):
    node, probe, _, _ = running
    before = probe.get_parameters(NODE, [name])
    [result] = probe.set_parameters(NODE, **{name: value})
    assert not result.successful and reason in result.reason, result.reason
    assert probe.get_parameters(NODE, [name]) == before
    assert node.alive()


def test_emit_delay_descriptor_advertises_window_minus_one(running):
    _, probe, _, _ = running
    [descriptor] = probe.describe_parameters(NODE, ["emit_delay"])
    assert [(r.from_value, r.to_value) for r in descriptor.integer_range] == [(0, 7)]
    assert not descriptor.read_only


def test_emit_delay_change_takes_effect_at_run_time(running):
    node, probe, rig, refined = running
    t0 = now_ns()
    stamps = [t0 + k * 33_333_333 for k in range(40)]      # 30 fps, integer nanoseconds

    def newest():
        out, _ = refined_poses(probe, refined)
        return out.max() if len(out) else None

    def step(frame, delay):
        """Send one frame; the newest output must then be exactly `delay` frames behind it."""
        rig.send_frame(frame, stamps[frame])
        if frame >= delay:
            probe.wait_for(lambda: newest() is not None and newest() >= stamps[frame - delay], 60,
                           f"the output of frame {frame - delay}")
            assert newest() == stamps[frame - delay]

    for frame in range(12):          # the default: emit_delay 7
        step(frame, 7)
    assert [r.successful for r in probe.set_parameters(NODE, emit_delay=2)] == [True]
    for frame in range(12, 20):
        step(frame, 2)
    assert [r.successful for r in probe.set_parameters(NODE, emit_delay=0)] == [True]
    for frame in range(20, 26):
        step(frame, 0)
    out, _ = refined_poses(probe, refined)
    assert list(out) == stamps[:26], "every frame published once, in order, with its capture stamp"
    assert probe.get_parameters(NODE, ["emit_delay"]) == {"emit_delay": 0}


def test_invalid_start_values_stop_the_node_with_a_reason(tmp_path):
    checkpoint = str(random_checkpoint(tmp_path))
    bad_layout = NodeProcess("synsp_ros.refine_node", {"checkpoint": checkpoint, "layout": "body25"},
                             tmp_path, "bad_layout")
    bad_window = NodeProcess("synsp_ros.refine_node", {"checkpoint": checkpoint, "window": 16, "emit_delay": 3},
                             tmp_path, "bad_window")
    missing = NodeProcess("synsp_ros.refine_node", {"checkpoint": str(tmp_path / "none.safetensors")},
                          tmp_path, "missing_checkpoint")
    for node, reason in ((bad_layout, f"layout must be one of {sorted(SKELETONS)}, got 'body25'"),
                         (bad_window, "window=16 does not match the checkpoint's window 8"),
                         (missing, "checkpoint not found")):
        assert node.wait_exit() == 1
        assert reason in node.log(), node.log()
