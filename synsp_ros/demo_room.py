"""Room demo: 3 people x 4 cameras whose trackers have their own ids -> refine_node -> per-person scores.

    python -m synsp_ros.demo_room [--duration 20] [--people 3] [--views 4] [--seed 0] [--out out/demo_room]
    python -m synsp_ros.demo_room --offline          # the same without ROS: the node's people pipeline

The room is synsp_core.room.Room: people walking on crossing circles (real CMU motion), cameras
with a field of view, occlusions, detector misses, missed joints, estimator-like errors and
trackers with id switches and swaps. Live (default): this process publishes each camera's
reports as a synsp_msgs/SkeletonArray on camera_<i>/people at the camera rate (the frame's
capture time as stamp), starts refine_node in multi-person mode in its own process (network
rule: localhost discovery, a domain of its own) and reads its ~/people. Offline: the room goes
straight through the node's multi-person path without ROS (synsp_core.people_pipeline:
PeopleTracker -> MultiPersonRefiner -> frames assembled by stamp), frame by frame.

Then, per true person (each output skeleton is matched, per frame, to the nearest true person):
MPJPE and Accel error (root-relative, synsp_core.metrics' definitions; missing joints and frames
left out) of the input (each camera's reports as produced, the mean over the cameras that saw the
person), of the plain mean of those cameras per frame, and of the refined output, all over the
frames the person was refined; the ids: the cameras' producer-id switches, those the node
absorbed, and the output's own id switches (a person's global id changing; 0 is right) and ids
mixing two people. Writes a top-view plot of the tracks, a summary and (live) the node's log
to --out.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from synsp_core.room import Room, RoomConfig

MATCH_GATE_MM = 300.0     # an output skeleton further than this (mean joint distance) from every true person: unmatched


# -- scoring (no ROS) ------------------------------------------------------------------------------
def _relative_errors(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pred, gt (T, J, 3) mm, pred NaN where missing -> per joint root-relative position error
    (T, J) and acceleration error (T - 2, J), NaN where pred misses a joint, the pelvis or (Accel) a
    frame of the three."""
    rel_pred = pred - pred[:, :1]
    rel_gt = gt - gt[:, :1]
    position = np.linalg.norm(rel_pred - rel_gt, axis=-1)
    accel = np.linalg.norm(np.diff(rel_pred, n=2, axis=0) - np.diff(rel_gt, n=2, axis=0), axis=-1)
    return position, accel


def nan_scores(pred: np.ndarray, gt: np.ndarray) -> dict:
    """MPJPE (mm) and Accel error (mm/frame^2) of pred over its finite joints (see _relative_errors)."""
    position, accel = _relative_errors(pred, gt)
    frames = int(np.isfinite(position).any(axis=1).sum())
    mean = lambda x: float(np.nanmean(x)) if np.isfinite(x).any() else math.nan   # noqa: E731
    return {"mpjpe": mean(position), "accel": mean(accel), "frames": frames}


