// Portable pointwise (1x1) kernels: gemm.h's packed GEMM with a register tile in plain C++, the
// reference for the SIMD kernels and the fallback everywhere (float64 always runs here).
#include "gemm.h"
#include "pointwise.h"
#include "vectorize.h"

namespace sepconv {
namespace cpu {
namespace {

// MR rows x NR columns of C stay in registers for the whole depth loop (8 SSE registers on
// baseline x86-64: 4 x 8 floats or 4 x 4 doubles), so each loaded element of B feeds MR
// multiply-adds.
template <typename T>
struct ScalarTile {
  static constexpr int64_t MR = 4, NR = 32 / sizeof(T), NR_NARROW = NR;

  template <int64_t NRP>
  SEPCONV_BLOCK_KERNEL static void micro(int64_t k, PanelA<T> a, PanelB<T> b, T* c, int64_t ldc,
                                         int64_t mr, int64_t nr, const Epilogue<T>& e) {
    T acc[MR][NRP] = {};
    const T* __restrict ap = a.a;
    const T* __restrict bp = b.b;
    for (int64_t p = 0; p < k; ++p, ap += a.cs, bp += b.rs)
      for (int64_t i = 0; i < MR; ++i)
        for (int64_t j = 0; j < NRP; ++j) acc[i][j] += ap[i * a.rs] * bp[j];
    store_tile(&acc[0][0], NRP, c, ldc, mr, nr, e);
  }

  // d[c * NR + j] = w[j * rs + c] for c < k, j < NR: one full NHWC weight panel.
  static void transpose_panel(const T* w, int64_t rs, int64_t k, T* d) {
    for (int64_t c = 0; c < k; ++c)
      for (int64_t j = 0; j < NR; ++j) d[c * NR + j] = w[j * rs + c];
  }

  // y[i * ldy] = act(b + dot(x + i * k, w)) for rows i < m.
  static void dot_rows(int64_t k, const T* x, int64_t m, const T* w, T b, const Activation& act,
                       T* y, int64_t ldy) {
    for (int64_t i = 0; i < m; ++i) {
      T s = T(0);
      for (int64_t c = 0; c < k; ++c) s += x[i * k + c] * w[c];
      y[i * ldy] = activate(b + s, act);
    }
  }
};

}  // namespace

template <typename T>
const PointwiseKernels<T>& pointwise_scalar_kernels() {
  return pointwise_kernels_of<ScalarTile<T>, T>();
}

template const PointwiseKernels<float>& pointwise_scalar_kernels<float>();
template const PointwiseKernels<double>& pointwise_scalar_kernels<double>();

}  // namespace cpu
}  // namespace sepconv
