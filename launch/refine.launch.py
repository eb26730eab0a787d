"""Start refine_node with a parameters file (default: the installed config/refine.yaml).

Every node parameter is a launch argument ('' keeps the file's value), plus params_file,
namespace, use_sim_time and log_level; `--show-args` lists them. Unknown or malformed arguments
stop the launch with one line naming the argument. When the node exits with an error (e.g. a bad
emit_delay, an unknown backend, a missing checkpoint), the launch ends and `ros2 launch` returns a
non-zero status, so that systemd units and scripts can tell.

    ros2 launch synsp_ros refine.launch.py \
        input_topics:="[/cam0/skeleton, /cam1/skeleton]" checkpoint:=/path/model.safetensors \
        backend:=cpu emit_delay:=3 frame_id:=map namespace:=robot1 log_level:=debug
"""
import importlib.util
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def load_arguments_module():
    """refine_arguments.py, installed beside this file (see its docstring)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "refine_arguments.py")
    spec = importlib.util.spec_from_file_location("refine_arguments", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ARGS = load_arguments_module()
CONFIG = os.path.join(get_package_share_directory("synsp_ros"), "config", "refine.yaml")
PARAMETERS = ARGS.node_parameters(CONFIG)


def on_node_exit(event, context):
    """The node ended: end the launch; an error status makes the launch fail with the reason."""
    if event.returncode != 0:
        raise RuntimeError(f"refine_node exited with status {event.returncode} (its log above says why)")
    return [Shutdown(reason="refine_node exited")]


def refine_node(context):
    def text(name):
        return LaunchConfiguration(name).perform(context)

    ARGS.check_unknown(context.argv, set(PARAMETERS) | set(ARGS.LAUNCH_ONLY))
    overrides = ARGS.parameter_overrides({name: text(name) for name in PARAMETERS}, PARAMETERS)
    overrides["use_sim_time"] = ARGS.check_launch_only(text("use_sim_time"), text("log_level"))
    node = Node(package="synsp_ros", executable="refine_node", name="refine_node", namespace=text("namespace"),
                output="screen", parameters=[text("params_file"), overrides],
                arguments=["--ros-args", "--log-level", text("log_level").lower()])
    return [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_node_exit))]


def generate_launch_description():
    arguments = [DeclareLaunchArgument(name, default_value=CONFIG if default is None else default,
                                       description=description)
                 for name, (default, description) in ARGS.LAUNCH_ONLY.items()]
    arguments += [DeclareLaunchArgument(name, default_value="",
                                        description=f"{description} (refine.yaml: {default!r}; '' keeps params_file's)")
                  for name, (default, description) in PARAMETERS.items()]
    return LaunchDescription(arguments + [OpaqueFunction(function=refine_node)])
