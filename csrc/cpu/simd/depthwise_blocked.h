// Depthwise kernels on channel-blocked, zero-padded rows, W channels of one image at a time.
// NCHW (forward, input gradient, weight gradient): each row of W source planes is transposed in
// registers (V::transpose, W x W floats at a time) into a row in the layout of the NHWC kernels
// (one block: pixel-major, lane l = plane l), the row kernels of depthwise_simd.h do the
// arithmetic, and output rows are transposed back into the planes. Kernels vectorised along W
// instead spent more on loop, border and partial-vector overhead than on FMAs on narrow planes
// (7x7 to 28x28) and reloaded every input row once per kernel row on large kernels; here every
// FMA does W channels of work whatever the plane's width, strided taps are plain loads, and the
// transposes cost about one shuffle per float moved. Measured on Zen 3 (AVX2, 1 thread, N=8)
// against those row kernels: 1.3-3x faster on every benchmark shape and direction (forward
// 31x31: 129 -> 73 ms). NHWC (weight gradient of kernels wider than 7): the same rows, copied
// instead of transposed, so that every output column is interior.
//
// Included at the end of depthwise_simd.h; part of the same per-ISA translation unit.
#pragma once
#include <algorithm>
#include <numeric>
#include <optional>
#include <vector>

namespace sepconv {
namespace cpu {

template <class V>
struct DepthwiseBlocked {
  using Simd = DepthwiseSimd<V>;
  using reg = typename V::reg;
  static constexpr int64_t W = V::width;

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
        for (int64_t l = 0; l < W; ++l) v[l] = V::add(v[l], Simd::load_n(dst[l] + x0, m));
      if (m == W || (!accumulate && x0 + W <= writable))
        for (int64_t l = 0; l < W; ++l) V::store(dst[l] + x0, v[l]);
      else
        for (int64_t l = 0; l < W; ++l) Simd::store_n(dst[l] + x0, v[l], m);
    }
  }

  // Planes are taken in groups within one vector-aligned block of channels (c / W) of one
  // image. A unit range that starts or ends inside a block, or a last block past the channel
  // count, leaves lanes empty: they read a plane of zeros and write a scratch plane, so the
  // lane loops have no branches.
  struct Groups {
    int64_t channels, begin, end;
    std::vector<float> zeros, scratch;
    Groups(int64_t channels, int64_t begin, int64_t end, int64_t src_plane, int64_t dst_plane)
        : channels(channels), begin(begin), end(end) {
      if (begin % channels % W || end % channels % W || channels % W)
        zeros.assign(src_plane, 0.f), scratch.resize(dst_plane);
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
        for (int64_t c = 0; c < n; ++c) V::store(dst + c * stride, Simd::load_n(s + c * C, m));
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
    std::vector<float> rows, zero_row;
    std::vector<int64_t> held;
    // Ring slot (-1 for the zero rows) and source row of each upsampled row: the divisions
    // cost ~40 cycles each, as much as the arithmetic of a 7-pixel row.
    std::vector<int64_t> slot, source_row;
    Source src;
    Ring(int64_t span, int64_t cols, int64_t pad_left, int64_t up_h, int64_t up_w, int64_t h,
         int64_t w)
        : span(span),
          cols(cols),
          row_size(cols * W),
          pad_left(pad_left),
          up_h(up_h),
          up_w(up_w),
          h(h),
          w(w),
          rows(span * cols * W, 0.f),
          held(span),
          slot((h - 1) * up_h + 1),
          source_row(slot.size()) {
      valid_output_range(pad_left, up_w, cols, w, &x_lo, &x_hi);  // source columns inside
      if (up_h > 1) zero_row.assign(row_size, 0.f);
      for (int64_t r = 0; r < static_cast<int64_t>(slot.size()); ++r)
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
    // `groups`: groups of W planes that one image serves in a call.
    bool worth(int64_t groups) const {
      return groups >= depthwise_image_min_groups() &&
             in.pixels() * W * int64_t(sizeof(float)) <= kDepthwiseImageBytes;
    }
  };

  // Float offsets of the blocked pixels of rows [y_lo, y_hi) of a plane w pixels wide placed in
  // image g, pixel (y, x) at row y * up_h + top, column x * up_w + left (top and left are
  // negative for an input gradient padded by more than the kernel's reach, or a band of a
  // plane); pixels that fall outside (the conv does not read them) and the padding to whole
  // vectors go to `sink`.
  static std::vector<int64_t> pixel_offsets(int64_t y_lo, int64_t y_hi, int64_t w, int64_t up_h,
                                            int64_t up_w, int64_t top, int64_t left, const Grid& g,
                                            int64_t sink) {
    std::vector<int64_t> at(((y_hi - y_lo) * w + W - 1) / W * W, sink);
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
        for (int64_t l = 0; l < W; ++l) v[l] = V::add(v[l], Simd::load_n(dst[l] + x, m));
      for (int64_t l = 0; l < W; ++l) Simd::store_n(dst[l] + x, v[l], m);
    }
  }

