// Depthwise staging, float32, per ISA: moving data between the tensors' layouts and the
// channel-blocked, zero-padded rows and images the register tiles (depthwise_tiles.h) read.
// Rows of W planes are transposed in registers (V::transpose, W x W floats at a time) into one
// block (pixel-major, lane l = plane l) and back; NHWC rows are copied or gathered into the same
// layout; rings of rows and whole-plane images hold them while the kernel rows of an output row
// read them; weights are packed per block. Only layout here: the drivers (depthwise_blocked.h,
// depthwise_nhwc.h) decide which staging a problem takes (with policy.h).
#pragma once
#include <algorithm>
#include <cstdint>

#include "../scratch.h"
#include "depthwise_tiles.h"

namespace sepconv {
namespace cpu {

template <class V>
struct DepthwiseStaging {
  using Tiles = DepthwiseTiles<V>;
  using reg = typename V::reg;
  static constexpr int64_t W = V::width;

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

  // d[c * step] = v[c] for c < m. Unrolled with constant indices so that v stays in registers:
  // as a loop GCC turned it into a memcpy from the stack (rep movsq: ~20% of the time at 14x14).
  template <int K>
  static inline void store_first(float* d, int64_t step, const reg* v, int64_t m) {
    if constexpr (K > 0) {
      if (m >= K) V::store(d + (K - 1) * step, v[K - 1]);
      store_first<K - 1>(d, step, v, m);
    }
  }

  // Blocked columns from W rows: dst[c * step + l] = src[l][c] for c < n. Every src[l] has
  // `readable` floats from its start: whole-vector loads while they stay inside.
  static void rows_to_block(const float* const* src, int64_t n, int64_t readable, float* dst,
                            int64_t step) {
    for (int64_t x0 = 0; x0 < n; x0 += W) {
      const int64_t m = std::min(W, n - x0);
      const bool whole = x0 + W <= readable;
      reg v[W];
      for (int64_t l = 0; l < W; ++l) v[l] = whole ? V::load(src[l] + x0) : V::load(src[l] + x0, m);
      V::transpose(v);
      store_first<W>(dst + x0 * step, step, v, m);
    }
  }

  // W rows from blocked columns: dst[l][c] (=|+=) src[c * W + l] for c < n; src is readable W
  // columns past n. Unless accumulating, a partial vector is stored whole while it ends within
  // `writable` floats of dst[l] (the rest of the plane, written later: partial stores are slow).
  static void block_to_rows(const float* src, int64_t n, float* const* dst, int64_t writable,
                            bool accumulate) {
    for (int64_t x0 = 0; x0 < n; x0 += W) {
      const int64_t m = std::min(W, n - x0);
      reg v[W];
      for (int64_t c = 0; c < W; ++c) v[c] = V::load(src + (x0 + c) * W);
      V::transpose(v);
      if (accumulate)
        for (int64_t l = 0; l < W; ++l) v[l] = V::add(v[l], Tiles::load_n(dst[l] + x0, m));
      if (m == W || (!accumulate && x0 + W <= writable))
        for (int64_t l = 0; l < W; ++l) V::store(dst[l] + x0, v[l]);
      else
        for (int64_t l = 0; l < W; ++l) Tiles::store_n(dst[l] + x0, v[l], m);
    }
  }

  // Planes are taken in groups within one vector-aligned block of channels (c / W) of one
  // image. A unit range that starts or ends inside a block, or a last block past the channel
  // count, leaves lanes empty: they read a plane of zeros and write a scratch plane, so the
  // lane loops have no branches.
  struct Groups {
    int64_t channels, begin, end;
    ScratchArray<float> zeros, scratch;
    Groups(ScratchScope& s, int64_t channels, int64_t begin, int64_t end, int64_t src_plane,
           int64_t dst_plane)
        : channels(channels), begin(begin), end(end) {
      if (begin % channels % W || end % channels % W || channels % W)
        zeros = s.filled(src_plane, 0.f), scratch = s.filled(dst_plane, 0.f);
    }
    // f(n, block, lo, hi): lanes [lo, hi) of block `block` of image n are live.
    template <class F>
    void for_each(const F& f) const {
      for (int64_t u = begin; u < end;) {
        const int64_t n = u / channels, c0 = u % channels, blk = c0 / W;
        const int64_t c1 = std::min({(blk + 1) * W, channels, c0 + (end - u)});
        f(n, blk, c0 - blk * W, c1 - blk * W);
        u += c1 - c0;
      }
    }
  };

