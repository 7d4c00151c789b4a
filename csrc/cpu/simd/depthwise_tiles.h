// Depthwise register tiles, float32, written once against a vector interface V (vec_avx512.h,
// vec_avx2.h, vec_neon.h): the arithmetic of every depthwise kernel, and nothing else. Each
// function here computes a fixed small piece (P output pixels of one block of channels; one
// border pixel; the taps of one weight-gradient row) from pointers its caller has set up: no
// allocation, no choice of path, no knowledge of the tensors' layout beyond pixel pitches.
// The staging (depthwise_staging.h) and the drivers (depthwise_nhwc.h, depthwise_blocked.h)
// build on them; nothing here includes those.
//
// Float32 sums: each vector accumulates at most one plane (weight gradient) or one window
// (forward, input gradient) in float, so results do not depend on how callers split the work.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../params.h"

namespace sepconv {
namespace cpu {

template <class V>
struct DepthwiseTiles {
  using reg = typename V::reg;
  static constexpr int64_t W = V::width;

  // n <= W consecutive floats; full vectors without a mask (masked loads cost more on AVX2,
  // masked stores far more: vmaskmovps stores are microcoded on AMD Zen).
  static reg load_n(const float* p, int64_t n) { return n == W ? V::load(p) : V::load(p, n); }
  static void store_n(float* p, reg v, int64_t n) {
    if (n == W)
      V::store(p, v);
    else
      V::store(p, v, n);
  }

  // Pixels per group, each with its own accumulator: 8 independent FMA chains cover the FMA
  // latency (4 cycles, 2 pipes on AVX2 cores) and leave registers for the weights and loads on
  // 16-register ISAs. (Measured on Zen 3: 8 pixels x 1 vector beat 4 pixels x 2 vectors.)
  static constexpr int kPixels = 8;

  // One output row, for the kernel rows handed in (all of them, or one pass of them).
  struct NhwcRow {
    const float* const* rows;  // the ring row of each kernel row
    int64_t nrows;
    const float* w;     // packed weights of block 0 at the first kernel row
    const float* bias;  // packed, zero-padded: one vector per block
    bool accumulate;    // add to the output (a later pass) instead of starting from the bias
    float* y;           // the output row
    float* tail;        // the partial last block goes here (W floats per pixel), if any
    int64_t blocks, cout, out_w, kw, sw, dw, ring_plane, weight_plane;  // planes: floats per block
    // Read in place (nhwc_row_direct): rows are NHWC input rows, `pitch` floats per pixel, and
    // output pixels [ow_begin, ow_end) read the row from x_base + ow * sw * pitch (+ b * W).
    int64_t pitch = 0, x_base = 0, ow_begin = 0, ow_end = 0;
  };

  // P output pixels from ow of one block, in P registers: each weight vector is loaded once per
  // tap and feeds P FMAs. KW / S known at compile time (0: read from r, any dilation) unroll
  // the tap loop into constant-offset loads.
  template <int P, int KW, int S, bool Direct = false>
  __attribute__((always_inline)) static inline void nhwc_group(const NhwcRow& r, const float* w,
                                                               const float* bias, int64_t x_off,
                                                               float* y, int64_t ys, int64_t ow) {
    const int64_t kw = KW ? KW : r.kw, sw = S ? S : r.sw, dw = KW ? 1 : r.dw;
    const int64_t pitch = Direct ? r.pitch : W;  // floats from one pixel to the next
    y += ow * ys;
    reg acc[P];
    for (int q = 0; q < P; ++q) acc[q] = r.accumulate ? V::load(y + q * ys) : V::load(bias);
    x_off += ow * sw * pitch;
    for (int64_t i = 0; i < r.nrows; ++i, w += kw * W) {
      const float* x = r.rows[i] + x_off;
      // Keeps x a single base register: otherwise GCC hoists x_off + each tap's offset into a
      // register of its own (invariant over i), runs out of registers and reloads them from the
      // stack inside the tap loop.
      __asm__("" : "+r"(x));
      for (int64_t j = 0; j < kw; ++j) {
        const reg wv = V::load(w + j * W);
        const float* xj = x + j * dw * pitch;
        for (int q = 0; q < P; ++q) acc[q] = V::fma(wv, V::load(xj + q * sw * pitch), acc[q]);
      }
    }
    for (int q = 0; q < P; ++q) V::store(y + q * ys, acc[q]);
  }

  // The last n < P pixels of a row: an unrolled instance per count, none clipped or recomputed.
  template <int P, int KW, int S, bool Direct = false>
  __attribute__((always_inline)) static inline void nhwc_rest(const NhwcRow& r, const float* w,
                                                              const float* bias, int64_t x_off,
                                                              float* y, int64_t ys, int64_t ow,
                                                              int64_t n) {
    if constexpr (P > 0) {
      if (n == P) return nhwc_group<P, KW, S, Direct>(r, w, bias, x_off, y, ys, ow);
      nhwc_rest<P - 1, KW, S, Direct>(r, w, bias, x_off, y, ys, ow, n);
    }
  }

