"""refine_node: live multi-camera skeletons in, SynSP-refined skeletons out (a thin rclpy adapter).

Inputs: one message per camera (`input_topics`), of the type `input_types` says: a
geometry_msgs/PoseArray (one person; header.stamp = capture time, poses[j].position = joint j of
layout `layout` in metres, in the common frame `frame_id`), a synsp_msgs/SkeletonArray (several
people with the producer's ids and per-joint confidence) or the Azure Kinect driver's body-tracking
visualization_msgs/MarkerArray. Each message is validated, converted to mm, checked against the
other cameras' clocks (synsp_core.clock_check) and for plausible joints (synsp_core.gate),
synchronized across cameras (synsp_core.sync) and refined online. One person (PoseArray inputs):
synsp_core.streaming, published with its capture stamp on ~/refined, ~/refined/view_<i>
(optional), ~/markers, ~/quality. Several people (any other input, or `multi_person`):
synsp_core.people_pipeline (people tracked across cameras and time, one batched model call per
frame) on ~/people and ~/markers. /diagnostics either way. No message stops the node: whatever a
callback cannot handle is logged, counted and skipped.
See docs/ros.md for the contract, parameters and QoS (`refine_node --help` lists them too).
"""
from __future__ import annotations

import colorsys
import copy
import subprocess
import sys
import tempfile
import time
from collections import deque

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PoseArray
from rcl_interfaces.msg import IntegerRange, ParameterType, SetParametersResult
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSHistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import ColorRGBA, Float32MultiArray, MultiArrayDimension
from visualization_msgs.msg import Marker, MarkerArray

from synsp_core.artifacts import find_artifact, resolve_checkpoint
from synsp_core.bones import bone_prior_for
from synsp_core.checkpoint import DEFAULT_CHECKPOINT
from synsp_core.clock_check import ClockCheck
from synsp_core.gate import PlausibilityGate
from synsp_core.people import PeopleTrackerConfig
from synsp_core.people_pipeline import PeopleInput, PeopleOutput, PeoplePipeline, interpolate_detections
from synsp_core.runtime import AOTIBackend, EagerBackend, create_backend
from synsp_core.skeletons import SKELETONS, get_skeleton
from synsp_core.streaming import RefinedFrame, StreamingRefiner
from synsp_core.sync import ViewSynchronizer, lerp
from synsp_ros.conversions import (INVALID_REASONS as PEOPLE_INVALID_REASONS, InvalidSkeletons, MalformedMessage,
                                   azure_markers_to_people, mm_to_pose_array, ns_to_stamp, parse_pose_array,
                                   parse_skeleton_array, people_to_skeleton_array, stamp_to_ns, stamp_to_seconds)
from synsp_ros.node_utils import describe, run_node, usage

MAX_VIEWS = 8
BACKENDS = ("auto", "tensorrt", "cuda", "cpu")
INPUT_QOS = ("sensor_data", "reliable")
# input adapters, chosen per topic: one person per PoseArray; several per SkeletonArray (synsp_msgs)
# or per Azure Kinect body-tracking MarkerArray (32 joints, mapped to h36m17)
INPUT_TYPES = ("pose_array", "skeleton_array", "azure_kinect")
# messages skipped, per camera: unreadable, wrong frame or joint count, joints failing the gate
# while the refiner cannot take missing joints, or an error the callback caught
INVALID_REASONS = ("empty", "joint_count", "nonfinite", "implausible", "frame_id", "malformed", "error")
# ... and with several people, a SkeletonArray / MarkerArray breaking its contract (conversions)
MULTI_INVALID_REASONS = INVALID_REASONS + tuple(r for r in PEOPLE_INVALID_REASONS if r not in INVALID_REASONS)
AZURE_IGNORED = ("deleteall", "other_action", "unknown_joint")   # markers of a body-tracking MarkerArray skipped
WARN_PERIOD_S = 5.0     # per camera and reason: at most one warning about skipped messages this often
OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATENCY_SAMPLES = 1000  # recent frames behind the latency percentiles

