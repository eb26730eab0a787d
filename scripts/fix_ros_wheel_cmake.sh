#!/usr/bin/env bash
# The ROS 2 message wheels from PyPI ship CMake export files that name their build machine's Python
# and numpy include directories (/opt/python/cp311-cp311/...): configuring any package that
# generates interfaces against them (synsp_msgs, built by setup.py) fails with "includes
# non-existent path". Rewrite them to this environment's paths. Idempotent; run again after any
# (re)install of a message wheel (`make setup` does). Usage: scripts/fix_ros_wheel_cmake.sh [PYTHON]
set -euo pipefail
PY=${1:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
PY=${PY:-python3}
PREFIX=$("$PY" -c 'import sys; print(sys.prefix)')
PYINC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NPINC=$("$PY" -c 'import numpy; print(numpy.get_include())')
[ -d "$PREFIX/share" ] || exit 0
files=$(grep -rl --include='*.cmake' /opt/python/ "$PREFIX/share" || true)
[ -n "$files" ] || exit 0
echo "$files" | tr '\n' '\0' | xargs -0 sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+t?/lib/python3\.[0-9]+t?/site-packages/numpy/(_core|core)/include#$NPINC#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+t?/include/python3\.[0-9]+t?#$PYINC#g"
if left=$(grep -rl --include='*.cmake' /opt/python/ "$PREFIX/share"); then
  echo "fix_ros_wheel_cmake: build-machine paths left in:" >&2; echo "$left" >&2; exit 1
fi
echo "fix_ros_wheel_cmake: rewrote $(echo "$files" | wc -l) CMake files to $PYINC and $NPINC"
