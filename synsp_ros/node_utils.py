"""Helpers shared by the nodes: parameter descriptors and a main loop with clear start-up errors."""
from __future__ import annotations

import gc
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


def describe(kind: int, description: str, read_only: bool = True, float_range: tuple[float, float] | None = None,
             int_range: tuple[int, int] | None = None) -> ParameterDescriptor:
    """A ParameterDescriptor (kind: rcl_interfaces ParameterType); rclpy enforces type, range and read-only."""
    return ParameterDescriptor(
        type=kind, description=description, read_only=read_only,
        floating_point_range=[FloatingPointRange(from_value=float_range[0], to_value=float_range[1])]
        if float_range else [],
        integer_range=[IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)] if int_range else [])


def run_node(make_node: Callable[[], Node], name: str, args=None) -> int:
    """Exit status: 0 after a shutdown request, 1 when the node cannot start (the reason is logged)."""
    rclpy.init(args=args)
    try:
        node = make_node()
        # Start-up leaves ~300k long-lived objects (torch, the model): freeze them out of the garbage
        # collector, whose full passes over them took 140-290 ms here (a stalled callback, lost frames).
        gc.freeze()
    except Exception as error:  # parameters, checkpoint, backend: one line saying what is wrong
        rclpy.logging.get_logger(name).fatal(f"cannot start: {error}")
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # rclpy's RCLError: a publish that raced the shutdown signal is fine
        if rclpy.ok():
            raise
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
