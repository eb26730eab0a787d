// Bone-length projection (Gauss-Seidel sweeps over the bones). See bones.hpp.
#include "bones.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace synsp {

namespace {

constexpr double kMinBoneLength = 1e-9;  // shorter: no direction to move along

void check_bones(int64_t num_poses, int64_t joints, int64_t dims, const Bone* bones, int64_t num_bones,
                 int64_t iterations) {
  if (num_poses < 0 || joints < 0 || dims < 0 || num_bones < 0 || iterations < 0) {
    throw std::invalid_argument("sizes and iterations must be >= 0");
  }
  for (int64_t b = 0; b < num_bones; ++b) {
    const Bone& bone = bones[b];
    if (bone.parent < 0 || bone.parent >= joints || bone.child < 0 || bone.child >= joints) {
      throw std::invalid_argument("bone " + std::to_string(b) + " has a joint index outside [0, " +
                                  std::to_string(joints) + ")");
    }
    if (bone.parent == bone.child) throw std::invalid_argument("bone " + std::to_string(b) + " joins a joint to itself");
  }
}

}  // namespace

template <typename T>
void project_bone_lengths(T* poses, int64_t num_poses, int64_t joints, int64_t dims, const Bone* bones,
                          int64_t num_bones, const T* lengths, int64_t iterations) {
  check_bones(num_poses, joints, dims, bones, num_bones, iterations);
  for (int64_t n = 0; n < num_poses; ++n) {
    T* pose = poses + n * joints * dims;
    const T* target = lengths + n * num_bones;
    for (int64_t sweep = 0; sweep < iterations; ++sweep) {
      for (int64_t b = 0; b < num_bones; ++b) {
        T* parent = pose + bones[b].parent * dims;
        T* child = pose + bones[b].child * dims;
        double squared = 0.0;
        for (int64_t d = 0; d < dims; ++d) {
          const double v = static_cast<double>(child[d]) - static_cast<double>(parent[d]);
          squared += v * v;
        }
        const double length = std::sqrt(squared);
        if (!(length > kMinBoneLength)) continue;
        // half the length error each way: child moves towards the parent when the bone is too long
        const double half_error = 0.5 - 0.5 * static_cast<double>(target[b]) / length;
        for (int64_t d = 0; d < dims; ++d) {
          const double step = half_error * (static_cast<double>(child[d]) - static_cast<double>(parent[d]));
          child[d] = static_cast<T>(static_cast<double>(child[d]) - step);
          parent[d] = static_cast<T>(static_cast<double>(parent[d]) + step);
        }
      }
    }
  }
}

template void project_bone_lengths<float>(float*, int64_t, int64_t, int64_t, const Bone*, int64_t, const float*,
                                          int64_t);
template void project_bone_lengths<double>(double*, int64_t, int64_t, int64_t, const Bone*, int64_t, const double*,
                                           int64_t);

}  // namespace synsp
