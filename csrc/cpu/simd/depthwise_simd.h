// Depthwise float32 microkernels written once against a vector interface V (vec_avx512.h,
// vec_avx2.h, vec_neon.h) and compiled once per ISA by csrc/cpu/kernels_<isa>.cpp. Everything
// here is a template on V, so each ISA's instantiation is a distinct symbol compiled with that
// file's target options (no ODR mixing of AVX-512 code into other translation units).
//
// Same work-unit contract as depthwise.h; every layout, kernel size, stride, dilation and depth
// multiplier runs vector code.
//
// Float32 sums: each vector accumulates at most one plane (weight gradient) or one window
// (forward, input gradient) in float; whole-batch weight-gradient sums are folded in double in a
// fixed order, as in the portable kernels, so results are bitwise reproducible for any thread
// count.
#pragma once
#include <algorithm>
#include <vector>

#include "../depthwise.h"

namespace sepconv {
namespace cpu {

template <class V>
struct DepthwiseBlocked;  // depthwise_blocked.h, included at the end

template <class V>
struct DepthwiseSimd {
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

  // NCHW forward and input gradient: channel-blocked rows and the NHWC row kernels below
  // (depthwise_blocked.h).
  static void forward_nchw(const DepthwiseParams& p, const float* input, const float* weight,
                           const float* bias, float* output, int64_t begin, int64_t end) {
    DepthwiseBlocked<V>::forward_nchw(p, input, weight, bias, output, begin, end);
  }
  static void backward_input_nchw(const DepthwiseParams& p, const float* grad_output,
                                  const float* weight, float* grad_input, int64_t begin,
                                  int64_t end) {
    DepthwiseBlocked<V>::backward_input_nchw(p, grad_output, weight, grad_input, begin, end);
  }

  // The input gradient as a forward correlation: grad_output with (stride - 1) zeros inserted
  // between pixels, convolved at stride 1 with the flipped kernel, padded by
  // dilation * (k - 1) - pad. (For stride > 1 this spends FMAs on the inserted zeros, but stays
  // vectorised; still far ahead of the scalar scatter.)
  static DepthwiseParams transposed(const DepthwiseParams& p) {
    DepthwiseParams q = p;
    q.in_h = (p.out_h - 1) * p.stride_h + 1, q.in_w = (p.out_w - 1) * p.stride_w + 1;
    q.out_h = p.in_h, q.out_w = p.in_w, q.stride_h = 1, q.stride_w = 1;
    q.pad_top = p.dilation_h * (p.kernel_h - 1) - p.pad_top;
    q.pad_left = p.dilation_w * (p.kernel_w - 1) - p.pad_left;
    return q;
  }

  // NCHW weight gradient: channel-blocked rows (depthwise_blocked.h).
  static void backward_weight_nchw(const DepthwiseParams& p, const float* grad_output,
                                   const float* input, float* grad_weight, int64_t begin,
                                   int64_t end) {
    DepthwiseBlocked<V>::backward_weight_nchw(p, grad_output, input, grad_weight, begin, end);
  }

  // ---- NHWC forward ----------------------------------------------------------------------
  // Input rows are copied, as they are first needed, into a ring of zero-padded rows in a
  // channel-blocked layout: each vector of channels (a block) is a plane of its own, with the
  // block's pixels W floats apart, channels padded to whole vectors. Then every output pixel is
  // interior (no clipped taps, no masks in the tap loop) and every tap's load is a constant
  // offset from one pointer. Weights are packed per block the same way. The copy also expands
  // channels for a depth multiplier > 1 (output channel oc reads input channel oc / M), so the
  // tap loop only ever sees multiplier 1.

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

