// Pointwise (1x1) float32 register tile written once against a vector interface V
// (vec_<isa>.h) and compiled once per ISA by csrc/cpu/kernels_<isa>.cpp; packing, blocking and
// the forward / weight-gradient kernels are gemm.h's.
#pragma once
#include "../gemm.h"

namespace sepconv {
namespace cpu {

template <class V>
struct PointwiseSimd {
  using reg = typename V::reg;
  static constexpr int64_t W = V::width;
  // 6 rows x 2 vectors: 12 accumulators, enough independent FMA chains to cover the FMA
  // latency x throughput (5 x 2 on Zen 2, 4 x 2 on Skylake); 2 B loads and 6 A broadcasts per
  // 12 FMAs. With the 2 B vectors and a broadcast that is 15 of AVX2's 16 registers.
  static constexpr int64_t MR = 6, NR = 2 * W, NR_NARROW = W;

  template <int64_t NRP>
  static void micro(int64_t k, PanelA<float> a, PanelB<float> b, float* c, int64_t ldc,
                    int64_t mr, int64_t nr, const Epilogue<float>& e) {
    constexpr int64_t NV = NRP / W;
    reg acc[MR][NV];
#pragma GCC unroll 8
    for (int64_t i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int64_t v = 0; v < NV; ++v) acc[i][v] = V::zero();
    const float* ap = a.a;
    const float* bp = b.b;
    for (int64_t p = 0; p < k; ++p, ap += a.cs, bp += b.rs) {
      reg bv[NV];
#pragma GCC unroll 2
      for (int64_t v = 0; v < NV; ++v) bv[v] = V::load(bp + v * W);
#pragma GCC unroll 8
      for (int64_t i = 0; i < MR; ++i) {
        const reg av = V::set1(ap[i * a.rs]);
#pragma GCC unroll 2
        for (int64_t v = 0; v < NV; ++v) acc[i][v] = V::fma(av, bv[v], acc[i][v]);
      }
    }
    if (mr == MR && nr == NRP) {
#pragma GCC unroll 8
      for (int64_t i = 0; i < MR; ++i)
#pragma GCC unroll 2
        for (int64_t v = 0; v < NV; ++v) {
          float* out = c + i * ldc + v * W;
          reg r = acc[i][v];
          if (e.accumulate) {
            r = V::add(V::load(out), r);
          } else {
            if (e.row_bias) r = V::add(r, V::set1(e.row_bias[i]));
            if (e.col_bias) r = V::add(r, V::load(e.col_bias + v * W));
          }
          V::store(out, r);
        }
      return;
    }
    alignas(64) float tile[MR * NRP];
    for (int64_t i = 0; i < MR; ++i)
      for (int64_t v = 0; v < NV; ++v) V::store(tile + i * NRP + v * W, acc[i][v]);
    store_tile(tile, NRP, c, ldc, mr, nr, e);
  }

  static const PointwiseKernels<float>& kernels() {
    return pointwise_kernels_of<PointwiseSimd, float>();
  }
};

}  // namespace cpu
}  // namespace sepconv
