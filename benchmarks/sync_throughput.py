"""Microbenchmark: cost of ViewSynchronizer.add per message.

V cameras at 30 fps with +-4 ms stamp jitter and 0..20 ms arrival latency, slop 10 ms,
(J, 3) float32 payloads. Prints microseconds per add() call and the frames that came out
(all of them without losses; with --loss P each message is lost with probability P, and a
frame should still come out whenever at least one camera sent it). With --free-running,
camera v captures v / V of a period later than camera 0 (beyond the slop: interpolated).

    PYTHONPATH=. python benchmarks/sync_throughput.py --views 4 --frames 5000 [--loss 0.05] [--free-running]
"""
import argparse
import time

import numpy as np

from synsp_core.sync import ViewSynchronizer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--queue-size", type=int, default=10)
    parser.add_argument("--loss", type=float, default=0.0, help="probability that a message is lost")
    parser.add_argument("--free-running", action="store_true", help="cameras at evenly spread phases")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    period, views = 1 / 30, args.views
    phases = np.arange(views) / views * period if args.free_running else np.zeros(views)
    stamps = np.arange(args.frames)[:, None] * period + phases + rng.uniform(-0.004, 0.004, (args.frames, views))
    arrival = stamps + rng.uniform(0.0, 0.02, stamps.shape)
    sent = rng.random(stamps.shape) >= args.loss
    order = sorted((kv for kv in np.ndindex(args.frames, views) if sent[kv]), key=lambda kv: arrival[kv])
    payload = np.zeros((17, 3), dtype=np.float32)
    messages = [(v, float(stamps[k, v]), payload) for k, v in order]

    sync = ViewSynchronizer(views, slop_s=0.01, queue_size=args.queue_size)
    num_frames = 0
    start = time.perf_counter()
    for message in messages:
        num_frames += len(sync.add(*message))
    elapsed = time.perf_counter() - start
    num_frames += len(sync.flush())
    print(f"views={views} messages={len(messages)} frames={num_frames} "
          f"(of {int(sent.any(axis=1).sum())} with a message, {int(sent.all(axis=1).sum())} complete) "
          f"add: {elapsed / len(messages) * 1e6:.1f} us/message, {elapsed / num_frames * 1e6:.1f} us/frame"
          + (f", {int(sync.counters['interpolated'].sum())} views interpolated" if args.free_running else ""))


if __name__ == "__main__":
    main()