  // Units: output rows n * Ho + oh.
  static void forward_nhwc(const DepthwiseParams& p, const float* input, const float* weight_packed,
                           const float* bias, float* output, int64_t begin, int64_t end) {
    const int64_t C = p.channels, M = p.multiplier, cout = p.out_channels();
    const int64_t blocks = (cout + W - 1) / W, full = cout / W, kh = p.kernel_h, kw = p.kernel_w;
    const int64_t cols = (p.out_w - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
    const int64_t span = (kh - 1) * p.dilation_h + 1;  // input rows one output row reads

    // Weights (kH, kW, block, lane) -> (block, kH, kW, lane); bias padded to whole vectors.
    const int64_t taps = kh * kw;
    std::vector<float> w(blocks * taps * W, 0.f), b(blocks * W, 0.f);
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t blk = 0; blk < blocks; ++blk)
        std::copy(weight_packed + t * cout + blk * W,
                  weight_packed + t * cout + std::min(cout, blk * W + W),
                  w.begin() + (blk * taps + t) * W);
    if (bias) std::copy(bias, bias + cout, b.begin());
    if (M == 1 && full == blocks && depthwise_nhwc_forward_in_place(p))
      return forward_nhwc_direct(p, input, w.data(), b.data(), output, begin, end);

    // Slot ih % span holds input row ih (the rows of one output row are distinct mod span);
    // the padding columns and lanes are zeroed once and never written.
    const int64_t ring_plane = cols * W, row_size = blocks * ring_plane;
    std::vector<float> ring(span * row_size, 0.f);
    std::vector<int64_t> held(span, -1);  // n * in_h + ih of each slot
    const int64_t ix_lo = std::max<int64_t>(0, -p.pad_left);
    const int64_t ix_hi = std::min(p.in_w, cols - p.pad_left);
    auto fetch = [&](int64_t n, int64_t ih) {
      float* dst = ring.data() + (ih % span) * row_size;
      int64_t& tag = held[ih % span];
      if (tag == n * p.in_h + ih) return dst;
      tag = n * p.in_h + ih;
      const float* src = input + (n * p.in_h + ih) * p.in_w * C;
      for (int64_t ix = ix_lo; ix < ix_hi; ++ix) {  // reads the row in order
        const float* s = src + ix * C;
        float* d = dst + (ix + p.pad_left) * W;
        if (M == 1) {
          for (int64_t blk = 0; blk < full; ++blk)
            V::store(d + blk * ring_plane, V::load(s + blk * W));
          if (full < blocks)
            V::store(d + full * ring_plane, V::load(s + full * W, cout - full * W));
        } else {
          for (int64_t oc = 0; oc < cout; ++oc) d[oc / W * ring_plane + oc % W] = s[oc / M];
        }
      }
      return dst;
    };

    const NhwcRowFn row_fn = nhwc_row_fn(p);
    std::vector<const float*> rows(kh);
    std::vector<float> tail(full < blocks ? p.out_w * W : 0);
    NhwcRow r;
    r.w = w.data(), r.bias = b.data(), r.tail = full < blocks ? tail.data() : nullptr;
    r.blocks = blocks, r.cout = cout, r.out_w = p.out_w, r.kw = kw, r.sw = p.stride_w;
    r.dw = p.dilation_w, r.ring_plane = ring_plane, r.weight_plane = taps * W;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.out_h, oh = row % p.out_h, ih0 = oh * p.stride_h - p.pad_top;
      int64_t i_lo, i_hi;  // kernel rows inside the image
      valid_output_range(ih0, p.dilation_h, p.in_h, kh, &i_lo, &i_hi);
      for (int64_t i = i_lo; i < i_hi; ++i) rows[i] = fetch(n, ih0 + i * p.dilation_h);
      r.y = output + row * p.out_w * cout;
      nhwc_passes(r, row_fn, rows.data(), i_lo, i_hi, w.data());
      if (r.tail)
        for (int64_t ow = 0; ow < p.out_w; ++ow)
          std::copy(tail.data() + ow * W, tail.data() + ow * W + cout - full * W,
                    r.y + ow * cout + full * W);
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

  // Multiplier 1 and whole vectors of channels: each row reads the NHWC input in place (pixel
  // pitch C), without the ring's copy of every input row, which cost as much as the
  // multiply-adds where the input is in cache (as in a network, after the BatchNorm): on Zen 4,
  // N=1, (96, 112, stride 2) ran at 0.62x oneDNN, (144, 56) at 0.84x. The interior runs the row
  // kernel's pixel groups; the border pixels, whose windows reach into the padding, skip the
  // taps outside the row. `w`, `b`: the weights and bias as forward_nhwc packs them.
  static void forward_nhwc_direct(const DepthwiseParams& p, const float* input, const float* w,
                                  const float* b, float* output, int64_t begin, int64_t end) {
    const int64_t C = p.channels, kh = p.kernel_h, kw = p.kernel_w, sw = p.stride_w;
    const int64_t reach = (kw - 1) * p.dilation_w;  // a window's columns, minus one
    int64_t lo, hi;  // output columns whose windows lie inside the row
    valid_output_range(-p.pad_left, sw, p.in_w - reach, p.out_w, &lo, &hi);
    if (hi <= lo) lo = hi = p.out_w;  // no interior: all border (narrow rows)
    const NhwcRowFn row_fn = nhwc_row_direct_fn(p);
    std::vector<const float*> rows(kh);
    NhwcRow r;
    r.bias = b, r.tail = nullptr, r.blocks = C / W, r.cout = C, r.out_w = p.out_w, r.kw = kw;
    r.sw = sw, r.dw = p.dilation_w, r.ring_plane = 0, r.weight_plane = kh * kw * W, r.pitch = C;
    r.x_base = -p.pad_left * C, r.ow_begin = lo, r.ow_end = hi;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.out_h, oh = row % p.out_h, ih0 = oh * p.stride_h - p.pad_top;
      int64_t i_lo, i_hi;  // kernel rows inside the image
      valid_output_range(ih0, p.dilation_h, p.in_h, kh, &i_lo, &i_hi);
      const float* image = input + n * p.in_h * p.in_w * C;
      for (int64_t i = i_lo; i < i_hi; ++i) rows[i] = image + (ih0 + i * p.dilation_h) * p.in_w * C;
      r.y = output + row * p.out_w * C;
      if (lo < hi) nhwc_passes(r, row_fn, rows.data(), i_lo, i_hi, w);
      for (int64_t ow = 0; ow < lo; ++ow)
        nhwc_border_pixel(r, rows.data(), i_lo, i_hi, w, p.in_w, p.pad_left, ow);
      for (int64_t ow = hi; ow < p.out_w; ++ow)
        nhwc_border_pixel(r, rows.data(), i_lo, i_hi, w, p.in_w, p.pad_left, ow);
    }
  }

