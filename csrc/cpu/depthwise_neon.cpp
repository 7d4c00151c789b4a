// NEON (AArch64) depthwise kernels: the templates of simd/depthwise_simd.h compiled for NEON,
// which every AArch64 CPU has, so no target switch is needed.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "depthwise.h"

#if defined(__aarch64__)
#include "simd/vec_neon.h"
#include "simd/depthwise_simd.h"

namespace sepconv {
namespace cpu {

const DepthwiseKernels<float>& depthwise_neon_kernels() {
  return DepthwiseSimd<neon::Vec>::kernels();
}

}  // namespace cpu
}  // namespace sepconv
#endif  // AArch64
