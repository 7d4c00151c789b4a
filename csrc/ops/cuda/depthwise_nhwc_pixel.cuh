// channels_last depthwise kernels, one thread per pixel and group of VEC channels, for every
// geometry and multiplier: the forward where the window kernel (depthwise_nhwc_window.cuh) does
// not take the shape, and the input gradient where it is not the forward with flipped taps. With
// multiplier 1 and C a multiple of VEC (depthwise_vector_width in path_policy.h) the loads and
// stores are 16-byte vectors along C, coalesced across the warp.
//   forward_nhwc_kernel<VEC>:        one thread per (n, oh, ow, group of VEC output channels);
//   backward_input_nhwc_kernel<VEC>: one thread per (n, hi, wi, group of VEC input channels).
#pragma once
#include <cstdint>

#include "cpu/params.h"
#include "cuda_utils.cuh"
#include "depthwise_dispatch.cuh"
#include "path_policy.h"

namespace sepconv {
namespace cuda {

using cpu::DepthwiseParams;

// Weight packed tap-major (kH, kW, Cout) so the taps of VEC consecutive channels are one vector.
// One thread per (n, oh, ow, group of VEC output channels); VEC > 1 only with multiplier 1.
// Items are counted in 32 bits per launch (see for_each_launch).
constexpr int kNhwcThreads = 256;
template <typename scalar_t, int VEC>
__global__ void __launch_bounds__(kNhwcThreads)
    forward_nhwc_kernel(DepthwiseParams p, const scalar_t* __restrict__ x,
                        const scalar_t* __restrict__ w, const scalar_t* __restrict__ bias,
                        scalar_t* __restrict__ y, int64_t first_image, uint32_t items) {
  using acc_t = acc_type<scalar_t>;
  using V = Vec<scalar_t, VEC>;
  const int64_t cout = (p.channels * p.multiplier);
  {
    const uint32_t idx = blockIdx.x * kNhwcThreads + threadIdx.x;
    if (idx >= items) return;
    const uint32_t groups = static_cast<uint32_t>(cout / VEC);
    const uint32_t g = idx % groups;
    uint32_t pix = idx / groups;
    const int64_t ow = pix % static_cast<uint32_t>(p.out_w);
    pix /= static_cast<uint32_t>(p.out_w);
    const int64_t oh = pix % static_cast<uint32_t>(p.out_h);
    const int64_t n = first_image + pix / static_cast<uint32_t>(p.out_h);
    const int64_t oc0 = int64_t(g) * VEC;
    acc_t sum[VEC];
#pragma unroll
    for (int v = 0; v < VEC; ++v)
      sum[v] = bias != nullptr ? static_cast<acc_t>(bias[oc0 + v]) : acc_t(0);
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      const int64_t ih = oh * p.stride_h - p.pad_top + i * p.dilation_h;
      if (ih < 0 || ih >= p.in_h) continue;
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        const int64_t iw = ow * p.stride_w - p.pad_left + j * p.dilation_w;
        if (iw < 0 || iw >= p.in_w) continue;
        const scalar_t* wt = w + (i * p.kernel_w + j) * cout + oc0;
        const int64_t xrow = ((n * p.in_h + ih) * p.in_w + iw) * p.channels;
        if (VEC > 1) {  // multiplier 1: input channel == output channel
          const V xv = *reinterpret_cast<const V*>(x + xrow + oc0);
          const V wv = *reinterpret_cast<const V*>(wt);
#pragma unroll
          for (int v = 0; v < VEC; ++v)
            sum[v] += static_cast<acc_t>(xv.v[v]) * static_cast<acc_t>(wv.v[v]);
        } else {
          sum[0] += static_cast<acc_t>(x[xrow + oc0 / p.multiplier]) * static_cast<acc_t>(wt[0]);
        }
      }
    }
    V out;
#pragma unroll
    for (int v = 0; v < VEC; ++v) out.v[v] = static_cast<scalar_t>(sum[v]);
    *reinterpret_cast<V*>(y + ((n * p.out_h + oh) * p.out_w + ow) * cout + oc0) = out;
  }
}

