"""`make demo-room`'s live path: the room's cameras as SkeletonArrays -> refine_node (multi-person,
its own process) -> ~/people scored. A short room; the asserts judge what arrived (ids, files),
never how fast (a loaded machine may drop frames)."""
import json
import os
import subprocess
import sys

import pytest

from ros_harness import REPO

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_room_live(tmp_path):
    out = tmp_path / "room"
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")   # the domain: conftest's, inherited
    run = subprocess.run([sys.executable, "-m", "synsp_ros.demo_room", "--duration", "5", "--backend", "cpu",
                          "--emit-delay", "3", "--out", str(out)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((out / "summary.json").read_text())
    ids = summary["scores"]["ids"]
    assert ids["global_ids"] == 3 and ids["output_id_switches"] == 0 and ids["ids_mixing_people"] == []
    assert all(summary["scores"][str(p)]["frames"] > 0 for p in range(3))
    assert summary["node"]["born"] == 3 and "absorbed" in summary["node"]
    assert (out / "room_top_view.png").is_file()
    assert "global ids" in run.stdout and "latency capture -> refined people received" in run.stdout
