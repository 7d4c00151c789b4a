// Depthwise drivers on channel-blocked, zero-padded rows, W channels of one image at a time.
// NCHW (forward, input gradient, weight gradient): each row of W source planes is transposed in
// registers (V::transpose, W x W floats at a time) into a row in the layout of the NHWC kernels
// (one block: pixel-major, lane l = plane l), the row tiles of depthwise_tiles.h do the
// arithmetic, and output rows are transposed back into the planes. Kernels vectorised along W
// instead spent more on loop, border and partial-vector overhead than on FMAs on narrow planes
// (7x7 to 28x28) and reloaded every input row once per kernel row on large kernels; here every
// FMA does W channels of work whatever the plane's width, strided taps are plain loads, and the
// transposes cost about one shuffle per float moved. Measured on Zen 3 (AVX2, 1 thread, N=8)
// against those row kernels: 1.3-3x faster on every benchmark shape and direction (forward
// 31x31: 129 -> 73 ms). NHWC (weight gradient of kernels wider than 7): the same rows, copied
// instead of transposed, so that every output column is interior.
//
// Each driver sets up its staging (depthwise_staging.h: rings, images, packed weights), chooses
// between them with policy.h, and runs the register tiles over it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <optional>
#include <vector>

#include "../policy.h"
#include "activation_simd.h"
#include "depthwise_staging.h"
#include "depthwise_tiles.h"

namespace sepconv {
namespace cpu {

template <class V>
struct DepthwiseBlocked {
  using Tiles = DepthwiseTiles<V>;
  using Staging = DepthwiseStaging<V>;
  using Groups = typename Staging::Groups;
  using Source = typename Staging::Source;
  using Ring = typename Staging::Ring;
  using Grid = typename Staging::Grid;
  using Plan = typename Staging::Plan;
  using Image = typename Staging::Image;
  using reg = typename V::reg;
  static constexpr int64_t W = V::width;

  // The correlation of every output plane (units n * channels + c, planes of q.out_h x q.out_w)
  // with its weights: out (=|+=) bias + sum_taps w * src. src(n, c) is the source plane (h x w,
  // upsampled by up_h x up_w: the geometry q is that of the upsampled source), w_packed and
  // b_packed (nullptr: no bias) as pack_weights. q.activation is applied to the blocked output
  // before it is transposed back (the forward; it must be none with `accumulate`).
  template <class PlaneOf>
  static void correlate(const DepthwiseParams& q, int64_t up_h, int64_t up_w, int64_t h, int64_t w,
                        int64_t channels, const PlaneOf& src, const float* w_packed,
                        const float* b_packed, float* output, bool accumulate, int64_t begin,
                        int64_t end) {
    const int64_t kh = q.kernel_h, kw = q.kernel_w, taps = kh * kw;
    const int64_t out_plane = q.out_h * q.out_w;
    const Plan plan(q);
    ScratchScope scratch;
    Groups groups(scratch, channels, begin, end, h * w, out_plane);
    const ScratchArray<float> no_bias = scratch.filled(b_packed ? 0 : W, 0.f);
    const typename Tiles::NhwcRowFn row_fn = Tiles::nhwc_row_fn(q);
    const ScratchArray<const float*> kernel_rows = scratch.filled<const float*>(kh, nullptr);
    typename Tiles::NhwcRow r;
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

    if (depthwise_whole_images(plan.image_bytes(), (end - begin) / W)) {
      Image image(scratch, h, w, up_h, up_w, q.pad_top, q.pad_left, plan.in);
      const ScratchArray<float> out = scratch.filled((plan.out.pixels() + 1) * W, 0.f);
      const ScratchArray<int64_t> out_at = Staging::pixel_offsets(
          scratch, 0, q.out_h, q.out_w, 1, 1, 0, 0, plan.out, plan.out.pixels() * W);
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
          Tiles::nhwc_passes(r, row_fn, kernel_rows.data(), 0, kh, weights);
        }
        ActivationSimd<V>::apply_span(out.data(), plan.out.pixels() * W, q.activation);
        Staging::image_to_planes(out.data(), out_at.data(), out_plane, dst, accumulate);
      });
      return;
    }