# name -> (default, descriptor). Defaults mirror config/refine.yaml (a test checks they agree).
_T = ParameterType
PARAMETERS = {
    "input_topics": ([f"camera_{i}/skeleton" for i in range(4)], describe(
        _T.PARAMETER_STRING_ARRAY, f"skeleton topics, one per camera (1 to {MAX_VIEWS})")),
    "input_types": (["pose_array"], describe(
        _T.PARAMETER_STRING_ARRAY, f"message type of each input topic, one of {list(INPUT_TYPES)}: one entry "
        "for every topic, or one per topic")),
    "multi_person": (False, describe(
        _T.PARAMETER_BOOL, "track and refine several people (~/people) also when every input is a PoseArray "
        "(one person per camera message); always on with skeleton_array or azure_kinect inputs")),
    "people_gate": (0.4, describe(
        _T.PARAMETER_DOUBLE, "m, several people: a camera's skeleton matches a tracked person within this mean "
        "joint distance of their predicted pose (the gate grows while nobody sees them)", float_range=(0.05, 5.0))),
    "people_birth_frames": (3, describe(
        _T.PARAMETER_INTEGER, "several people: frames a new person must be seen in, consistently, before they get "
        "an id and are published (a one-frame ghost never is)", int_range=(1, 100))),
    "people_lost_timeout": (1.0, describe(
        _T.PARAMETER_DOUBLE, "s, several people: a person no camera saw for this long is lost (an occlusion "
        "shorter keeps the id)", float_range=(0.05, 60.0))),
    "people_window_budget": (0, describe(
        _T.PARAMETER_INTEGER, "several people: at most this many people's windows refined per frame, the people "
        "refined longest ago first (0 = everyone's, every frame): a CPU that cannot refine a crowd at the camera "
        "rate trades some smoothness for latency (synsp_core.streaming.MultiPersonRefiner)", int_range=(0, 64))),
    "layout": ("h36m17", describe(
        _T.PARAMETER_STRING, f"joint layout of the inputs, one of {sorted(SKELETONS)}; must match the checkpoint")),
    "window": (8, describe(
        _T.PARAMETER_INTEGER, "model window W in frames; must match the checkpoint", int_range=(2, 256))),
    "checkpoint": ("", describe(
        _T.PARAMETER_STRING, f"path to a .safetensors checkpoint; '' = the shipped weights ({DEFAULT_CHECKPOINT.name})")),
    "backend": ("auto", describe(
        _T.PARAMETER_STRING, f"inference backend, one of {BACKENDS}; 'auto' picks the fastest available")),
    "aoti_build": (True, describe(
        _T.PARAMETER_BOOL, "with backend 'auto' on a CPU and no AOTInductor package for the checkpoint: build "
        "one in a background process (minutes, cached) and switch to it when it is verified; the node runs "
        "eager PyTorch meanwhile")),
    "emit_delay": (7, describe(
        _T.PARAMETER_INTEGER, "frames a frame waits for later windows before it is published: "
        "0 = causal (lowest latency) .. window-1 = full sliding-window average (best quality); "
        "changeable at run time", read_only=False)),   # range 0..window-1, set when declared
    "bone_lengths": (True, describe(
        _T.PARAMETER_BOOL, "project every output pose onto a running estimate of the person's bone lengths "
        "(3D only; see synsp_core/bones.py)")),
    "bone_length_horizon": (1800, describe(
        _T.PARAMETER_INTEGER, "frames the running bone-length estimate averages over (1800 = 60 s at 30 fps)",
        int_range=(1, 1_000_000))),
    "sync_slop": (0.015, describe(
        _T.PARAMETER_DOUBLE, "s, a camera message this close to the frame time is used as is (hardware-"
        "synchronized cameras); other cameras are interpolated to the frame time (keep below half the camera "
        "period)", float_range=(0.0, 1.0))),
    "sync_queue_size": (17, describe(
        _T.PARAMETER_INTEGER, "messages queued per camera while waiting for the other views, and the depth of "
        "each camera subscription; at least rate x view_timeout + 2 (17 at 30 fps, 0.5 s) loses no message "
        "while a camera times out or the node falls behind", int_range=(1, 1000))),
    "view_timeout": (0.5, describe(
        _T.PARAMETER_DOUBLE, "s, a camera silent this long is dropped from the model until it sends again",
        float_range=(0.01, 60.0))),
    "max_clock_skew": (1.0, describe(
        _T.PARAMETER_DOUBLE, "s, a camera whose stamps (relative to their arrival) disagree with the other "
        "cameras' by more than this is isolated: its messages are dropped and counted", float_range=(0.01, 1e6))),
    "frame_id": ("world", describe(
        _T.PARAMETER_STRING, "common frame of all input skeletons; messages in another frame are skipped")),
    "input_qos": ("sensor_data", describe(
        _T.PARAMETER_STRING, f"input subscription QoS, one of {INPUT_QOS} (sensor_data = best effort; "
        "depth sync_queue_size either way)")),
    "publish_per_view": (False, describe(
        _T.PARAMETER_BOOL, "also publish each view's refined skeleton on ~/refined/view_<i>")),
    "diagnostics_period": (1.0, describe(
        _T.PARAMETER_DOUBLE, "s between /diagnostics messages", float_range=(0.1, 60.0))),
    "torch_threads": (1, describe(
        _T.PARAMETER_INTEGER, "CPU threads for inference (0 = PyTorch's default)", int_range=(0, 64))),
}

VIEW_COLORS = ((0.90, 0.30, 0.25), (0.25, 0.55, 0.90), (0.95, 0.70, 0.15), (0.60, 0.35, 0.85),
               (0.20, 0.75, 0.75), (0.85, 0.45, 0.70), (0.55, 0.55, 0.55), (0.60, 0.45, 0.25))
FUSED_COLOR = (0.15, 0.85, 0.30)
MARKER_LIFETIME = Duration(seconds=0.5)   # RViz drops a skeleton this long after its last message


def person_color(person_id: int) -> tuple[float, float, float]:
    """A colour per global person id: hues a golden angle apart, so neighbouring ids differ clearly."""
    return colorsys.hsv_to_rgb((person_id * 0.618033988749895) % 1.0, 0.75, 0.95)


def check_choice(name: str, value, choices) -> str | None:
    return None if value in choices else f"{name} must be one of {list(choices)}, got {value!r}"


def validate_parameter(name: str, value) -> str | None:
    """Why a parameter value is invalid, or None. Ranges (emit_delay's: 0..window-1) are checked by
    rclpy from the descriptors."""
    if name == "input_topics":
        if not 1 <= len(value) <= MAX_VIEWS:
            return f"input_topics must list 1 to {MAX_VIEWS} topics, got {len(value)}"
        if len(set(value)) != len(value) or not all(value):
            return f"input_topics must be distinct non-empty names, got {list(value)}"
    elif name == "input_types":
        if not 1 <= len(value) <= MAX_VIEWS:
            return f"input_types must list 1 to {MAX_VIEWS} types, got {len(value)}"
        wrong = [kind for kind in value if kind not in INPUT_TYPES]
        if wrong:
            return f"input_types must be among {list(INPUT_TYPES)}, got {wrong[0]!r}"
    elif name == "layout":
        return check_choice(name, value, sorted(SKELETONS))
    elif name == "backend":
        return check_choice(name, value, BACKENDS)
    elif name == "input_qos":
        return check_choice(name, value, INPUT_QOS)
    elif name == "frame_id" and not value:
        return "frame_id must not be empty"
    return None


