// NEON (AArch64) kernels: the templates of simd/depthwise_simd.h and simd/pointwise_simd.h
// compiled for NEON, which every AArch64 CPU has, so no target switch is needed.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <optional>
#include <vector>

#include "activation.h"
#include "depthwise.h"
#include "gemm.h"
#include "pointwise.h"
#include "scratch.h"

#if defined(__aarch64__)
#include "simd/vec_neon.h"
#include "simd/activation_simd.h"
#include "simd/depthwise_simd.h"
#include "simd/pointwise_simd.h"

namespace sepconv {
namespace cpu {

const DepthwiseKernels<float>& depthwise_neon_kernels() {
  return DepthwiseSimd<neon::Vec>::kernels();
}
const PointwiseKernels<float>& pointwise_neon_kernels() {
  return PointwiseSimd<neon::Vec>::kernels();
}
void activate_span_neon(float* y, int64_t n, const Activation& a) {
  ActivationSimd<neon::Vec>::apply_span(y, n, a);
}

}  // namespace cpu
}  // namespace sepconv
#endif  // AArch64
