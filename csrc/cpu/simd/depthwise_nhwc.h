// Depthwise drivers for channels_last (NHWC) tensors, float32, per ISA: channels along the
// vector, so rows are read in place or copied into a ring without transposes. Each sets up its
// rows and runs the register tiles (depthwise_tiles.h). Multipliers > 1 and weight gradients of
// kernels wider than 7 take the channel-blocked drivers (depthwise_blocked.h).
#pragma once
#include <algorithm>
#include <cstdint>

#include "../policy.h"
#include "activation_simd.h"
#include "depthwise_blocked.h"
#include "depthwise_staging.h"
#include "depthwise_tiles.h"

namespace sepconv {
namespace cpu {

template <class V>
struct DepthwiseNhwc {
  using Tiles = DepthwiseTiles<V>;
  using Staging = DepthwiseStaging<V>;
  using NhwcRow = typename Tiles::NhwcRow;
  using NhwcRowFn = typename Tiles::NhwcRowFn;
  using WeightRowFn = typename Tiles::WeightRowFn;
  using reg = typename V::reg;
  static constexpr int64_t W = V::width;

  // ---- NHWC forward ----------------------------------------------------------------------
  // Input rows are copied, as they are first needed, into a ring of zero-padded rows in a
  // channel-blocked layout: each vector of channels (a block) is a plane of its own, with the
  // block's pixels W floats apart, channels padded to whole vectors. Then every output pixel is
  // interior (no clipped taps, no masks in the tap loop) and every tap's load is a constant
  // offset from one pointer. Weights are packed per block the same way. The copy also expands
  // channels for a depth multiplier > 1 (output channel oc reads input channel oc / M), so the
  // tap loop only ever sees multiplier 1.

  // Units: output rows n * Ho + oh; `packed` as Staging::pack_forward.
  static void forward_nhwc(const DepthwiseParams& p, const float* input, const float* packed,
                           float* output, int64_t begin, int64_t end) {
    const int64_t C = p.channels, M = p.multiplier, cout = p.out_channels();
    const int64_t blocks = (cout + W - 1) / W, full = cout / W, kh = p.kernel_h, kw = p.kernel_w;
    const int64_t cols = (p.out_w - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
    const int64_t span = (kh - 1) * p.dilation_h + 1;  // input rows one output row reads
    const int64_t taps = kh * kw;
    const float *w = packed, *b = Staging::packed_bias(p, packed);
    if (M == 1 && full == blocks && depthwise_nhwc_forward_in_place(p))
      return forward_nhwc_direct(p, input, w, b, output, begin, end);

    // Slot ih % span holds input row ih (the rows of one output row are distinct mod span);
    // the padding columns and lanes are zeroed once and never written.
    const int64_t ring_plane = cols * W, row_size = blocks * ring_plane;
    ScratchScope scratch;
    const ScratchArray<float> ring = scratch.filled(span * row_size, 0.f);
    const ScratchArray<int64_t> held = scratch.filled(span, int64_t{-1});  // n * in_h + ih
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

    const NhwcRowFn row_fn = Tiles::nhwc_row_fn(p);
    const ScratchArray<const float*> rows = scratch.filled<const float*>(kh, nullptr);
    const ScratchArray<float> tail = scratch.filled(full < blocks ? p.out_w * W : 0, 0.f);
    NhwcRow r;
    r.w = w, r.bias = b, r.tail = full < blocks ? tail.data() : nullptr;
    r.blocks = blocks, r.cout = cout, r.out_w = p.out_w, r.kw = kw, r.sw = p.stride_w;
    r.dw = p.dilation_w, r.ring_plane = ring_plane, r.weight_plane = taps * W;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.out_h, oh = row % p.out_h, ih0 = oh * p.stride_h - p.pad_top;
      int64_t i_lo, i_hi;  // kernel rows inside the image
      valid_output_range(ih0, p.dilation_h, p.in_h, kh, &i_lo, &i_hi);
      for (int64_t i = i_lo; i < i_hi; ++i) rows[i] = fetch(n, ih0 + i * p.dilation_h);
      r.y = output + row * p.out_w * cout;
      Tiles::nhwc_passes(r, row_fn, rows.data(), i_lo, i_hi, w);
      if (r.tail)
        for (int64_t ow = 0; ow < p.out_w; ++ow)
          std::copy(tail.data() + ow * W, tail.data() + ow * W + cout - full * W,
                    r.y + ow * cout + full * W);
      ActivationSimd<V>::apply_span(r.y, p.out_w * cout, p.activation);  // the row is in L1/L2
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
    const NhwcRowFn row_fn = Tiles::nhwc_row_direct_fn(p);
    ScratchScope scratch;
    const ScratchArray<const float*> rows = scratch.filled<const float*>(kh, nullptr);
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
      if (lo < hi) Tiles::nhwc_passes(r, row_fn, rows.data(), i_lo, i_hi, w);
      for (int64_t ow = 0; ow < lo; ++ow)
        Tiles::nhwc_border_pixel(r, rows.data(), i_lo, i_hi, w, p.in_w, p.pad_left, ow);
      for (int64_t ow = hi; ow < p.out_w; ++ow)
        Tiles::nhwc_border_pixel(r, rows.data(), i_lo, i_hi, w, p.in_w, p.pad_left, ow);
      ActivationSimd<V>::apply_span(r.y, p.out_w * C, p.activation);
    }
  }