  // The zero-padded blocked image g of a group's W source planes (h x w, upsampled by up_h x
  // up_w, at pad_top / pad_left), and a sink pixel after it. Only the source rows that land in
  // the image are transposed (a band of rows of a plane, in the separable kernels, is a small
  // image of a large plane). Padding is zeroed once: every load writes the same pixels.
  struct Image {
    Grid g;
    int64_t first = 0, pixels = 0;  // the source pixels that land in the image
    std::vector<float> data;
    std::vector<int64_t> at;
    Image(int64_t h, int64_t w, int64_t up_h, int64_t up_w, int64_t top, int64_t left,
          const Grid& g)
        : g(g), data((g.pixels() + 1) * W, 0.f) {
      int64_t y_lo, y_hi;
      valid_output_range(top, up_h, g.rows, h, &y_lo, &y_hi);
      first = y_lo * w, pixels = (y_hi - y_lo) * w;
      at = pixel_offsets(y_lo, y_hi, w, up_h, up_w, top, left, g, g.pixels() * W);
    }
    void load(const float* const* planes) {
      const float* rows[W];
      for (int64_t l = 0; l < W; ++l) rows[l] = planes[l] + first;
      planes_to_image(rows, pixels, at.data(), data.data());
    }
    const float* pixel(int64_t r, int64_t c) const { return data.data() + g.offset(r, c) * W; }
  };

  // Weights (channels, kH, kW) -> (block, kH, kW, lane), zero past `channels`; taps reversed
  // when `flip` (the input gradient's kernel).
  static std::vector<float> pack_weights(const float* weight, int64_t channels, int64_t taps,
                                         bool flip = false, int64_t first = 0, int64_t every = 1) {
    const int64_t blocks = (channels + W - 1) / W;
    std::vector<float> w(blocks * taps * W, 0.f);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t t = 0; t < taps; ++t)
        w[(c / W * taps + t) * W + c % W] =
            weight[(c * every + first) * taps + (flip ? taps - 1 - t : t)];
    return w;
  }

