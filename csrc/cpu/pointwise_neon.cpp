// NEON (AArch64) pointwise kernels: the templates of simd/pointwise_simd.h compiled for NEON,
// which every AArch64 CPU has, so no target switch is needed.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "gemm.h"
#include "pointwise.h"

#if defined(__aarch64__)
#include "simd/vec_neon.h"
#include "simd/pointwise_simd.h"

namespace sepconv {
namespace cpu {

const PointwiseKernels<float>& pointwise_neon_kernels() {
  return PointwiseSimd<neon::Vec>::kernels();
}

}  // namespace cpu
}  // namespace sepconv
#endif  // AArch64
