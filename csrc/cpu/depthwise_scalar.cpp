// Portable depthwise microkernels: the reference every SIMD kernel is tested against, and the
// fallback on any CPU. Loops are ordered for the memory format (rows along W for NCHW, channels
// innermost for NHWC) and borders are clipped per tap with valid_output_range, so the inner
// loops are branch-free and the compiler can vectorise them.
#include <algorithm>
#include <vector>

#include "activation.h"
#include "depthwise.h"

namespace sepconv {
namespace cpu {
namespace {

// Weight gradients sum up to N*Ho*Wo products per tap: accumulate in double so float32 keeps
// its precision, as a fixed-order sum (bitwise reproducible).
using acc_t = double;

// The weight (C*M, kH, kW) in the layout's order: NCHW as it is, NHWC tap-major (kH, kW, C*M).
template <typename T>
void pack_layout_order(const DepthwiseParams& p, bool nhwc, const T* weight, T* packed) {
  const int64_t cout = p.out_channels(), taps = p.kernel_h * p.kernel_w;
  for (int64_t oc = 0; oc < cout; ++oc)
    for (int64_t t = 0; t < taps; ++t)
      packed[nhwc ? t * cout + oc : oc * taps + t] = weight[oc * taps + t];
}

// Packed forward weights: the weight in the layout's order, then the bias (zeros when there is
// none: the sums started from zero then too).
template <typename T>
int64_t packed_forward_size(const DepthwiseParams& p) {
  return p.out_channels() * (p.kernel_h * p.kernel_w + 1);
}

template <typename T>
void pack_forward(const DepthwiseParams& p, bool nhwc, const T* weight, const T* bias, T* packed) {
  const int64_t cout = p.out_channels(), taps = p.kernel_h * p.kernel_w;
  pack_layout_order(p, nhwc, weight, packed);
  for (int64_t oc = 0; oc < cout; ++oc) packed[cout * taps + oc] = bias ? bias[oc] : T(0);
}

// Packed input-gradient weights: the weight in the layout's order.
template <typename T>
int64_t packed_backward_input_size(const DepthwiseParams& p, bool /*nhwc*/) {
  return p.out_channels() * p.kernel_h * p.kernel_w;
}

template <typename T>
void forward_nchw(const DepthwiseParams& p, const T* input, const T* packed, T* output,
                  int64_t begin, int64_t end) {
  const int64_t cout = p.out_channels(), taps = p.kernel_h * p.kernel_w;
  const T *weight = packed, *bias = packed + cout * taps;
  const TapRanges r(p);
  for (int64_t plane = begin; plane < end; ++plane) {
    const int64_t n = plane / cout, oc = plane % cout, c = oc / p.multiplier;
    const T* x = input + (n * p.channels + c) * p.in_h * p.in_w;
    const T* w = weight + oc * taps;
    T* y = output + plane * p.out_h * p.out_w;
    const T b = bias[oc];
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      T* yrow = y + oh * p.out_w;
      std::fill(yrow, yrow + p.out_w, b);
      for (int64_t i = 0; i < p.kernel_h; ++i) {
        const int64_t ih = oh * p.stride_h - p.pad_top + i * p.dilation_h;
        if (ih < 0 || ih >= p.in_h) continue;
        const T* xrow = x + ih * p.in_w;
        for (int64_t j = 0; j < p.kernel_w; ++j) {
          const T wv = w[i * p.kernel_w + j];
          const T* __restrict xs = xrow + r.first[j];
          T* __restrict ys = yrow + r.lo[j];
          if (p.stride_w == 1) {
            for (int64_t k = 0; k < r.count[j]; ++k) ys[k] += wv * xs[k];
          } else {
            for (int64_t k = 0; k < r.count[j]; ++k) ys[k] += wv * xs[k * p.stride_w];
          }
        }
      }
      activate_span(yrow, p.out_w, p.activation);
    }
  }
}

// Channels per register block of the NHWC kernels: the block's accumulators stay in registers
// across all taps, so each output value is written once.
constexpr int64_t kChannelBlock = 16;

// The taps i in [lo, hi) whose input row/column (o * stride - pad + i * dilation) is inside
// [0, size); valid_output_range with the roles of taps and outputs swapped.
inline void valid_taps(int64_t o, int64_t stride, int64_t pad, int64_t dilation, int64_t size,
                       int64_t kernel, int64_t* lo, int64_t* hi) {
  valid_output_range(o * stride - pad, dilation, size, kernel, lo, hi);
}

template <typename T>
void forward_nhwc(const DepthwiseParams& p, const T* input, const T* packed, T* output,
                  int64_t begin, int64_t end) {
  const int64_t cout = p.out_channels(), m = p.multiplier;
  const T *weight_packed = packed, *bias = packed + cout * p.kernel_h * p.kernel_w;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / p.out_h, oh = row % p.out_h;
    int64_t i_lo, i_hi;
    valid_taps(oh, p.stride_h, p.pad_top, p.dilation_h, p.in_h, p.kernel_h, &i_lo, &i_hi);
    for (int64_t ow = 0; ow < p.out_w; ++ow) {
      int64_t j_lo, j_hi;
      valid_taps(ow, p.stride_w, p.pad_left, p.dilation_w, p.in_w, p.kernel_w, &j_lo, &j_hi);
      T* y = output + (row * p.out_w + ow) * cout;
      // Element offset of tap (i, j), channel c: x0 + i * step_i + j * step_j + c. x0 itself may
      // lie outside the image (padding); only valid taps are added to it.
      const int64_t x0 =
          ((n * p.in_h + oh * p.stride_h - p.pad_top) * p.in_w + ow * p.stride_w - p.pad_left) *
          p.channels;
      const int64_t step_i = p.dilation_h * p.in_w * p.channels, step_j = p.dilation_w * p.channels;
      if (m == 1) {
        int64_t c = 0;
        for (; c + kChannelBlock <= cout; c += kChannelBlock) {
          T acc[kChannelBlock];
          for (int64_t k = 0; k < kChannelBlock; ++k) acc[k] = bias[c + k];
          for (int64_t i = i_lo; i < i_hi; ++i)
            for (int64_t j = j_lo; j < j_hi; ++j) {
              const T* x = input + (x0 + i * step_i + j * step_j + c);
              const T* w = weight_packed + (i * p.kernel_w + j) * cout + c;
              for (int64_t k = 0; k < kChannelBlock; ++k) acc[k] += w[k] * x[k];
            }
          for (int64_t k = 0; k < kChannelBlock; ++k) y[c + k] = acc[k];
        }
        for (; c < cout; ++c) {  // channel remainder
          T acc = bias[c];
          for (int64_t i = i_lo; i < i_hi; ++i)
            for (int64_t j = j_lo; j < j_hi; ++j)
              acc += weight_packed[(i * p.kernel_w + j) * cout + c] *
                     input[x0 + i * step_i + j * step_j + c];
          y[c] = acc;
        }
      } else {
        std::copy(bias, bias + cout, y);
        for (int64_t i = i_lo; i < i_hi; ++i)
          for (int64_t j = j_lo; j < j_hi; ++j) {
            const T* x = input + (x0 + i * step_i + j * step_j);
            const T* w = weight_packed + (i * p.kernel_w + j) * cout;
            for (int64_t c = 0; c < p.channels; ++c)
              for (int64_t k = 0; k < m; ++k) y[c * m + k] += w[c * m + k] * x[c];
          }
      }
      activate_span(y, cout, p.activation);
    }
  }
}

// Scatter form: each output row adds its taps into the input rows it read. One thread owns a
// whole input plane (all M output channels that read it), so there are no write races.
template <typename T>
void backward_input_nchw(const DepthwiseParams& p, const T* grad_output, const T* weight,
                         T* grad_input, int64_t begin, int64_t end) {  // weight: (C*M, kH, kW)
  const int64_t cout = p.out_channels(), taps = p.kernel_h * p.kernel_w;
  const TapRanges r(p);
  for (int64_t plane = begin; plane < end; ++plane) {
    const int64_t n = plane / p.channels, c = plane % p.channels;
    T* gx = grad_input + plane * p.in_h * p.in_w;
    std::fill(gx, gx + p.in_h * p.in_w, T(0));
    for (int64_t k = 0; k < p.multiplier; ++k) {
      const int64_t oc = c * p.multiplier + k;
      const T* gy = grad_output + (n * cout + oc) * p.out_h * p.out_w;
      const T* w = weight + oc * taps;
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        const T* gyrow = gy + oh * p.out_w;
        for (int64_t i = 0; i < p.kernel_h; ++i) {
          const int64_t ih = oh * p.stride_h - p.pad_top + i * p.dilation_h;
          if (ih < 0 || ih >= p.in_h) continue;
          T* gxrow = gx + ih * p.in_w;
          for (int64_t j = 0; j < p.kernel_w; ++j) {
            const T wv = w[i * p.kernel_w + j];
            T* __restrict gxs = gxrow + r.first[j];
            const T* __restrict gys = gyrow + r.lo[j];
            if (p.stride_w == 1) {
              for (int64_t k = 0; k < r.count[j]; ++k) gxs[k] += wv * gys[k];
            } else {
              for (int64_t k = 0; k < r.count[j]; ++k) gxs[k * p.stride_w] += wv * gys[k];
            }
          }
        }
      }
    }
  }
}