  // The correlation of every output plane (units n * channels + c, planes of q.out_h x q.out_w)
  // with its weights: out (=|+=) bias + sum_taps w * src. src(n, c) is the source plane (h x w,
  // upsampled by up_h x up_w: the geometry q is that of the upsampled source), w_packed and
  // b_packed (nullptr: no bias) as pack_weights.
  template <class PlaneOf>
  static void correlate(const DepthwiseParams& q, int64_t up_h, int64_t up_w, int64_t h, int64_t w,
                        int64_t channels, const PlaneOf& src, const float* w_packed,
                        const float* b_packed, float* output, bool accumulate, int64_t begin,
                        int64_t end) {
    const int64_t kh = q.kernel_h, kw = q.kernel_w, taps = kh * kw;
    const int64_t out_plane = q.out_h * q.out_w;
    const Plan plan(q);
    Groups groups(channels, begin, end, h * w, out_plane);
    const std::vector<float> no_bias(b_packed ? 0 : W, 0.f);
    const typename Simd::NhwcRowFn row_fn = Simd::nhwc_row_fn(q);
    std::vector<const float*> kernel_rows(kh);
    typename Simd::NhwcRow r;
    r.tail = nullptr, r.blocks = 1, r.cout = W, r.out_w = q.out_w, r.kw = kw;
    r.sw = q.stride_w, r.dw = q.dilation_w, r.ring_plane = 0, r.weight_plane = taps * W;
    // Source and output planes of a group's lanes; the group's packed weights and bias.
    const auto group = [&](int64_t n, int64_t blk, int64_t lo, int64_t hi, const float** planes,
                           float** dst) {
      for (int64_t l = 0; l < W; ++l) {
        const bool live = l >= lo && l < hi;
        planes[l] = live ? src(n, blk * W + l) : groups.zeros.data();
        dst[l] = live ? output + (n * channels + blk * W + l) * out_plane : groups.scratch.data();
      }
      r.bias = b_packed ? b_packed + blk * W : no_bias.data();
      return w_packed + blk * taps * W;
    };

    if (plan.worth((end - begin) / W)) {
      Image image(h, w, up_h, up_w, q.pad_top, q.pad_left, plan.in);
      std::vector<float> out((plan.out.pixels() + 1) * W);
      const std::vector<int64_t> out_at =
          pixel_offsets(0, q.out_h, q.out_w, 1, 1, 0, 0, plan.out, plan.out.pixels() * W);
      r.out_w = plan.width;
      groups.for_each([&](int64_t n, int64_t blk, int64_t lo, int64_t hi) {
        const float* planes[W];
        float* dst[W];
        const float* weights = group(n, blk, lo, hi, planes, dst);
        image.load(planes);
        for (int64_t call = 0; call < plan.calls; ++call) {
          for (int64_t i = 0; i < kh; ++i)
            kernel_rows[i] = image.pixel(call * q.stride_h + i * q.dilation_h, 0);
          r.y = out.data() + plan.out.offset(call, 0) * W;
          Simd::nhwc_passes(r, row_fn, kernel_rows.data(), 0, kh, weights);
        }
        image_to_planes(out.data(), out_at.data(), out_plane, dst, accumulate);
      });
      return;
    }

    Ring ring((kh - 1) * q.dilation_h + 1, plan.in.cols, q.pad_left, up_h, up_w, h, w);
    r.ring_plane = ring.row_size;
    // Output row of the group: pixel-major, W lanes, a vector's columns of slack for the loads
    // of block_to_rows.
    std::vector<float> out_row((q.out_w + W) * W);
    r.y = out_row.data();
    groups.for_each([&](int64_t n, int64_t blk, int64_t lo, int64_t hi) {
      const float* planes[W];
      float* dst[W];
      const float* weights = group(n, blk, lo, hi, planes, dst);
      ring.reset(Source::nchw(planes, h, w));
      for (int64_t oh = 0; oh < q.out_h; ++oh) {
        const int64_t ih0 = oh * q.stride_h - q.pad_top;
        int64_t i_lo, i_hi;  // kernel rows inside the (upsampled) source
        valid_output_range(ih0, q.dilation_h, q.in_h, kh, &i_lo, &i_hi);
        for (int64_t i = i_lo; i < i_hi; ++i) kernel_rows[i] = ring.fetch(ih0 + i * q.dilation_h);
        Simd::nhwc_passes(r, row_fn, kernel_rows.data(), i_lo, i_hi, weights);
        float* row_dst[W];
        for (int64_t l = 0; l < W; ++l) row_dst[l] = dst[l] + oh * q.out_w;
        block_to_rows(out_row.data(), q.out_w, row_dst, out_plane - oh * q.out_w, accumulate);
      }
    });
  }

  // Units: output planes n * C*M + oc (DepthwiseKernels::forward_nchw).
  static void forward_nchw(const DepthwiseParams& p, const float* input, const float* weight,
                           const float* bias, float* output, int64_t begin, int64_t end) {
    const int64_t cout = p.out_channels(), in_plane = p.in_h * p.in_w;
    const std::vector<float> w = pack_weights(weight, cout, p.kernel_h * p.kernel_w);
    std::vector<float> b(bias ? w.size() / (p.kernel_h * p.kernel_w) : 0, 0.f);
    if (bias) std::copy(bias, bias + cout, b.begin());
    const auto src = [&](int64_t n, int64_t oc) {
      return input + (n * p.channels + oc / p.multiplier) * in_plane;
    };
    correlate(p, 1, 1, p.in_h, p.in_w, cout, src, w.data(), bias ? b.data() : nullptr, output,
              false, begin, end);
  }