// One thread per (n, hi, wi, group of VEC input channels); VEC > 1 only with multiplier 1.
template <typename scalar_t, int VEC>
__global__ void __launch_bounds__(kNhwcThreads)
    backward_input_nhwc_kernel(DepthwiseParams p, const scalar_t* __restrict__ gy,
                               const scalar_t* __restrict__ w, scalar_t* __restrict__ gx,
                               int64_t first_image, uint32_t items) {
  using acc_t = acc_type<scalar_t>;
  using V = Vec<scalar_t, VEC>;
  const int64_t cout = (p.channels * p.multiplier);
  {
    const uint32_t idx = blockIdx.x * kNhwcThreads + threadIdx.x;
    if (idx >= items) return;
    const uint32_t groups = static_cast<uint32_t>(p.channels / VEC);
    const uint32_t g = idx % groups;
    uint32_t pix = idx / groups;
    const int64_t wi = pix % static_cast<uint32_t>(p.in_w);
    pix /= static_cast<uint32_t>(p.in_w);
    const int64_t hi = pix % static_cast<uint32_t>(p.in_h);
    const int64_t n = first_image + pix / static_cast<uint32_t>(p.in_h);
    const int64_t c0 = int64_t(g) * VEC;
    acc_t sum[VEC];
#pragma unroll
    for (int v = 0; v < VEC; ++v) sum[v] = acc_t(0);
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      const int64_t th = hi + p.pad_top - i * p.dilation_h;
      if (th < 0 || th % p.stride_h != 0) continue;
      const int64_t ho = th / p.stride_h;
      if (ho >= p.out_h) continue;
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        const int64_t tw = wi + p.pad_left - j * p.dilation_w;
        if (tw < 0 || tw % p.stride_w != 0) continue;
        const int64_t wo = tw / p.stride_w;
        if (wo >= p.out_w) continue;
        const scalar_t* wt = w + (i * p.kernel_w + j) * cout;
        const scalar_t* gp = gy + ((n * p.out_h + ho) * p.out_w + wo) * cout;
        if (VEC > 1) {
          const V gv = *reinterpret_cast<const V*>(gp + c0);
          const V wv = *reinterpret_cast<const V*>(wt + c0);
#pragma unroll
          for (int v = 0; v < VEC; ++v)
            sum[v] += static_cast<acc_t>(gv.v[v]) * static_cast<acc_t>(wv.v[v]);
        } else {
          for (int64_t m = 0; m < p.multiplier; ++m) {
            const int64_t oc = c0 * p.multiplier + m;
            sum[0] += static_cast<acc_t>(gp[oc]) * static_cast<acc_t>(wt[oc]);
          }
        }
      }
    }
    V out;
#pragma unroll
    for (int v = 0; v < VEC; ++v) out.v[v] = static_cast<scalar_t>(sum[v]);
    *reinterpret_cast<V*>(gx + ((n * p.in_h + hi) * p.in_w + wi) * p.channels + c0) = out;
  }
}

// Host: the channels_last forward, one thread per output pixel and group of `vec` channels
// (vec from depthwise_vector_width for these pointers).
template <typename scalar_t>
void launch_forward_nhwc_pixels(const DepthwiseParams& p, const scalar_t* x, const scalar_t* w,
                                const scalar_t* bias, scalar_t* y, int vec, cudaStream_t stream,
                                const char* op) {
  const int64_t per_image = p.out_h * p.out_w * ((p.channels * p.multiplier) / vec);
  with_vector_width(vec, [&](auto vec_tag) {
    constexpr int V = decltype(vec_tag)::value;
    for_each_launch(p.batch, per_image, kNhwcThreads, op,
                    [&](int64_t n0, uint32_t items, unsigned int blocks) {
                      forward_nhwc_kernel<scalar_t, V>
                          <<<blocks, kNhwcThreads, 0, stream>>>(p, x, w, bias, y, n0, items);
                    });
  });
}

// Host: the channels_last input gradient, one thread per input pixel and group of channels; w
// packed tap-major (kH, kW, Cout).
template <typename scalar_t>
void launch_backward_input_nhwc_pixels(const DepthwiseParams& p, const scalar_t* gy,
                                       const scalar_t* w, scalar_t* gx, cudaStream_t stream,
                                       const char* op) {
  const int vec = depthwise_vector_width(p, sizeof(scalar_t), {gy, w, gx});
  const int64_t per_image = p.in_h * p.in_w * (p.channels / vec);
  with_vector_width(vec, [&](auto vec_tag) {
    constexpr int V = decltype(vec_tag)::value;
    for_each_launch(p.batch, per_image, kNhwcThreads, op,
                    [&](int64_t n0, uint32_t items, unsigned int blocks) {
                      backward_input_nhwc_kernel<scalar_t, V>
                          <<<blocks, kNhwcThreads, 0, stream>>>(p, gy, w, gx, n0, items);
                    });
  });
}

}  // namespace cuda
}  // namespace sepconv
