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
    cmdclass={"build_ext": CMakeBuild},
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
