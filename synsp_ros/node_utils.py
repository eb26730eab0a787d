"""Helpers shared by the nodes: parameter descriptors, --help, and a main loop with clear start-up
errors and clean exits on every signal."""
from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.node import Node

TYPE_NAMES = {ParameterType.PARAMETER_BOOL: "bool", ParameterType.PARAMETER_INTEGER: "int",
              ParameterType.PARAMETER_DOUBLE: "double", ParameterType.PARAMETER_STRING: "string",
              ParameterType.PARAMETER_STRING_ARRAY: "string[]"}
INTERRUPTED = 130   # exit status of a process stopped by SIGINT before it was up (128 + 2)


def describe(kind: int, description: str, read_only: bool = True, float_range: tuple[float, float] | None = None,
             int_range: tuple[int, int] | None = None) -> ParameterDescriptor:
    """A ParameterDescriptor (kind: rcl_interfaces ParameterType); rclpy enforces type, range and read-only."""
    return ParameterDescriptor(
        type=kind, description=description, read_only=read_only,
        floating_point_range=[FloatingPointRange(from_value=float_range[0], to_value=float_range[1])]
        if float_range else [],
        integer_range=[IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)] if int_range else [])


def usage(name: str, summary: str, topics: list[tuple[str, str]], parameters: dict) -> str:
    """The --help text: what the node does, its topics, and its parameters (type, default, description)."""
    lines = [f"usage: {name} [--ros-args [-p NAME:=VALUE]... [--params-file FILE] [-r TOPIC:=NEW]...]", "",
             summary, "", "topics:"]
    lines += [f"  {topic}\n      {text}" for topic, text in topics]
    lines += ["", "parameters (set with -p NAME:=VALUE or a --params-file):"]
    for parameter, (default, descriptor) in parameters.items():
        default = f"[{', '.join(default)}]" if isinstance(default, list) else repr(default)
        lines.append(f"  {parameter} ({TYPE_NAMES[descriptor.type]}, default {default})\n      {descriptor.description}")
    return "\n".join(lines)


def wants_help(args: list[str]) -> bool:
    """-h or --help among the arguments before --ros-args."""
    own = args[:args.index("--ros-args")] if "--ros-args" in args else args
    return "-h" in own or "--help" in own


def run_node(make_node: Callable[[], Node], name: str, args=None, help_text: str = "") -> int:
    """Run a node until a shutdown request. Exit status: 0 after SIGINT or SIGTERM, 130 when one
    came while starting, 1 when the node cannot start (the reason is logged). Signals after the
    first (a double Ctrl-C, `timeout -s INT` after launch's own) are ignored, so they cannot
    interrupt the clean-up with a traceback. With -h or --help: print `help_text` and return 0
    without starting ROS."""
    if wants_help(sys.argv[1:] if args is None else list(args)):
        try:
            print(help_text, flush=True)
        except BrokenPipeError:   # `refine_node --help | head`: the reader left, which is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    starting = True

    def on_signal(signum, frame):
        # rclpy.init's handlers shut the context down, which ends the spin, then chain to this one
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if starting:   # no spin to end yet: stop the start-up
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rclpy.init(args=args)
    try:
        node = make_node()
        # Start-up leaves ~300k long-lived objects (torch, the model): freeze them out of the garbage
        # collector, whose full passes over them took 140-290 ms here (a stalled callback, lost frames).
        gc.freeze()
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return INTERRUPTED
    except Exception as error:  # parameters, checkpoint, backend: one line saying what is wrong
        rclpy.logging.get_logger(name).fatal(f"cannot start: {error}")
        rclpy.try_shutdown()
        return 1
    starting = False
    try:
        rclpy.spin(node)
    except ExternalShutdownException:
        pass
    except RuntimeError:  # rclpy's RCLError: a publish that raced the shutdown signal is fine
        if rclpy.ok():
            raise
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
