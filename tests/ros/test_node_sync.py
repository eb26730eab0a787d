"""refine_node synchronization, live: jittered and reordered cameras, duplicates, a camera that dies
and returns, and a stamp jump backwards (bag loop). The node keeps publishing and counts it all."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray

from ros_harness import CameraRig, NodeProcess, Probe, latest_diagnostics, now_ns, random_checkpoint, refined_poses
from synsp_ros.conversions import diagnostic_values
from synsp_ros.refine_node import PARAMETERS

pytestmark = pytest.mark.ros
TOPICS = PARAMETERS["input_topics"][0]
FRAME_NS = 33_333_333
DEAD = range(30, 60)      # camera 3 silent for 1 s (view_timeout 0.5 s)
JUMP = 90                 # from this frame on, stamps restart 60 s earlier (a bag loop)
FRAMES = 120


def test_node_keeps_publishing_through_sync_trouble(tmp_path):
    # reliable inputs with a deep queue: a node lagging behind real time on a loaded test machine
    # gets every message late instead of losing some (the test is about what it does with them)
    node = NodeProcess("synsp_ros.refine_node", {
        "checkpoint": str(random_checkpoint(tmp_path)), "input_qos": "reliable", "sync_queue_size": FRAMES,
        "diagnostics_period": 0.2, "publish_per_view": True},
        tmp_path, "refine")
    probe = Probe("sync_probe")
    try:
        rig = CameraRig(probe, TOPICS)
        refined = probe.subscribe(PoseArray, "/refine_node/refined")
        per_view = [probe.subscribe(PoseArray, f"/refine_node/refined/view_{v}") for v in range(len(TOPICS))]
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        probe.wait_for_subscribers(rig.publishers, node)
        rng = np.random.default_rng(1)
        t0 = now_ns()
        sent = {}   # frame -> stamps sent (ns), per camera
        for frame in range(FRAMES):
            base = t0 + frame * FRAME_NS - (60 * 10**9 if frame >= JUMP else 0)
            cameras = [v for v in rng.permutation(len(TOPICS)) if not (v == 3 and frame in DEAD)]
            sent[frame] = {}
            for view in cameras:                       # a new camera order every frame
                stamp = base + int(rng.integers(-4_000_000, 4_000_000))   # +-4 ms capture jitter
                msg = rig.send(view, frame, stamp)
                sent[frame][view] = stamp
                if frame == 5 and view == 1:
                    rig.publishers[1].publish(msg)     # duplicate
            if frame == 8:
                rig.send(2, 6, sent[6][2])             # a late, out-of-order message
            time.sleep(FRAME_NS * 1e-9)

        sent_count = sum(len(per_camera) for per_camera in sent.values()) + 2   # + duplicate, out-of-order

        def received():
            return sum(int(latest_diagnostics(probe, diagnostics, f"camera {v}").get("received", 0))
                       + int(latest_diagnostics(probe, diagnostics, f"camera {v}").get("dropped_clock", 0))
                       for v in range(len(TOPICS)))
        probe.wait_for(lambda: received() >= sent_count, 120, "the node to take every message sent")
        probe.wait_for(lambda: refined_poses(probe, refined)[0].min(initial=t0) < t0 - 30 * 10**9, 60,
                       "output after the backwards jump")
        probe.wait_for(lambda: int(latest_diagnostics(probe, diagnostics, "refiner").get("sync_resets", 0)) >= 1,
                       30, "sync_resets in /diagnostics")
        assert node.alive()
        cameras = {name: latest_diagnostics(probe, diagnostics, name) for name in ("camera 1", "camera 2")}
        assert int(cameras["camera 1"]["dropped_duplicate"]) >= 1
        assert int(cameras["camera 2"]["dropped_out_of_order"]) >= 1
        silent = [values["live"] for _, msg in probe.snapshot(diagnostics)
                  for name, values in diagnostic_values(msg).items() if name.endswith("camera 3")]
        assert "False" in silent, "camera 3 was never reported silent"

        stamps, poses = refined_poses(probe, refined)
        assert np.isfinite(poses).all()
        all_sent = {stamp for per_camera in sent.values() for stamp in per_camera.values()}
        assert set(stamps) <= all_sent, "every output carries the capture stamp of one of its inputs"
        jumped = stamps < t0 - 30 * 10**9
        first_stream, second_stream = stamps[~jumped], stamps[jumped]
        assert (np.diff(first_stream) > 0).all() and (np.diff(second_stream) > 0).all()
        assert stamps[len(first_stream):].tolist() == second_stream.tolist(), "old stream first, then the new"

        def frames_of(stamps):
            return {f for f, per_camera in sent.items() if set(per_camera.values()) & set(stamps)}
        assert set(range(20, 28)) | set(range(48, 58)) | set(range(70, 80)) | set(range(100, 110)) <= frames_of(stamps)
        used = [frames_of(refined_poses(probe, view_outputs)[0]) for view_outputs in per_view]
        assert set(range(48, 58)) <= used[0] & used[1] & used[2] and not set(range(48, 58)) & used[3], \
            "camera 3 is masked while silent"
        assert set(range(70, 80)) <= used[3], "camera 3 is back in use"
    finally:
        probe.close()
        assert node.stop() == 0
