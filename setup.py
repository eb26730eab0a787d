"""synsp_ros: ROS 2 package (ament_python) and pip-installable Python distribution."""
from glob import glob

from setuptools import setup

PACKAGE = "synsp_ros"

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
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["numpy", "scipy", "torch>=2.4", "safetensors", "pyyaml"],
    extras_require={"train": ["tqdm", "tensorboard", "matplotlib"], "test": ["pytest"]},
    zip_safe=False,
    entry_points={"console_scripts": [
        "refine_node = synsp_ros.refine_node:main",
        "replay_node = synsp_ros.replay_node:main",
        "synsp-train = synsp_training.train:main",
        "synsp-evaluate = synsp_training.evaluate:main",
        "synsp-export = synsp_training.export:main",
        "synsp-refine = synsp_core.cli:main",
    ]},
)
