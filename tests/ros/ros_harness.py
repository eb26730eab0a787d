"""Helpers for the ROS tests: nodes in their own processes, and a probe node spinning in a thread.

The network rule holds: tests/conftest.py sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a
ROS_DOMAIN_ID of this pytest process; the node processes inherit them. Timeouts are generous
because the test machine is small and shared: they bound a hang, they are not speed checks.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
import torch
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile, ReliabilityPolicy

from synsp_core.checkpoint import save_checkpoint
from synsp_core.model import SynSP, SynSPConfig
from synsp_ros.conversions import diagnostic_values, mm_to_pose_array, ns_to_stamp, pose_array_to_mm, stamp_to_ns

REPO = Path(__file__).resolve().parents[2]
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
START_TIMEOUT_S = 90.0   # a node process importing torch on a loaded 2-core machine


def random_checkpoint(directory: Path) -> Path:
    """A small randomly initialised SynSP (the identity: zero correction heads; window 8 as the
    defaults), saved as a checkpoint: light on the shared machine, same code path as the real one."""
    torch.manual_seed(0)
    cfg = SynSPConfig(d_model=32, n_heads=2, head_dim=16, d_ffn=32, n_local_layers=1, n_global_layers=1,
                      n_base_shared_layers=1, n_refine_layers=1)
    return save_checkpoint(Path(directory) / "random_synsp.safetensors", SynSP(cfg))


class NodeProcess:
    """`python -m <module> --ros-args --params-file <params>` with its output in a log file."""

    def __init__(self, module: str, params: dict, workdir: Path, name: str):
        if module == "synsp_ros.refine_node":   # no background AOTInductor build on the shared test machine
            params = {"aoti_build": False, **params}
        workdir.mkdir(parents=True, exist_ok=True)
        params_file = workdir / f"{name}_params.yaml"
        params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        self.log_path = workdir / f"{name}.log"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                   PYTHONUNBUFFERED="1")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", module, "--ros-args", "--params-file", str(params_file)],
                                         stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_exit(self, timeout: float = START_TIMEOUT_S) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        """SIGINT (like Ctrl-C / launch), then kill if it hangs; returns the exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(20)