  // ---- Strided input gradient by phases --------------------------------------------------
  // Input pixel s * y + a (phase a of an axis with stride s, dilation d, padding pad) gets the
  // taps i with i * d = a + pad (mod s), from grad_output pixel y + e_i, e_i = (a + pad - i * d)
  // / s. Taken by decreasing i, the offsets grow by d / gcd(d, s): each phase is a stride-1
  // correlation of grad_output with a sub-kernel. (The upsampled correlation runs s_h * s_w
  // times the FMAs, most of them on inserted zeros.)
  struct PhaseAxis {
    std::vector<int64_t> taps;              // kernel indices, by increasing offset
    int64_t first = 0, step = 1, size = 0;  // offset of taps[0]; offset step; input pixels
  };
  static std::vector<PhaseAxis> phase_axes(int64_t in, int64_t out, int64_t k, int64_t s, int64_t d,
                                           int64_t pad, int64_t* lo, int64_t* hi) {
    std::vector<PhaseAxis> axes(s);
    *lo = *hi = 0;  // grad_output padding that every phase's reads need
    for (int64_t a = 0; a < s; ++a) {
      PhaseAxis& ax = axes[a];
      ax.size = a < in ? (in - a + s - 1) / s : 0;
      ax.step = d / std::gcd(d, s);
      for (int64_t i = k - 1; i >= 0; --i) {
        const int64_t t = a + pad - i * d;
        if ((t % s + s) % s != 0) continue;
        if (ax.taps.empty()) ax.first = t / s;
        ax.taps.push_back(i);
      }
      if (ax.taps.empty() || ax.size == 0) continue;
      const int64_t last = ax.first + (static_cast<int64_t>(ax.taps.size()) - 1) * ax.step;
      *lo = std::max(*lo, -ax.first);
      *hi = std::max(*hi, ax.size - 1 + last - (out - 1));
    }
    return axes;
  }

