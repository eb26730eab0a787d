"""Time per frame of the multi-person path on the simulated room (no ROS): the tracker, and one
batched model call for everyone against one StreamingRefiner per person.

    PYTHONPATH=. python benchmarks/people.py                    # 3 people, 4 cameras, shipped weights, eager CPU
    PYTHONPATH=. python benchmarks/people.py --people 6 --backend cpu

The room is synsp_core/room.py's (people walking on crossing paths, cameras with their own
tracker ids, misses, estimator errors). Prints p50 / p99 over the frames after the first W of
PeopleTracker.update, MultiPersonRefiner.push (one batched model call per frame) and of pushing
one StreamingRefiner per person (one model call each). Quality and id errors of the same room:
`python -m synsp_ros.demo_room --offline`.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from synsp_core.bones import bone_prior_for
from synsp_core.people import PeopleTracker
from synsp_core.room import Room, RoomConfig
from synsp_core.runtime import create_backend
from synsp_core.streaming import MultiPersonRefiner, StreamingRefiner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0, help="s of room at 30 fps")
    parser.add_argument("--backend", default="eager", help="runtime backend (eager, cpu, auto, ...)")
    parser.add_argument("--emit-delay", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    room = Room(RoomConfig(people=args.people, cameras=args.views, duration_s=args.duration, seed=args.seed))
    backend = create_backend(None, args.backend)
    tracker = PeopleTracker(args.views, room.truth.shape[2])
    multi = MultiPersonRefiner(backend, args.views, args.emit_delay,
                               bone_prior_factory=lambda: bone_prior_for(backend.config))
    single: dict[int, StreamingRefiner] = {}
    times = {"tracker": [], "batched": [], "one call per person": []}
    for frame in room:
        start = time.perf_counter()
        people = tracker.update(frame.stamp_s, frame.cameras)
        times["tracker"].append(time.perf_counter() - start)
        start = time.perf_counter()
        multi.push(people.stamp_s, people.people)
        times["batched"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for gid, person in people.people.items():
            if gid not in single:
                single[gid] = StreamingRefiner(backend, args.views, args.emit_delay,
                                               bone_prior=bone_prior_for(backend.config))
            single[gid].push(people.stamp_s, person.poses, person.live, person.confidences)
        times["one call per person"].append(time.perf_counter() - start)
    print(f"{args.people} people x {args.views} cameras x {len(room)} frames at 30 fps, backend {backend.name}, "
          f"emit_delay {args.emit_delay}; {tracker.stats.born} born, largest batch {multi.stats.max_batch}")
    for name, values in times.items():
        ms = np.array(values[backend.config.window:]) * 1e3
        print(f"{name:>20}: p50 {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms per frame")


if __name__ == "__main__":
    main()
