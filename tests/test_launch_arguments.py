"""refine.launch.py's arguments (launch/refine_arguments.py): every node parameter, typed, with
clear errors. The launch and launch_ros packages have no wheels here: the launch file itself is
only compiled; its argument handling is tested through the module it loads."""
import importlib.util
import py_compile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "refine.yaml"
spec = importlib.util.spec_from_file_location("refine_arguments", REPO / "launch" / "refine_arguments.py")
ARGS = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ARGS)
PARAMETERS = ARGS.node_parameters(CONFIG)


def test_every_node_parameter_is_an_argument_with_the_node_type_and_a_description():
    pytest.importorskip("rclpy")
    from synsp_ros.node_utils import TYPE_NAMES
    from synsp_ros.refine_node import PARAMETERS as NODE_PARAMETERS
    assert list(PARAMETERS) == list(NODE_PARAMETERS)
    python_types = {"bool": bool, "int": int, "double": float, "string": str, "string[]": list}
    for name, (default, description) in PARAMETERS.items():
        assert type(default) is python_types[TYPE_NAMES[NODE_PARAMETERS[name][1].type]], name
        assert description, f"{name} has no comment in refine.yaml"


@pytest.mark.parametrize("name, text, value", [
    ("emit_delay", "3", 3), ("sync_slop", "0.01", 0.01), ("sync_slop", "1", 1.0), ("view_timeout", " 2.5 ", 2.5),
    ("publish_per_view", "true", True), ("bone_lengths", "False", False), ("frame_id", "map", "map"),
    ("input_topics", "[/cam0/skeleton, /cam1/skeleton]", ["/cam0/skeleton", "/cam1/skeleton"]),
    ("input_topics", "/cam0/skeleton", ["/cam0/skeleton"]),      # one topic without brackets
    ("input_topics", "['a', b]", ["a", "b"]),
    ("input_types", "[skeleton_array, azure_kinect]", ["skeleton_array", "azure_kinect"]),
    ("input_types", "skeleton_array", ["skeleton_array"]), ("multi_person", "true", True),
])
def test_texts_are_read_with_the_parameter_type(name, text, value):
    parsed = ARGS.parameter_overrides({name: text}, PARAMETERS)[name]
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("name, text, says", [
    ("emit_delay", "abc", "emit_delay:='abc': expected an integer"),
    ("emit_delay", "2.5", "emit_delay:='2.5': expected an integer"),
    ("sync_slop", "fast", "sync_slop:='fast': expected a number"),
    ("sync_slop", "nan", "sync_slop:='nan': expected a finite number"),
    ("publish_per_view", "maybe", "publish_per_view:='maybe': expected true or false"),
    ("input_topics", "[]", "input_topics:='[]': expected 1 to 8 topic names"),
    ("input_topics", "[a, [b]]", "input_topics:='[a, [b]]': expected 1 to 8 topic names"),
    ("input_topics", "[a, b", "input_topics:='[a, b' is no YAML list"),
    ("input_types", "[]", "input_types:='[]': expected 1 to 8 input types, e.g. input_types:=\"[skeleton_array"),
])
def test_bad_texts_name_the_argument(name, text, says):
    with pytest.raises(ARGS.LaunchArgumentError) as error:
        ARGS.parameter_overrides({name: text}, PARAMETERS)
    assert says in str(error.value)


def test_empty_texts_keep_the_params_file_values():
    assert ARGS.parameter_overrides(dict.fromkeys(PARAMETERS, ""), PARAMETERS) == {}


def test_launch_only_arguments():
    assert ARGS.check_launch_only("true", "DEBUG") is True
    with pytest.raises(ARGS.LaunchArgumentError, match="log_level:='loud'"):
        ARGS.check_launch_only("false", "loud")
    with pytest.raises(ARGS.LaunchArgumentError, match="use_sim_time:='sometimes'"):
        ARGS.check_launch_only("sometimes", "info")


def test_unknown_arguments_are_refused():
    declared = set(PARAMETERS) | set(ARGS.LAUNCH_ONLY)
    ARGS.check_unknown(["frame_id:=map", "use_sim_time:=true", "params_file:=/p.yaml"], declared)
    with pytest.raises(ARGS.LaunchArgumentError, match="unknown launch argument.s. frmae_id; refine.launch.py takes"):
        ARGS.check_unknown(["frmae_id:=map", "emit_delay:=3"], declared)


def test_launch_file_compiles(tmp_path):
    py_compile.compile(str(REPO / "launch" / "refine.launch.py"), cfile=str(tmp_path / "launch.pyc"), doraise=True)