  // Units: input planes n * C + c. Each group's grad_output planes are one zero-padded image;
  // each phase (a, b) runs its sub-kernel over it (as one long row while at most a quarter of
  // the pixels are dropped, as Plan) into its own region of an output buffer, and the
  // transpose back reads every input pixel from its phase's region (phases without taps from a
  // zero pixel). A multiplier M > 1 adds the M output channels of a channel in M passes. Returns
  // false, doing nothing, when the image does not fit kDepthwiseImageBytes or serves too few
  // groups.
  static bool backward_input_phases(const DepthwiseParams& p, const float* grad_output,
                                    const float* weight, float* grad_input, int64_t begin,
                                    int64_t end) {
    int64_t top, bottom, left, right;
    const std::vector<PhaseAxis> ph =
        phase_axes(p.in_h, p.out_h, p.kernel_h, p.stride_h, p.dilation_h, p.pad_top, &top, &bottom);
    const std::vector<PhaseAxis> pw = phase_axes(p.in_w, p.out_w, p.kernel_w, p.stride_w,
                                                 p.dilation_w, p.pad_left, &left, &right);
    const int64_t rows = top + p.out_h + bottom, cols = left + p.out_w + right;
    const Grid g{rows, cols, 1, rows, cols};
    if ((end - begin) / W < depthwise_image_min_groups() ||
        g.pixels() * W * int64_t(sizeof(float)) > kDepthwiseImageBytes)
      return false;

    const int64_t M = p.multiplier, C = p.channels, cout = p.out_channels();
    const int64_t taps = p.kernel_h * p.kernel_w;
    const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
    struct Phase {
      const PhaseAxis *h, *w;
      bool long_row;
      int64_t region, pitch;       // output buffer: first pixel, pixels between rows
      std::vector<float> weights;  // (block, taps of the phase, lane), per pass k
      typename Simd::NhwcRowFn row_fn;
    };
    std::vector<Phase> phases;
    int64_t buffer = 0;  // pixels
    std::vector<int64_t> region(p.stride_h * p.stride_w), pitch(region.size());
    for (int64_t a = 0; a < p.stride_h; ++a)
      for (int64_t b = 0; b < p.stride_w; ++b) {
        const PhaseAxis &ah = ph[a], &aw = pw[b];
        // A phase with taps reads aw.size + (taps - 1) * step columns: cols >= aw.size.
        const bool long_row = 4 * (cols - aw.size) <= cols;
        if (ah.taps.empty() || aw.taps.empty() || ah.size == 0 || aw.size == 0) {
          region[a * p.stride_w + b] = -1;  // no taps: its pixels read the zero sink
          continue;
        }
        region[a * p.stride_w + b] = buffer, pitch[a * p.stride_w + b] = long_row ? cols : aw.size;
        buffer += ah.size * (long_row ? cols : aw.size);
        DepthwiseParams sub = p;
        sub.kernel_w = static_cast<int64_t>(aw.taps.size());
        sub.stride_w = 1, sub.dilation_w = aw.step;
        phases.push_back({&ah,
                          &aw,
                          long_row,
                          region[a * p.stride_w + b],
                          pitch[a * p.stride_w + b],
                          {},
                          Simd::nhwc_row_fn(sub)});
      }
    std::vector<float> out((buffer + 1) * W, 0.f);  // the last pixel: the zero sink
    std::vector<int64_t> out_at((in_plane + W - 1) / W * W, buffer * W);
    for (int64_t y = 0; y < p.in_h; ++y)
      for (int64_t x = 0; x < p.in_w; ++x) {
        const int64_t k = y % p.stride_h * p.stride_w + x % p.stride_w;
        if (region[k] >= 0)
          out_at[y * p.in_w + x] = (region[k] + y / p.stride_h * pitch[k] + x / p.stride_w) * W;
      }

    Image image(p.out_h, p.out_w, 1, 1, top, left, g);
    Groups groups(C, begin, end, out_plane, in_plane);
    const std::vector<float> no_bias(W, 0.f);
    std::vector<const float*> kernel_rows(p.kernel_h);
    typename Simd::NhwcRow r;
    r.tail = nullptr, r.blocks = 1, r.cout = W, r.sw = 1, r.ring_plane = 0, r.bias = no_bias.data();
    for (int64_t k = 0; k < M; ++k) {
      const std::vector<float> all = pack_weights(weight, C, taps, false, k, M);
      const int64_t blocks = (C + W - 1) / W;
      for (Phase& f : phases) {
        const int64_t n_taps = static_cast<int64_t>(f.h->taps.size() * f.w->taps.size());
        f.weights.assign(blocks * n_taps * W, 0.f);
        for (int64_t blk = 0; blk < blocks; ++blk) {
          int64_t t = 0;
          for (int64_t i : f.h->taps)
            for (int64_t j : f.w->taps)
              std::copy_n(all.begin() + (blk * taps + i * p.kernel_w + j) * W, W,
                          f.weights.begin() + (blk * n_taps + t++) * W);
        }
      }
      groups.for_each([&](int64_t n, int64_t blk, int64_t lo, int64_t hi) {
        const float* planes[W];
        float* dst[W];
        for (int64_t l = 0; l < W; ++l) {
          const bool live = l >= lo && l < hi;
          planes[l] = live ? grad_output + (n * cout + (blk * W + l) * M + k) * out_plane
                           : groups.zeros.data();
          dst[l] = live ? grad_input + (n * C + blk * W + l) * in_plane : groups.scratch.data();
        }
        image.load(planes);
        for (const Phase& f : phases) {
          const int64_t nh = static_cast<int64_t>(f.h->taps.size());
          r.kw = static_cast<int64_t>(f.w->taps.size()), r.dw = f.w->step;
          r.weight_plane = nh * r.kw * W;
          r.out_w = f.long_row ? (f.h->size - 1) * cols + f.w->size : f.w->size;
          const int64_t calls = f.long_row ? 1 : f.h->size;
          for (int64_t call = 0; call < calls; ++call) {
            for (int64_t t = 0; t < nh; ++t)
              kernel_rows[t] =
                  image.pixel(top + f.h->first + t * f.h->step + call, left + f.w->first);
            r.y = out.data() + (f.region + call * f.pitch) * W;
            Simd::nhwc_passes(r, f.row_fn, kernel_rows.data(), 0, nh,
                              f.weights.data() + blk * r.weight_plane);
          }
        }
        image_to_planes(out.data(), out_at.data(), in_plane, dst, k > 0);
      });
    }
    return true;
  }

