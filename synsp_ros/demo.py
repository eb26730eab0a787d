"""Live demo: replay a real CMU clip as 4 noisy cameras, refine it with refine_node, score it live.

    python -m synsp_ros.demo [--duration 25] [--out out/demo] [--checkpoint PATH] [--emit-delay 7]

Starts replay_node and refine_node as separate processes (network rule: localhost discovery,
a domain of its own), subscribes to the ground truth, the cameras and the refined output,
prints a table every second (input vs refined MPJPE and Accel error, capture-to-output latency,
rates), then writes a plot of the right wrist (ground truth, camera 0, refined) and a summary,
stops both nodes and exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from synsp_core.checkpoint import DEFAULT_CHECKPOINT
from synsp_core.metrics import accel_error_per_frame, evaluate_sequences, mpjpe_per_frame
from synsp_core.skeletons import H36M17

WRIST = H36M17.joint_names.index("r_wrist")


class LiveScorer:
    """Matches the ground truth, camera and refined streams by capture stamp and scores them.

    Camera stamps carry jitter, so every stream is matched to the nearest ground-truth stamp
    within half a frame period. Scores are taken on the frames present in all streams; Accel
    needs three consecutive ground-truth frames present.
    """

    def __init__(self, num_views: int, rate_hz: float):
        self.num_views = num_views
        self.tolerance_ns = int(0.5e9 / rate_hz)
        self.gt: dict[int, np.ndarray] = {}
        self.inputs: list[dict[int, np.ndarray]] = [{} for _ in range(num_views)]
        self.refined: dict[int, np.ndarray] = {}
        self.latency_s: list[float] = []

    def add_gt(self, stamp_ns: int, pose: np.ndarray) -> None:
        self.gt[stamp_ns] = pose

    def add_input(self, view: int, stamp_ns: int, pose: np.ndarray) -> None:
        self.inputs[view][stamp_ns] = pose

    def add_refined(self, stamp_ns: int, pose: np.ndarray, received_ns: int) -> None:
        self.refined[stamp_ns] = pose
        self.latency_s.append((received_ns - stamp_ns) * 1e-9)

    def match(self, gt_stamps: np.ndarray, stream: dict[int, np.ndarray]) -> np.ndarray:
        """Per gt stamp: the stream's stamp nearest to it, or -1 if none is within tolerance."""
        stamps = np.array(sorted(stream), dtype=np.int64)
        if not len(stamps):
            return np.full(len(gt_stamps), -1, dtype=np.int64)
        after = np.searchsorted(stamps, gt_stamps)
        candidates = np.stack([np.clip(after - 1, 0, len(stamps) - 1), np.clip(after, 0, len(stamps) - 1)])
        distance = np.abs(stamps[candidates] - gt_stamps)
        nearest = stamps[candidates[distance.argmin(axis=0), np.arange(len(gt_stamps))]]
        return np.where(distance.min(axis=0) <= self.tolerance_ns, nearest, -1)

    def aligned(self):
        """Frames present in every stream: (gt stamps (T,), gt (T, J, 3), inputs (V, T, J, 3),
        refined (T, J, 3), their indices among all gt frames (T,)); None before any such frame."""
        gt_stamps = np.array(sorted(self.gt), dtype=np.int64)
        streams = [*self.inputs, self.refined]
        matches = [self.match(gt_stamps, stream) for stream in streams]
        keep = np.flatnonzero(np.all([m >= 0 for m in matches], axis=0))
        if not len(keep):
            return None
        poses = [np.stack([stream[s] for s in m[keep]]) for stream, m in zip(streams, matches)]
        gt = np.stack([self.gt[s] for s in gt_stamps[keep]])
        return gt_stamps[keep], gt, np.stack(poses[:-1]), poses[-1], keep

    def runs(self, keep: np.ndarray) -> list[slice]:
        """Slices of the aligned frames that are consecutive ground-truth frames, 3 or more long."""
        breaks = np.flatnonzero(np.diff(keep) != 1) + 1
        bounds = np.concatenate([[0], breaks, [len(keep)]])
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= 3]

    def quick_scores(self) -> dict[str, float]:
        """MPJPE and Accel error (mm, mm/frame^2) of the inputs (mean over cameras) and the output."""
        aligned = self.aligned()
        runs = self.runs(aligned[-1]) if aligned else []
        if not runs:
            return {}
        _, gt, inputs, refined, keep = aligned
        frames = np.concatenate([np.arange(len(keep))[r] for r in runs])

        def score(pred):
            accel = np.concatenate([accel_error_per_frame(pred[r], gt[r]).ravel() for r in runs])
            return mpjpe_per_frame(pred[frames], gt[frames]).mean(), accel.mean()
        inputs_scored = np.array([score(view) for view in inputs])
        (in_mpjpe, in_accel), (out_mpjpe, out_accel) = inputs_scored.mean(axis=0), score(refined)
        return {"input_mpjpe": in_mpjpe, "refined_mpjpe": out_mpjpe, "input_accel": in_accel,
                "refined_accel": out_accel, "frames": len(frames)}

    def final_scores(self) -> dict:
        """All metrics of synsp_core.metrics for every camera and the refined output."""
        aligned = self.aligned()
        runs = self.runs(aligned[-1]) if aligned else []
        if not runs:
            return {}
        _, gt, inputs, refined, _ = aligned
        scores = {f"camera_{v}": evaluate_sequences([(inputs[v][r], gt[r]) for r in runs])
                  for v in range(self.num_views)}
        scores["input_mean"] = {k: float(np.mean([scores[f"camera_{v}"][k] for v in range(self.num_views)]))
                                for k in scores["camera_0"]}
        naive = inputs.mean(axis=0)   # baseline: the plain average of the cameras, no model
        scores["camera_average"] = evaluate_sequences([(naive[r], gt[r]) for r in runs])
        scores["refined"] = evaluate_sequences([(refined[r], gt[r]) for r in runs])
        scores["frames"] = int(sum(r.stop - r.start for r in runs))
        latency = np.array(self.latency_s) * 1e3
        scores["latency_ms"] = {"p50": float(np.percentile(latency, 50)), "p99": float(np.percentile(latency, 99))}
        return scores


