"""refine_node latency under a live load: V cameras x 17 joints at R fps for D seconds.

    python benchmarks/node_latency.py [--views 4] [--rate 30] [--duration 60] [--checkpoint PATH]
        [--backend cpu] [--emit-delay 7] [--no-bone-lengths] [--json out/node_latency.json]

Starts refine_node in its own process (network rule: localhost discovery, a domain of its own),
publishes the cameras from this process (pre-built PoseArrays of a real clip, only the stamps
change) and subscribes to ~/refined. For each refined frame t, with emit_delay d:
  latency   = refined received - last view of frame t + d sent  (the message that released it;
              the emit_delay wait is excluded, it is a choice, not a cost)
  emit wait = last view of frame t + d sent - last view of frame t sent  (reported on its own)
Both are measured on this process's monotonic clock, so they include the DDS transport both ways.
Also: dropped frames (sent, never refined), the node's CPU use from /proc/<pid>/stat, and the
node's own step latency (model + SWAA) and publish latency (callback entry -> published) from
/diagnostics; the rest of the latency is DDS transport and the executor.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--rate", type=float, default=30.0, help="Hz per camera")
    parser.add_argument("--duration", type=float, default=60.0, help="s measured (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=5.0, help="s of load before measuring")
    parser.add_argument("--checkpoint", default="", help="'' = the shipped weights")
    parser.add_argument("--backend", default="cpu", help="auto | tensorrt | cuda | cpu")
    parser.add_argument("--emit-delay", type=int, default=7)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--no-bone-lengths", action="store_true", help="node without the bone-length stage")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, s (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles_ms(seconds) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"   # network rule, before rclpy starts
    os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    from synsp_ros.conversions import diagnostic_values, mm_to_pose_array, ns_to_stamp, stamp_to_ns
    from synsp_ros.demo import start_node

    topics = [f"camera_{v}/skeleton" for v in range(args.views)]
    params = {"checkpoint": args.checkpoint, "backend": args.backend, "emit_delay": args.emit_delay,
              "torch_threads": args.torch_threads, "input_topics": "[" + ",".join(topics) + "]",
              "bone_lengths": str(not args.no_bone_lengths).lower()}
    (REPO / "out").mkdir(exist_ok=True)
    node_proc = start_node("synsp_ros.refine_node", params, REPO / "out" / "node_latency_refine.log")

    rclpy.init()
    node = rclpy.create_node("node_latency_bench")
    clip = np.load(REPO / "synsp_core" / "data" / "cmu_test_clips_120fps.npz")["soccer_1"][::4].astype(np.float64)
    rng = np.random.default_rng(0)
    messages = [[mm_to_pose_array(pose + rng.normal(0, 20, pose.shape), ns_to_stamp(0), "world") for pose in clip]
                for _ in range(args.views)]          # built once: only stamps change while measuring
    publishers = [node.create_publisher(PoseArray, topic, qos_profile_sensor_data) for topic in topics]
    sent_last = {}        # capture stamp ns -> monotonic s when the last view of the frame was sent
    frame_of = {}         # capture stamp ns -> frame index
    received = {}         # capture stamp ns -> monotonic s when its refined frame arrived
    diagnostics = []
    node.create_subscription(PoseArray, "/refine_node/refined",
                             lambda msg: received.setdefault(stamp_to_ns(msg.header.stamp), time.monotonic()),
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda msg: diagnostics.append(diagnostic_values(msg)),
                             10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    try:
        deadline = time.monotonic() + 120
        while not all(p.get_subscription_count() for p in publishers):
            if node_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("refine_node did not start; see out/node_latency_refine.log")
            time.sleep(0.1)
        period = 1.0 / args.rate
        total = int((args.warmup + args.duration) * args.rate)
        measured_from = int(args.warmup * args.rate)
        start = time.monotonic() + 0.5
        cpu_start = None
        for frame in range(total):
            target = start + frame * period
            time.sleep(max(0.0, target - time.monotonic()))
            if frame == measured_from:
                cpu_start, wall_start = cpu_seconds(node_proc.pid), time.monotonic()
            stamp_ns = time.time_ns()
            for view, pub in enumerate(publishers):
                msg = messages[view][frame % len(clip)]
                msg.header.stamp = ns_to_stamp(stamp_ns)
                pub.publish(msg)
            sent_last[stamp_ns] = time.monotonic()
            frame_of[stamp_ns] = frame
        cpu_used = cpu_seconds(node_proc.pid) - cpu_start
        wall = time.monotonic() - wall_start
        time.sleep(2.0)   # let the last outputs arrive
    finally:
        if node_proc.poll() is None:
            node_proc.send_signal(signal.SIGINT)
            node_proc.wait(30)
        executor.shutdown()
        rclpy.try_shutdown()

    by_frame = {frame_of[s]: s for s in sent_last}
    d = args.emit_delay
    latency, wait = [], []
    for stamp, arrived in received.items():
        frame = frame_of.get(stamp)
        if frame is None or frame < measured_from or frame + d not in by_frame:
            continue
        released_by = sent_last[by_frame[frame + d]]
        latency.append(arrived - released_by)
        wait.append(released_by - sent_last[stamp])
    expected = [s for s, f in frame_of.items() if measured_from <= f < total - d]
    dropped = sum(s not in received for s in expected)
    last_diagnostics = diagnostics[-1] if diagnostics else {}
    refiner = next((values for name, values in last_diagnostics.items() if name.endswith("refiner")), {})
    cameras = {name: values for name, values in last_diagnostics.items() if "camera" in name}
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "views": args.views, "rate_hz": args.rate, "duration_s": args.duration, "emit_delay": d,
        "backend": refiner.get("backend", "?"), "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        "frames_measured": len(expected), "frames_refined": len(expected) - dropped, "dropped_frames": dropped,
        "latency_ms": percentiles_ms(latency) if latency else None,
        "emit_wait_ms": percentiles_ms(wait) if wait else None,
        "node_cpu_percent_of_one_core": 100.0 * cpu_used / wall,
        "node_step_latency_ms": {k: refiner.get(f"step_latency_{k}_ms") for k in ("p50", "p99")},
        # callback entry of the releasing message -> refined published, inside the node
        "node_publish_latency_ms": {k: refiner.get(f"publish_latency_{k}_ms") for k in ("p50", "p99")},
        "sync_drops": {name: {k: v for k, v in values.items() if k.startswith("dropped")}
                       for name, values in cameras.items()},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