  // Where the W lanes of a group come from, in one image of h x w pixels: W planes (NCHW,
  // transposed), or m <= W channels `step` apart of pixel-major rows with C channels (NHWC,
  // copied, or gathered when step > 1; lanes past m are zero).
  struct Source {
    const float* planes[W];
    const float* image = nullptr;  // NHWC: the image's first pixel, first channel
    int64_t h = 0, w = 0, C = 0, m = 0, step = 1;
    static Source nchw(const float* const* planes, int64_t h, int64_t w) {
      Source s;
      std::copy(planes, planes + W, s.planes);
      s.h = h, s.w = w;
      return s;
    }
    static Source nhwc(const float* image, int64_t h, int64_t w, int64_t C, int64_t m,
                       int64_t step = 1) {
      Source s;
      s.image = image, s.h = h, s.w = w, s.C = C, s.m = m, s.step = step;
      return s;
    }
    // Columns [x0, x0 + n) of row y, blocked: column x0 + c at dst + c * stride.
    void row(int64_t y, int64_t x0, int64_t n, float* dst, int64_t stride) const {
      const int64_t offset = y * w + x0;
      if (image && step == 1) {
        const float* s = image + offset * C;
        for (int64_t c = 0; c < n; ++c) V::store(dst + c * stride, Tiles::load_n(s + c * C, m));
        return;
      }
      if (image) {
        const float* s = image + offset * C;
        alignas(64) float lanes[W] = {};
        for (int64_t c = 0; c < n; ++c) {
          for (int64_t l = 0; l < m; ++l) lanes[l] = s[c * C + l * step];
          V::store(dst + c * stride, V::load(lanes));
        }
        return;
      }
      const float* s[W];
      for (int64_t l = 0; l < W; ++l) s[l] = planes[l] + offset;
      rows_to_block(s, n, h * w - offset, dst, stride);
    }
  };

  // A ring of the zero-padded, blocked rows of W source planes (h x w floats each) that the
  // kernel rows of one output row read. The source may be upsampled (the input gradient of a
  // strided conv): source pixel (y, x) sits at padded row y * up_h, column x * up_w + pad_left;
  // the rows between are zero. The padding columns are zeroed once and never written.
  struct Ring {
    int64_t span, cols, row_size, pad_left, up_h, up_w, h, w, x_lo, x_hi;
    ScratchArray<float> rows, zero_row;
    ScratchArray<int64_t> held;
    // Ring slot (-1 for the zero rows) and source row of each upsampled row: the divisions
    // cost ~40 cycles each, as much as the arithmetic of a 7-pixel row.
    ScratchArray<int64_t> slot, source_row;
    Source src;
    Ring(ScratchScope& s, int64_t span, int64_t cols, int64_t pad_left, int64_t up_h, int64_t up_w,
         int64_t h, int64_t w)
        : span(span),
          cols(cols),
          row_size(cols * W),
          pad_left(pad_left),
          up_h(up_h),
          up_w(up_w),
          h(h),
          w(w),
          rows(s.filled(span * cols * W, 0.f)),
          held(s.filled(span, int64_t{0})),
          slot(s.filled((h - 1) * up_h + 1, int64_t{0})),
          source_row(s.filled(slot.size(), int64_t{0})) {
      valid_output_range(pad_left, up_w, cols, w, &x_lo, &x_hi);  // source columns inside
      if (up_h > 1) zero_row = s.filled(row_size, 0.f);
      for (int64_t r = 0; r < slot.size(); ++r)
        slot[r] = r % up_h ? -1 : r % span, source_row[r] = r / up_h;
    }
    void reset(const Source& source) {
      src = source;
      std::fill(held.begin(), held.end(), int64_t{-1});
    }
    // Row r of the upsampled source (source row r / up_h; rows between are zero), padded.
    const float* fetch(int64_t r) {
      const int64_t k = slot[r];
      if (k < 0) return zero_row.data();
      float* dst = rows.data() + k * row_size;
      if (held[k] == r) return dst;
      held[k] = r;
      src.row(source_row[r], x_lo, x_hi - x_lo, dst + (x_lo * up_w + pad_left) * W, up_w * W);
      return dst;
    }
  };

