"""synsp_ros: ROS 2 package (ament_python) and pip-installable Python distribution."""
import os
import shlex
import shutil
import subprocess
import sys
from glob import glob
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.develop import develop
from setuptools.command.editable_wheel import editable_wheel

try:   # setuptools >= 69 has its own install_data; older ones use distutils'
    from setuptools.command.install_data import install_data
except ImportError:
    from distutils.command.install_data import install_data

PACKAGE = "synsp_ros"
ROOT = Path(__file__).resolve().parent


def node_launchers() -> list[str]:
    """scripts/<node> rewritten with the installing interpreter in the shebang (as colcon writes
    its scripts), so that `ros2 run` and launch start the nodes with the Python that has synsp_ros
    even from a venv that is not activated."""
    out = ROOT / "build" / "launchers"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("refine_node", "replay_node"):
        body = (ROOT / "scripts" / name).read_text().split("\n", 1)[1]   # without its shebang
        path = out / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
        paths.append(str(path.relative_to(ROOT)))
    return paths


class CMakeExtension(Extension):
    """A module built by the root CMakeLists.txt instead of by setuptools."""

    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Builds CMakeLists.txt for pip and colcon; the module lands where setuptools expects it.

    SYNSP_CUDA=0: CPU only (quick local builds); SYNSP_CUDA=1: fail without a CUDA compiler;
    unset: the CUDA kernel too when nvcc is found. CMAKE_ARGS: extra CMake arguments.
    """

    def build_extension(self, ext: Extension) -> None:
        import pybind11

        cmake = shutil.which("cmake")
        if cmake is None:
            raise RuntimeError("building synsp_core._swaa needs cmake on PATH (pip install cmake ninja)")
        cuda = os.environ.get("SYNSP_CUDA", "")
        if cuda not in ("", "0", "1"):
            raise ValueError(f"SYNSP_CUDA must be 0, 1 or unset, got {cuda!r}")
        build_dir = Path(self.build_temp).resolve() / ext.name
        args = [
            f"-DCMAKE_BUILD_TYPE={'Debug' if self.debug else 'Release'}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={Path(self.get_ext_fullpath(ext.name)).resolve().parent}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DSYNSP_CUDA={'OFF' if cuda == '0' else 'ON'}",
            f"-DSYNSP_REQUIRE_CUDA={'ON' if cuda == '1' else 'OFF'}",
            *shlex.split(os.environ.get("CMAKE_ARGS", "")),
        ]
        if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
            args += ["-G", "Ninja"]
        subprocess.run([cmake, "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = str(self.parallel or os.cpu_count() or 1)
        subprocess.run([cmake, "--build", str(build_dir), "--target", "_swaa", "--parallel", jobs], check=True)


MSGS = ROOT / "interfaces" / "synsp_msgs"   # the skeleton interfaces (docs/ros.md: "Interfaces")


def ros_prefixes() -> list[str]:
    """Install prefixes with ROS 2's CMake packages: AMENT_PREFIX_PATH (a sourced ROS 2 install or
    workspace) and this interpreter's environment (where the ROS wheels from PyPI install; nothing
    sets AMENT_PREFIX_PATH for them). colcon overrides sys.prefix with the install prefix and keeps
    the interpreter's own in sys.real_prefix."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for env in (getattr(sys, "real_prefix", None), sys.prefix, os.environ.get("VIRTUAL_ENV")):
        if env and Path(env, "share", "rosidl_default_generators").is_dir() and env not in prefixes:
            prefixes.append(env)
    return prefixes


