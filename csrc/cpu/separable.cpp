// Fused separable forward (see separable.h): the orchestration only; the arithmetic is the
// depthwise and pointwise kernels of the active ISA.
#include "separable.h"

#include <algorithm>
#include <vector>

namespace sepconv {
namespace cpu {
namespace {

// Intermediate band budget, in elements: 32K floats = 128 KiB, a quarter of a typical L2, so the
// band, the pointwise weights' current block and the output rows fit together. At least 64
// pixels per band, so the GEMM has full register tiles to work with.
constexpr int64_t kBandElements = 32 * 1024, kMinBandPixels = 64;
// The backward's band holds dmid, halo rows included, which the band's neighbour computes too:
// taller bands make that overlap a smaller fraction.
constexpr int64_t kBackwardBandElements = 64 * 1024;

SeparableParams params_with_band(const DepthwiseParams& depthwise, int64_t out_channels,
                                 int64_t band_elements) {
  const int64_t row = std::max<int64_t>(1, depthwise.out_w);
  const int64_t pixels = std::max(kMinBandPixels, band_elements / depthwise.out_channels());
  const int64_t out_h = std::max<int64_t>(1, depthwise.out_h);
  const int64_t max_rows = std::min(out_h, (pixels + row - 1) / row);
  // Bands of equal height (14 rows at most 13 per band: 7 + 7, not 13 + 1, whose one-row band
  // would pay a whole band's fixed costs and the backward's halo rows for little work).
  const int64_t bands = (out_h + max_rows - 1) / max_rows;
  return {depthwise, out_channels, (out_h + bands - 1) / bands};
}

}  // namespace

SeparableParams separable_params(const DepthwiseParams& depthwise, int64_t out_channels) {
  return params_with_band(depthwise, out_channels, kBandElements);
}

SeparableParams separable_backward_params(const DepthwiseParams& depthwise, int64_t out_channels) {
  return params_with_band(depthwise, out_channels, kBackwardBandElements);
}

int64_t separable_units(const SeparableParams& s) { return s.depthwise.batch * bands_per_image(s); }

template <typename T>
void separable_forward_nchw(const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                            const SeparableParams& s, const T* input, const SeparableWeights<T>& w,
                            T* output, int64_t begin, int64_t end) {
  const DepthwiseParams& p = s.depthwise;
  const int64_t mid = p.out_channels(), pixels = p.out_h * p.out_w, bands = bands_per_image(s);
  std::vector<T> band(mid * s.band_rows * p.out_w);  // (mid, band pixels)
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t n = unit / bands, row0 = unit % bands * s.band_rows;
    const int64_t rows = std::min(s.band_rows, p.out_h - row0), band_pixels = rows * p.out_w;
    dw.forward_nchw(band_problem(p, row0, rows), input + n * p.channels * p.in_h * p.in_w,
                    w.depthwise_packed, band.data(), 0, mid);
    // Y[:, band] = W (Cout x mid) * band (mid x band pixels)
    const auto g = Gemm::row_major(s.out_channels, band_pixels, mid, mid, band_pixels, pixels);
    pw.gemm(g, w.pointwise, band.data(), output + n * s.out_channels * pixels + row0 * p.out_w,
            w.pointwise_bias, nullptr);
  }
}

template <typename T>
void separable_forward_nhwc(const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                            const SeparableParams& s, const T* input, const SeparableWeights<T>& w,
                            T* output, int64_t begin, int64_t end) {
  const DepthwiseParams& p = s.depthwise;
  const int64_t mid = p.out_channels(), bands = bands_per_image(s);
  std::vector<T> band(s.band_rows * p.out_w * mid);  // (band pixels, mid)
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t n = unit / bands, row0 = unit % bands * s.band_rows;
    const int64_t rows = std::min(s.band_rows, p.out_h - row0), band_pixels = rows * p.out_w;
    dw.forward_nhwc(band_problem(p, row0, rows), input + n * p.in_h * p.in_w * p.channels,
                    w.depthwise_packed, band.data(), 0, rows);
    // Y[band, :] = band (band pixels x mid) * W^T (mid x Cout)
    const auto g =
        Gemm::row_major(band_pixels, s.out_channels, mid, mid, s.out_channels, s.out_channels);
    pw.gemm(g, band.data(), w.pointwise, output + (n * p.out_h + row0) * p.out_w * s.out_channels,
            nullptr, w.pointwise_bias);
  }
}

#define SEPCONV_INSTANTIATE(T)                                                                    \
  template void separable_forward_nchw<T>(const DepthwiseKernels<T>&, const PointwiseKernels<T>&, \
                                          const SeparableParams&, const T*,                       \
                                          const SeparableWeights<T>&, T*, int64_t, int64_t);      \
  template void separable_forward_nhwc<T>(const DepthwiseKernels<T>&, const PointwiseKernels<T>&, \
                                          const SeparableParams&, const T*,                       \
                                          const SeparableWeights<T>&, T*, int64_t, int64_t);
SEPCONV_INSTANTIATE(float)
SEPCONV_INSTANTIATE(double)
#undef SEPCONV_INSTANTIATE

}  // namespace cpu
}  // namespace sepconv