  // ---- Planes up to 112x112: the whole plane at once -----------------------------------------
  // When a group's zero-padded blocked image fits in kDepthwiseImageBytes, its W planes are
  // transposed whole (W pixels at a time, across row ends) instead of row by row through the
  // Ring, and the output can be one long row over the image (Plan); where that pays is
  // policy.h's.

  // An image of rows x cols pixels stored as `phases` sub-images by row (row r is row r / phases
  // of sub-image r % phases), each sub_rows rows of `pitch` >= cols pixels.
  struct Grid {
    int64_t rows, cols, phases, sub_rows, pitch;
    int64_t offset(int64_t r, int64_t c) const {  // in pixels
      return ((r % phases) * sub_rows + r / phases) * pitch + c;
    }
    int64_t pixels() const { return phases * sub_rows * pitch; }
  };

  // How a conv of geometry p runs on whole images. The input image has a sub-image per row
  // phase of the vertical stride, `pitch` a multiple of the horizontal stride sw. Output pixel
  // (oh, ow) reads tap (i, j) at sub-image row oh + i * dh / sh (sub-image i * dh % sh), column
  // sw * ow + j * dw; so if output rows are stored q = pitch / sw pixels apart, output pixel o =
  // oh * q + ow reads every tap at image offset sw * o + (a constant of the tap): the whole
  // output is one long row at stride sw, computing and dropping the q - out_w pixels between
  // rows. Used while that is at most a quarter of them; otherwise a call per output row.
  // (31x31 on 56x56 drops 30 of 86 columns: 1.9x slower as a long row. 3x3 on 7x7 drops 2 of
  // 9: 1.15x faster.)
  struct Plan {
    Grid in, out;          // input image; output (or gradient) image
    int64_t calls, width;  // row kernel calls; output pixels per call
    explicit Plan(const DepthwiseParams& p) {
      const int64_t rows = (p.out_h - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
      const int64_t cols = (p.out_w - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
      const int64_t q = (cols + p.stride_w - 1) / p.stride_w;
      const bool long_row = 4 * (q - p.out_w) <= q;
      in = {rows, cols, p.stride_h, (rows + p.stride_h - 1) / p.stride_h, q * p.stride_w};
      out = {p.out_h, p.out_w, 1, p.out_h, long_row ? q : p.out_w};
      calls = long_row ? 1 : p.out_h;
      width = long_row ? (p.out_h - 1) * q + p.out_w : p.out_w;
    }
    int64_t image_bytes() const { return in.pixels() * W * int64_t(sizeof(float)); }
  };

  // Float offsets of the blocked pixels of rows [y_lo, y_hi) of a plane w pixels wide placed in
  // image g, pixel (y, x) at row y * up_h + top, column x * up_w + left (top and left are
  // negative for an input gradient padded by more than the kernel's reach, or a band of a
  // plane); pixels that fall outside (the conv does not read them) and the padding to whole
  // vectors go to `sink`.
  static ScratchArray<int64_t> pixel_offsets(ScratchScope& s, int64_t y_lo, int64_t y_hi, int64_t w,
                                             int64_t up_h, int64_t up_w, int64_t top, int64_t left,
                                             const Grid& g, int64_t sink) {
    const ScratchArray<int64_t> at = s.filled(((y_hi - y_lo) * w + W - 1) / W * W, sink);
    for (int64_t y = y_lo; y < y_hi; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const int64_t r = y * up_h + top, c = x * up_w + left;
        if (r >= 0 && r < g.rows && c >= 0 && c < g.cols)
          at[(y - y_lo) * w + x] = g.offset(r, c) * W;
      }
    return at;
  }

  // W planes of n pixels -> blocked pixels at image + at[i]. Whole-vector loads: a last partial
  // vector is loaded overlapping the one before (stored twice, same values).
  static void planes_to_image(const float* const* planes, int64_t n, const int64_t* at,
                              float* image) {
    for (int64_t x0 = 0; x0 < n; x0 += W) {
      const int64_t x = n >= W ? std::min(x0, n - W) : 0;
      reg v[W];
      for (int64_t l = 0; l < W; ++l)
        v[l] = n >= W ? V::load(planes[l] + x) : V::load(planes[l], n);
      V::transpose(v);
      for (int64_t c = 0; c < W; ++c) V::store(image + at[x + c], v[c]);
    }
  }

  // Blocked pixels at image + at[i] -> W planes of n pixels (=, or += when accumulating). When
  // storing, a last partial vector is redone overlapping the one before (same values: partial
  // stores are slow); when accumulating it is stored partially (the overlap would add twice).
  static void image_to_planes(const float* image, const int64_t* at, int64_t n, float* const* dst,
                              bool accumulate) {
    const bool overlap = !accumulate && n >= W;
    for (int64_t x0 = 0; x0 < n; x0 += W) {
      const int64_t x = overlap ? std::min(x0, n - W) : x0, m = overlap ? W : std::min(W, n - x0);
      reg v[W];
      for (int64_t c = 0; c < W; ++c) v[c] = V::load(image + at[x + c]);
      V::transpose(v);
      if (accumulate)
        for (int64_t l = 0; l < W; ++l) v[l] = V::add(v[l], Tiles::load_n(dst[l] + x, m));
      for (int64_t l = 0; l < W; ++l) Tiles::store_n(dst[l] + x, v[l], m);
    }
  }

  // The zero-padded blocked image g of a group's W source planes (h x w, upsampled by up_h x
  // up_w, at pad_top / pad_left), and a sink pixel after it. Only the source rows that land in
  // the image are transposed (a band of rows of a plane, in the separable kernels, is a small
  // image of a large plane). Padding is zeroed once: every load writes the same pixels.
  struct Image {
    Grid g;
    int64_t first = 0, pixels = 0;  // the source pixels that land in the image
    ScratchArray<float> data;
    ScratchArray<int64_t> at;
    Image(ScratchScope& s, int64_t h, int64_t w, int64_t up_h, int64_t up_w, int64_t top,
          int64_t left, const Grid& g)
        : g(g), data(s.filled((g.pixels() + 1) * W, 0.f)) {
      int64_t y_lo, y_hi;
      valid_output_range(top, up_h, g.rows, h, &y_lo, &y_hi);
      first = y_lo * w, pixels = (y_hi - y_lo) * w;
      at = pixel_offsets(s, y_lo, y_hi, w, up_h, up_w, top, left, g, g.pixels() * W);
    }
    void load(const float* const* planes) {
      const float* rows[W];
      for (int64_t l = 0; l < W; ++l) rows[l] = planes[l] + first;
      planes_to_image(rows, pixels, at.data(), data.data());
    }
    const float* pixel(int64_t r, int64_t c) const { return data.data() + g.offset(r, c) * W; }
  };

  // Weights (channels, kH, kW) -> (block, kH, kW, lane), zero past `channels`; taps reversed
  // when `flip` (the input gradient's kernel). Channel c reads weight row c * every + first.
  static void pack_weights(const float* weight, int64_t channels, int64_t taps, float* w,
                           bool flip = false, int64_t first = 0, int64_t every = 1) {
    const int64_t blocks = (channels + W - 1) / W;
    std::fill(w, w + blocks * taps * W, 0.f);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t t = 0; t < taps; ++t)
        w[(c / W * taps + t) * W + c % W] =
            weight[(c * every + first) * taps + (flip ? taps - 1 - t : t)];
  }

