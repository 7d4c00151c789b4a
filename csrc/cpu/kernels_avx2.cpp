// AVX2 + FMA kernels: the templates of simd/depthwise_simd.h and simd/pointwise_simd.h compiled for
// this ISA only. Everything that is not ISA code is included before the target region, so no
// inline function of a shared header is ever compiled with avx2 instructions.
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

#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#include "simd/vec_avx2.h"
#include "simd/activation_simd.h"
#include "simd/depthwise_simd.h"
#include "simd/pointwise_simd.h"

namespace sepconv {
namespace cpu {

const DepthwiseKernels<float>& depthwise_avx2_kernels() {
  return DepthwiseSimd<avx2::Vec>::kernels();
}
const PointwiseKernels<float>& pointwise_avx2_kernels() {
  return PointwiseSimd<avx2::Vec>::kernels();
}
void activate_span_avx2(float* y, int64_t n, const Activation& a) {
  ActivationSimd<avx2::Vec>::apply_span(y, n, a);
}

}  // namespace cpu
}  // namespace sepconv

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // x86-64
