"""The launch arguments of refine.launch.py: what they are and how their texts are read.

Kept apart from the launch file, with no launch, launch_ros or rclpy import, so that it can be
tested where those packages are not installed. It is installed next to the launch file, which
loads it by path: the interpreter running `ros2 launch` need not be the one synsp_ros was
installed for (a venv that is not activated). Every node parameter of config/refine.yaml is a
launch argument, typed by its value there (a test checks those values are the node's defaults);
'' (the default) keeps the value of `params_file`. Bad texts give one line naming the argument.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

MAX_TOPICS = 8
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
# launch arguments that are not node parameters: name -> (default, description); params_file's
# default (the installed config/refine.yaml) is filled in by the launch file
LAUNCH_ONLY = {
    "params_file": (None, "parameters file of the node (ROS 2 YAML); the arguments below override it"),
    "namespace": ("", "namespace of the node, e.g. robot1: topics become /robot1/refine_node/..."),
    "use_sim_time": ("false", "true: the node runs on /clock (bag playback, simulation)"),
    "log_level": ("info", f"the node's log level, one of {', '.join(LOG_LEVELS)}"),
}


class LaunchArgumentError(ValueError):
    """A launch argument whose text cannot be used; the message names it."""


def node_parameters(config: str | Path) -> dict[str, tuple[object, str]]:
    """name -> (default, description) of every node parameter in a ROS 2 parameters file with one
    `/**` section, descriptions from the comments after the values."""
    text = Path(config).read_text()
    defaults = yaml.safe_load(text)["/**"]["ros__parameters"]
    comments = dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.*)$", text, flags=re.MULTILINE))
    return {name: (default, comments.get(name, "")) for name, default in defaults.items()}


def parse_value(name: str, text: str, default):
    """The text of launch argument `name` as a value of the type of `default`."""
    def fail(expected: str):
        return LaunchArgumentError(f"launch argument {name}:={text!r}: expected {expected}")

    if isinstance(default, bool):
        if text.strip().lower() not in TRUE + FALSE:
            raise fail("true or false")
        return text.strip().lower() in TRUE
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise fail("an integer, e.g. " + str(default)) from None
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise fail("a number, e.g. " + str(default)) from None
        if not math.isfinite(value):
            raise fail("a finite number")
        return value
    if isinstance(default, list):
        return parse_topics(name, text)
    return text


# list arguments other than topics: what their entries are, and an example
LIST_EXAMPLES = {"input_types": ("input types", "[skeleton_array, azure_kinect]", "skeleton_array")}


def parse_topics(name: str, text: str) -> list[str]:
    """A YAML list of topic names ("[/cam0/skeleton, /cam1/skeleton]") or one name without brackets
    (or of the entries of another list argument, LIST_EXAMPLES)."""
    stripped = text.strip()
    if not stripped.startswith("["):
        topics = [stripped]
    else:
        try:
            topics = yaml.safe_load(stripped)
        except yaml.YAMLError as error:
            raise LaunchArgumentError(f"launch argument {name}:={text!r} is no YAML list: "
                                      f"{str(error).splitlines()[0]}") from None
    if not 1 <= len(topics) <= MAX_TOPICS or not all(isinstance(t, str) and t.strip() for t in topics):
        what, many, one = LIST_EXAMPLES.get(name, ("topic names", "[/cam0/skeleton, /cam1/skeleton]", "/cam0/skeleton"))
        raise LaunchArgumentError(f"launch argument {name}:={text!r}: expected 1 to {MAX_TOPICS} {what}, "
                                  f"e.g. {name}:=\"{many}\" or {name}:={one}")
    return [t.strip() for t in topics]


def parameter_overrides(texts: dict[str, str], parameters: dict[str, tuple[object, str]]) -> dict:
    """Node parameters from the launch arguments that were given (not ''), typed."""
    return {name: parse_value(name, text, parameters[name][0]) for name, text in texts.items() if text != ""}


def check_launch_only(use_sim_time: str, log_level: str) -> bool:
    """use_sim_time as a bool; a clear error for an unknown log level."""
    if log_level.lower() not in LOG_LEVELS:
        raise LaunchArgumentError(f"launch argument log_level:={log_level!r}: expected one of {', '.join(LOG_LEVELS)}")
    return parse_value("use_sim_time", use_sim_time, False)


def check_unknown(argv: list[str], declared) -> None:
    """Refuse `name:=value` arguments this launch file does not declare (e.g. a typo, which launch
    would otherwise ignore silently)."""
    given = [arg.split(":=", 1)[0] for arg in argv if ":=" in arg]
    unknown = [name for name in given if name not in declared]
    if unknown:
        raise LaunchArgumentError(f"unknown launch argument(s) {', '.join(unknown)}; refine.launch.py takes "
                                  f"{', '.join(sorted(declared))} (ros2 launch synsp_ros refine.launch.py --show-args)")
