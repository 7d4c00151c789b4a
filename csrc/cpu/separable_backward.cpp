// Fused separable backward (see separable.h): the orchestration only; the arithmetic is the
// depthwise and pointwise kernels of the active ISA, each run on one band as an ordinary
// (smaller) problem, as in the forward.
#include <algorithm>
#include <vector>

#include "separable.h"

namespace sepconv {
namespace cpu {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The rows one band works on, all in one image: the output rows it owns (its share of the
// weight-gradient sums), the input rows it owns (the dX rows it writes), and the dmid rows it
// computes: every row those input rows receive gradient from, and its own rows.
struct BandRows {
  int64_t own0, own1, in0, in1, mid0, mid1;
};

BandRows band_rows(const SeparableParams& s, int64_t band) {
  const DepthwiseParams& p = s.depthwise;
  const int64_t bands = bands_per_image(s);
  // Input rows are split where a band's first output row starts reading (its top tap), so a
  // band's dX rows mostly take gradient from its own rows.
  const auto split = [&](int64_t b) {
    if (b == 0) return int64_t{0};
    if (b == bands) return p.in_h;
    return std::min(p.in_h, std::max<int64_t>(0, b * s.band_rows * p.stride_h - p.pad_top));
  };
  BandRows r;
  r.own0 = band * s.band_rows;
  r.own1 = std::min(p.out_h, r.own0 + s.band_rows);
  r.in0 = split(band), r.in1 = split(band + 1);
  // Output rows oh with oh * stride - pad + i * dilation in [in0, in1) for some tap row i.
  const int64_t span = (p.kernel_h - 1) * p.dilation_h;
  const int64_t lo = -floor_div(-(r.in0 + p.pad_top - span), p.stride_h);  // ceil division
  const int64_t hi = floor_div(r.in1 - 1 + p.pad_top, p.stride_h) + 1;
  r.mid0 = std::min(r.own0, std::max<int64_t>(0, lo));
  r.mid1 = std::max(r.own1, std::min(p.out_h, hi));
  return r;
}

// The depthwise problem between dmid rows [mid0, mid1) and input rows [in0, in1) of one image.
DepthwiseParams input_rows_problem(const DepthwiseParams& p, const BandRows& r) {
  DepthwiseParams q = p;
  q.batch = 1;
  q.in_h = r.in1 - r.in0;
  q.out_h = r.mid1 - r.mid0;
  q.pad_top = p.pad_top - r.mid0 * p.stride_h + r.in0;
  return q;
}

template <typename T>
void add_to(double* sum, const std::vector<T>& part) {
  for (size_t i = 0; i < part.size(); ++i) sum[i] += double(part[i]);
}

// Sum of n values in eight interleaved T partial sums (independent add chains; one chain ran at
// the add latency, ~10% of the NCHW backward at 112x112), folded in double.
template <typename T>
double sum_of(const T* g, int64_t n) {
  T part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) part[k] += g[i + k];
  double total = 0;
  for (; i < n; ++i) total += double(g[i]);
  for (int k = 0; k < 8; ++k) total += double(part[k]);
  return total;
}

}  // namespace

template <typename T>
void separable_backward_nchw(const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                             const SeparableParams& s, const T* input, const T* grad_output,
                             const SeparableWeights<T>& w, T* grad_input,
                             const SeparableGradSums& sums, int64_t begin, int64_t end) {
  const DepthwiseParams& p = s.depthwise;
  const int64_t C = p.channels, mid = p.out_channels(), cout = s.out_channels;
  const int64_t taps = p.kernel_h * p.kernel_w, in_px = p.in_h * p.in_w, out_px = p.out_h * p.out_w;
  const int64_t bands = bands_per_image(s);
  // One band: every buffer is a dense (channels, rows, columns) image and each kernel runs once
  // over all channels. Several: a band's rows of a plane are not one block with the next
  // plane's, so the bands the depthwise kernels read or write are copied through dense buffers
  // (the NCHW kernels work on several channels at once: one call per plane wasted most lanes).
  const bool one_band = bands == 1;
  std::vector<T> dense, buf, pw_part(sums.pointwise ? cout * mid : 0),
      dw_part(sums.depthwise ? mid * taps : 0);
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t n = unit / bands;
    const BandRows r = band_rows(s, unit % bands);
    const T* x = input + n * C * in_px;
    const T* gy = grad_output + n * cout * out_px;
    const int64_t own_rows = r.own1 - r.own0, own_px = own_rows * p.out_w;
    if (sums.pointwise) {
      buf.resize(std::max<size_t>(buf.size(), mid * own_px));
      dw.forward_nchw(band_problem(p, r.own0, own_rows), x, w.depthwise_packed, buf.data(), 0, mid);
      // dW_pw (Cout x mid) = dY band (Cout x own px, rows out_px apart) * mid band^T
      const Gemm g{cout, mid, own_px, out_px, 1, 1, own_px, mid};
      pw.gemm(g, gy + r.own0 * p.out_w, buf.data(), pw_part.data(), nullptr, nullptr);
      add_to(sums.pointwise, pw_part);
    }
    if (!grad_input && !sums.depthwise) continue;
    // dmid (mid x px) = W^T (mid x Cout) * dY rows (Cout x px)
    const int64_t px = (r.mid1 - r.mid0) * p.out_w;
    buf.resize(std::max<size_t>(buf.size(), mid * px));
    pw.gemm(Gemm::row_major(mid, px, cout, cout, out_px, px), w.pointwise, gy + r.mid0 * p.out_w,
            buf.data(), nullptr, nullptr);
    if (grad_input && r.in1 > r.in0) {
      const DepthwiseParams q = input_rows_problem(p, r);
      T* gx = grad_input + n * C * in_px + r.in0 * p.in_w;
      const int64_t band_px = q.in_h * p.in_w;
      if (!one_band) dense.resize(std::max<size_t>(dense.size(), C * band_px));
      dw.backward_input_nchw(q, buf.data(), w.depthwise_backward_input,
                             one_band ? gx : dense.data(), 0, C);
      if (!one_band)
        for (int64_t c = 0; c < C; ++c)
          std::copy(dense.data() + c * band_px, dense.data() + (c + 1) * band_px, gx + c * in_px);
    }
    if (sums.depthwise) {
      const DepthwiseParams q = band_problem(p, r.own0, own_rows);
      // The own rows of each dmid plane (planes px apart), dense.
      const T* g_own = buf.data() + (r.own0 - r.mid0) * p.out_w;
      if (own_px != px) {
        dense.resize(std::max<size_t>(dense.size(), mid * own_px));
        for (int64_t oc = 0; oc < mid; ++oc)
          std::copy(g_own + oc * px, g_own + oc * px + own_px, dense.data() + oc * own_px);
        g_own = dense.data();
      }
      dw.backward_weight_nchw(q, g_own, x, dw_part.data(), 0, mid);
      add_to(sums.depthwise, dw_part);
      for (int64_t oc = 0; oc < mid; ++oc)
        sums.depthwise_bias[oc] += sum_of(g_own + oc * own_px, own_px);
    }
  }
}