  // Units: input planes n * C + c (DepthwiseKernels::backward_input_nchw). Strided: by phases
  // when grad_output's planes fit an image. Otherwise the input gradient as a correlation of
  // grad_output, upsampled by the stride, with the flipped kernel (see
  // DepthwiseSimd::transposed); a multiplier M > 1 adds the M output channels of a channel in
  // M passes.
  static void backward_input_nchw(const DepthwiseParams& p, const float* grad_output,
                                  const float* weight, float* grad_input, int64_t begin,
                                  int64_t end) {
    if ((p.stride_h > 1 || p.stride_w > 1) &&
        backward_input_phases(p, grad_output, weight, grad_input, begin, end))
      return;
    const DepthwiseParams q = Simd::transposed(p);
    const int64_t M = p.multiplier, cout = p.out_channels(), out_plane = p.out_h * p.out_w;
    for (int64_t k = 0; k < M; ++k) {
      const std::vector<float> w =
          pack_weights(weight, p.channels, p.kernel_h * p.kernel_w, true, k, M);
      const auto src = [&](int64_t n, int64_t c) {
        return grad_output + (n * cout + c * M + k) * out_plane;
      };
      correlate(q, p.stride_h, p.stride_w, p.out_h, p.out_w, p.channels, src, w.data(), nullptr,
                grad_input, k > 0, begin, end);
    }
  }

  // acc (taps x W floats) += the gradient x input sums of kernel rows [i_lo, i_hi) over n
  // output pixels: gy their blocked gradients, x_row(i) the blocked input pixel of tap (i, 0)
  // of the first.
  template <class RowOf>
  static void sum_taps(const DepthwiseParams& p, const RowOf& x_row, int64_t i_lo, int64_t i_hi,
                       const float* gy, int64_t n, float* acc) {
    const int64_t kw = p.kernel_w, rows_per_call = Simd::weight_rows_per_call(kw);
    for (int64_t i0 = i_lo; i0 < i_hi; i0 += rows_per_call) {
      const int64_t rows = std::min(rows_per_call, i_hi - i0);
      for (int64_t j0 = 0; j0 < kw; j0 += Simd::kWeightChunk) {
        const int64_t width = std::min(Simd::kWeightChunk, kw - j0);
        const float* chunk_rows[3];  // rows_per_call <= 3
        for (int64_t r = 0; r < rows; ++r) chunk_rows[r] = x_row(i0 + r) + j0 * p.dilation_w * W;
        Simd::weight_row_fn(p.stride_w, rows, width)(chunk_rows, gy, n, W, p.stride_w, p.dilation_w,
                                                     acc + (i0 * kw + j0) * W, kw * W, W);
      }
    }
  }

