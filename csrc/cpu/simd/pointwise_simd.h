// Pointwise (1x1) float32 register tile written once against a vector interface V
// (vec_<isa>.h) and compiled once per ISA by csrc/cpu/kernels_<isa>.cpp; packing, blocking and
// the forward / weight-gradient kernels are gemm.h's.
#pragma once
#include "../gemm.h"
#include "activation_simd.h"

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
  static void micro(int64_t k, PanelA<float> a, PanelB<float> b, float* c, int64_t ldc, int64_t mr,
                    int64_t nr, const Epilogue<float>& e) {
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
        for (int64_t v = 0; v < NV; ++v) store_acc(c + i * ldc + v * W, acc[i][v], W, e, i, v * W);
      return;
    }
    // Edge tiles (last rows; the last columns of an output-channel count that is not a multiple
    // of the panel width, e.g. 24 or 40 channels on AVX-512) store through masks rather than a
    // scalar loop: such a layer's every tile is an edge tile. The loops keep constant bounds so
    // that acc stays in registers.
#pragma GCC unroll 8
    for (int64_t i = 0; i < MR; ++i) {
      if (i >= mr) break;
#pragma GCC unroll 2
      for (int64_t v = 0; v < NV; ++v) {
        const int64_t n = nr - v * W;
        if (n <= 0) break;
        store_acc(c + i * ldc + v * W, acc[i][v], n, e, i, v * W);
      }
    }
  }

  // out[0 .. n) = r + bias, or out += r (accumulate), then the activation, if any; n <= W,
  // masked below W.
  static void store_acc(float* out, reg r, int64_t n, const Epilogue<float>& e, int64_t row,
                        int64_t col) {
    const bool full = n >= W;
    if (e.accumulate) {
      r = V::add(full ? V::load(out) : V::load(out, n), r);
    } else {
      if (e.row_bias) r = V::add(r, V::set1(e.row_bias[row]));
      if (e.col_bias)
        r = V::add(r, full ? V::load(e.col_bias + col) : V::load(e.col_bias + col, n));
    }
    if (e.act) r = ActivationSimd<V>::apply(r, *e.act);
    if (full)
      V::store(out, r);
    else
      V::store(out, r, n);
  }

  // d[c * NR + j] = w[j * rs + c] for c < k, j < NR: one full NHWC weight panel, W x W blocks
  // transposed in registers (the scalar copy reads NR rows a column at a time: it cost a third
  // of a 7x7 layer's GEMM at batch 1).
  static void transpose_panel(const float* w, int64_t rs, int64_t k, float* d) {
    int64_t c = 0;
    for (; c + W <= k; c += W)
      for (int64_t half = 0; half < NR; half += W) {
        reg r[W];
        for (int64_t t = 0; t < W; ++t) r[t] = V::load(w + (half + t) * rs + c);
        V::transpose(r);
        for (int64_t t = 0; t < W; ++t) V::store(d + (c + t) * NR + half, r[t]);
      }
    for (; c < k; ++c)
      for (int64_t j = 0; j < NR; ++j) d[c * NR + j] = w[j * rs + c];
  }

  // y[i * ldy] = act(b + dot(x + i * k, w)) for rows i < m: four rows share each load of w.
  static void dot_rows(int64_t k, const float* x, int64_t m, const float* w, float b,
                       const Activation& act, float* y, int64_t ldy) {
    constexpr int64_t R = 4;
    int64_t i = 0;
    for (; i + R <= m; i += R) {
      reg acc[R] = {V::zero(), V::zero(), V::zero(), V::zero()};
      int64_t c = 0;
      for (; c + W <= k; c += W) {
        const reg wv = V::load(w + c);
        for (int64_t r = 0; r < R; ++r) acc[r] = V::fma(V::load(x + (i + r) * k + c), wv, acc[r]);
      }
      if (c < k) {
        const reg wv = V::load(w + c, k - c);
        for (int64_t r = 0; r < R; ++r)
          acc[r] = V::fma(V::load(x + (i + r) * k + c, k - c), wv, acc[r]);
      }
      for (int64_t r = 0; r < R; ++r) y[(i + r) * ldy] = activate(b + V::sum(acc[r]), act);
    }
    for (; i < m; ++i) {
      reg acc = V::zero();
      int64_t c = 0;
      for (; c + W <= k; c += W) acc = V::fma(V::load(x + i * k + c), V::load(w + c), acc);
      if (c < k) acc = V::fma(V::load(x + i * k + c, k - c), V::load(w + c, k - c), acc);
      y[i * ldy] = activate(b + V::sum(acc), act);
    }
  }

  static const PointwiseKernels<float>& kernels() {
    return pointwise_kernels_of<PointwiseSimd, float>();
  }
};

}  // namespace cpu
}  // namespace sepconv
