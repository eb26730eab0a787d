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

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py pyproject.toml CMakeLists.txt $(wildcard csrc/*)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

demo: setup
	$(PY) -m synsp_ros.demo

test: setup
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) build install log *.egg-info