class RoomScorer:
    """Refined people in (per frame: global ids and joints), per-person scores and id errors out.

    Each frame's output skeletons are matched to the true people by Hungarian assignment on the
    mean joint distance (at most MATCH_GATE_MM): the scores do not trust the node's ids, they
    check them.
    """

    def __init__(self, room: Room):
        self.room = room
        self.outputs: dict[int, dict[int, np.ndarray]] = {}    # frame index -> {global id: (J, 3) mm}
        self.latency_s: list[float] = []
        self.tracker_stats: dict = {}                         # what the node / tracker counted

    def add(self, frame: int, person_id: int, joints_mm: np.ndarray) -> None:
        if 0 <= frame < len(self.room):
            self.outputs.setdefault(frame, {})[int(person_id)] = np.asarray(joints_mm, dtype=np.float64)

    def matched(self) -> tuple[np.ndarray, np.ndarray]:
        """(T, P) global id matched to each true person per frame (-1: none) and (P, T, J, 3) the
        matched refined poses (NaN where none)."""
        room = self.room
        ids = np.full((len(room), room.num_people), -1, dtype=np.int64)
        poses = np.full(room.truth.shape, np.nan)
        for t, people in self.outputs.items():
            gids = sorted(people)
            out = np.stack([people[g] for g in gids])
            cost = np.linalg.norm(out[:, None] - room.truth[None, :, t], axis=-1).mean(axis=-1)   # (K, P)
            cost = np.where(np.isfinite(cost), cost, 1e9)
            for k, p in zip(*linear_sum_assignment(cost)):
                if cost[k, p] <= MATCH_GATE_MM:
                    ids[t, p], poses[p, t] = gids[k], out[k]
        return ids, poses

    def identities(self, ids: np.ndarray) -> dict:
        """Output id errors: per person the global ids it had (in order) and its id switches (the
        matched id changing between matched frames); ids given to more than one person."""
        people, owners = {}, {}
        for p in range(ids.shape[1]):
            seq = ids[:, p][ids[:, p] >= 0]
            changes = int((seq[1:] != seq[:-1]).sum()) if len(seq) else 0
            people[p] = {"ids": list(dict.fromkeys(int(g) for g in seq)), "id_switches": changes}
            for g in set(seq.tolist()):
                owners.setdefault(int(g), set()).add(p)
        return {"people": people, "output_id_switches": sum(v["id_switches"] for v in people.values()),
                "ids_mixing_people": sorted(g for g, o in owners.items() if len(o) > 1),
                "global_ids": len(owners)}

    def scores(self) -> dict:
        """Per person: input (mean over the cameras), camera mean, refined: mpjpe, accel, frames;
        over the frames the person was refined. Plus `all` (frame-weighted) and the ids."""
        room = self.room
        ids, refined = self.matched()
        result = {}
        for p in range(room.num_people):
            scored = np.isfinite(refined[p]).all(axis=(1, 2))                     # (T,) frames refined
            produced = np.where(scored[None, :, None, None], room.produced(p), np.nan)   # (V, T, J, 3)
            cameras = [nan_scores(produced[v], room.truth[p]) for v in range(room.num_cameras)]
            cameras = [c for c in cameras if c["frames"]]
            with np.errstate(invalid="ignore"), _quiet():
                mean = np.nanmean(produced, axis=0)
            result[p] = {
                "input": {k: float(np.mean([c[k] for c in cameras])) if cameras else math.nan
                          for k in ("mpjpe", "accel")},
                "camera_mean": nan_scores(mean, room.truth[p]),
                "refined": nan_scores(refined[p], room.truth[p]),
                "frames": int(scored.sum()), "frames_total": len(room),
            }
        total = sum(r["frames"] for r in result.values())
        result["all"] = {row: {k: float(sum(r[row][k] * r["frames"] for r in result.values() if r["frames"]) / total)
                               if total else math.nan for k in ("mpjpe", "accel")}
                         for row in ("input", "camera_mean", "refined")}
        result["all"]["frames"] = total
        result["ids"] = self.identities(ids)
        result["ids"]["camera_id_switches"] = room.id_switches
        result["ids"]["camera_id_swaps"] = room.id_swaps
        return result