  // NHWC input gradient: each input pixel gathers the output pixels whose window covered it,
  // channels along the vector. `packed` as Staging::pack_backward_input.
  static void backward_input_nhwc(const DepthwiseParams& p, const float* grad_output,
                                  const float* packed, float* grad_input, int64_t begin,
                                  int64_t end) {
    if (Staging::nhwc_input_grad_is_forward(p))  // the forward kernel on the flipped taps
      return forward_nhwc(Staging::transposed(p), grad_output, packed, grad_input, begin, end);
    const int64_t C = p.channels, M = p.multiplier, cout = p.out_channels();
    ScratchScope scratch;
    // Strided, or a multiplier: a gather. Each input pixel sums weight x gradient over the taps
    // (i, j) whose output pixel exists; the taps of a column depend on its phase (iw + pad_left
    // - j * dilation must be a multiple of the stride): listed once per call. (A scatter from
    // the output pixels read-modify-wrote overlapping columns back to back; a register per
    // channel vector with the taps innermost spent its time in loop setup: 1.5 taps per column
    // at 3x3.) A multiplier M > 1 sums the M output channels c * M + k of channel c: the packed
    // weights and the grad_output rows are in (k, c) order, so that channel c of each k is a
    // contiguous vector lane; the permuted rows are kept in a ring, one slot per row that an
    // input row reads (the rows of one input row are distinct modulo `span`).
    const int64_t kw = p.kernel_w;
    // Taps of column iw: [col_start[iw], col_start[iw + 1]) of col_tap / col_ow.
    const ScratchArray<int64_t> col_start = scratch.filled(p.in_w + 1, int64_t{0});
    const ScratchArray<int64_t> col_tap = scratch.filled(p.in_w * kw, int64_t{0});
    const ScratchArray<int64_t> col_ow = scratch.filled(p.in_w * kw, int64_t{0});
    int64_t listed = 0;
    for (int64_t iw = 0; iw < p.in_w; ++iw) {
      col_start[iw] = listed;
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t t = iw + p.pad_left - j * p.dilation_w;
        if (t >= 0 && t % p.stride_w == 0 && t / p.stride_w < p.out_w)
          col_tap[listed] = j, col_ow[listed++] = t / p.stride_w;
      }
    }
    col_start[p.in_w] = listed;
    const int64_t row_floats = p.out_w * cout;
    const float* weights = packed;  // (kH, kW, M, C)
    const int64_t span = (p.kernel_h - 1) * p.dilation_h / p.stride_h + 1;
    const ScratchArray<int64_t> held = scratch.filled(span, int64_t{-1});
    // Multiplier > 1: the ring of grad_output rows in (k, c) order.
    const ScratchArray<float> ring = scratch.filled(M > 1 ? span * row_floats : 0, 0.f);
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
    const ScratchArray<const float*> gy_rows = scratch.filled<const float*>(p.kernel_h, nullptr);
    const ScratchArray<const float*> w_rows = scratch.filled<const float*>(p.kernel_h, nullptr);
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
                Tiles::store_n(dst + full,
                               V::fma(Tiles::load_n(wp + full, m), Tiles::load_n(gp + full, m),
                                      first ? V::zero() : Tiles::load_n(dst + full, m)),
                               m);
              }
            }
      }
    }
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
    if (p.multiplier != 1 || p.kernel_w > Tiles::kWeightChunk)
      return DepthwiseBlocked<V>::backward_weight_nhwc(p, grad_output, input, grad_weight_packed,
                                                       begin, end);
    const int64_t C = p.channels, kw = p.kernel_w, taps = p.kernel_h * kw;
    const int64_t span = (end - begin + W - 1) / W * W;  // partial-sum columns per tap
    ScratchScope scratch;
    const ScratchArray<float> acc = scratch.filled(taps * span, 0.f);
    const ScratchArray<double> total = scratch.filled(taps * span, 0.0);
    const ScratchArray<const float*> xrows = scratch.filled<const float*>(p.kernel_h, nullptr);
    const ScratchArray<const float*> block_rows = scratch.filled<const float*>(p.kernel_h, nullptr);
    const TapRanges ranges(p);
    const int64_t rows_per_block = Tiles::weight_rows_per_call(kw);
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
              const reg g = Tiles::load_n(gyrow + ow * C + c0, m);
              for (int64_t i = i_lo; i < i_hi; ++i) {
                const float* x = xrows[i] + iw0 * C + c0;
                float* a = acc.data() + i * kw * span + (c0 - begin);
                for (int64_t j = j_lo; j < j_hi; ++j)
                  V::store(a + j * span, V::fma(g, Tiles::load_n(x + j * p.dilation_w * C, m),
                                                V::load(a + j * span)));
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
          const WeightRowFn row_fn = Tiles::weight_row_fn(p.stride_w, rows, kw);
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
};

}  // namespace cpu
}  // namespace sepconv
