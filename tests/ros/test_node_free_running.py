"""refine_node with free-running cameras: four cameras at 25 fps whose captures are offset by 0, 12,
24 and 36 ms (+-2 ms jitter). Matching stamps within sync_slop published nothing; aligned in time,
every frame comes out at camera 0's capture stamps, and the node says which camera it interpolates."""
import time

import numpy as np
import pytest

from ros_harness import latest_diagnostics, now_ns, refine_node_with_cameras, refined_poses
from synsp_ros.refine_node import PARAMETERS

pytestmark = pytest.mark.ros
TOPICS = PARAMETERS["input_topics"][0]
PERIOD_NS = 40_000_000                       # 25 fps
OFFSETS_NS = [0, 12_000_000, 24_000_000, 36_000_000]
FRAMES = 100


def test_free_running_cameras_are_aligned(tmp_path):
    assert len(TOPICS) == len(OFFSETS_NS)
    with refine_node_with_cameras(tmp_path, TOPICS, "free_running_probe") as setup:
        node, probe, rig, refined, diagnostics = setup.node, setup.probe, setup.rig, setup.refined, setup.diagnostics
        rng = np.random.default_rng(2)
        t0 = now_ns()
        reference_stamps = []
        for frame in range(FRAMES):
            stamps = [t0 + frame * PERIOD_NS + offset + int(rng.integers(-2_000_000, 2_000_000))
                      for offset in OFFSETS_NS]
            for view in np.argsort(stamps):    # in capture order
                rig.send(int(view), frame, stamps[view])
            reference_stamps.append(stamps[0])
            time.sleep(PERIOD_NS * 1e-9)

        # The cameras stop: after view_timeout the node flushes the frames it still holds.
        probe.wait_for(lambda: len(refined_poses(probe, refined)[0]) >= FRAMES - 1, 30, "every frame refined")
        assert node.alive()
        stamps, poses = refined_poses(probe, refined)
        assert np.isfinite(poses).all()
        assert set(stamps.tolist()) <= set(reference_stamps), "frames carry camera 0's capture stamps"
        assert (np.diff(stamps) > 0).all()
        probe.wait_for(lambda: int(latest_diagnostics(probe, diagnostics, "camera 2").get("interpolated", 0)) > 50,
                       10, "camera 2 interpolated in /diagnostics")
        assert "view 2 has no capture within sync slop" in node.log()
