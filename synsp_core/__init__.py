"""synsp_core: SynSP pose-sequence refinement in PyTorch and numpy, with no ROS import."""
from synsp_core.model import SynSP, SynSPConfig, SynSPOutput
from synsp_core.refiner import Refiner
from synsp_core.skeletons import COCO17, H36M17, Skeleton, get_skeleton

__all__ = ["SynSP", "SynSPConfig", "SynSPOutput", "Refiner", "Skeleton", "H36M17", "COCO17", "get_skeleton"]
