"""refine_node under faults: a camera with a wrong clock, a stream that ends, signals, --help."""
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ros_harness import (REPO, START_TIMEOUT_S, NodeProcess, Probe, latest_diagnostics, now_ns, random_checkpoint,
                         refine_node_with_cameras, refined_poses)
from synsp_ros.refine_node import PARAMETERS

pytestmark = pytest.mark.ros
TOPICS = PARAMETERS["input_topics"][0]
FRAME_NS = 33_333_333
HOUR_NS = 3600 * 10**9


@pytest.fixture
def node_and_probe(tmp_path):
    """A refine_node on the default topics (reliable inputs, fast diagnostics) and a probe with cameras."""
    with refine_node_with_cameras(tmp_path, TOPICS, "faults_probe") as setup:
        yield setup.node, setup.probe, setup.rig, setup.refined, setup.diagnostics


def test_a_camera_an_hour_ahead_is_isolated_and_the_others_go_on(node_and_probe):
    node, probe, rig, refined, diagnostics = node_and_probe
    t0 = now_ns()
    stamps = [t0 + k * FRAME_NS for k in range(40)]
    for frame, stamp in enumerate(stamps):
        for view in range(len(TOPICS)):
            rig.send(view, frame, stamp + (HOUR_NS if view == 2 else 0))
        time.sleep(FRAME_NS * 1e-9)
    probe.wait_for(lambda: refined_poses(probe, refined)[0].max(initial=0) >= stamps[-8], 60,
                   "the healthy cameras' frames")
    probe.wait_for(lambda: int(latest_diagnostics(probe, diagnostics, "camera 2").get("dropped_clock", 0)) >= 39,
                   30, "dropped_clock of camera 2")
    out, _ = refined_poses(probe, refined)
    assert set(out) <= set(stamps) and (np.diff(out) > 0).all(), "never an hour ahead, never backwards"
    assert set(stamps[1:-8]) <= set(out), "every frame of the healthy cameras came out"
    for view in (0, 1, 3):
        values = latest_diagnostics(probe, diagnostics, f"camera {view}")
        assert values["dropped_clock"] == "0" and values["dropped_late"] == "0", values
    assert node.log().count("camera 2 (camera_2/skeleton): its stamps are") == 1


def test_the_last_frames_come_out_when_the_stream_ends(node_and_probe):
    _, probe, rig, refined, _ = node_and_probe
    t0 = now_ns()
    stamps = [t0 + k * FRAME_NS for k in range(20)]
    for frame, stamp in enumerate(stamps):
        rig.send_frame(frame, stamp)
        time.sleep(FRAME_NS * 1e-9)
    # emit_delay 7 holds the last 7 frames; the cameras stop: after view_timeout they come out
    probe.wait_for(lambda: len(refined_poses(probe, refined)[0]) == len(stamps), 30, "the held frames")
    assert refined_poses(probe, refined)[0].tolist() == stamps
    # a new stream later starts fresh; nothing older than what was published comes out
    later = [stamps[-1] + 2 * 10**9 + k * FRAME_NS for k in range(12)]
    for frame, stamp in enumerate(later):
        rig.send_frame(frame, stamp)
        time.sleep(FRAME_NS * 1e-9)
    probe.wait_for(lambda: len(refined_poses(probe, refined)[0]) == len(stamps) + len(later), 30, "the new stream")
    assert refined_poses(probe, refined)[0].tolist() == stamps + later


@pytest.mark.parametrize("when, signals", [
    ("refining", [signal.SIGINT] * 3),                  # a double Ctrl-C, and one more
    ("refining", [signal.SIGTERM, signal.SIGINT]),      # systemd stop, then an impatient Ctrl-C
    ("backend 'auto' chose", [signal.SIGINT] * 2),      # while starting up
])
def test_signals_end_the_node_cleanly(tmp_path, when, signals):
    node = NodeProcess("synsp_ros.refine_node", {"checkpoint": str(random_checkpoint(tmp_path))}, tmp_path, "refine")
    probe = Probe("signal_probe")
    try:
        probe.wait_for(lambda: when in node.log() or not node.alive(), START_TIMEOUT_S, f"'{when}' in the log")
    finally:
        probe.close()
    for sig in signals:
        node.proc.send_signal(sig)
        time.sleep(0.05)
    assert node.wait_exit(30) in ((0,) if when == "refining" else (0, 130)), node.log()
    assert "Traceback" not in node.log(), node.log()


@pytest.mark.parametrize("launcher", ["refine_node", "replay_node"])
def test_ctrl_c_while_the_launcher_still_imports_ends_quietly(tmp_path, launcher):
    """The launchers `ros2 run` and launch start (scripts/): a Ctrl-C in their first moments, while
    torch and rclpy still import, ends the process with status 130 and no traceback (or, on a fast
    machine where the node is already up, its own clean exit, 0). Before the fix: status -2 and a
    KeyboardInterrupt traceback, or the interrupt swallowed during an import and the node running on."""
    args = ["--ros-args", "-p", f"checkpoint:={random_checkpoint(tmp_path)}", "-p", "aoti_build:=false"] \
        if launcher == "refine_node" else []
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / launcher), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=START_TIMEOUT_S)
    finally:
        proc.kill()   # whatever happened, no node of this test outlives it
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in out + err, err


@pytest.mark.parametrize("module", ["synsp_ros.refine_node", "synsp_ros.replay_node"])
def test_help_prints_usage_without_starting_ros(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO,
                            timeout=START_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {module.split('.')[1]}") and "parameters" in result.stdout
    assert ("emit_delay (int, default 7)" in result.stdout) == (module == "synsp_ros.refine_node")
    assert "[INFO]" not in result.stdout + result.stderr
