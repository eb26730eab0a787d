"""GPU checks and figures on a machine with a CUDA device; installs nothing.

    PYTHONPATH=. python benchmarks/gpu_check.py [--peak-tflops 67]

1. `pytest tests/gpu`: TensorRT fp32/fp16 engines, CUDA Graphs and eager CUDA against eager
   PyTorch (fp32 within 1e-4, fp16 within 1e-2 of the data scale), and the CUDA SWAA kernel
   against the reference (tests/gpu/test_swaa_cuda.py).
2. benchmarks/model.py: the latency / throughput table with every backend available.
Without a CUDA device it says so and exits 0; without torch_tensorrt the TensorRT parts are
skipped with that reason.
"""
import argparse
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peak-tflops", type=float, default=None, help="passed to benchmarks/model.py")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"skipped: no CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False)")
        return 0
    checks = subprocess.call([sys.executable, "-m", "pytest", "-q", "-rs", "-s", "tests/gpu"], cwd=ROOT)
    bench = [sys.executable, "benchmarks/model.py"] + (["--peak-tflops", str(args.peak_tflops)]
                                                       if args.peak_tflops else [])
    figures = subprocess.call(bench, cwd=ROOT)
    return checks or figures


if __name__ == "__main__":
    sys.exit(main())
