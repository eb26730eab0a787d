"""Test-wide settings. The network rule: ROS 2 discovery stays on this machine, in its own domain."""
import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(20 + os.getpid() % 80))