    Ring ring(scratch, (kh - 1) * q.dilation_h + 1, plan.in.cols, q.pad_left, up_h, up_w, h, w);
    r.ring_plane = ring.row_size;
    // Output row of the group: pixel-major, W lanes, a vector's columns of slack for the loads
    // of block_to_rows.
    const ScratchArray<float> out_row = scratch.filled((q.out_w + W) * W, 0.f);
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
        Tiles::nhwc_passes(r, row_fn, kernel_rows.data(), i_lo, i_hi, weights);
        ActivationSimd<V>::apply_span(out_row.data(), q.out_w * W, q.activation);
        float* row_dst[W];
        for (int64_t l = 0; l < W; ++l) row_dst[l] = dst[l] + oh * q.out_w;
        Staging::block_to_rows(out_row.data(), q.out_w, row_dst, out_plane - oh * q.out_w,
                               accumulate);
      }
    });
  }

  // Units: output planes n * C*M + oc (DepthwiseKernels::forward_nchw); `packed` as
  // Staging::pack_forward.
  static void forward_nchw(const DepthwiseParams& p, const float* input, const float* packed,
                           float* output, int64_t begin, int64_t end) {
    const int64_t cout = p.out_channels(), in_plane = p.in_h * p.in_w;
    const auto src = [&](int64_t n, int64_t oc) {
      return input + (n * p.channels + oc / p.multiplier) * in_plane;
    };
    correlate(p, 1, 1, p.in_h, p.in_w, cout, src, packed, Staging::packed_bias(p, packed), output,
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
  // zero pixel). A multiplier M > 1 adds the M output channels of a channel in M passes. A
  // phase's taps depend on the padding, which differs between the fused separable backward's
  // bands, so they are picked here from the call's packed (flipped) weights. Returns false,
  // doing nothing, when the image does not fit kDepthwiseImageBytes or serves too few groups.
  static bool backward_input_phases(const DepthwiseParams& p, const float* grad_output,
                                    const float* packed, float* grad_input, int64_t begin,
                                    int64_t end) {
    int64_t top, bottom, left, right;
    const std::vector<PhaseAxis> ph =
        phase_axes(p.in_h, p.out_h, p.kernel_h, p.stride_h, p.dilation_h, p.pad_top, &top, &bottom);
    const std::vector<PhaseAxis> pw = phase_axes(p.in_w, p.out_w, p.kernel_w, p.stride_w,
                                                 p.dilation_w, p.pad_left, &left, &right);
    const int64_t rows = top + p.out_h + bottom, cols = left + p.out_w + right;
    const Grid g{rows, cols, 1, rows, cols};
    if (!depthwise_whole_images(g.pixels() * W * int64_t(sizeof(float)), (end - begin) / W))
      return false;

    const int64_t M = p.multiplier, C = p.channels, cout = p.out_channels();
    const int64_t taps = p.kernel_h * p.kernel_w, blocks = (C + W - 1) / W;
    const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
    ScratchScope scratch;
    struct Phase {
      const PhaseAxis *h, *w;
      bool long_row;
      int64_t region, pitch;        // output buffer: first pixel, pixels between rows
      ScratchArray<float> weights;  // (block, taps of the phase, lane), per pass k
      typename Tiles::NhwcRowFn row_fn;
    };
    std::vector<Phase> phases;  // at most stride_h * stride_w
    int64_t buffer = 0;         // pixels
    const ScratchArray<int64_t> region = scratch.filled(p.stride_h * p.stride_w, int64_t{0});
    const ScratchArray<int64_t> pitch = scratch.filled(region.size(), int64_t{0});
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
        const int64_t n_taps = static_cast<int64_t>(ah.taps.size() * aw.taps.size());
        phases.push_back({&ah, &aw, long_row, region[a * p.stride_w + b], pitch[a * p.stride_w + b],
                          scratch.filled(blocks * n_taps * W, 0.f), Tiles::nhwc_row_fn(sub)});
      }
    // The last pixel: the zero sink.
    const ScratchArray<float> out = scratch.filled((buffer + 1) * W, 0.f);
    const ScratchArray<int64_t> out_at = scratch.filled((in_plane + W - 1) / W * W, buffer * W);
    for (int64_t y = 0; y < p.in_h; ++y)
      for (int64_t x = 0; x < p.in_w; ++x) {
        const int64_t k = y % p.stride_h * p.stride_w + x % p.stride_w;
        if (region[k] >= 0)
          out_at[y * p.in_w + x] = (region[k] + y / p.stride_h * pitch[k] + x / p.stride_w) * W;
      }

    Image image(scratch, p.out_h, p.out_w, 1, 1, top, left, g);
    Groups groups(scratch, C, begin, end, out_plane, in_plane);
    const ScratchArray<float> no_bias = scratch.filled(W, 0.f);
    const ScratchArray<const float*> kernel_rows =
        scratch.filled<const float*>(p.kernel_h, nullptr);
    typename Tiles::NhwcRow r;
    r.tail = nullptr, r.blocks = 1, r.cout = W, r.sw = 1, r.ring_plane = 0, r.bias = no_bias.data();
    for (int64_t k = 0; k < M; ++k) {
      const float* flipped = Staging::input_grad_weights(p, packed, k);
      for (Phase& f : phases) {
        const int64_t n_taps = static_cast<int64_t>(f.h->taps.size() * f.w->taps.size());
        for (int64_t blk = 0; blk < blocks; ++blk) {
          int64_t t = 0;
          for (int64_t i : f.h->taps)
            for (int64_t j : f.w->taps)
              std::copy_n(flipped + (blk * taps + taps - 1 - i * p.kernel_w - j) * W, W,
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
            Tiles::nhwc_passes(r, f.row_fn, kernel_rows.data(), 0, nh,
                               f.weights.data() + blk * r.weight_plane);
          }
        }
        Staging::image_to_planes(out.data(), out_at.data(), in_plane, dst, k > 0);
      });
    }
    return true;
  }

  // Units: input planes n * C + c (DepthwiseKernels::backward_input_nchw). Strided: by phases
  // when grad_output's planes fit an image. Otherwise the input gradient as a correlation of
  // grad_output, upsampled by the stride, with the flipped kernel (see
  // DepthwiseStaging::transposed); a multiplier M > 1 adds the M output channels of a channel in
  // M passes. `packed` as Staging::pack_backward_input.
  static void backward_input_nchw(const DepthwiseParams& p, const float* grad_output,
                                  const float* packed, float* grad_input, int64_t begin,
                                  int64_t end) {
    if ((p.stride_h > 1 || p.stride_w > 1) &&
        backward_input_phases(p, grad_output, packed, grad_input, begin, end))
      return;
    const DepthwiseParams q = Staging::transposed(p);
    const int64_t M = p.multiplier, cout = p.out_channels(), out_plane = p.out_h * p.out_w;
    for (int64_t k = 0; k < M; ++k) {
      const auto src = [&](int64_t n, int64_t c) {
        return grad_output + (n * cout + c * M + k) * out_plane;
      };
      correlate(q, p.stride_h, p.stride_w, p.out_h, p.out_w, p.channels, src,
                Staging::input_grad_weights(p, packed, k), nullptr, grad_input, k > 0, begin, end);
    }
  }

  // acc (taps x W floats) += the gradient x input sums of kernel rows [i_lo, i_hi) over n
  // output pixels: gy their blocked gradients, x_row(i) the blocked input pixel of tap (i, 0)
  // of the first.
  template <class RowOf>
  static void sum_taps(const DepthwiseParams& p, const RowOf& x_row, int64_t i_lo, int64_t i_hi,
                       const float* gy, int64_t n, float* acc) {
    const int64_t kw = p.kernel_w, rows_per_call = Tiles::weight_rows_per_call(kw);
    for (int64_t i0 = i_lo; i0 < i_hi; i0 += rows_per_call) {
      const int64_t rows = std::min(rows_per_call, i_hi - i0);
      for (int64_t j0 = 0; j0 < kw; j0 += Tiles::kWeightChunk) {
        const int64_t width = std::min(Tiles::kWeightChunk, kw - j0);
        const float* chunk_rows[3];  // rows_per_call <= 3
        for (int64_t r = 0; r < rows; ++r) chunk_rows[r] = x_row(i0 + r) + j0 * p.dilation_w * W;
        Tiles::weight_row_fn(p.stride_w, rows, width)(
            chunk_rows, gy, n, W, p.stride_w, p.dilation_w, acc + (i0 * kw + j0) * W, kw * W, W);
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
    const bool whole =
        !nhwc && depthwise_whole_images(plan.image_bytes(), (cout + W - 1) / W * p.batch);
    ScratchScope scratch;
    std::optional<Image> x_image, gy_image;
    std::optional<Ring> ring;
    if (whole) {
      x_image.emplace(scratch, p.in_h, p.in_w, 1, 1, p.pad_top, p.pad_left, plan.in);
      gy_image.emplace(scratch, p.out_h, p.out_w, 1, 1, 0, 0, plan.out);
    } else {
      ring.emplace(scratch, (kh - 1) * p.dilation_h + 1, plan.in.cols, p.pad_left, 1, 1, p.in_h,
                   p.in_w);
    }
    // NCHW lanes past the last unit read zeros.
    const ScratchArray<float> zeros = scratch.filled(nhwc ? 0 : std::max(in_plane, out_plane), 0.f);
    const ScratchArray<float> gy_row = scratch.filled(p.out_w * W, 0.f);
    const ScratchArray<float> acc = scratch.filled(taps * W, 0.f);
    const ScratchArray<double> total = scratch.filled(taps * W, 0.0);
    const ScratchArray<const float*> xrows = scratch.filled<const float*>(kh, nullptr);
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