  // NHWC input gradient: each input pixel gathers the output pixels whose window covered it,
  // channels along the vector.
  static void backward_input_nhwc(const DepthwiseParams& p, const float* grad_output,
                                  const float* weight_packed, float* grad_input, int64_t begin,
                                  int64_t end) {
    const int64_t C = p.channels, M = p.multiplier, cout = p.out_channels();
    const int64_t taps = p.kernel_h * p.kernel_w;
    if (M == 1 && p.stride_h == 1 && p.stride_w == 1) {  // the forward kernel on the flipped taps
      std::vector<float> flipped(taps * C);
      for (int64_t t = 0; t < taps; ++t)
        std::copy(weight_packed + (taps - 1 - t) * C, weight_packed + (taps - t) * C,
                  flipped.begin() + t * C);
      return forward_nhwc(transposed(p), grad_output, flipped.data(), nullptr, grad_input, begin,
                          end);
    }
    // Strided, or a multiplier: a gather. Each input pixel sums weight x gradient over the taps
    // (i, j) whose output pixel exists; the taps of a column depend on its phase (iw + pad_left
    // - j * dilation must be a multiple of the stride): listed once per call. (A scatter from
    // the output pixels read-modify-wrote overlapping columns back to back; a register per
    // channel vector with the taps innermost spent its time in loop setup: 1.5 taps per column
    // at 3x3.) A multiplier M > 1 sums the M output channels c * M + k of channel c: weights
    // and grad_output rows are permuted to (k, c) order, so that channel c of each k is a
    // contiguous vector lane; the permuted rows are kept in a ring, one slot per row that an
    // input row reads (the rows of one input row are distinct modulo `span`).
    const int64_t kw = p.kernel_w;
    std::vector<int64_t> col_start(p.in_w + 1), col_tap,
        col_ow;  // taps of column iw: [start, next)
    for (int64_t iw = 0; iw < p.in_w; ++iw) {
      col_start[iw] = static_cast<int64_t>(col_tap.size());
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t t = iw + p.pad_left - j * p.dilation_w;
        if (t >= 0 && t % p.stride_w == 0 && t / p.stride_w < p.out_w)
          col_tap.push_back(j), col_ow.push_back(t / p.stride_w);
      }
    }
    col_start[p.in_w] = static_cast<int64_t>(col_tap.size());
    const int64_t row_floats = p.out_w * cout;
    std::vector<float> weights_kc, ring;
    const float* weights = weight_packed;
    const int64_t span = (p.kernel_h - 1) * p.dilation_h / p.stride_h + 1;
    std::vector<int64_t> held(span, -1);
    if (M > 1) {
      weights_kc.resize(taps * cout), ring.resize(span * row_floats);
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t k = 0; k < M; ++k)
            weights_kc[t * cout + k * C + c] = weight_packed[t * cout + c * M + k];
      weights = weights_kc.data();
    }
    const auto gy_row = [&](int64_t row) -> const float* {  // row: n * out_h + oh
      const float* src = grad_output + row * row_floats;
      if (M == 1) return src;
      const int64_t slot = row % span;
      float* dst = ring.data() + slot * row_floats;
      if (held[slot] != row) {
        held[slot] = row;
        for (int64_t ow = 0; ow < p.out_w; ++ow)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t k = 0; k < M; ++k) dst[ow * cout + k * C + c] = src[ow * cout + c * M + k];
      }
      return dst;
    };
    std::vector<const float*> gy_rows(p.kernel_h), w_rows(p.kernel_h);
    const int64_t full = C / W * W;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.in_h, ih = row % p.in_h;
      float* gx = grad_input + row * p.in_w * C;
      int64_t rows = 0;  // kernel rows whose output row exists
      for (int64_t i = 0; i < p.kernel_h; ++i) {
        const int64_t th = ih + p.pad_top - i * p.dilation_h;
        if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= p.out_h) continue;
        gy_rows[rows] = gy_row(n * p.out_h + th / p.stride_h);
        w_rows[rows++] = weights + i * kw * cout;
      }
      for (int64_t iw = 0; iw < p.in_w; ++iw) {
        float* dst = gx + iw * C;
        const int64_t t0 = col_start[iw], t1 = col_start[iw + 1];
        if (rows == 0 || t0 == t1) {
          std::fill(dst, dst + C, 0.f);
          continue;
        }
        // Tap by tap over the pixel's channels: the first tap writes, the others add. Pointers
        // are set once per tap, the channel loop is a plain stream (the pixel stays in L1).
        bool first = true;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t t = t0; t < t1; ++t)
            for (int64_t k = 0; k < M; ++k, first = false) {
              const float* wp = w_rows[r] + col_tap[t] * cout + k * C;
              const float* gp = gy_rows[r] + col_ow[t] * cout + k * C;
              for (int64_t c0 = 0; c0 < full; c0 += W)
                V::store(dst + c0, V::fma(V::load(wp + c0), V::load(gp + c0),
                                          first ? V::zero() : V::load(dst + c0)));
              if (full < C) {
                const int64_t m = C - full;
                store_n(dst + full,
                        V::fma(load_n(wp + full, m), load_n(gp + full, m),
                               first ? V::zero() : load_n(dst + full, m)),
                        m);
              }
            }
      }
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

  // NHWC weight gradient: units are input channels. Kernels up to 7 wide (multiplier 1) read
  // the input in place: per output row, the interior columns (every tap inside the row) of each
  // whole vector of channels run weight_row; the border columns and a last partial vector of
  // channels go pixel by pixel: output pixel, then W-channel chunk, then every tap whose input
  // pixel exists, adding gradient x input into its (tap, chunk) partial sum in a small
  // L1-resident array. Every load is contiguous (a pass per tap along a row instead reads
  // channel-strided and is bound by cache misses, ~3x slower). Per-image float partial sums are
  // folded into double in image order. Wider kernels have wide borders (31x31 on 56x56: 30 of
  // 56 columns) and take the zero-padded rows of depthwise_blocked.h instead (5.6x faster
  // there; 1.2-3x slower than this path at 3x3, whose borders are two columns), as do
  // multipliers > 1 (grad_output's channels c * M + k gathered per k).
  static void backward_weight_nhwc(const DepthwiseParams& p, const float* grad_output,
                                   const float* input, float* grad_weight_packed, int64_t begin,
                                   int64_t end) {
    if (p.multiplier != 1 || p.kernel_w > kWeightChunk)
      return DepthwiseBlocked<V>::backward_weight_nhwc(p, grad_output, input, grad_weight_packed,
                                                       begin, end);
    const int64_t C = p.channels, kw = p.kernel_w, taps = p.kernel_h * kw;
    const int64_t span = (end - begin + W - 1) / W * W;  // partial-sum columns per tap
    std::vector<float> acc(taps * span);
    std::vector<double> total(taps * span, 0.0);
    std::vector<const float*> xrows(p.kernel_h), block_rows(p.kernel_h);
    const TapRanges ranges(p);
    const int64_t rows_per_block = weight_rows_per_call(kw);
    const int64_t full_end = begin + (end - begin) / W * W;  // whole vectors of channels
    const int64_t int_lo = ranges.interior_lo, int_hi = ranges.interior_hi;
    // Also without a whole vector of channels: a channel's pixels are then summed in the same
    // order (borders, then interior) whichever range it falls in.
    const bool fast = int_hi > int_lo;
    for (int64_t n = 0; n < p.batch; ++n) {
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        int64_t i_lo, i_hi;
        valid_output_range(oh * p.stride_h - p.pad_top, p.dilation_h, p.in_h, p.kernel_h, &i_lo,
                           &i_hi);
        for (int64_t i = i_lo; i < i_hi; ++i)
          xrows[i] =
              input + (n * p.in_h + oh * p.stride_h - p.pad_top + i * p.dilation_h) * p.in_w * C;
        const float* gyrow = grad_output + (n * p.out_h + oh) * p.out_w * C;
        // Columns [ow0, ow1), channels [c_from, c_to), pixel by pixel.
        const auto by_pixel = [&](int64_t ow0, int64_t ow1, int64_t c_from, int64_t c_to) {
          for (int64_t ow = ow0; ow < ow1; ++ow) {
            const int64_t iw0 = ow * p.stride_w - p.pad_left;  // input column of tap j = 0
            int64_t j_lo, j_hi;
            valid_output_range(iw0, p.dilation_w, p.in_w, kw, &j_lo, &j_hi);
            for (int64_t c0 = c_from; c0 < c_to; c0 += W) {
              const int64_t m = std::min(W, c_to - c0);
              const reg g = load_n(gyrow + ow * C + c0, m);
              for (int64_t i = i_lo; i < i_hi; ++i) {
                const float* x = xrows[i] + iw0 * C + c0;
                float* a = acc.data() + i * kw * span + (c0 - begin);
                for (int64_t j = j_lo; j < j_hi; ++j)
                  V::store(a + j * span,
                           V::fma(g, load_n(x + j * p.dilation_w * C, m), V::load(a + j * span)));
              }
            }
          }
        };
        if (!fast) {
          by_pixel(0, p.out_w, begin, end);
          continue;
        }
        by_pixel(0, int_lo, begin, end);
        by_pixel(int_hi, p.out_w, begin, end);
        by_pixel(int_lo, int_hi, full_end, end);
        // Tap (i, 0) of output column int_lo, channel 0.
        const int64_t col0 = (int_lo * p.stride_w - p.pad_left) * C;
        for (int64_t i0 = i_lo; i0 < i_hi; i0 += rows_per_block) {
          const int64_t rows = std::min(rows_per_block, i_hi - i0);
          const WeightRowFn row_fn = weight_row_fn(p.stride_w, rows, kw);
          for (int64_t c0 = begin; c0 < full_end; c0 += W) {
            for (int64_t r = 0; r < rows; ++r) block_rows[r] = xrows[i0 + r] + col0 + c0;
            row_fn(block_rows.data(), gyrow + int_lo * C + c0, int_hi - int_lo, C, p.stride_w,
                   p.dilation_w, acc.data() + i0 * kw * span + (c0 - begin), kw * span, span);
          }
        }
      }
      for (int64_t t = 0; t < taps * span; ++t) total[t] += acc[t];
    }
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t c = begin; c < end; ++c)
        grad_weight_packed[t * C + c] = static_cast<float>(total[t * span + c - begin]);
  }

  static const DepthwiseKernels<float>& kernels() {
    static const DepthwiseKernels<float> k = {forward_nchw,         forward_nhwc,
                                              backward_input_nchw,  backward_input_nhwc,
                                              backward_weight_nchw, backward_weight_nhwc};
    return k;
  }
};

}  // namespace cpu
}  // namespace sepconv

#include "depthwise_blocked.h"