  // All blocks of one output row. noinline: a function of its own keeps the accumulators and
  // pointers in registers.
  template <int KW, int S>
  __attribute__((noinline)) static void nhwc_row(const NhwcRow& r) {
    for (int64_t b = 0; b < r.blocks; ++b) {
      const bool tail = r.tail && b == r.blocks - 1;
      float* y = tail ? r.tail : r.y + b * W;
      const int64_t ys = tail ? W : r.cout;
      const float *w = r.w + b * r.weight_plane, *bias = r.bias + b * W;
      const int64_t x_off = b * r.ring_plane;
      int64_t ow = 0;
      for (; ow + kPixels <= r.out_w; ow += kPixels)
        nhwc_group<kPixels, KW, S>(r, w, bias, x_off, y, ys, ow);
      nhwc_rest<kPixels - 1, KW, S>(r, w, bias, x_off, y, ys, ow, r.out_w - ow);
    }
  }

  // Output pixels [ow_begin, ow_end) of every block of one row, reading NHWC rows in place
  // (every block full: no tail). Pixel groups outside, blocks inside: the input and the output
  // are then both swept in memory order, which the prefetchers follow (blocks outside read each
  // input row as C / W interleaved strided passes: (144, 56) at N=8, from DRAM, 0.87x the ring).
  template <int KW, int S>
  __attribute__((noinline)) static void nhwc_row_direct(const NhwcRow& r) {
    const auto blocks = [&](int64_t ow, auto group) {
      for (int64_t b = 0; b < r.blocks; ++b)
        group(r.w + b * r.weight_plane, r.bias + b * W, b * W + r.x_base, r.y + b * W, ow);
    };
    int64_t ow = r.ow_begin;
    for (; ow + kPixels <= r.ow_end; ow += kPixels)
      blocks(ow, [&](const float* w, const float* bias, int64_t x_off, float* y, int64_t o) {
        nhwc_group<kPixels, KW, S, true>(r, w, bias, x_off, y, r.cout, o);
      });
    if (ow < r.ow_end)
      blocks(ow, [&](const float* w, const float* bias, int64_t x_off, float* y, int64_t o) {
        nhwc_rest<kPixels - 1, KW, S, true>(r, w, bias, x_off, y, r.cout, o, r.ow_end - o);
      });
  }

  using NhwcRowFn = void (*)(const NhwcRow&);
  // Unrolled instances for the common kernels, the generic one for any other. (Widths 1, 2 and
  // 4 at stride 1: the phases of a stride-2 input gradient of 3x3 and 7x7 kernels.)
  static NhwcRowFn nhwc_row_fn(const DepthwiseParams& p) {
    if (p.dilation_w == 1 && (p.stride_w == 1 || p.stride_w == 2)) {
      const bool s1 = p.stride_w == 1;
      if (s1 && p.kernel_w == 1) return nhwc_row<1, 1>;
      if (s1 && p.kernel_w == 2) return nhwc_row<2, 1>;
      if (s1 && p.kernel_w == 4) return nhwc_row<4, 1>;
      if (p.kernel_w == 3) return s1 ? nhwc_row<3, 1> : nhwc_row<3, 2>;
      if (p.kernel_w == 5) return s1 ? nhwc_row<5, 1> : nhwc_row<5, 2>;
      if (p.kernel_w == 7) return s1 ? nhwc_row<7, 1> : nhwc_row<7, 2>;
    }
    return nhwc_row<0, 0>;
  }
  static NhwcRowFn nhwc_row_direct_fn(const DepthwiseParams& p) {
    if (p.dilation_w == 1 && (p.stride_w == 1 || p.stride_w == 2)) {
      const bool s1 = p.stride_w == 1;
      if (p.kernel_w == 3) return s1 ? nhwc_row_direct<3, 1> : nhwc_row_direct<3, 2>;
      if (p.kernel_w == 5) return s1 ? nhwc_row_direct<5, 1> : nhwc_row_direct<5, 2>;
      if (p.kernel_w == 7) return s1 ? nhwc_row_direct<7, 1> : nhwc_row_direct<7, 2>;
    }
    return nhwc_row_direct<0, 0>;
  }

  // Kernel rows per pass over an output row: large kernels (31x31) accumulate in passes, so one
  // pass's input rows stay in L1 while the pixel groups slide along them.
  static constexpr int64_t kRowsPerPass = 8;
  // One output row from the kernel rows [i_lo, i_hi) (rows[i] = ring row of kernel row i),
  // kRowsPerPass at a time: the first pass starts from the bias, later ones accumulate. At least
  // one pass, so a row whose window lies wholly in the padding gets the bias. `w`: the packed
  // weights (block, kH, kW, lane) from kernel row 0.
  static void nhwc_passes(NhwcRow& r, NhwcRowFn row_fn, const float* const* rows, int64_t i_lo,
                          int64_t i_hi, const float* w) {
    for (int64_t i0 = i_lo;; i0 += kRowsPerPass) {
      r.rows = rows + i0;
      r.nrows = std::min(kRowsPerPass, i_hi - i0);
      r.w = w + i0 * r.kw * W;
      r.accumulate = i0 > i_lo;
      row_fn(r);
      if (i0 + kRowsPerPass >= i_hi) break;
    }
  }