// Gather form: each input pixel collects the output pixels whose window covered it, so rows
// of the input can be split across threads.
template <typename T>
void backward_input_nhwc(const DepthwiseParams& p, const T* grad_output, const T* weight_packed,
                         T* grad_input, int64_t begin, int64_t end) {  // (kH, kW, C*M)
  const int64_t cout = p.out_channels(), m = p.multiplier;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / p.in_h, ih = row % p.in_h;
    for (int64_t iw = 0; iw < p.in_w; ++iw) {
      T* gx = grad_input + (row * p.in_w + iw) * p.channels;
      std::fill(gx, gx + p.channels, T(0));
      for (int64_t i = 0; i < p.kernel_h; ++i) {
        const int64_t th = ih + p.pad_top - i * p.dilation_h;
        if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= p.out_h) continue;
        const int64_t oh = th / p.stride_h;
        for (int64_t j = 0; j < p.kernel_w; ++j) {
          const int64_t tw = iw + p.pad_left - j * p.dilation_w;
          if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= p.out_w) continue;
          const int64_t ow = tw / p.stride_w;
          const T* gy = grad_output + ((n * p.out_h + oh) * p.out_w + ow) * cout;
          const T* w = weight_packed + (i * p.kernel_w + j) * cout;
          if (m == 1) {
            for (int64_t c = 0; c < p.channels; ++c) gx[c] += w[c] * gy[c];
          } else {
            for (int64_t c = 0; c < p.channels; ++c)
              for (int64_t k = 0; k < m; ++k) gx[c] += w[c * m + k] * gy[c * m + k];
          }
        }
      }
    }
  }
}

