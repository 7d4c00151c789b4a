// Portable pointwise (1x1) microkernels: a cache- and register-blocked GEMM in plain C++, the
// reference for the SIMD kernels and the fallback everywhere.
#include <algorithm>
#include <vector>

#include "gemm.h"
#include "pointwise.h"
#include "vectorize.h"

namespace sepconv {
namespace cpu {
namespace {

using acc_t = double;  // weight gradients: fixed-order double sums, as in depthwise_scalar.cpp

// Register tile: MR rows x NR columns of C live in registers for the whole K loop (8 SSE
// registers on baseline x86-64: 4 x 8 floats or 4 x 4 doubles), so each loaded element of B
// feeds MR multiply-adds.
template <typename T>
struct ScalarTile {
  static constexpr int64_t MR = 4, NR = 32 / sizeof(T);

  // c[i][j] = bias + sum_k a[i][k] * b[k][j] for one full MR x NR tile.
  SEPCONV_BLOCK_KERNEL static void full(const Gemm& g, const T* __restrict a,
                                        const T* __restrict b, T* __restrict c,
                                        const T* row_bias, const T* col_bias) {
    const int64_t k = g.k, lda = g.lda, ldb = g.ldb;  // locals: no reloads through `g`
    T acc[MR][NR] = {};
    for (int64_t kk = 0; kk < k; ++kk) {
      const T* brow = b + kk * ldb;
      for (int64_t i = 0; i < MR; ++i) {
        const T av = a[i * lda + kk];
        for (int64_t j = 0; j < NR; ++j) acc[i][j] += av * brow[j];
      }
    }
    for (int64_t i = 0; i < MR; ++i)
      for (int64_t j = 0; j < NR; ++j)
        c[i * g.ldc + j] = acc[i][j] + (row_bias ? row_bias[i] : col_bias ? col_bias[j] : T(0));
  }

  // The same for a partial tile at the right or bottom edge of C.
  static void edge(const Gemm& g, int64_t mr, int64_t nr, const T* a, const T* b, T* c,
                   const T* row_bias, const T* col_bias) {
    for (int64_t i = 0; i < mr; ++i)
      for (int64_t j = 0; j < nr; ++j) {
        T s = row_bias ? row_bias[i] : col_bias ? col_bias[j] : T(0);
        for (int64_t kk = 0; kk < g.k; ++kk) s += a[i * g.lda + kk] * b[kk * g.ldb + j];
        c[i * g.ldc + j] = s;
      }
  }
};

template <typename T>
void backward_weight_nchw(const PointwiseParams& p, const T* grad_output, const T* input,
                          T* grad_weight, int64_t begin, int64_t end) {
  for (int64_t o = begin; o < end; ++o) {
    for (int64_t c = 0; c < p.in_channels; ++c) {
      acc_t s = 0;
      for (int64_t n = 0; n < p.batch; ++n) {
        const T* gy = grad_output + (n * p.out_channels + o) * p.pixels;
        const T* x = input + (n * p.in_channels + c) * p.pixels;
        for (int64_t i = 0; i < p.pixels; ++i) s += acc_t(gy[i]) * acc_t(x[i]);
      }
      grad_weight[o * p.in_channels + c] = T(s);
    }
  }
}

// Output channels in blocks so the (block x Cin) accumulator stays in cache.
constexpr int64_t kWeightGradRowBlock = 16;

template <typename T>
void backward_weight_nhwc(const PointwiseParams& p, const T* grad_output, const T* input,
                          T* grad_weight, int64_t begin, int64_t end) {
  std::vector<acc_t> acc;
  for (int64_t o0 = begin; o0 < end; o0 += kWeightGradRowBlock) {
    const int64_t rows = std::min(kWeightGradRowBlock, end - o0);
    acc.assign(rows * p.in_channels, acc_t(0));
    for (int64_t pix = 0; pix < p.batch * p.pixels; ++pix) {
      const T* gy = grad_output + pix * p.out_channels + o0;
      const T* x = input + pix * p.in_channels;
      for (int64_t r = 0; r < rows; ++r) {
        const acc_t g = gy[r];
        acc_t* a = acc.data() + r * p.in_channels;
        for (int64_t c = 0; c < p.in_channels; ++c) a[c] += g * acc_t(x[c]);
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < p.in_channels; ++c)
        grad_weight[(o0 + r) * p.in_channels + c] = T(acc[r * p.in_channels + c]);
  }
}

}  // namespace

template <typename T>
const PointwiseKernels<T>& pointwise_scalar_kernels() {
  static const PointwiseKernels<T> kernels = {pointwise_forward_nchw<ScalarTile<T>, T>,
                                              pointwise_forward_nhwc<ScalarTile<T>, T>,
                                              backward_weight_nchw<T>,
                                              backward_weight_nhwc<T>};
  return kernels;
}

template const PointwiseKernels<float>& pointwise_scalar_kernels<float>();
template const PointwiseKernels<double>& pointwise_scalar_kernels<double>();

}  // namespace cpu
}  // namespace sepconv