class _quiet:
    """Silences numpy's 'Mean of empty slice' (a joint no camera saw)."""

    def __enter__(self):
        import warnings
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def print_scores(scores: dict, num_people: int, file=sys.stdout) -> None:
    print(f"\n{'person':>6} {'frames':>7} | {'MPJPE mm: input / mean of cameras / refined':>44} | "
          f"{'Accel mm/f^2: input / mean / refined':>37} | global ids", file=file)
    ids = scores["ids"]["people"]
    for p in [*range(num_people), "all"]:
        s = scores[p]
        label = "all" if p == "all" else str(p)
        frames = s["frames"] if p == "all" else f"{s['frames']}/{s['frames_total']}"
        who = "" if p == "all" else " ".join(str(g) for g in ids[p]["ids"])
        print(f"{label:>6} {frames:>7} | {s['input']['mpjpe']:14.1f} {s['camera_mean']['mpjpe']:14.1f} "
              f"{s['refined']['mpjpe']:14.1f} | {s['input']['accel']:11.2f} {s['camera_mean']['accel']:11.2f} "
              f"{s['refined']['accel']:11.2f} | {who}", file=file)
    i = scores["ids"]
    absorbed = i.get("absorbed")
    print(f"ids: the cameras' trackers switched ids {i['camera_id_switches']} times ({i['camera_id_swaps']} swaps of "
          f"two people){'' if absorbed is None else f', the node absorbed {absorbed}'}; output: "
          f"{i['global_ids']} global ids for {num_people} people, {i['output_id_switches']} id switches, "
          f"{len(i['ids_mixing_people'])} ids mixing people", file=file)