template <typename T>
void backward_weight_nchw(const DepthwiseParams& p, const T* grad_output, const T* input,
                          T* grad_weight, int64_t begin, int64_t end) {
  const int64_t cout = p.out_channels(), taps = p.kernel_h * p.kernel_w;
  const TapRanges r(p);
  std::vector<acc_t> acc(taps);
  for (int64_t oc = begin; oc < end; ++oc) {
    const int64_t c = oc / p.multiplier;
    std::fill(acc.begin(), acc.end(), acc_t(0));
    for (int64_t n = 0; n < p.batch; ++n) {
      const T* gy = grad_output + (n * cout + oc) * p.out_h * p.out_w;
      const T* x = input + (n * p.channels + c) * p.in_h * p.in_w;
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        const T* gyrow = gy + oh * p.out_w;
        for (int64_t i = 0; i < p.kernel_h; ++i) {
          const int64_t ih = oh * p.stride_h - p.pad_top + i * p.dilation_h;
          if (ih < 0 || ih >= p.in_h) continue;
          const T* xrow = x + ih * p.in_w;
          for (int64_t j = 0; j < p.kernel_w; ++j) {
            const T* xs = xrow + r.first[j];
            const T* gys = gyrow + r.lo[j];
            acc_t s = 0;
            for (int64_t k = 0; k < r.count[j]; ++k) s += acc_t(gys[k]) * acc_t(xs[k * p.stride_w]);
            acc[i * p.kernel_w + j] += s;
          }
        }
      }
    }
    for (int64_t t = 0; t < taps; ++t) grad_weight[oc * taps + t] = T(acc[t]);
  }
}