def interpreter_tool(name: str) -> str | None:
    """A build tool from the interpreter's environment first (pip installs cmake and ninja into the
    venv, which need not be on PATH), else from PATH."""
    return shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def build_interfaces(build_base: str, install_dir: str) -> list[str]:
    """Generates, builds and installs the interface package synsp_msgs (interfaces/synsp_msgs, plain
    rosidl CMake) into `install_dir`, the prefix synsp_ros's data files go to: colcon's
    install/synsp_ros, or a wheel's data directory that pip unpacks into the venv. Returns the
    installed files. SYNSP_BUILD_MSGS=0 skips it (a package without its messages)."""
    if os.environ.get("SYNSP_BUILD_MSGS", "1") == "0":
        print("SYNSP_BUILD_MSGS=0: not building the synsp_msgs interfaces", file=sys.stderr)
        return []
    cmake = interpreter_tool("cmake")
    prefixes = ros_prefixes()
    if cmake is None or not any(Path(p, "share", "rosidl_default_generators").is_dir() for p in prefixes):
        raise RuntimeError(
            "building the synsp_msgs interfaces needs cmake and rosidl_default_generators: source a ROS 2 "
            "install, or install requirements.txt (the ROS wheels) and run scripts/fix_ros_wheel_cmake.sh "
            "(make setup does both); SYNSP_BUILD_MSGS=0 builds without the messages")
    install_dir = Path(install_dir).resolve()
    # A wheel's data directory (pip) is a staging area: the files end up in this environment's prefix
    staged = install_dir.name == "data" and install_dir.parent.name.endswith(".data")
    final_prefix = Path(sys.prefix).resolve() if staged else install_dir
    build_dir = Path(build_base).resolve() / "synsp_msgs"
    # rosidl's generators run in Python and import the ROS packages of the environment; pip's build
    # isolation (`pip install .`) hides its site-packages through a PYTHONPATH entry: not for them
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and "pip-build-env-" not in p]
    env = dict(os.environ, AMENT_PREFIX_PATH=os.pathsep.join(prefixes), PYTHONPATH=os.pathsep.join(python_path))
    args = [f"-DCMAKE_INSTALL_PREFIX={final_prefix}", f"-DCMAKE_PREFIX_PATH={';'.join(prefixes)}",
            f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF", "-DCMAKE_BUILD_TYPE=Release"]
    ninja = interpreter_tool("ninja")
    if ninja and not (build_dir / "CMakeCache.txt").exists():
        args += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    subprocess.run([cmake, "-S", str(MSGS), "-B", str(build_dir), *args], check=True, env=env)
    jobs = str(os.cpu_count() or 1)
    subprocess.run([cmake, "--build", str(build_dir), "--parallel", jobs], check=True, env=env)
    subprocess.run([cmake, "--install", str(build_dir), "--prefix", str(install_dir)], check=True, env=env)
    if staged:   # byte code compiled in the staging area would name it in tracebacks; pip compiles anew
        for cache in install_dir.glob("lib/python*/site-packages/synsp_msgs/**/__pycache__"):
            shutil.rmtree(cache)
    manifest = build_dir / "install_manifest.txt"
    return [line for line in manifest.read_text().splitlines() if line and Path(line).exists()]


class InstallData(install_data):
    """Installs the data files, then the synsp_msgs interfaces into the same prefix: `setup.py
    install` (colcon), and the wheels pip builds (`pip install .`, `pip install -e .`)."""

    def run(self) -> None:
        super().run()
        build_base = self.get_finalized_command("build").build_base
        self.outfiles.extend(build_interfaces(build_base, self.install_dir))


class EditableWheel(editable_wheel):
    """`pip install -e .`: setuptools leaves the data files out of editable wheels (it asks the
    distribution for `has_data`, which does not exist), so the interfaces go into the wheel's data
    directory here, which pip unpacks into the environment's prefix (and removes on uninstall)."""

    def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):
        files, mapping = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
        data = Path(unpacked_wheel, f"{dist_name}.data", "data")
        if not (data / "share" / "synsp_msgs").exists():   # (a setuptools that ran InstallData did it)
            build_interfaces(self.get_finalized_command("build").build_base, str(data))
        return files, mapping


class Develop(develop):
    """`setup.py develop` (colcon --symlink-install): the interfaces into the prefix as well."""

    def run(self) -> None:
        super().run()
        if not self.uninstall:
            build_interfaces(self.get_finalized_command("build").build_base,
                             self.get_finalized_command("install").install_data)


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Live multi-view human pose sequence refinement (SynSP) for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=["synsp_core", "synsp_ros", "synsp_training"],
    package_dir={"synsp_training": "training"},
    package_data={"synsp_core": ["data/*", "weights/*"], "synsp_training": ["configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),   # the launch file and the module it loads
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        # node launchers where `ros2 run` and launch look, for `pip install`; colcon installs the
        # console scripts there too (setup.cfg): either file runs the same main()
        (f"lib/{PACKAGE}", node_launchers()),
    ],
    install_requires=["numpy", "scipy", "torch>=2.4", "safetensors", "pyyaml"],
    extras_require={"train": ["tqdm", "tensorboard", "matplotlib"], "test": ["pytest"]},
    zip_safe=False,
    ext_modules=[CMakeExtension("synsp_core._swaa")],
    cmdclass={"build_ext": CMakeBuild, "install_data": InstallData,
              "editable_wheel": EditableWheel, "develop": Develop},
    entry_points={"console_scripts": [
        "refine_node = synsp_ros.refine_node:main",
        "replay_node = synsp_ros.replay_node:main",
        "synsp-train = synsp_training.train:cli_main",
        "synsp-evaluate = synsp_training.evaluate:cli_main",
        "synsp-export = synsp_training.export:cli_main",
        "synsp-transfer = synsp_training.transfer:cli_main",
        "synsp-refine = synsp_core.cli:main",
    ]},
)