def wait_for(condition, timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail after `timeout` s naming `what` (the callbacks run
    in the probe's own thread)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Probe:
    """A test-side node in its own context, spun by a background thread; collects messages."""

    def __init__(self, name: str = "probe"):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.spin, daemon=True)
        self.thread.start()

    def spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # the context shutting down under the spinner ends it
                if self.context.ok():
                    raise

    def subscribe(self, msg_type, topic: str, qos=RELIABLE) -> list:
        """A list that fills with (receive time s, message)."""
        received = []

        def store(msg):
            with self.lock:
                received.append((time.monotonic(), msg))
        self.node.create_subscription(msg_type, topic, store, qos)
        return received

    def snapshot(self, received: list) -> list:
        with self.lock:
            return list(received)

    def wait_for(self, condition, timeout: float, what: str) -> None:
        wait_for(condition, timeout, what)

    def wait_for_subscribers(self, publishers, node: NodeProcess, timeout: float = START_TIMEOUT_S) -> None:
        """Until every publisher has a matched subscription (the node is up and discovered)."""
        def ready():
            assert node.alive(), f"node exited:\n{node.log()}"
            return all(pub.get_subscription_count() > 0 for pub in publishers)
        self.wait_for(ready, timeout, f"subscribers on {[p.topic_name for p in publishers]}")

    def set_parameters(self, node_name: str, timeout: float = 30.0, **values):
        """SetParameters on a remote node -> list of rcl_interfaces SetParametersResult."""
        client = AsyncParameterClient(self.node, node_name)
        assert client.wait_for_services(timeout), f"parameter services of {node_name} not found"
        future = client.set_parameters([Parameter(k, value=v) for k, v in values.items()])
        self.wait_for(future.done, timeout, f"set_parameters on {node_name}")
        return future.result().results

    def describe_parameters(self, node_name: str, names: list[str], timeout: float = 30.0) -> list:
        """rcl_interfaces ParameterDescriptors of a remote node's parameters."""
        client = AsyncParameterClient(self.node, node_name)
        assert client.wait_for_services(timeout), f"parameter services of {node_name} not found"
        future = client.describe_parameters(names)
        self.wait_for(future.done, timeout, f"describe_parameters on {node_name}")
        return future.result().descriptors

    def get_parameters(self, node_name: str, names: list[str], timeout: float = 30.0) -> dict:
        client = AsyncParameterClient(self.node, node_name)
        assert client.wait_for_services(timeout), f"parameter services of {node_name} not found"
        future = client.get_parameters(names)
        self.wait_for(future.done, timeout, f"get_parameters on {node_name}")
        return {name: parameter_value_to_python(value) for name, value in zip(names, future.result().values)}

    def close(self) -> None:
        self.context.try_shutdown()
        self.thread.join(5)
        self.node.destroy_node()


class CameraRig:
    """Probe publishers for V camera topics sending one frame of a real clip at a time."""

    def __init__(self, probe: Probe, topics: list[str], frame_id: str = "world", seed: int = 0):
        self.probe = probe
        self.frame_id = frame_id
        self.publishers = [probe.node.create_publisher(PoseArray, topic, RELIABLE) for topic in topics]
        clip = np.load(REPO / "synsp_core" / "data" / "cmu_test_clips_120fps.npz")["walking_1"][::4]  # 30 fps
        self.clip = clip.astype(np.float64)
        self.rng = np.random.default_rng(seed)

    def pose(self, frame: int) -> np.ndarray:
        """(J, 3) mm: the clip (looping) plus noise."""
        return self.clip[frame % len(self.clip)] + self.rng.normal(0, 15, self.clip.shape[1:])

    def send(self, view: int, frame: int, stamp_ns: int, joints_mm: np.ndarray | None = None) -> PoseArray:
        msg = mm_to_pose_array(self.pose(frame) if joints_mm is None else joints_mm, ns_to_stamp(stamp_ns),
                               self.frame_id)
        self.publishers[view].publish(msg)
        return msg

    def send_frame(self, frame: int, stamp_ns: int, views=None) -> None:
        for view in range(len(self.publishers)) if views is None else views:
            self.send(view, frame, stamp_ns)


@dataclass
class RefineSetup:
    """A running refine_node with a probe, its cameras and what it published."""
    node: NodeProcess
    probe: Probe
    rig: CameraRig
    refined: list      # PoseArray messages of /refine_node/refined
    diagnostics: list  # DiagnosticArray messages of /diagnostics


@contextmanager
def refine_node_with_cameras(tmp_path: Path, topics: list[str], probe_name: str, **params):
    """A refine_node (random checkpoint, reliable inputs with a deep history, fast diagnostics,
    `params` on top) and a probe publishing on `topics`, subscribed to its outputs; on exit the
    node must stop cleanly. The tests count every message: a node stalled on a loaded machine must
    lose none to its subscription history (the default depth, 17, is half a second at 30 fps)."""
    node = NodeProcess("synsp_ros.refine_node", {"checkpoint": str(random_checkpoint(tmp_path)),
                                                 "input_qos": "reliable", "sync_queue_size": 300,
                                                 "diagnostics_period": 0.2, **params},
                       tmp_path, "refine")
    probe = Probe(probe_name)
    try:
        rig = CameraRig(probe, topics)
        setup = RefineSetup(node, probe, rig, probe.subscribe(PoseArray, "/refine_node/refined"),
                            probe.subscribe(DiagnosticArray, "/diagnostics"))
        probe.wait_for_subscribers(rig.publishers, node)
        yield setup
    finally:
        probe.close()
        assert node.stop() == 0


def latest_diagnostics(probe: Probe, received: list, key: str) -> dict[str, str]:
    """Values of the newest diagnostics status whose name ends with `key` (e.g. 'camera 0')."""
    for _, msg in reversed(probe.snapshot(received)):
        for name, values in diagnostic_values(msg).items():
            if name.endswith(key):
                return values
    return {}


def refined_poses(probe: Probe, received: list) -> tuple[np.ndarray, np.ndarray]:
    """(stamps (N,) int ns, poses (N, J, 3) mm) of the PoseArrays received so far."""
    msgs = [msg for _, msg in probe.snapshot(received)]
    stamps = np.array([stamp_to_ns(m.header.stamp) for m in msgs], dtype=np.int64)
    poses = np.stack([pose_array_to_mm(m) for m in msgs]) if msgs else np.zeros((0, 0, 3))
    return stamps, poses


def now_ns() -> int:
    return time.time_ns()