def plot_wrist(scorer: LiveScorer, path: Path) -> None:
    """x/y/z of the right wrist over time: ground truth, camera 0, refined."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stamps, gt, inputs, refined, _ = scorer.aligned()
    t = (stamps - stamps[0]) * 1e-9
    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True)
    for axis, name, ax in zip(range(3), "xyz", axes):
        ax.plot(t, inputs[0, :, WRIST, axis], color="0.6", lw=0.8, label="camera 0 (input)")
        ax.plot(t, gt[:, WRIST, axis], color="k", lw=1.2, label="ground truth")
        ax.plot(t, refined[:, WRIST, axis], color="tab:green", lw=1.2, label="refined (fused)")
        ax.set_ylabel(f"{name} (mm)")
    axes[0].legend(loc="upper right", ncol=3, fontsize=8)
    axes[0].set_title("right wrist, live through refine_node")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def start_node(module: str, params: dict, log_path: Path) -> subprocess.Popen:
    # rcl cannot parse an empty override ("checkpoint:="): leave empty strings at the node's default
    args = [f"{name}:={value}" for name, value in params.items() if value != ""]
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", module, "--ros-args", *sum((["-p", a] for a in args), [])],
                                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def stop_node(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(20)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=25.0, help="seconds of refined output to watch")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="where the plot, summary and logs go")
    parser.add_argument("--checkpoint", default="", help="model checkpoint ('' = the shipped weights)")
    parser.add_argument("--backend", default="auto", help="auto | tensorrt | cuda | cpu")
    parser.add_argument("--emit-delay", type=int, default=7, help="frames, 0 (causal) .. window-1 (full average)")
    parser.add_argument("--views", type=int, default=4, help="cameras")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--clip", default="soccer_1", help="clip of the bundled CMU test clips")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic estimator errors")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="s to wait for the first output")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.checkpoint and not DEFAULT_CHECKPOINT.is_file():
        print(f"demo: the shipped weights {DEFAULT_CHECKPOINT} are missing; pass --checkpoint", file=sys.stderr)
        return 2
    # Network rule: discovery stays on this machine, in a domain of our own (before rclpy starts).
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))
    import rclpy
    from geometry_msgs.msg import PoseArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    from synsp_ros.conversions import pose_array_to_mm, stamp_to_ns

    args.out.mkdir(parents=True, exist_ok=True)
    topics = [f"camera_{v}/skeleton" for v in range(args.views)]
    replay = start_node("synsp_ros.replay_node", {
        "num_views": args.views, "rate": args.rate, "clip": args.clip, "seed": args.seed}, args.out / "replay_node.log")
    refine = start_node("synsp_ros.refine_node", {
        "checkpoint": args.checkpoint, "backend": args.backend, "emit_delay": args.emit_delay,
        "input_topics": "[" + ",".join(topics) + "]"}, args.out / "refine_node.log")
    rclpy.init()
    node = rclpy.create_node("synsp_demo")
    scorer = LiveScorer(args.views, args.rate)
    counts = {"input": 0, "refined": 0}

    def on_input(view, msg):
        counts["input"] += 1
        scorer.add_input(view, stamp_to_ns(msg.header.stamp), pose_array_to_mm(msg))

    def on_refined(msg):
        counts["refined"] += 1
        scorer.add_refined(stamp_to_ns(msg.header.stamp), pose_array_to_mm(msg), time.time_ns())

    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(PoseArray, "/replay_node/ground_truth",
                             lambda msg: scorer.add_gt(stamp_to_ns(msg.header.stamp), pose_array_to_mm(msg)), reliable)
    for view, topic in enumerate(topics):
        node.create_subscription(PoseArray, topic, lambda msg, view=view: on_input(view, msg), qos_profile_sensor_data)
    node.create_subscription(PoseArray, "/refine_node/refined", on_refined, reliable)

    status = 0
    try:
        print(f"demo: {args.views} cameras at {args.rate:g} Hz replaying CMU '{args.clip}' with synthetic estimator "
              f"errors -> refine_node (emit_delay {args.emit_delay} = {args.emit_delay / args.rate * 1e3:.0f} ms "
              f"of latency by design); logs in {args.out}/")
        start = time.monotonic()
        while counts["refined"] == 0:
            rclpy.spin_once(node, timeout_sec=0.1)
            for proc, name in ((replay, "replay_node"), (refine, "refine_node")):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {args.out}/{name}.log")
            if time.monotonic() - start > args.startup_timeout:
                raise RuntimeError(f"no refined output after {args.startup_timeout:.0f} s; see {args.out}/*.log")
        print(f"first refined frame after {time.monotonic() - start:.1f} s of start-up\n")
        print(" time  frames | MPJPE mm in -> out | Accel mm/f^2 in -> out | latency ms p50 / p99 | Hz in / out")
        start = last_row = time.monotonic()
        last_counts = dict(counts)
        while time.monotonic() - start < args.duration:
            rclpy.spin_once(node, timeout_sec=0.05)
            now = time.monotonic()
            if now - last_row >= 1.0:
                s = scorer.quick_scores()
                latency = np.array(scorer.latency_s[-300:]) * 1e3
                rates = {k: (counts[k] - last_counts[k]) / (now - last_row) for k in counts}
                last_counts, last_row, elapsed = dict(counts), now, now - start
                if s:
                    print(f"{elapsed:5.0f}s {s['frames']:6d} | {s['input_mpjpe']:7.1f} -> {s['refined_mpjpe']:6.1f}"
                          f"    | {s['input_accel']:9.2f} -> {s['refined_accel']:6.2f}      "
                          f"| {np.percentile(latency, 50):9.0f} / {np.percentile(latency, 99):5.0f}    "
                          f"| {rates['input'] / args.views:5.1f} / {rates['refined']:4.1f}", flush=True)
    except KeyboardInterrupt:
        print("demo: interrupted, finishing")
    except RuntimeError as error:
        print(f"demo: {error}", file=sys.stderr)
        status = 1
    finally:
        codes = {"replay_node": stop_node(replay), "refine_node": stop_node(refine)}
        node.destroy_node()
        rclpy.try_shutdown()
    if status:
        return status
    scores = scorer.final_scores()
    if not scores:
        print("demo: too few matched frames to score", file=sys.stderr)
        return 1
    plot_wrist(scorer, args.out / "right_wrist.png")
    (args.out / "summary.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "scores": scores, "exit_codes": codes}, indent=2))
    print(f"\nover {scores['frames']} frames     MPJPE  PA-MPJPE  Accel (mm, mm/frame^2)")
    for name, key in (("each camera (mean)", "input_mean"), ("average of the cameras", "camera_average"),
                      ("refined (SynSP)", "refined")):
        print(f"  {name:22s} {scores[key]['mpjpe']:6.1f}  {scores[key]['pa_mpjpe']:8.1f}  {scores[key]['accel']:5.2f}")
    print(f"latency capture -> refined received: p50 {scores['latency_ms']['p50']:.0f} ms, "
          f"p99 {scores['latency_ms']['p99']:.0f} ms")
    print(f"wrote {args.out / 'right_wrist.png'} and {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