// Channels are processed in blocks so that the (taps x block) accumulator stays in cache.
constexpr int64_t kWeightGradChannelBlock = 64;

template <typename T>
void backward_weight_nhwc(const DepthwiseParams& p, const T* grad_output, const T* input,
                          T* grad_weight_packed, int64_t begin, int64_t end) {
  const int64_t cout = p.out_channels(), m = p.multiplier, taps = p.kernel_h * p.kernel_w;
  std::vector<acc_t> acc;
  for (int64_t c0 = begin; c0 < end; c0 += kWeightGradChannelBlock) {
    const int64_t nc = std::min(kWeightGradChannelBlock, end - c0), cols = nc * m;
    acc.assign(taps * cols, acc_t(0));
    for (int64_t pix = 0; pix < p.batch * p.out_h * p.out_w; ++pix) {
      const int64_t n = pix / (p.out_h * p.out_w), oh = pix / p.out_w % p.out_h, ow = pix % p.out_w;
      const T* gy = grad_output + pix * cout + c0 * m;
      for (int64_t i = 0; i < p.kernel_h; ++i) {
        const int64_t ih = oh * p.stride_h - p.pad_top + i * p.dilation_h;
        if (ih < 0 || ih >= p.in_h) continue;
        for (int64_t j = 0; j < p.kernel_w; ++j) {
          const int64_t iw = ow * p.stride_w - p.pad_left + j * p.dilation_w;
          if (iw < 0 || iw >= p.in_w) continue;
          const T* x = input + ((n * p.in_h + ih) * p.in_w + iw) * p.channels + c0;
          acc_t* a = acc.data() + (i * p.kernel_w + j) * cols;
          for (int64_t c = 0; c < nc; ++c)
            for (int64_t k = 0; k < m; ++k) a[c * m + k] += acc_t(gy[c * m + k]) * acc_t(x[c]);
        }
      }
    }
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t col = 0; col < cols; ++col)
        grad_weight_packed[t * cout + c0 * m + col] = T(acc[t * cols + col]);
  }
}

}  // namespace

template <typename T>
const DepthwiseKernels<T>& depthwise_scalar_kernels() {
  static const DepthwiseKernels<T> kernels = {packed_forward_size<T>,
                                              pack_forward<T>,
                                              forward_nchw<T>,
                                              forward_nhwc<T>,
                                              packed_backward_input_size<T>,
                                              pack_layout_order<T>,
                                              backward_input_nchw<T>,
                                              backward_input_nhwc<T>,
                                              backward_weight_nchw<T>,
                                              backward_weight_nhwc<T>};
  return kernels;
}

template const DepthwiseKernels<float>& depthwise_scalar_kernels<float>();
template const DepthwiseKernels<double>& depthwise_scalar_kernels<double>();

}  // namespace cpu
}  // namespace sepconv