  // The forward's packed weights (DepthwiseKernels::pack_forward), the same for both memory
  // formats: the weight (C*M, kH, kW) as pack_weights, then the bias padded to whole vectors
  // (zeros when there is none).
  static int64_t packed_forward_size(const DepthwiseParams& p) {
    return (p.out_channels() + W - 1) / W * W * (p.kernel_h * p.kernel_w + 1);
  }
  static int64_t packed_bias_offset(const DepthwiseParams& p) {
    return (p.out_channels() + W - 1) / W * W * p.kernel_h * p.kernel_w;
  }
  static const float* packed_bias(const DepthwiseParams& p, const float* packed) {
    return packed + packed_bias_offset(p);
  }
  static void pack_forward(const DepthwiseParams& p, bool /*nhwc*/, const float* weight,
                           const float* bias, float* packed) {
    const int64_t cout = p.out_channels();
    pack_weights(weight, cout, p.kernel_h * p.kernel_w, packed);
    float* b = packed + packed_bias_offset(p);
    std::fill(b, b + (cout + W - 1) / W * W, 0.f);
    if (bias) std::copy(bias, bias + cout, b);
  }

  // The input gradient's packed weights (DepthwiseKernels::pack_backward_input). NCHW: for each
  // multiplier index k, the flipped weights of output channels c * M + k as pack_weights packs
  // them (input_grad_weights(p, packed, k)). NHWC at multiplier 1 and stride 1, where the input
  // gradient is the forward on the flipped kernel: as pack_forward packs that kernel, with zero
  // bias. Other NHWC: tap-major with the M output channels of a channel in (k, c) order,
  // (kH, kW, M, C), so that channel c of each k is a contiguous vector lane.
  static bool nhwc_input_grad_is_forward(const DepthwiseParams& p) {
    return p.multiplier == 1 && p.stride_h == 1 && p.stride_w == 1;
  }
  static int64_t input_grad_pass_size(const DepthwiseParams& p) {  // NCHW, per k
    return (p.channels + W - 1) / W * W * p.kernel_h * p.kernel_w;
  }
  static int64_t packed_backward_input_size(const DepthwiseParams& p, bool nhwc) {
    if (!nhwc) return p.multiplier * input_grad_pass_size(p);
    return nhwc_input_grad_is_forward(p) ? packed_forward_size(p)
                                         : p.kernel_h * p.kernel_w * p.out_channels();
  }
  static const float* input_grad_weights(const DepthwiseParams& p, const float* packed, int64_t k) {
    return packed + k * input_grad_pass_size(p);
  }
  static void pack_backward_input(const DepthwiseParams& p, bool nhwc, const float* weight,
                                  float* packed) {
    const int64_t C = p.channels, M = p.multiplier, taps = p.kernel_h * p.kernel_w;
    if (!nhwc) {
      for (int64_t k = 0; k < M; ++k)
        pack_weights(weight, C, taps, packed + k * input_grad_pass_size(p), true, k, M);
    } else if (nhwc_input_grad_is_forward(p)) {
      pack_weights(weight, C, taps, packed, true);
      std::fill(packed + packed_bias_offset(p), packed + packed_forward_size(p), 0.f);
    } else {
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t k = 0; k < M; ++k)
          for (int64_t c = 0; c < C; ++c)
            packed[(t * M + k) * C + c] = weight[(c * M + k) * taps + t];
    }
  }
};

}  // namespace cpu
}  // namespace sepconv