class LatencyLog:
    """Recent durations in s -> percentiles in ms."""

    def __init__(self):
        self.samples = deque(maxlen=LATENCY_SAMPLES)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.samples, q) * 1e3) if self.samples else float("nan")


class AotiBuild:
    """`build_aoti(checkpoint)` in a background process at low priority; the node polls it."""

    def __init__(self, checkpoint):
        code = "import os, sys; os.nice(10); from synsp_core.artifacts import build_aoti; build_aoti(sys.argv[1])"
        self.checkpoint = checkpoint
        self.stderr = tempfile.TemporaryFile(mode="w+")   # a file, not a pipe: a chatty build never blocks
        self.process = subprocess.Popen([sys.executable, "-c", code, str(checkpoint)],
                                        stdout=subprocess.DEVNULL, stderr=self.stderr)

    def result(self):
        """None while it runs; then (artifact path or None, the last line of its error output)."""
        if self.process.poll() is None:
            return None
        self.stderr.seek(0)
        error = self.stderr.read().strip().splitlines()
        self.stderr.close()
        return find_artifact(self.checkpoint, "aoti-cpu"), (error[-1] if error else f"exit {self.process.returncode}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


class RefineNode(Node):
    def __init__(self, **kwargs):
        super().__init__("refine_node", **kwargs)
        self.refiner: StreamingRefiner | None = None   # one person
        self.pipeline: PeoplePipeline | None = None    # several people
        self.aoti_build: AotiBuild | None = None        # (set before anything can fail: destroy_node reads it)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        for name, (default, descriptor) in PARAMETERS.items():
            if name == "emit_delay":   # its range depends on the window, declared before it
                descriptor = copy.deepcopy(descriptor)
                descriptor.integer_range = [IntegerRange(from_value=0, step=1,
                                                         to_value=self.get_parameter("window").value - 1)]
            self.declare_parameter(name, default, descriptor)
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self.topics = list(p["input_topics"])
        self.num_views = len(self.topics)
        self.skeleton = get_skeleton(p["layout"])
        self.input_types = self.check_input_types(list(p["input_types"]))
        self.multi = p["multi_person"] or any(kind != "pose_array" for kind in self.input_types)
        self.frame_id = p["frame_id"]
        self.publish_per_view = p["publish_per_view"]
        if p["torch_threads"] > 0:
            torch.set_num_threads(p["torch_threads"])

        self.backend = self.load_backend(p)
        # payloads: (joints, header stamp), or with several people (detections, header stamp); an
        # interpolated view has no header stamp
        interpolate = (lambda before, after, weight: (interpolate_detections(before[0], after[0], weight), None)) \
            if self.multi else (lambda before, after, weight: (lerp(before[0], after[0], weight), None))
        self.sync = ViewSynchronizer(self.num_views, p["sync_slop"], p["sync_queue_size"], p["view_timeout"],
                                     interpolate=interpolate, log=self.get_logger().info)
        if self.multi:
            config, bones, horizon = self.backend.config, p["bone_lengths"], p["bone_length_horizon"]
            self.pipeline = PeoplePipeline(
                self.backend, self.num_views, p["emit_delay"], max_gap_s=p["view_timeout"],
                bone_prior_factory=lambda: bone_prior_for(config, bones, horizon),
                tracker_config=PeopleTrackerConfig(
                    gate_mm=p["people_gate"] * 1000.0, birth_frames=p["people_birth_frames"],
                    lost_timeout_s=p["people_lost_timeout"], view_timeout_s=p["view_timeout"]),
                window_budget=p["people_window_budget"] or None)
            self.people_input = PeopleInput(self.num_views, self.skeleton.num_joints)
            self.input_stamps_ns = [(None, None)] * self.num_views   # per camera: its last two stamps (ns)
            self.people_counters = {name: np.zeros(self.num_views, dtype=np.int64)
                                    for name in ("unstamped_estimated", "unstamped_skipped")}
            self.people_counters.update({f"markers_ignored_{name}": np.zeros(self.num_views, dtype=np.int64)
                                         for name in AZURE_IGNORED})
        else:
            bone_prior = bone_prior_for(self.backend.config, p["bone_lengths"], p["bone_length_horizon"])
            self.refiner = StreamingRefiner(self.backend, self.num_views, p["emit_delay"],
                                            max_gap_s=p["view_timeout"], bone_prior=bone_prior)
        # only cameras heard within half the skew vote: a node that stalls and then takes a backlog
        # sees late arrivals on every camera, never a disagreement between them
        self.clock_check = ClockCheck(self.num_views, p["max_clock_skew"],
                                      fresh_s=min(p["view_timeout"], p["max_clock_skew"] / 2))
        self.gate = self.people_input.gate if self.multi else PlausibilityGate(self.num_views, self.skeleton.num_joints)
        self.sync_epoch = 0
        self.stream_open = False                # frames went into the refiner since its last flush
        self.last_published_s = -float("inf")   # published stamps only go forward within a stream
        self.exact_stamps = {}                  # frame stamp in s -> its header stamp, kept exact
        self.invalid = {reason: np.zeros(self.num_views, dtype=np.int64)
                        for reason in (MULTI_INVALID_REASONS if self.multi else INVALID_REASONS)}
        self.counters = {"dropped_stale": 0, "stream_flushes": 0, "callback_errors": 0}
        self.last_warning = {}                  # (view, reason) -> time.monotonic() of its last warning
        self.step_latency = LatencyLog()        # synchronizer + refiner step per frame
        self.publish_latency = LatencyLog()     # message callback entry -> refined published
        self.frames_published = 0
        self.people_published = 0              # person skeletons in the ~/people messages
        self.last_views = np.zeros(self.num_views, dtype=bool)
        self.last_rate_check = (time.monotonic(), np.zeros(self.num_views, dtype=np.int64))

        reliability = ReliabilityPolicy.BEST_EFFORT if p["input_qos"] == "sensor_data" else ReliabilityPolicy.RELIABLE
        input_qos = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=p["sync_queue_size"], reliability=reliability,
                               durability=qos_profile_sensor_data.durability)
        # PoseArrays and SkeletonArrays come serialized and are read straight into numpy; the
        # body-tracking MarkerArrays (many small markers) through rclpy's deserializer
        self.input_subscriptions = [
            self.create_subscription(self.message_type(kind), topic, lambda msg, view=view: self.on_skeleton(view, msg),
                                     input_qos, raw=kind != "azure_kinect")
            for view, (topic, kind) in enumerate(zip(self.topics, self.input_types))]
        self.markers_pub = self.create_publisher(MarkerArray, "~/markers", OUTPUT_QOS)
        if self.multi:
            from synsp_msgs.msg import SkeletonArray
            self.people_pub = self.create_publisher(SkeletonArray, "~/people", OUTPUT_QOS)
        else:
            self.refined_pub = self.create_publisher(PoseArray, "~/refined", OUTPUT_QOS)
            self.view_pubs = [self.create_publisher(PoseArray, f"~/refined/view_{i}", OUTPUT_QOS)
                              for i in range(self.num_views)] if self.publish_per_view else []
            self.quality_pub = self.create_publisher(Float32MultiArray, "~/quality", OUTPUT_QOS)
            self.joint_quality_pub = self.create_publisher(Float32MultiArray, "~/joint_quality", OUTPUT_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", OUTPUT_QOS)
        self.create_timer(p["diagnostics_period"], self.publish_diagnostics)
        self.create_timer(min(0.1, p["view_timeout"] / 2), self.poll_sync)
        if self.aoti_build is not None:
            self.create_timer(1.0, self.poll_aoti_build)
        inputs = self.topics if set(self.input_types) == {"pose_array"} else \
            [f"{topic} ({kind})" for topic, kind in zip(self.topics, self.input_types)]
        self.get_logger().info(
            f"refining {'several people' if self.multi else 'one person'} seen by {self.num_views} camera(s) "
            f"{inputs} ({self.skeleton.name}, frame '{self.frame_id}') with {self.backend_label}, "
            f"window {self.backend.config.window}, emit_delay {p['emit_delay']}")

    def check_input_types(self, types: list[str]) -> list[str]:
        """input_types -> one type per topic (one entry stands for every topic); ValueError if they do not fit."""
        if len(types) not in (1, self.num_views):
            raise ValueError(f"input_types lists {len(types)} types for {self.num_views} input_topics: give one type "
                             "for every topic, or one per topic")
        types = types * self.num_views if len(types) == 1 else types
        if "azure_kinect" in types and self.skeleton.name != "h36m17":
            raise ValueError(f"azure_kinect inputs are mapped to the h36m17 layout, but layout is {self.skeleton.name}")
        return types

    @staticmethod
    def message_type(kind: str):
        if kind == "skeleton_array":
            from synsp_msgs.msg import SkeletonArray   # only needed with it: the node runs without synsp_msgs
            return SkeletonArray
        return MarkerArray if kind == "azure_kinect" else PoseArray

    # -- start-up ------------------------------------------------------------------------------
    def load_backend(self, p: dict):
        """Load the checkpoint behind the requested backend and check it fits the parameters."""
        checkpoint = p["checkpoint"] or None
        if checkpoint is None and not DEFAULT_CHECKPOINT.is_file():
            raise FileNotFoundError(f"the shipped weights {DEFAULT_CHECKPOINT} are missing; "
                                    "set the 'checkpoint' parameter to a .safetensors file")
        backend = create_backend(checkpoint, p["backend"])
        cfg = backend.config
        source = checkpoint or DEFAULT_CHECKPOINT
        if cfg.window != p["window"]:
            raise ValueError(f"parameter window={p['window']} does not match the checkpoint's window "
                             f"{cfg.window} ({source})")
        if cfg.skeleton != self.skeleton.name or cfg.num_joints != self.skeleton.num_joints or cfg.dims != 3:
            raise ValueError(f"the checkpoint {source} refines {cfg.dims}D {cfg.skeleton} skeletons "
                             f"({cfg.num_joints} joints), but layout is 3D {self.skeleton.name}")
        self.backend_label = self.describe_backend(backend)
        if p["backend"] == "auto":
            self.get_logger().info(f"backend 'auto' chose {self.backend_label}")
            if isinstance(backend, EagerBackend) and backend.device.type == "cpu":
                self.start_aoti_build(resolve_checkpoint(checkpoint), p["aoti_build"])
        return backend

    @staticmethod
    def describe_backend(backend) -> str:
        return f"{getattr(backend, 'name', type(backend).__name__)} on {getattr(backend, 'device', 'cpu')}"

    def start_aoti_build(self, checkpoint, enabled: bool) -> None:
        """backend 'auto' fell back to eager CPU: no AOTInductor package fits the checkpoint yet."""
        if not enabled:
            self.get_logger().info("no AOTInductor package for this checkpoint; aoti_build is off, so the node "
                                   f"stays on eager PyTorch (build one with: synsp-export --checkpoint {checkpoint} "
                                   "--formats aoti)")
            return
        self.aoti_build = AotiBuild(checkpoint)
        self.get_logger().info(f"no AOTInductor package for {checkpoint.name}: building one in the background "
                               "(pid {}, minutes on a small CPU, cached for the next start); eager PyTorch until "
                               "then. aoti_build:=false turns this off".format(self.aoti_build.process.pid))

    def poll_aoti_build(self) -> None:
        """Switch to the AOTInductor package once its background build wrote and verified it."""
        result = self.aoti_build.result() if self.aoti_build is not None else None
        if result is None:
            return
        (path, error), checkpoint = result, self.aoti_build.checkpoint
        self.aoti_build = None
        try:
            if path is None:
                raise RuntimeError(error)
            backend = AOTIBackend(path, checkpoint)   # checks the package against the checkpoint again
        except Exception as failure:   # no package, or one that does not load: stay on eager
            self.get_logger().warning(f"AOTInductor build failed ({failure}); staying on {self.backend_label}")
            return
        if self.pipeline is not None:
            self.pipeline.backend = backend
        else:
            self.refiner.backend = backend
        self.backend = backend
        self.backend_label = self.describe_backend(backend)
        self.get_logger().info(f"switched to {self.backend_label} ({path})")

    def destroy_node(self):
        if self.aoti_build is not None:
            self.aoti_build.stop()
        return super().destroy_node()

    def on_set_parameters(self, params) -> SetParametersResult:
        """Validate every change; emit_delay is the one that takes effect at run time."""
        for param in params:
            reason = validate_parameter(param.name, param.value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        for param in params:
            if param.name == "emit_delay" and (self.refiner or self.pipeline) is not None:
                (self.refiner or self.pipeline).emit_delay = param.value
                self.get_logger().info(f"emit_delay set to {param.value} frames")
        return SetParametersResult(successful=True)

    # -- input ---------------------------------------------------------------------------------
    def check_message(self, raw: bytes):
        """(None, (stamp, frame_id, joints (J, 3) mm)) or (reason it is invalid, text saying what was read)."""
        try:
            parsed = parse_pose_array(raw)
        except MalformedMessage as error:
            return "malformed", str(error)
        _, frame_id, joints = parsed
        if frame_id != self.frame_id:
            return "frame_id", f"frame_id '{frame_id}', expected '{self.frame_id}'"
        if len(joints) != self.skeleton.num_joints:
            reason = "joint_count" if len(joints) else "empty"
            return reason, f"{len(joints)} poses, expected {self.skeleton.num_joints} ({self.skeleton.name})"
        return None, parsed

    def warn(self, view: int, reason: str, text: str) -> None:
        """A warning about camera `view`, at most one per WARN_PERIOD_S for each camera and reason
        (rclpy's throttle is per line of code: one camera's warnings would hide the others')."""
        now = time.monotonic()
        if now - self.last_warning.get((view, reason), -WARN_PERIOD_S) >= WARN_PERIOD_S:
            self.last_warning[(view, reason)] = now
            self.get_logger().warning(f"camera {view} ({self.topics[view]}): {text}")

    def on_skeleton(self, view: int, raw) -> None:
        """A camera's message: a PoseArray or SkeletonArray still serialized (parsed straight into
        numpy, see synsp_ros.conversions), or a body-tracking MarkerArray. Nothing in it may stop
        the node: an error is logged, counted and the message skipped."""
        arrival = time.perf_counter()
        try:
            if self.multi:
                self.take_people(view, raw, arrival)
            else:
                self.take(view, raw, arrival)
        except Exception as error:
            if not self.context.ok():   # a publish that raced the shutdown: nothing went wrong
                return
            self.invalid["error"][view] += 1
            self.warn(view, "error", f"skipping a message: {type(error).__name__}: {error}")

    def skip(self, view: int, reason: str, text: str) -> None:
        self.invalid[reason][view] += 1
        self.warn(view, reason, f"skipping a message: {reason} ({text})")

    def take(self, view: int, raw: bytes, arrival: float) -> None:
        """Validate, clock-check and gate one message, then hand it to the synchronizer."""
        reason, parsed = self.check_message(raw)
        if reason is not None:
            return self.skip(view, reason, parsed)
        stamp, _, joints = parsed
        stamp_s, now_s = stamp_to_seconds(stamp), self.now_s()
        if not self.clock_agrees(view, stamp_s, now_s):
            return
        ok = self.gate.check(view, stamp_s, joints)
        if not ok.all():
            rejected = ", ".join(self.skeleton.joint_names[j] for j in np.flatnonzero(~ok))
            if not ok.any():
                kind = "nonfinite" if not np.isfinite(joints).any() else "implausible"
                return self.skip(view, kind, f"no joint passes the plausibility gate: {rejected}")
            if np.isfinite(joints[~ok]).all(axis=1).any():   # NaN joints are missing, a normal case: no warning
                self.warn(view, "gated", f"joints failing the plausibility gate, passed on as missing: {rejected}")
            joints = np.where(ok[:, None], joints, np.nan)
        self.process(self.sync.add(view, stamp_s, (joints, stamp), now_s=now_s), arrival)

    def clock_agrees(self, view: int, stamp_s: float, now_s: float) -> bool:
        """The clock check of one message (see ClockCheck); says when a camera is isolated or back."""
        was_isolated = self.clock_check.isolated[view]
        if not self.clock_check.check(view, stamp_s, now_s):
            if not was_isolated:
                self.get_logger().warning(
                    f"camera {view} ({self.topics[view]}): its stamps are {stamp_s - now_s:+.3f} s from their "
                    f"arrival, which disagrees with the other cameras by more than max_clock_skew: isolated, "
                    f"its messages are dropped (dropped_clock) until its clock agrees again")
            return False
        if was_isolated:
            self.get_logger().info(f"camera {view} ({self.topics[view]}): its clock agrees again, back in use")
        return True

    def read_people(self, view: int, msg):
        """A camera's message -> (stamp or None, frame_id, [(producer id, joints (J, 3) mm, confidence)]),
        or None when it is skipped (counted and warned)."""
        kind = self.input_types[view]
        if kind == "pose_array":   # one person, always the same one for this camera: producer id 0
            reason, parsed = self.check_message(msg)
            if reason is not None:
                return self.skip(view, reason, parsed)
            stamp, frame_id, joints = parsed
            return stamp, frame_id, [(0, joints, None)]
        try:
            if kind == "skeleton_array":
                frame = parse_skeleton_array(msg, layouts=(self.skeleton.name,))
            else:
                frame, ignored = azure_markers_to_people(msg)
                for name, count in ignored.items():
                    self.people_counters[f"markers_ignored_{name}"][view] += count
        except InvalidSkeletons as error:
            return self.skip(view, error.reason, str(error).split(": ", 1)[-1])
        if frame.stamp is not None and frame.frame_id != self.frame_id:
            return self.skip(view, "frame_id", f"frame_id '{frame.frame_id}', expected '{self.frame_id}'")
        return frame.stamp, frame.frame_id, [(p.id, p.joints_mm, p.confidence) for p in frame.people]

    def take_people(self, view: int, msg, arrival: float) -> None:
        """Several people: read, clock-check and check each person of one message, then hand the
        camera's detections to the synchronizer (an empty list: the camera sees nobody)."""
        read = self.read_people(view, msg)
        if read is None:
            return
        stamp, _, people = read
        now_s = self.now_s()
        previous_ns, last_ns = self.input_stamps_ns[view]
        if stamp is None:   # a body tracker's MarkerArray with no body has no stamp: nobody seen
            if previous_ns is None or last_ns <= previous_ns:
                self.people_counters["unstamped_skipped"][view] += 1
                return
            # the driver publishes once per capture: this one stands for the camera's next capture,
            # one of its intervals after its last message (never ahead of its next real stamp)
            self.people_counters["unstamped_estimated"][view] += 1
            stamp = ns_to_stamp(2 * last_ns - previous_ns)
            stamp_s = stamp_to_seconds(stamp)
        else:
            stamp_s = stamp_to_seconds(stamp)
            if not self.clock_agrees(view, stamp_s, now_s):
                return
        self.input_stamps_ns[view] = (last_ns, stamp_to_ns(stamp))
        detections, notes = self.people_input.check(view, stamp_s, people)
        for producer_id, reason, rejected in notes:
            names = ", ".join(self.skeleton.joint_names[j] for j in rejected)
            if reason == "gated":
                self.warn(view, "gated", f"person {producer_id}: joints failing the plausibility gate, passed on "
                                         f"as missing: {names}")
            else:
                self.warn(view, f"person_{reason}", f"skipping person {producer_id}: no joint passes the "
                                                    f"plausibility gate ({reason}{': ' + names if names else ''})")
        self.process_people(self.sync.add(view, stamp_s, (detections, stamp), now_s=now_s), arrival)

    def process_people(self, frames, arrival: float) -> None:
        for frame in frames:
            start = time.perf_counter()
            if self.new_stream(frame):
                self.publish_people(self.pipeline.restart())
            detections = [None if payload is None else payload[0] for payload in frame.payloads]
            outputs = self.pipeline.push(frame.stamp_s, detections, tag=frame.payloads[frame.anchor][1])
            self.stream_open = True
            self.log_people_events()
            self.step_latency.add(time.perf_counter() - start)
            self.publish_people(outputs)
            if outputs:
                self.publish_latency.add(time.perf_counter() - arrival)

    def log_people_events(self) -> None:
        events = self.pipeline.last_events
        for pid in events.born:
            self.get_logger().info(f"person {pid} tracked")
        for pid in events.lost:
            self.get_logger().info(f"person {pid} lost")
        for switch in events.id_switches:
            self.get_logger().info(
                f"camera {switch.camera} ({self.topics[switch.camera]}) changed its id of person {switch.person_id} "
                f"from {switch.old_producer_id} to {switch.new_producer_id}: kept as person {switch.person_id}")

    def poll_sync(self) -> None:
        """Let frames out that wait for cameras which all stopped; when none is live any more, the
        stream ended: flush the frames the refiner still holds (their later windows never come)."""
        try:
            frames = self.sync.poll(self.now_s())
            if self.multi:
                self.process_people(frames, time.perf_counter())
            else:
                self.process(frames, time.perf_counter())
            if self.stream_open and not self.sync.live_views().any():
                self.stream_open = False
                self.counters["stream_flushes"] += 1
                if self.multi:
                    self.publish_people(self.pipeline.flush())
                else:
                    self.publish_all(self.refiner.restart())
        except Exception as error:   # no timer tick may stop the node either
            if not self.context.ok():
                return
            self.counters["callback_errors"] += 1
            self.get_logger().error(f"poll: {type(error).__name__}: {error}", throttle_duration_sec=WARN_PERIOD_S)

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def new_stream(self, frame) -> bool:
        """Whether the synchronizer reset (stamps jumped back) before this frame: a new stream."""
        if frame.epoch == self.sync_epoch:
            return False
        self.sync_epoch = frame.epoch
        self.get_logger().warning(f"stamps jumped back (bag loop, simulation restart?) to {frame.stamp_s:.3f} s: "
                                  "starting a new stream")
        return True

    def process(self, frames, arrival: float) -> None:
        for frame in frames:
            start = time.perf_counter()
            if self.new_stream(frame):
                self.publish_all(self.refiner.restart())
                self.last_published_s = -float("inf")
            self.remember_stamp(frame)
            poses = [None if payload is None else payload[0] for payload in frame.payloads]
            refined = self.refiner.push(frame.stamp_s, poses, frame.live | self.sync.live_views())
            self.stream_open = True
            self.step_latency.add(time.perf_counter() - start)
            self.publish_all(refined)
            if refined:
                self.publish_latency.add(time.perf_counter() - arrival)

    def remember_stamp(self, frame) -> None:
        """Keep the frame's header stamp (its anchor camera's) to publish it bit-exact later."""
        self.exact_stamps[frame.stamp_s] = frame.payloads[frame.anchor][1]
        while len(self.exact_stamps) > 4 * self.refiner.window:   # frames that never came out
            del self.exact_stamps[next(iter(self.exact_stamps))]

    # -- output --------------------------------------------------------------------------------
    def publish_all(self, frames: list[RefinedFrame]) -> None:
        """Publish frames in order; one stamped at or before a frame already published (of this
        stream) is dropped and counted: published stamps never go backwards."""
        for frame in frames:
            stamp = self.exact_stamps.pop(frame.stamp_s, None)
            if frame.stamp_s <= self.last_published_s or stamp is None:
                self.counters["dropped_stale"] += 1
                continue
            self.last_published_s = frame.stamp_s
            self.publish(frame, stamp)

    def publish(self, frame: RefinedFrame, stamp) -> None:
        self.refined_pub.publish(mm_to_pose_array(frame.fused, stamp, self.frame_id))
        self.frames_published += 1
        self.last_views = frame.views
        # the optional outputs cost CPU time (markers ~1 ms): built only when someone listens
        for view in np.flatnonzero(frame.views) if self.view_pubs else ():
            if self.view_pubs[view].get_subscription_count():
                self.view_pubs[view].publish(mm_to_pose_array(frame.per_view[view], stamp, self.frame_id))
        if self.quality_pub.get_subscription_count():
            quality = Float32MultiArray(data=frame.quality.tolist())
            quality.layout.dim = [MultiArrayDimension(label="view", size=self.num_views, stride=self.num_views)]
            self.quality_pub.publish(quality)
        if self.joint_quality_pub.get_subscription_count():
            joint_quality = Float32MultiArray(data=frame.joint_quality.tolist())
            joint_quality.layout.dim = [MultiArrayDimension(label="joint", size=len(frame.joint_quality),
                                                            stride=len(frame.joint_quality))]
            self.joint_quality_pub.publish(joint_quality)
        if self.markers_pub.get_subscription_count():
            self.markers_pub.publish(self.markers(frame, stamp))

    def markers(self, frame: RefinedFrame, stamp) -> MarkerArray:
        """Joints (SPHERE_LIST) and bones (LINE_LIST) of the fused skeleton and of every view in use."""
        skeletons = [("fused", frame.fused, FUSED_COLOR, 1.0)]
        skeletons += [(f"view_{v}", frame.per_view[v], VIEW_COLORS[v % len(VIEW_COLORS)], 0.5)
                      for v in np.flatnonzero(frame.views)]
        return MarkerArray(markers=[marker for ns, joints_mm, color, alpha in skeletons
                                    for marker in self.skeleton_markers(ns, joints_mm, color, alpha, stamp)])

    def skeleton_markers(self, ns: str, joints_mm: np.ndarray, color, alpha: float, stamp,
                         label: str | None = None) -> list[Marker]:
        """One skeleton in namespace `ns`: joints (SPHERE_LIST, id 0), bones (LINE_LIST, id 1) and,
        with `label`, that text (TEXT_VIEW_FACING, id 2) 0.3 m beyond the head along the pelvis ->
        head line (whatever way the frame's axes point); lifetime 0.5 s."""
        metres = joints_mm.astype(np.float64) / 1000.0
        points = [Point(x=x, y=y, z=z) for x, y, z in metres.tolist()]
        shapes = [(0, Marker.SPHERE_LIST, 0.04, points),
                  (1, Marker.LINE_LIST, 0.015, [points[j] for bone in self.skeleton.bones for j in bone])]
        if label is not None:
            shapes.append((2, Marker.TEXT_VIEW_FACING, 0.2, []))
        r, g, b = color
        markers = []
        for marker_id, kind, size, pts in shapes:
            marker = Marker(ns=ns, id=marker_id, type=kind, action=Marker.ADD, points=pts,
                            color=ColorRGBA(r=r, g=g, b=b, a=alpha), lifetime=MARKER_LIFETIME.to_msg())
            marker.header.stamp, marker.header.frame_id = stamp, self.frame_id
            marker.pose.orientation.w = 1.0
            marker.scale.x = marker.scale.y = marker.scale.z = size
            if kind == Marker.TEXT_VIEW_FACING:
                names = self.skeleton.joint_names
                head = metres[names.index("head" if "head" in names else "nose")]
                up = head - metres[list(self.skeleton.root)].mean(axis=0)
                marker.text = label
                marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = \
                    (head + 0.3 * up / max(float(np.linalg.norm(up)), 1e-6)).tolist()
            markers.append(marker)
        return markers

    def publish_people(self, outputs: list[PeopleOutput]) -> None:
        """One ~/people SkeletonArray per synchronized frame, in stamp order (the pipeline's
        assembler keeps them increasing within a stream): the people refined in that frame
        (possibly nobody), per-joint quality as confidence; markers when someone listens."""
        for output in outputs:
            stamp = output.tag if output.tag is not None else ns_to_stamp(round(output.stamp_s * 1e9))
            self.people_pub.publish(people_to_skeleton_array(output.ids, output.joints, stamp, self.frame_id,
                                                             self.skeleton.name, output.quality))
            self.frames_published += 1
            self.people_published += len(output.ids)
            self.last_published_s = output.stamp_s
            if output.frames:
                self.last_views = np.logical_or.reduce([frame.views for frame in output.frames.values()])
            if self.markers_pub.get_subscription_count() and output.ids:
                self.markers_pub.publish(self.people_markers(output, stamp))

    def people_markers(self, output: PeopleOutput, stamp) -> MarkerArray:
        """Per person (namespace person_<id>): joints, bones and the id as text, in the person's colour."""
        return MarkerArray(markers=[marker for pid, joints_mm in zip(output.ids, output.joints)
                                    for marker in self.skeleton_markers(f"person_{pid}", joints_mm, person_color(pid),
                                                                        1.0, stamp, label=str(pid))])

    def publish_diagnostics(self) -> None:
        """Per camera: rate, sync and validation counters; for the refiner: latency, backend, views."""
        counters = self.sync.counters
        now = time.monotonic()
        last_time, last_received = self.last_rate_check
        rates = (counters["received"] - last_received) / max(now - last_time, 1e-9)
        self.last_rate_check = (now, counters["received"])
        live = self.sync.live_views()
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        name = self.get_fully_qualified_name()
        for view, topic in enumerate(self.topics):
            values = {"topic": topic, "rate_hz": f"{rates[view]:.2f}", "live": str(bool(live[view]))}
            values.update({key: str(counts[view]) for key, counts in counters.items()})
            values.update({f"invalid_{reason}": str(counts[view]) for reason, counts in self.invalid.items()})
            values.update({f"gated_{reason}": str(counts[view]) for reason, counts in self.gate.counters.items()})
            values["dropped_clock"] = str(self.clock_check.dropped[view])
            if self.multi:
                values["input_type"] = self.input_types[view]
                values["people_received"] = str(self.people_input.people[view])
                values.update({f"person_{reason}": str(counts[view])
                               for reason, counts in self.people_input.counters.items()})
                values.update({key: str(counts[view]) for key, counts in self.people_counters.items()})
            if self.clock_check.isolated[view]:
                level, message = DiagnosticStatus.WARN, "isolated: its clock disagrees with the other cameras'"
            elif live[view]:
                level, message = DiagnosticStatus.OK, "receiving"
            else:
                level, message = DiagnosticStatus.WARN, "silent"
            msg.status.append(self.status(f"{name}: camera {view}", level, message, values))
        refiner = self.pipeline or self.refiner
        values = {
            "backend": self.backend_label, "window": str(self.backend.config.window),
            "emit_delay": str(refiner.emit_delay),
            "views_in_use": ",".join(str(v) for v in np.flatnonzero(self.last_views)),
            "step_latency_p50_ms": f"{self.step_latency.percentile_ms(50):.2f}",
            "step_latency_p99_ms": f"{self.step_latency.percentile_ms(99):.2f}",
            "publish_latency_p50_ms": f"{self.publish_latency.percentile_ms(50):.2f}",
            "publish_latency_p99_ms": f"{self.publish_latency.percentile_ms(99):.2f}",
            "frames_published": str(self.frames_published), "sync_resets": str(self.sync.reset_count),
        }
        values.update({key: str(value) for key, value in self.counters.items()})
        if self.multi:
            values.update({key: str(value) for key, value in vars(self.pipeline.refiner.stats).items()})
            values.update({key: str(value) for key, value in vars(self.pipeline.assembler.stats).items()})
            values["people_published"] = str(self.people_published)
            values["duplicate_stamps"] = str(self.pipeline.duplicate_stamps)
        else:
            values.update({key: str(value) for key, value in vars(self.refiner.stats).items()})
        ok = self.last_views.any()
        msg.status.append(self.status(f"{name}: refiner", DiagnosticStatus.OK if ok else DiagnosticStatus.WARN,
                                      "refining" if ok else "no output yet", values))
        if self.multi:
            msg.status.append(self.people_status(f"{name}: people"))
        self.diagnostics_pub.publish(msg)

    def people_status(self, name: str) -> DiagnosticStatus:
        """The tracker's counts: tracked (now), born, lost, id switches absorbed, and the rest."""
        stats = self.pipeline.tracker.stats
        values = {"tracked": str(stats.tracked), "born": str(stats.born), "lost": str(stats.lost),
                  "id_switches_absorbed": str(stats.id_switches_absorbed),
                  "tracked_ids": ",".join(str(pid) for pid in self.pipeline.refiner.people)}
        values.update({key: str(value) for key, value in vars(stats).items() if key not in values})
        return self.status(name, DiagnosticStatus.OK, f"{stats.tracked} tracked", values)

    def status(self, name: str, level: bytes, message: str, values: dict) -> DiagnosticStatus:
        return DiagnosticStatus(level=level, name=name, message=message, hardware_id=self.get_name(),
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])


TOPICS = [
    ("<input_topics[i]>  (geometry_msgs/PoseArray, in)",
     "camera i's skeleton: header.stamp = capture time, poses[j].position = joint j in metres, in frame_id"),
    ("<input_topics[i]>  (synsp_msgs/SkeletonArray, in; input_types skeleton_array)",
     "camera i's people: producer ids, joints in metres (NaN = missing), per-joint confidence, in frame_id"),
    ("<input_topics[i]>  (visualization_msgs/MarkerArray, in; input_types azure_kinect)",
     "the Azure Kinect driver's body_tracking_data: marker id = body id * 100 + joint (32 joints -> h36m17)"),
    ("~/people  (synsp_msgs/SkeletonArray; several people)",
     "refined people with global ids, per-joint quality as confidence, stamped with the capture stamp"),
    ("~/refined  (geometry_msgs/PoseArray; one person)", "fused refined skeleton, stamped with the frame's capture stamp"),
    ("~/refined/view_<i>  (geometry_msgs/PoseArray)", "camera i's refined skeleton (publish_per_view)"),
    ("~/markers  (visualization_msgs/MarkerArray)", "joints and bones for RViz (several people: a colour and an id "
                                                     "label per person)"),
    ("~/quality  (std_msgs/Float32MultiArray)", "PQE quality per camera of the frame just published"),
    ("~/joint_quality  (std_msgs/Float32MultiArray)",
     "per joint: best camera quality x the joint's confidence; 0 = no camera saw it (predicted)"),
    ("/diagnostics  (diagnostic_msgs/DiagnosticArray)",
     "per camera and refiner: rates, counters, latency; several people: tracked, born, lost, id switches"),
]
HELP = usage("refine_node", __doc__.split("\n\n")[0] + " See docs/ros.md.", TOPICS, PARAMETERS)


def main(args=None) -> int:
    return run_node(RefineNode, "refine_node", args, HELP)


if __name__ == "__main__":
    sys.exit(main())
