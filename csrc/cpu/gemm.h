// The cache-blocked GEMM driver and the pointwise forward work units, shared by every ISA.
// Both layouts are one GEMM, C[M x N] = A[M x K] * B[K x N] + bias, unit column stride:
//   NCHW, per image: A = W (Cout x Cin), B = X (Cin x P),      C = Y (Cout x P), bias per row
//   NHWC:            A = X (pixels x Cin), B = W^T (Cin x Cout), C = Y (pixels x Cout), bias per column
// Templates only, on a Tile type each ISA defines for itself (register tile MR x NR with
// `full` and `edge` functions), so every instantiation is private to one ISA's file.
#pragma once
#include <algorithm>

#include "pointwise.h"

namespace sepconv {
namespace cpu {

struct Gemm {
  int64_t m, n, k;
  int64_t lda, ldb, ldc;
};

// Cache blocks: kBlockRows rows of A and kBlockCols columns of B stay in L2 while tiles sweep them.
constexpr int64_t kBlockRows = 64, kBlockCols = 128;

template <class Tile, typename T>
void gemm_blocked(const Gemm& g, const T* a, const T* b, T* c, const T* row_bias,
                  const T* col_bias) {
  constexpr int64_t MR = Tile::MR, NR = Tile::NR;
  for (int64_t i0 = 0; i0 < g.m; i0 += kBlockRows)
    for (int64_t j0 = 0; j0 < g.n; j0 += kBlockCols)
      for (int64_t i = i0; i < std::min(g.m, i0 + kBlockRows); i += MR)
        for (int64_t j = j0; j < std::min(g.n, j0 + kBlockCols); j += NR) {
          const int64_t mr = std::min(MR, g.m - i), nr = std::min(NR, g.n - j);
          const T* rb = row_bias ? row_bias + i : nullptr;
          const T* cb = col_bias ? col_bias + j : nullptr;
          if (mr == MR && nr == NR)
            Tile::full(g, a + i * g.lda, b + j, c + i * g.ldc + j, rb, cb);
          else
            Tile::edge(g, mr, nr, a + i * g.lda, b + j, c + i * g.ldc + j, rb, cb);
        }
}

template <class Tile, typename T>
void pointwise_forward_nchw(const PointwiseParams& p, const T* input, const T* weight,
                            const T* bias, T* output, int64_t begin, int64_t end) {
  const int64_t pixel_blocks = (p.pixels + kPointwisePixelBlock - 1) / kPointwisePixelBlock;
  const int64_t row_blocks = (p.out_channels + kPointwiseRowBlock - 1) / kPointwiseRowBlock;
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t o0 = unit % row_blocks * kPointwiseRowBlock;
    const int64_t p0 = unit / row_blocks % pixel_blocks * kPointwisePixelBlock;
    const int64_t n = unit / (row_blocks * pixel_blocks);
    const Gemm g{std::min(kPointwiseRowBlock, p.out_channels - o0),
                 std::min(kPointwisePixelBlock, p.pixels - p0), p.in_channels, p.in_channels,
                 p.pixels, p.pixels};
    gemm_blocked<Tile, T>(g, weight + o0 * p.in_channels,
                          input + n * p.in_channels * p.pixels + p0,
                          output + (n * p.out_channels + o0) * p.pixels + p0,
                          bias ? bias + o0 : nullptr, nullptr);
  }
}

template <class Tile, typename T>
void pointwise_forward_nhwc(const PointwiseParams& p, const T* input, const T* weight_t,
                            const T* bias, T* output, int64_t begin, int64_t end) {
  const Gemm g{end - begin, p.out_channels, p.in_channels, p.in_channels, p.out_channels,
               p.out_channels};
  gemm_blocked<Tile, T>(g, input + begin * p.in_channels, weight_t,
                        output + begin * p.out_channels, nullptr, bias);
}

}  // namespace cpu
}  // namespace sepconv
