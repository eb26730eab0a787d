# One entry point for a fresh machine: `make demo` (main job) and `make test` (the test suite).
# Both create .venv, install the pinned dependencies and this package, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Network rule: ROS 2 discovery stays on this machine, in a domain of our own.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= 42

.PHONY: setup demo demo-room test clean

setup: $(STAMP)

# The editable install also generates and builds the ROS 2 interfaces synsp_msgs into the venv
# (setup.py; docs/ros.md "Interfaces"), after the ROS wheels' CMake files are fixed for this venv.
$(STAMP): requirements.txt setup.py pyproject.toml CMakeLists.txt $(wildcard csrc/*) scripts/fix_ros_wheel_cmake.sh \
		interfaces/synsp_msgs/CMakeLists.txt interfaces/synsp_msgs/package.xml $(wildcard interfaces/synsp_msgs/msg/*)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	bash scripts/fix_ros_wheel_cmake.sh $(PY)
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

demo: setup
	$(PY) -m synsp_ros.demo

# A room: 3 people x 4 cameras with their own tracker ids (synsp_core/room.py) -> refine_node's multi-person mode
demo-room: setup
	$(PY) -m synsp_ros.demo_room

test: setup
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) build install log *.egg-info
