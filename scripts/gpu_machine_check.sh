#!/usr/bin/env bash
# The GPU checks and figures, on a GPU machine that has a CUDA torch, pybind11, cmake, ninja and
# nvcc but not this package (no ROS): builds synsp_core._swaa with the CUDA kernel in place, runs
# tests/gpu and benchmarks/model.py (benchmarks/gpu_check.py), the shipped weights' table, and the
# multi-person path (benchmarks/people.py) on the GPU and on one CPU thread. Logs go to OUT_DIR.
#   bash scripts/gpu_machine_check.sh [OUT_DIR]      # default out/gpu
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/gpu}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
failed=0
run() {   # run LOG COMMAND...: output to the terminal and to $out/LOG; a failure is counted, not fatal
    local log=$1; shift
    echo "+ $*" | tee -a "$out/$log"
    "$@" 2>&1 | tee -a "$out/$log" || failed=$((failed + 1))
}
run machine.txt nvidia-smi -L
run machine.txt "$py" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
run build.txt cmake -S . -B build/gpu -G Ninja -DSYNSP_REQUIRE_CUDA=ON -DPython_EXECUTABLE="$(command -v "$py")" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/synsp_core"
run build.txt cmake --build build/gpu --target _swaa --parallel
run gpu_check.txt "$py" benchmarks/gpu_check.py --peak-tflops 67
run model_shipped.txt "$py" benchmarks/model.py --checkpoint synsp_core/weights/synsp_h36m17_3d.safetensors
for people in 1 3 6; do
    for backend in cuda eager; do
        run people.txt "$py" benchmarks/people.py --people "$people" --backend "$backend" --duration 10
    done
done
echo "failed commands: $failed" | tee -a "$out/machine.txt"
exit $((failed > 0))
