"""People association + multi-person streaming refinement on a simulated room (no ROS).

    PYTHONPATH=. python benchmarks/people.py                    # 3 people, 4 cameras, shipped weights, eager CPU
    PYTHONPATH=. python benchmarks/people.py --people 6 --backend cpu

The room: the bundled CMU test clips (synsp_core/data, 30 fps; with more than 3 people they are
reused with other start frames), people placed apart and walking across the room in straight
lines, half of them towards the other half, seen by --views cameras with realistic estimator
errors; each camera's tracker numbers the people its own way and lists them in its own order.
Prints per person MPJPE / Accel error (synsp_core.metrics, root-relative; input: every camera,
mean of the cameras, refined: the MultiPersonRefiner's fused output at --emit-delay, with the
bone-length stage; over the frames refined, i.e. from the person's birth on), global id errors (a true person with more
than one global id, or a global id given to two people), and the time per frame of
PeopleTracker.update and of MultiPersonRefiner.push (one batched model call) against pushing
one StreamingRefiner per person (p50 / p99 over the frames after the first W).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from synsp_core import metrics
from synsp_core.bones import bone_prior_for
from synsp_core.errors import RealisticErrors, synthesize_views
from synsp_core.people import Detection, PeopleTracker
from synsp_core.runtime import create_backend
from synsp_core.streaming import MultiPersonRefiner, StreamingRefiner

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "synsp_core" / "data" / "cmu_test_clips_120fps.npz"
WEIGHTS = ROOT / "synsp_core" / "weights" / "synsp_h36m17_3d.safetensors"


def room(people: int, frames: int, views: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """-> truth (P, T, J, 3), each camera's estimate (P, V, T, J, 3), mm, 30 fps."""
    data = np.load(CLIPS)
    clips = [data[name][::4] for name in ("walking_1", "soccer_1", "basketball_1")]
    truth = []
    for p in range(people):
        clip = clips[p % 3][(p // 3) * 7:][:frames]
        clip = np.concatenate([clip, clip[::-1]] * (frames // (2 * len(clip)) + 1))[:frames]   # ping-pong if short
        lane = (p // 2 - (people - 1) / 4) * 600.0 + (150.0 if p % 2 else -150.0)
        start, end = np.array([-2500.0, lane]), np.array([2500.0, lane])
        if p % 2:
            start, end = end, start                  # towards the other half
        heading = np.arctan2(*(end - start)[::-1])
        c, s = np.cos(heading), np.sin(heading)
        path = start + (end - start) * np.linspace(0, 1, frames)[:, None]
        offset = np.concatenate([path, np.full((frames, 1), -clip[..., 2].min())], axis=1)
        truth.append(clip @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + offset[:, None])
    truth = np.stack(truth).astype(np.float32)
    return truth, np.stack([synthesize_views(t, views, RealisticErrors(), 30.0, rng) for t in truth])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--backend", default="eager", help="runtime backend (eager, cpu, auto, ...)")
    parser.add_argument("--emit-delay", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    truth, est = room(args.people, args.frames, args.views, rng)
    P, T, V = args.people, args.frames, args.views
    ids = np.stack([rng.choice(np.arange(100 * v, 100 * v + 50), P, replace=False) for v in range(V)])
    backend = create_backend(WEIGHTS, args.backend)
    tracker = PeopleTracker(V, truth.shape[2])
    multi = MultiPersonRefiner(backend, V, args.emit_delay,
                               bone_prior_factory=lambda: bone_prior_for(backend.config))
    single: dict[int, StreamingRefiner] = {}
    refined: dict[int, dict[float, np.ndarray]] = {}
    who: dict[int, set] = {}
    times = {"tracker": [], "multi": [], "single": []}
    for t in range(T):
        detections, owner = [], []
        for v in range(V):
            order = rng.permutation(P)
            detections.append([Detection(est[p, v, t], int(ids[v, p])) for p in order])
            owner.append(list(order))
        start = time.perf_counter()
        frame = tracker.update(t / 30.0, detections)
        times["tracker"].append(time.perf_counter() - start)
        for gid, person in frame.people.items():
            who.setdefault(gid, set()).update(owner[v][i] for v, i in enumerate(person.sources) if i >= 0)
        start = time.perf_counter()
        out = multi.push(frame.stamp_s, frame.people)
        times["multi"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for gid, person in frame.people.items():
            if gid not in single:
                single[gid] = StreamingRefiner(backend, V, args.emit_delay, bone_prior=bone_prior_for(backend.config))
            single[gid].push(frame.stamp_s, person.poses, person.live, person.confidences)
        times["single"].append(time.perf_counter() - start)
        for gid, frames in out.items():
            refined.setdefault(gid, {}).update({f.stamp_s: f.fused for f in frames})
    for gid, frames in multi.flush().items():
        refined[gid].update({f.stamp_s: f.fused for f in frames})

    owners = {gid: next(iter(s)) for gid, s in who.items() if len(s) == 1}
    split = sum(len(s) > 1 for s in who.values())
    per_truth = {}
    for gid, p in owners.items():
        per_truth.setdefault(p, []).append(gid)
    print(f"{P} people x {V} cameras x {T} frames at 30 fps, backend {backend.name}, emit_delay {args.emit_delay}")
    print(f"global ids: {len(who)} for {P} people; ids mixing two people: {split}; "
          f"people with more than one id: {sum(len(g) > 1 for g in per_truth.values())}; "
          f"born {tracker.stats.born}, lost {tracker.stats.lost}, id switches absorbed "
          f"{tracker.stats.id_switches_absorbed}")
    print(f"{'person':>6} {'frames':>6} | {'MPJPE in / mean / refined (mm)':>32} | {'Accel in / mean / refined':>27}")
    for p in range(P):
        for gid in per_truth.get(p, []):
            stamps = sorted(refined.get(gid, {}))
            idx = np.rint(np.array(stamps) * 30).astype(int)
            gt, ref = truth[p, idx], np.stack([refined[gid][s] for s in stamps])
            inp, mean = est[p][:, idx], est[p][:, idx].mean(axis=0)
            mpjpe = [metrics.mpjpe(inp, np.broadcast_to(gt, inp.shape)), metrics.mpjpe(mean, gt), metrics.mpjpe(ref, gt)]
            acc = [metrics.accel_error(inp, np.broadcast_to(gt, inp.shape)), metrics.accel_error(mean, gt),
                   metrics.accel_error(ref, gt)]
            print(f"{p:>6} {len(stamps):>6} | {mpjpe[0]:10.2f} {mpjpe[1]:10.2f} {mpjpe[2]:10.2f} | "
                  f"{acc[0]:8.2f} {acc[1]:8.2f} {acc[2]:8.2f}")
    for name, values in times.items():
        ms = np.array(values[8:]) * 1e3
        print(f"{name:>8}: p50 {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms per frame")
    print(f"multi-person model calls: {multi.stats.model_calls}, largest batch {multi.stats.max_batch}")


if __name__ == "__main__":
    main()
