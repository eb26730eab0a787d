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

Several people (`--people 1,3,6`: one run, and one node process, per count): the node in its
multi-person mode (`input_types: [skeleton_array]`, output ~/people, one SkeletonArray per
synchronized frame), fed the cameras of synsp_core.room (people walking and crossing, each camera
with its own tracker ids, id switches, people out of view, occluded or missed, missed joints),
pre-built SkeletonArrays, one stamp for all cameras of a frame. Same latency and emit-wait rules
(a frame released before frame t + d was sent, because nobody it held was seen any more, counts
from the last camera message sent before it arrived: `early_releases`); dropped frames = frames
with no ~/people message; plus the people per frame seen by some camera and refined.
"""
from __future__ import annotations

import argparse
import json
import math
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
    parser.add_argument("--people", default="", help="several people: counts, comma-separated (e.g. 1,3,6): "
                        "the multi-person mode on a simulated room, one run per count; '' = one person on PoseArray")
    parser.add_argument("--window-budget", type=int, default=0,
                        help="several people: the node's people_window_budget (0 = every person's window every frame)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, s (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles_ms(seconds) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def spin_probe(node, msg_type, topic: str, on_output):
    """Subscribe the benchmark's node to the refine node's output `topic` (reliable, deep) and to
    /diagnostics, and spin it in a thread; -> (the diagnostics received, as a growing list, the executor)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from synsp_ros.conversions import diagnostic_values

    diagnostics = []
    node.create_subscription(msg_type, topic, on_output, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda msg: diagnostics.append(diagnostic_values(msg)),
                             10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    return diagnostics, executor


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"   # network rule, before rclpy starts
    os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))
    if args.people:
        return main_people(args, argv)
    import rclpy
    from geometry_msgs.msg import PoseArray
    from rclpy.qos import qos_profile_sensor_data

    from synsp_ros.conversions import mm_to_pose_array, ns_to_stamp, stamp_to_ns
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
    diagnostics, executor = spin_probe(
        node, PoseArray, "/refine_node/refined",
        lambda msg: received.setdefault(stamp_to_ns(msg.header.stamp), time.monotonic()))

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