  // The weight gradient in either layout. Units: output channels (NCHW) or input channels
  // (NHWC: a pass per k < M over grad_output's channels c * M + k), taken W at a time from
  // `begin`. Per image and group, the input rows go
  // through a zero-padded ring as in the forward (every output column is interior) and each
  // grad_output row is blocked too, or, for NCHW planes that fit, both become whole Images laid
  // out by a Plan (as a long row, the gradient's rows padded with zeros to the output pitch);
  // weight_row sums gradient x input of every tap over a row in
  // registers, into per-image float partial sums that are folded into double in image order.
  // Every lane sums in the same order whatever its group: bitwise identical results for any
  // split of the units. write(unit, k, tap, value) stores a result.
  template <class Write>
  static void weight_gradient(const DepthwiseParams& p, bool nhwc, const float* grad_output,
                              const float* input, int64_t begin, int64_t end, const Write& write) {
    const int64_t cout = p.out_channels(), kh = p.kernel_h, kw = p.kernel_w, taps = kh * kw;
    const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
    const Plan plan(p);
    // Decided on the whole problem, not on [begin, end): the image path sums a plane as one long
    // row, the Ring row by row, so the choice must not depend on how threads split the units.
    const bool whole = !nhwc && plan.worth((cout + W - 1) / W * p.batch);
    std::optional<Image> x_image, gy_image;
    std::optional<Ring> ring;
    if (whole) {
      x_image.emplace(p.in_h, p.in_w, 1, 1, p.pad_top, p.pad_left, plan.in);
      gy_image.emplace(p.out_h, p.out_w, 1, 1, 0, 0, plan.out);
    } else {
      ring.emplace((kh - 1) * p.dilation_h + 1, plan.in.cols, p.pad_left, 1, 1, p.in_h, p.in_w);
    }
    // NCHW lanes past the last unit read zeros.
    const std::vector<float> zeros(nhwc ? 0 : std::max(in_plane, out_plane), 0.f);
    std::vector<float> gy_row(p.out_w * W), acc(taps * W);
    std::vector<double> total(taps * W);
    std::vector<const float*> xrows(kh);
    const int64_t passes = nhwc ? p.multiplier : 1;
    for (int64_t c0 = begin; c0 < end; c0 += W)
      for (int64_t k = 0; k < passes; ++k) {
        const int64_t m = std::min(W, end - c0);
        std::fill(total.begin(), total.end(), 0.0);
        for (int64_t n = 0; n < p.batch; ++n) {
          std::fill(acc.begin(), acc.end(), 0.f);
          const float *xp[W], *gp[W];
          for (int64_t l = 0; l < W && !nhwc; ++l) {
            const int64_t oc = c0 + l;
            xp[l] = l < m ? input + (n * p.channels + oc / p.multiplier) * in_plane : zeros.data();
            gp[l] = l < m ? grad_output + (n * cout + oc) * out_plane : zeros.data();
          }
          if (whole) {
            x_image->load(xp);
            gy_image->load(gp);
            for (int64_t call = 0; call < plan.calls; ++call)
              sum_taps(
                  p,
                  [&](int64_t i) {
                    return x_image->pixel(call * p.stride_h + i * p.dilation_h, 0);
                  },
                  0, kh, gy_image->pixel(call, 0), plan.width, acc.data());
          } else {
            const Source x = nhwc ? Source::nhwc(input + n * in_plane * p.channels + c0, p.in_h,
                                                 p.in_w, p.channels, m)
                                  : Source::nchw(xp, p.in_h, p.in_w);
            // NHWC: grad_output channels (c0 + l) * M + k, for lanes l.
            const float* gy_first = grad_output + n * out_plane * cout + c0 * passes + k;
            const Source gy = nhwc ? Source::nhwc(gy_first, p.out_h, p.out_w, cout, m, passes)
                                   : Source::nchw(gp, p.out_h, p.out_w);
            ring->reset(x);
            for (int64_t oh = 0; oh < p.out_h; ++oh) {
              gy.row(oh, 0, p.out_w, gy_row.data(), W);
              const int64_t ih0 = oh * p.stride_h - p.pad_top;
              int64_t i_lo, i_hi;  // kernel rows inside the image
              valid_output_range(ih0, p.dilation_h, p.in_h, kh, &i_lo, &i_hi);
              for (int64_t i = i_lo; i < i_hi; ++i) xrows[i] = ring->fetch(ih0 + i * p.dilation_h);
              sum_taps(
                  p, [&](int64_t i) { return xrows[i]; }, i_lo, i_hi, gy_row.data(), p.out_w,
                  acc.data());
            }
          }
          for (int64_t t = 0; t < taps * W; ++t) total[t] += acc[t];
        }
        for (int64_t l = 0; l < m; ++l)
          for (int64_t t = 0; t < taps; ++t)
            write(c0 + l, k, t, static_cast<float>(total[t * W + l]));
      }
  }

  // Units: output channels oc (DepthwiseKernels::backward_weight_nchw).
  static void backward_weight_nchw(const DepthwiseParams& p, const float* grad_output,
                                   const float* input, float* grad_weight, int64_t begin,
                                   int64_t end) {
    const int64_t taps = p.kernel_h * p.kernel_w;
    weight_gradient(
        p, false, grad_output, input, begin, end,
        [&](int64_t oc, int64_t, int64_t t, float v) { grad_weight[oc * taps + t] = v; });
  }

  // Units: channels c (DepthwiseKernels::backward_weight_nhwc).
  static void backward_weight_nhwc(const DepthwiseParams& p, const float* grad_output,
                                   const float* input, float* grad_weight_packed, int64_t begin,
                                   int64_t end) {
    const int64_t cout = p.out_channels(), M = p.multiplier;
    weight_gradient(p, true, grad_output, input, begin, end,
                    [&](int64_t c, int64_t k, int64_t t, float v) {
                      grad_weight_packed[t * cout + c * M + k] = v;
                    });
  }
};

}  // namespace cpu
}  // namespace sepconv
