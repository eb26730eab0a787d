// Bone-length projection: move both ends of every bone along it until the bone has its target
// length. Plain C++17 with no Python, bound in bindings.cpp as synsp_core._swaa.project_bone_lengths
// and equal to project_bone_lengths_reference in synsp_core/bones.py (tested).
#pragma once

#include <cstdint>

namespace synsp {

struct Bone {
  int64_t parent;  // joint index
  int64_t child;   // joint index
};

// poses: (N, J, D) row-major, updated in place; lengths: (N, B) target lengths, same units.
// Each of `iterations` Gauss-Seidel sweeps visits the bones in the given order and moves the
// parent and the child by half of the length error each, along the bone. A bone shorter than
// 1e-9 units has no direction and is left as it is. Sums in double whatever T is.
// Throws std::invalid_argument for a joint index outside [0, J), a bone from a joint to itself,
// a negative size or iterations < 0.
template <typename T>
void project_bone_lengths(T* poses, int64_t num_poses, int64_t joints, int64_t dims, const Bone* bones,
                          int64_t num_bones, const T* lengths, int64_t iterations);

}  // namespace synsp