template <typename T>
void separable_backward_nhwc(const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                             const SeparableParams& s, const T* input, const T* grad_output,
                             const SeparableWeights<T>& w, T* grad_input,
                             const SeparableGradSums& sums, int64_t begin, int64_t end) {
  const DepthwiseParams& p = s.depthwise;
  const int64_t C = p.channels, mid = p.out_channels(), cout = s.out_channels;
  const int64_t taps = p.kernel_h * p.kernel_w, in_px = p.in_h * p.in_w, out_px = p.out_h * p.out_w;
  const int64_t bands = bands_per_image(s);
  std::vector<T> buf, pw_part(sums.pointwise ? cout * mid : 0),
      dw_part(sums.depthwise ? mid * taps : 0), db_part(sums.depthwise ? mid : 0);
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t n = unit / bands;
    const BandRows r = band_rows(s, unit % bands);
    const T* x = input + n * in_px * C;
    const T* gy = grad_output + n * out_px * cout;
    const int64_t own_rows = r.own1 - r.own0, own_px = own_rows * p.out_w;
    if (sums.pointwise) {
      buf.resize(std::max<size_t>(buf.size(), own_px * mid));
      dw.forward_nhwc(band_problem(p, r.own0, own_rows), x, w.depthwise_packed, buf.data(), 0,
                      own_rows);
      // dW_pw (Cout x mid) = dY band^T (Cout x own px) * mid band (own px x mid)
      const Gemm g{cout, mid, own_px, 1, cout, mid, 1, mid};
      pw.gemm(g, gy + r.own0 * p.out_w * cout, buf.data(), pw_part.data(), nullptr, nullptr);
      add_to(sums.pointwise, pw_part);
    }
    if (!grad_input && !sums.depthwise) continue;
    // dmid (px x mid) = dY rows (px x Cout) * W (Cout x mid)
    const int64_t px = (r.mid1 - r.mid0) * p.out_w;
    buf.resize(std::max<size_t>(buf.size(), px * mid));
    pw.gemm(Gemm::row_major(px, mid, cout, cout, mid, mid), gy + r.mid0 * p.out_w * cout,
            w.pointwise, buf.data(), nullptr, nullptr);
    if (grad_input && r.in1 > r.in0)
      dw.backward_input_nhwc(input_rows_problem(p, r), buf.data(), w.depthwise_backward_input,
                             grad_input + (n * p.in_h + r.in0) * p.in_w * C, 0, r.in1 - r.in0);
    if (sums.depthwise) {
      const T* g_own = buf.data() + (r.own0 - r.mid0) * p.out_w * mid;
      dw.backward_weight_nhwc(band_problem(p, r.own0, own_rows), g_own, x, dw_part.data(), 0, C);
      add_to(sums.depthwise, dw_part);
      std::fill(db_part.begin(), db_part.end(), T(0));  // a vector add per pixel
      for (int64_t i = 0; i < own_px; ++i)
        for (int64_t oc = 0; oc < mid; ++oc) db_part[oc] += g_own[i * mid + oc];
      add_to(sums.depthwise_bias, db_part);
    }
  }
}

#define SEPCONV_INSTANTIATE(T)                                                                  \
  template void separable_backward_nchw<T>(                                                     \
      const DepthwiseKernels<T>&, const PointwiseKernels<T>&, const SeparableParams&, const T*, \
      const T*, const SeparableWeights<T>&, T*, const SeparableGradSums&, int64_t, int64_t);    \
  template void separable_backward_nhwc<T>(                                                     \
      const DepthwiseKernels<T>&, const PointwiseKernels<T>&, const SeparableParams&, const T*, \
      const T*, const SeparableWeights<T>&, T*, const SeparableGradSums&, int64_t, int64_t);
SEPCONV_INSTANTIATE(float)
SEPCONV_INSTANTIATE(double)
#undef SEPCONV_INSTANTIATE

}  // namespace cpu
}  // namespace sepconv
