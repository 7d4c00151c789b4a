// Pointwise (1x1) float32 forward GEMM tile written once against a vector interface V
// (vec_<isa>.h) and compiled once per ISA by csrc/cpu/kernels_<isa>.cpp; the blocking and
// work units are gemm.h's. The weight gradient still runs the portable kernels.
#pragma once
#include <algorithm>

#include "../gemm.h"

namespace sepconv {
namespace cpu {

template <class V>
struct PointwiseSimd {
  using reg = typename V::reg;
  static constexpr int64_t W = V::width;
  // 4 rows x 2 vectors: 8 accumulators (FMA latency x throughput), 2 B loads and 4 A
  // broadcasts per 8 FMAs; fits the 16 AVX2 / 32 AVX-512 / 32 NEON registers.
  static constexpr int64_t MR = 4, NV = 2, NR = NV * W;

  static void full(const Gemm& g, const float* a, const float* b, float* c, const float* row_bias,
                   const float* col_bias) {
    reg acc[MR][NV];
    for (int64_t i = 0; i < MR; ++i)
      for (int64_t v = 0; v < NV; ++v)
        acc[i][v] = row_bias ? V::set1(row_bias[i]) : col_bias ? V::load(col_bias + v * W) : V::zero();
    for (int64_t kk = 0; kk < g.k; ++kk) {
      const float* brow = b + kk * g.ldb;
      const reg b0 = V::load(brow), b1 = V::load(brow + W);
      for (int64_t i = 0; i < MR; ++i) {
        const reg av = V::set1(a[i * g.lda + kk]);
        acc[i][0] = V::fma(av, b0, acc[i][0]);
        acc[i][1] = V::fma(av, b1, acc[i][1]);
      }
    }
    for (int64_t i = 0; i < MR; ++i)
      for (int64_t v = 0; v < NV; ++v) V::store(c + i * g.ldc + v * W, acc[i][v]);
  }

  // Partial tiles: one row at a time, masked vectors for the last columns.
  static void edge(const Gemm& g, int64_t mr, int64_t nr, const float* a, const float* b, float* c,
                   const float* row_bias, const float* col_bias) {
    for (int64_t i = 0; i < mr; ++i)
      for (int64_t j = 0; j < nr; j += W) {
        const int64_t n = std::min(W, nr - j);
        reg acc = row_bias ? V::set1(row_bias[i]) : col_bias ? V::load(col_bias + j, n) : V::zero();
        for (int64_t kk = 0; kk < g.k; ++kk)
          acc = V::fma(V::set1(a[i * g.lda + kk]), V::load(b + kk * g.ldb + j, n), acc);
        if (n == W) V::store(c + i * g.ldc + j, acc); else V::store(c + i * g.ldc + j, acc, n);
      }
  }

  static const PointwiseKernels<float>& kernels() {
    const auto& portable = pointwise_scalar_kernels<float>();
    static const PointwiseKernels<float> k = {pointwise_forward_nchw<PointwiseSimd, float>,
                                              pointwise_forward_nhwc<PointwiseSimd, float>,
                                              portable.backward_weight_nchw,
                                              portable.backward_weight_nhwc};
    return k;
  }
};

}  // namespace cpu
}  // namespace sepconv