def plot_room(room: Room, scorer: RoomScorer, path: Path, title: str = "") -> None:
    """Top view of the tracks (truth, refined coloured by global id, cameras and their field of
    view) and, per person, a timeline: which camera saw them, with its producer-id changes, and
    the output's global id."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids, refined = scorer.matched()
    fig, (top, line) = plt.subplots(1, 2, figsize=(15, 7), gridspec_kw={"width_ratios": [1.05, 1]})
    colours = plt.get_cmap("tab10")
    gids = sorted({int(g) for g in ids.ravel() if g >= 0})
    colour_of = {g: colours(i % 10) for i, g in enumerate(gids)}
    reach = float(np.abs(room.camera_positions[:, :2]).max()) * 1.1e-3
    for v, (position, yaw) in enumerate(zip(room.camera_positions, room.camera_yaw)):
        x, y = position[:2] * 1e-3
        half = math.radians(room.config.fov_deg) / 2
        for side in (-half, half):
            top.plot([x, x + 2.2 * reach * math.cos(yaw + side)], [y, y + 2.2 * reach * math.sin(yaw + side)],
                     color="0.85", lw=0.8, zorder=0)
        top.plot(x, y, marker="^", color="k", ms=9)
        top.annotate(f"cam {v}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
    for p in range(room.num_people):
        pelvis = room.truth[p, :, 0, :2] * 1e-3
        top.plot(*pelvis.T, color="0.55", lw=0.8, ls="--", label="ground truth" if p == 0 else None)
        top.annotate(f"person {p}", pelvis[0], fontsize=9, color="0.3")
    for g in gids:
        for p in range(room.num_people):
            mask = ids[:, p] == g
            if mask.any():
                track = np.where(mask[:, None], refined[p, :, 0, :2], np.nan) * 1e-3
                top.plot(*track.T, color=colour_of[g], lw=1.8)
        top.plot([], [], color=colour_of[g], lw=1.8, label=f"refined, global id {g}")
    top.set_xlim(-reach, reach)
    top.set_ylim(-reach, reach)
    top.set_aspect("equal")
    top.set_xlabel("x (m)")
    top.set_ylabel("y (m)")
    top.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), fontsize=8, ncol=4)
    top.set_title(title or "top view: pelvis tracks")

    t = room.stamps_s
    rows, labels = 0, []
    for p in reversed(range(room.num_people)):
        for v in reversed(range(room.num_cameras)):
            seen = room.seen[v, :, p]
            line.fill_between(t, rows + 0.15, rows + 0.85, where=seen, color="0.75", step="mid", lw=0)
            pid = room.producer_ids[v, :, p]
            change = np.flatnonzero(seen[1:] & seen[:-1] & (pid[1:] != pid[:-1])) + 1
            line.plot(t[change], np.full(len(change), rows + 0.5), "rx", ms=6)
            labels.append((rows + 0.5, f"p{p} cam {v}"))
            rows += 1
        for g in gids:
            on = ids[:, p] == g
            line.fill_between(t, rows + 0.1, rows + 0.9, where=on, color=colour_of[g], step="mid", lw=0)
        labels.append((rows + 0.5, f"p{p} output id"))
        rows += 1.6
    line.plot([], [], "rx", label="producer id switch")
    line.fill_between([], [], [], color="0.75", label="seen by the camera")
    line.set_yticks([y for y, _ in labels], [name for _, name in labels], fontsize=7)
    line.set_xlabel("time (s)")
    line.set_xlim(t[0], t[-1])
    line.legend(loc="upper right", fontsize=8)
    line.set_title("who saw whom, producer id switches, output id")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the two paths ---------------------------------------------------------------------------------
def run_offline(room: Room, args) -> RoomScorer:
    """The node's multi-person path without ROS (synsp_core.people_pipeline: PeopleTracker ->
    MultiPersonRefiner, one batched model call per frame -> frames assembled by stamp), frame by
    frame, every camera in every frame (no transport, no synchronizer)."""
    import torch

    from synsp_core.bones import bone_prior_for
    from synsp_core.people import Detection
    from synsp_core.people_pipeline import PeoplePipeline
    from synsp_core.runtime import create_backend

    torch.set_num_threads(args.torch_threads)
    backend = create_backend(args.checkpoint or None, "cpu" if args.backend == "auto" else args.backend)
    pipeline = PeoplePipeline(backend, room.num_cameras, args.emit_delay, max_gap_s=0.5,
                              bone_prior_factory=lambda: bone_prior_for(backend.config),
                              window_budget=args.window_budget or None)
    scorer = RoomScorer(room)
    fps = room.config.fps

    def collect(outputs):
        for output in outputs:
            for gid, joints in zip(output.ids, output.joints):
                scorer.add(int(round(output.stamp_s * fps)), gid, joints)

    start = time.monotonic()
    for frame in room:
        collect(pipeline.push(frame.stamp_s, [[Detection(joints, pid, confidence) for pid, joints, confidence in cam]
                                              for cam in frame.cameras]))
        if (frame.index + 1) % int(5 * fps) == 0:
            print(f"{frame.stamp_s + 1 / fps:5.1f} s of room: {pipeline.tracker.stats.tracked} people tracked, "
                  f"{pipeline.tracker.stats.id_switches_absorbed} id switches absorbed "
                  f"({time.monotonic() - start:.1f} s of compute)", flush=True)
    collect(pipeline.flush())
    s = pipeline.tracker.stats
    scorer.tracker_stats = {"born": s.born, "lost": s.lost, "absorbed": s.id_switches_absorbed,
                            "backend": backend.name}
    return scorer


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--offline", action="store_true", help="no ROS: the node's people pipeline directly")
    parser.add_argument("--duration", type=float, default=20.0, help="s of room (and of live replay)")
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--views", type=int, default=4, help="cameras")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the room (errors, misses, ids)")
    parser.add_argument("--out", type=Path, default=Path("out/demo_room"), help="plot, summary and logs")
    parser.add_argument("--checkpoint", default="", help="model checkpoint ('' = the shipped weights)")
    parser.add_argument("--backend", default="auto", help="auto | tensorrt | cuda | cpu (offline: auto = cpu, never builds)")
    parser.add_argument("--emit-delay", type=int, default=7, help="frames, 0 (causal) .. window-1 (full average)")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--window-budget", type=int, default=0,
                        help="offline: people's windows refined per frame at most (0 = everyone's; the node's people_window_budget)")
    parser.add_argument("--stamp-jitter", type=float, default=0.002, help="s, std of each camera's stamp jitter (live)")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="s to wait for the node (live)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    room = Room(RoomConfig(people=args.people, cameras=args.views, fps=args.rate, duration_s=args.duration,
                           seed=args.seed))
    args.out.mkdir(parents=True, exist_ok=True)
    e = room.events
    print(f"room: {room.num_people} people x {room.num_cameras} cameras x {len(room)} frames at {args.rate:g} Hz "
          f"(seed {args.seed}); person-frames a camera missed: {e['out_of_view']} out of view, {e['occluded']} "
          f"occluded, {e['missed']} detector misses; {room.id_switches} producer-id switches")
    if args.offline:
        scorer = run_offline(room, args)
    else:
        scorer = run_live(room, args)
        if scorer is None:
            return 1
    scores = scorer.scores()
    if scorer.tracker_stats.get("absorbed") is not None:
        scores["ids"]["absorbed"] = scorer.tracker_stats["absorbed"]
    print_scores(scores, room.num_people)
    if scorer.latency_s:
        latency = np.array(scorer.latency_s) * 1e3
        scores["latency_ms"] = {"p50": float(np.percentile(latency, 50)), "p99": float(np.percentile(latency, 99))}
        print(f"latency capture -> refined people received: p50 {scores['latency_ms']['p50']:.0f} ms, "
              f"p99 {scores['latency_ms']['p99']:.0f} ms (emit_delay {args.emit_delay} = "
              f"{args.emit_delay / args.rate * 1e3:.0f} ms of it)")
    mode = "offline (synsp_core)" if args.offline else "live through refine_node"
    plot_room(room, scorer, args.out / "room_top_view.png", f"{room.num_people} people, {room.num_cameras} cameras, {mode}")
    (args.out / "summary.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "room_events": room.events,
         "node": scorer.tracker_stats, "scores": {str(k): v for k, v in scores.items()}}, indent=2, default=str))
    print(f"wrote {args.out / 'room_top_view.png'} and {args.out / 'summary.json'}")
    return 0


def run_live(room: Room, args) -> RoomScorer | None:
    """Publish the room's cameras as SkeletonArrays in real time into refine_node (its own process,
    multi-person mode) and collect its ~/people; None if the node failed (its log says why)."""
    # Network rule: discovery stays on this machine, in a domain of our own (before rclpy starts).
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from synsp_msgs.msg import SkeletonArray

    from synsp_ros.conversions import diagnostic_values, ns_to_stamp, people_to_skeleton_array, \
        skeleton_array_to_people, stamp_to_ns
    from synsp_ros.demo import start_node, stop_node

    topics = [f"camera_{v}/people" for v in range(room.num_cameras)]
    log = args.out / "refine_node.log"
    node_proc = start_node("synsp_ros.refine_node", {
        "checkpoint": args.checkpoint, "backend": args.backend, "emit_delay": args.emit_delay,
        "torch_threads": args.torch_threads, "input_topics": "[" + ",".join(topics) + "]",
        "input_types": "[skeleton_array]"}, log)
    # every camera's message of every frame, built once: only the stamps change while publishing
    messages = []
    for frame in room:
        messages.append([people_to_skeleton_array(
            [d[0] for d in cam], np.stack([d[1] for d in cam]) if cam else np.zeros((0, 17, 3)), ns_to_stamp(0),
            "world", "h36m17", np.stack([d[2] for d in cam]) if cam else None) for cam in frame.cameras])
    rclpy.init()
    node = rclpy.create_node("synsp_demo_room")
    received, diagnostics = [], []        # appended by the executor thread, read by this one
    node.create_subscription(SkeletonArray, "/refine_node/people", lambda msg: received.append((time.time_ns(), msg)),
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda msg: diagnostics.append(diagnostic_values(msg)),
                             10)
    publishers = [node.create_publisher(SkeletonArray, topic, qos_profile_sensor_data) for topic in topics]
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    scorer = RoomScorer(room)
    period_ns = int(round(1e9 / room.config.fps))
    sent_ns = np.zeros(len(room), dtype=np.int64)      # capture stamp of each frame
    rng = np.random.default_rng(args.seed + 1)
    status = 0

    def drain():
        while received:
            arrived, msg = received.pop(0)
            stamp = stamp_to_ns(msg.header.stamp)
            frame = int(np.searchsorted(sent_ns[:count], stamp - period_ns // 2))
            if frame >= count or abs(int(sent_ns[frame]) - stamp) > period_ns // 2:
                continue
            scorer.latency_s.append((arrived - int(sent_ns[frame])) * 1e-9)
            for person in skeleton_array_to_people(msg).people:
                scorer.add(frame, person.id, person.joints_mm)

    count = 0
    try:
        deadline = time.monotonic() + args.startup_timeout
        while not all(p.get_subscription_count() for p in publishers):
            if node_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"refine_node did not start; see {log}")
            time.sleep(0.1)
        time.sleep(1.0)   # let the node finish starting (model loaded before it subscribes)
        print(f"refine_node up (multi-person, {room.num_cameras} SkeletonArray inputs, emit_delay {args.emit_delay} "
              f"= {args.emit_delay / room.config.fps * 1e3:.0f} ms of latency by design); its log: {log}\n")
        print(" time | person-frames out | global ids | MPJPE mm mean of cameras -> refined | "
              "Accel mm/f^2 -> refined | latency ms p50 / p99")
        start = time.monotonic()
        last_row = start
        for t in range(len(room)):
            time.sleep(max(0.0, start + t / room.config.fps - time.monotonic()))
            if node_proc.poll() is not None:
                raise RuntimeError(f"refine_node exited with {node_proc.returncode}; see {log}")
            base = time.time_ns()
            jitter = np.rint(rng.normal(0.0, args.stamp_jitter * 1e9, room.num_cameras)).astype(np.int64)
            sent_ns[t], count = base, t + 1
            for v, pub in enumerate(publishers):
                msg = messages[t][v]
                msg.header.stamp = ns_to_stamp(base + int(jitter[v]))
                pub.publish(msg)
            if time.monotonic() - last_row >= 2.0:
                last_row = time.monotonic()
                drain()
                live_row(scorer, time.monotonic() - start)
        time.sleep(1.5)   # the node flushes once every camera timed out (view_timeout)
        drain()
    except KeyboardInterrupt:
        print("demo_room: interrupted, finishing")
    except RuntimeError as error:
        print(f"demo_room: {error}", file=sys.stderr)
        status = 1
    finally:
        code = stop_node(node_proc)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    if status:
        return None
    last = next((values for d in reversed(diagnostics) for values in d.values() if "id_switches_absorbed" in values), {})
    scorer.tracker_stats = {k: int(last[v]) for k, v in (("born", "born"), ("lost", "lost"),
                                                         ("absorbed", "id_switches_absorbed")) if v in last}
    scorer.tracker_stats["node_exit_code"] = code
    if not scorer.outputs:
        print(f"demo_room: no refined people received; see {log}", file=sys.stderr)
        return None
    return scorer


def live_row(scorer: RoomScorer, elapsed: float) -> None:
    """One line of running scores (every person, every frame so far)."""
    frames = sum(len(people) for people in scorer.outputs.values())
    ids = len({g for people in scorer.outputs.values() for g in people})
    latency = np.array(scorer.latency_s[-300:]) * 1e3
    if not frames or not len(latency):
        print(f"{elapsed:4.0f}s | {frames:17d} | waiting for the first refined frames", flush=True)
        return
    with _quiet():
        s = scorer.scores()["all"]
    print(f"{elapsed:4.0f}s | {frames:17d} | {ids:10d} | {s['camera_mean']['mpjpe']:17.1f} -> {s['refined']['mpjpe']:5.1f}"
          f"          | {s['camera_mean']['accel']:9.2f} -> {s['refined']['accel']:5.2f} "
          f"| {np.percentile(latency, 50):10.0f} / {np.percentile(latency, 99):4.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