def main_people(args, argv) -> int:
    """One run per people count; prints each report, then a table."""
    counts = [int(n) for n in args.people.split(",") if n.strip()]
    reports = []
    for people in counts:
        print(f"--- {people} people x {args.views} cameras x {args.rate:g} fps, {args.duration:g} s", flush=True)
        report = run_people(args, people)
        report["command"] = " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])
        print(json.dumps(report, indent=2), flush=True)
        reports.append(report)
    print(f"\n{'people':>6} {'frames':>7} {'dropped':>7} {'people/frame seen -> out':>25} | latency ms p50 / p99 "
          f"(emit wait excluded) | emit wait ms p50 | node step ms p50 / p99 | node CPU %")
    for r in reports:
        lat, wait, step = r["latency_ms"] or {}, r["emit_wait_ms"] or {}, r["node_step_latency_ms"]
        print(f"{r['people']:>6} {r['frames_measured']:>7} {r['dropped_frames']:>7} "
              f"{r['people_per_frame_seen']:>12.2f} -> {r['people_per_frame_refined']:<9.2f} | "
              f"{lat.get('p50', math.nan):9.1f} / {lat.get('p99', math.nan):5.1f}{'':20s} | "
              f"{wait.get('p50', math.nan):16.0f} | {step.get('p50') or '?':>9} / {step.get('p99') or '?':<6} "
              f"| {r['node_cpu_percent_of_one_core']:.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2))
    return 0


def run_people(args, people: int) -> dict:
    """The multi-person mode under a live room of `people` people (module docstring)."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from synsp_msgs.msg import SkeletonArray

    from synsp_core.room import Room, RoomConfig
    from synsp_ros.conversions import ns_to_stamp, people_to_skeleton_array, stamp_to_ns
    from synsp_ros.demo import start_node, stop_node

    topics = [f"camera_{v}/people" for v in range(args.views)]
    params = {"checkpoint": args.checkpoint, "backend": args.backend, "emit_delay": args.emit_delay,
              "torch_threads": args.torch_threads, "input_topics": "[" + ",".join(topics) + "]",
              "input_types": "[skeleton_array]", "bone_lengths": str(not args.no_bone_lengths).lower(),
              "people_window_budget": args.window_budget}
    (REPO / "out").mkdir(exist_ok=True)
    node_proc = start_node("synsp_ros.refine_node", params, REPO / "out" / f"node_latency_people{people}_refine.log")
    room = Room(RoomConfig(people=people, cameras=args.views, fps=args.rate,
                           duration_s=args.warmup + args.duration + 1.0, seed=0))
    messages = []             # built once: only the stamps change while measuring
    for frame in room:
        messages.append([people_to_skeleton_array(
            [d[0] for d in cam], np.stack([d[1] for d in cam]) if cam else np.zeros((0, 17, 3)), ns_to_stamp(0),
            "world", "h36m17", np.stack([d[2] for d in cam]) if cam else None) for cam in frame.cameras])
    seen_per_frame = room.seen.any(axis=0).sum(axis=1)           # (T,) people some camera saw

    rclpy.init()
    node = rclpy.create_node("node_latency_bench")
    publishers = [node.create_publisher(SkeletonArray, topic, qos_profile_sensor_data) for topic in topics]
    received = {}             # capture stamp ns -> (monotonic s of arrival, people in it)
    diagnostics, executor = spin_probe(
        node, SkeletonArray, "/refine_node/people",
        lambda msg: received.setdefault(stamp_to_ns(msg.header.stamp), (time.monotonic(), len(msg.skeletons))))
    period = 1.0 / args.rate
    total = int((args.warmup + args.duration) * args.rate)
    measured_from = int(args.warmup * args.rate)
    sent = np.full(total, np.nan)       # monotonic s when the frame's last camera message was sent
    stamps = np.zeros(total, dtype=np.int64)
    try:
        deadline = time.monotonic() + 120
        while not all(p.get_subscription_count() for p in publishers):
            if node_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("refine_node did not start; see out/node_latency_people*_refine.log")
            time.sleep(0.1)
        start = time.monotonic() + 0.5
        for frame in range(total):
            time.sleep(max(0.0, start + frame * period - time.monotonic()))
            if frame == measured_from:
                cpu_start, wall_start = cpu_seconds(node_proc.pid), time.monotonic()
            stamp_ns = time.time_ns()
            for view, pub in enumerate(publishers):
                msg = messages[frame][view]
                msg.header.stamp = ns_to_stamp(stamp_ns)
                pub.publish(msg)
            sent[frame], stamps[frame] = time.monotonic(), stamp_ns
        cpu_used = cpu_seconds(node_proc.pid) - cpu_start
        wall = time.monotonic() - wall_start
        time.sleep(2.0)   # let the last outputs arrive
    finally:
        stop_node(node_proc)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()

    d = args.emit_delay
    frame_of = {int(s): f for f, s in enumerate(stamps)}
    latency, wait, early = [], [], 0
    for stamp, (arrived, _) in received.items():
        frame = frame_of.get(stamp)
        if frame is None or frame < measured_from or frame + d >= total:
            continue
        release = frame + d
        if not sent[release] <= arrived:                         # released early (nobody left to wait for)
            release = int(np.searchsorted(sent, arrived, side="right")) - 1
            early += 1
        latency.append(arrived - sent[release])
        wait.append(sent[release] - sent[frame])
    expected = range(measured_from, total - d)
    got = [received.get(int(stamps[f])) for f in expected]
    last = diagnostics[-1] if diagnostics else {}
    refiner = next((values for name, values in last.items() if name.endswith("refiner")), {})
    tracked = next((values for name, values in last.items() if name.endswith("people")), {})
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "people": people, "window_budget": args.window_budget, "views": args.views, "rate_hz": args.rate,
        "duration_s": args.duration, "emit_delay": d,
        "backend": refiner.get("backend", "?"), "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        "frames_measured": len(expected), "dropped_frames": sum(g is None for g in got), "early_releases": early,
        "people_per_frame_seen": float(seen_per_frame[list(expected)].mean()),
        "people_per_frame_refined": float(np.mean([g[1] for g in got if g is not None])) if any(got) else 0.0,
        "latency_ms": percentiles_ms(latency) if latency else None,
        "emit_wait_ms": percentiles_ms(wait) if wait else None,
        "node_cpu_percent_of_one_core": 100.0 * cpu_used / wall,
        "node_step_latency_ms": {k: refiner.get(f"step_latency_{k}_ms") for k in ("p50", "p99")},
        "node_publish_latency_ms": {k: refiner.get(f"publish_latency_{k}_ms") for k in ("p50", "p99")},
        "model_calls": refiner.get("model_calls"), "largest_batch": refiner.get("max_batch"),
        "skipped_windows": refiner.get("skipped_windows"),
        "tracker": {k: tracked.get(k) for k in ("born", "lost", "id_switches_absorbed", "tentative_dropped")},
        "room_id_switches": room.id_switches,
        "sync_drops": {name: {k: v for k, v in values.items() if k.startswith(("dropped", "lost"))}
                       for name, values in last.items() if "camera" in name},
    }


if __name__ == "__main__":
    sys.exit(main())
