// AVX-512 (F, BW, VL, DQ) kernels: the templates of simd/depthwise_simd.h and simd/pointwise_simd.h
// compiled for this ISA only. Everything that is not ISA code is included before the target region,
// so no inline function of a shared header is ever compiled with avx512 instructions.
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
// SEPCONV_AVX512_VIA_SIMDE (test builds only): portable code, no AVX-512 target, so the kernels
// run on any x86-64 CPU (else the compiler would emit AVX-512 instructions: SIGILL there).
#if defined(SEPCONV_AVX512_VIA_SIMDE)
#elif defined(__clang__)
#pragma clang attribute push( \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#endif

#include "simd/vec_avx512.h"
#include "simd/activation_simd.h"
#include "simd/depthwise_simd.h"
#include "simd/pointwise_simd.h"

namespace sepconv {
namespace cpu {

const DepthwiseKernels<float>& depthwise_avx512_kernels() {
  return DepthwiseSimd<avx512::Vec>::kernels();
}
const PointwiseKernels<float>& pointwise_avx512_kernels() {
  return PointwiseSimd<avx512::Vec>::kernels();
}
void activate_span_avx512(float* y, int64_t n, const Activation& a) {
  ActivationSimd<avx512::Vec>::apply_span(y, n, a);
}

}  // namespace cpu
}  // namespace sepconv

#if defined(SEPCONV_AVX512_VIA_SIMDE)
#elif defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // x86-64
