"""Start refine_node with config/refine.yaml; launch arguments that are given override its values.

    ros2 launch synsp_ros refine.launch.py \
        input_topics:="[/cam0/skeleton, /cam1/skeleton]" checkpoint:=/path/model.safetensors \
        backend:=cpu emit_delay:=3 namespace:=robot1
"""
import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# launch argument -> (parser of its text, description); left at '' it keeps the value of refine.yaml
OVERRIDES = {
    "input_topics": (yaml.safe_load, "PoseArray topics, one per camera, as a YAML list"),
    "checkpoint": (str, "path to a .safetensors checkpoint"),
    "backend": (str, "auto | tensorrt | cuda | cpu"),
    "emit_delay": (int, "frames, 0 (causal, lowest latency) .. window-1 (full average)"),
}


def refine_node(context):
    config = os.path.join(get_package_share_directory("synsp_ros"), "config", "refine.yaml")
    overrides = {}
    for name, (parse, _) in OVERRIDES.items():
        text = LaunchConfiguration(name).perform(context)
        if text:
            overrides[name] = parse(text)
    return [Node(package="synsp_ros", executable="refine_node", name="refine_node",
                 namespace=LaunchConfiguration("namespace"), output="screen",
                 parameters=[config, overrides])]


def generate_launch_description():
    arguments = [DeclareLaunchArgument("namespace", default_value="", description="namespace of the node")]
    arguments += [DeclareLaunchArgument(name, default_value="", description=f"{text} ('' = from refine.yaml)")
                  for name, (_, text) in OVERRIDES.items()]
    return LaunchDescription(arguments + [OpaqueFunction(function=refine_node)])