  // One output pixel whose window reaches into the left or right padding, every block, read in
  // place like the interior: only the taps that fall inside the row (a few such pixels per row).
  // rows[i]: the NHWC input row of kernel row i, for i in [i_lo, i_hi).
  static void nhwc_border_pixel(const NhwcRow& r, const float* const* rows, int64_t i_lo,
                                int64_t i_hi, const float* w, int64_t in_w, int64_t pad_left,
                                int64_t ow) {
    const int64_t c0 = ow * r.sw - pad_left;  // the window's first column
    int64_t j_lo, j_hi;                       // taps inside the row
    valid_output_range(c0, r.dw, in_w, r.kw, &j_lo, &j_hi);
    for (int64_t b = 0; b < r.blocks; ++b) {
      reg acc = V::load(r.bias + b * W);
      const float* wb = w + b * r.weight_plane;
      for (int64_t i = i_lo; i < i_hi; ++i)
        for (int64_t j = j_lo; j < j_hi; ++j)
          acc = V::fma(V::load(wb + (i * r.kw + j) * W),
                       V::load(rows[i] + (c0 + j * r.dw) * r.pitch + b * W), acc);
      V::store(r.y + ow * r.cout + b * W, acc);
    }
  }

  // Weight gradient of one output row, one vector of channels: the R x KW taps of R kernel
  // rows and KW kernel columns (the kernel's columns, or a chunk of wider ones) accumulate in
  // registers over n output pixels (R * KW independent FMA chains; each gradient vector feeds
  // them all), then are added to the partial sums `acc` (tap (r, j) at acc + r * acc_row +
  // j * acc_col) once per row instead of once per pixel. Pixels are `pitch` floats apart in gy
  // and in the input rows; xrows[r] points at tap (r, 0) of the first pixel, which must be
  // inside the row for every tap (interior columns, or zero-padded rows). S: the stride when
  // known at compile time (1, 2), else 0.
  template <int R, int KW, int S>
  __attribute__((noinline)) static void weight_row(const float* const* xrows, const float* gy,
                                                   int64_t n, int64_t pitch, int64_t stride,
                                                   int64_t dil, float* acc, int64_t acc_row,
                                                   int64_t acc_col) {
    const int64_t step = (S ? S : stride) * pitch, tap = dil * pitch;
    reg a[R][KW];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < KW; ++j) a[r][j] = V::zero();
    for (int64_t q = 0; q < n; ++q) {
      const reg g = V::load(gy + q * pitch);
      for (int r = 0; r < R; ++r) {
        const float* x = xrows[r] + q * step;
        for (int j = 0; j < KW; ++j) a[r][j] = V::fma(g, V::load(x + j * tap), a[r][j]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < KW; ++j) {
        float* t = acc + r * acc_row + j * acc_col;
        V::store(t, V::add(V::load(t), a[r][j]));
      }
  }

  using WeightRowFn = void (*)(const float* const*, const float*, int64_t, int64_t, int64_t,
                               int64_t, float*, int64_t, int64_t);
  // Kernel rows per call for a kernel width: 3x3 and 5x5 fill 9 and 10 of the 12 accumulators
  // that leave AVX2's 16 registers room for the gradient and the loads.
  static int64_t weight_rows_per_call(int64_t kw) { return kw == 3 ? 3 : kw == 5 ? 2 : 1; }
  // Kernel columns per call: wider kernels go in chunks of 7.
  static constexpr int64_t kWeightChunk = 7;
  // rows: at most weight_rows_per_call(width); more than one only for widths 3 and 5.
  template <int S>
  static WeightRowFn weight_row_fn(int64_t rows, int64_t width) {
    if (rows == 3 && width == 3) return weight_row<3, 3, S>;
    if (rows == 2 && width == 3) return weight_row<2, 3, S>;
    if (rows == 2 && width == 5) return weight_row<2, 5, S>;
    switch (width) {
      case 1:
        return weight_row<1, 1, S>;
      case 2:
        return weight_row<1, 2, S>;
      case 3:
        return weight_row<1, 3, S>;
      case 4:
        return weight_row<1, 4, S>;
      case 5:
        return weight_row<1, 5, S>;
      case 6:
        return weight_row<1, 6, S>;
      default:
        return weight_row<1, 7, S>;
    }
  }
  static WeightRowFn weight_row_fn(int64_t stride, int64_t rows, int64_t width) {
    if (stride == 1) return weight_row_fn<1>(rows, width);
    if (stride == 2) return weight_row_fn<2>(rows, width);
    return weight_row_fn<0>(rows, width);
  }
};

}  // namespace cpu
}  // namespace sepconv
