// Fused separable forward: the pointwise kernel of pointwise_rows.cuh (one thread per output
// pixel, a tile of CO output channels in registers) whose input channel values are the
// depthwise outputs, computed by the same thread on the fly instead of read from an
// intermediate tensor. The depthwise result never goes to global memory: per output tile the
// traffic is one read of x (through L1, shared by neighbouring pixels) and one write of y,
// where the composition also writes and reads the whole C*M x H x W intermediate.
// The depthwise value is rounded to scalar_t before the pointwise product, as the composition
// stores it, so both give the same result; its taps and bias are read as broadcasts (every
// thread of the block works on the same channels at the same time).
// channels_last with multiplier 1: VEC channels per vector load; otherwise VEC = 1.
#pragma once
#include <cstdint>

#include "cpu/params.h"
#include "cuda_utils.cuh"
#include "pointwise_rows.cuh"

namespace sepconv {
namespace cuda {

template <typename scalar_t, int CO, bool kChannelsLast, int VEC>
__global__ void __launch_bounds__(kRowsThreads)
    separable_fused_kernel(cpu::DepthwiseParams p, const scalar_t* __restrict__ x,
                           const scalar_t* __restrict__ dw,  // (kH, kW, C*M), tap-major
                           const scalar_t* __restrict__ dw_bias,
                           const scalar_t* __restrict__ pwt,  // (C*M, Cout)
                           const scalar_t* __restrict__ pw_bias, scalar_t* __restrict__ y,
                           int cout, int co_tiles) {
  using acc_t = acc_type<scalar_t>;
  using V = Vec<scalar_t, VEC>;
  static_assert(CO % VEC == 0 && kRowsKc % VEC == 0, "vectors must not straddle tiles");
  __shared__ acc_t s_w[kRowsKc][CO];
  const int cmid = static_cast<int>(p.channels * p.multiplier);
  const int64_t plane = p.out_h * p.out_w, pixels = p.batch * plane;
  const int co0 = static_cast<int>(blockIdx.x % co_tiles) * CO;
  const int64_t m = int64_t(blockIdx.x / co_tiles) * kRowsThreads + threadIdx.x;
  const bool active = m < pixels;
  const int64_t n = m / plane, pix = m % plane;
  const int64_t oh = pix / p.out_w, ow = pix % p.out_w;
  const int64_t ih0 = oh * p.stride_h - p.pad_top, iw0 = ow * p.stride_w - p.pad_left;
  const int kh = static_cast<int>(p.kernel_h), kw = static_cast<int>(p.kernel_w);

  acc_t acc[CO];
#pragma unroll
  for (int co = 0; co < CO; ++co)
    acc[co] = pw_bias != nullptr && co0 + co < cout ? static_cast<acc_t>(pw_bias[co0 + co]) : acc_t(0);
  for (int c0 = 0; c0 < cmid; c0 += kRowsKc) {
    const int kc = min(kRowsKc, cmid - c0);
    __syncthreads();  // everyone is done with the previous step's weights
    for (int e = threadIdx.x; e < kRowsKc * CO; e += kRowsThreads) {
      const int ci = e / CO, co = e % CO;
      s_w[ci][co] = ci < kc && co0 + co < cout
                        ? static_cast<acc_t>(pwt[int64_t(c0 + ci) * cout + co0 + co])
                        : acc_t(0);
    }
    __syncthreads();
    if (!active) continue;
    for (int cv = 0; cv < kc; cv += VEC) {  // VEC > 1 only when cmid % VEC == 0
      const int c = c0 + cv;  // first intermediate channel of the vector
      acc_t d[VEC];
      if (dw_bias != nullptr) {
#pragma unroll
        for (int v = 0; v < VEC; ++v) d[v] = static_cast<acc_t>(dw_bias[c + v]);
      } else {
#pragma unroll
        for (int v = 0; v < VEC; ++v) d[v] = acc_t(0);
      }
      // Input channel c / M of image n; pixel (ih, iw) at xb[(ih * W + iw) * pixel_step].
      const int64_t xc = c / p.multiplier;
      const scalar_t* xb = kChannelsLast ? x + n * p.in_h * p.in_w * p.channels + xc
                                         : x + (n * p.channels + xc) * p.in_h * p.in_w;
      const int64_t pixel_step = kChannelsLast ? p.channels : 1;
      for (int i = 0; i < kh; ++i) {
        const int64_t ih = ih0 + i * p.dilation_h;
        if (ih < 0 || ih >= p.in_h) continue;
        for (int j = 0; j < kw; ++j) {
          const int64_t iw = iw0 + j * p.dilation_w;
          if (iw < 0 || iw >= p.in_w) continue;
          const scalar_t* xq = xb + (ih * p.in_w + iw) * pixel_step;
          const scalar_t* wt = dw + int64_t(i * kw + j) * cmid + c;
          if (VEC > 1) {  // channels_last, multiplier 1
            const V xv = *reinterpret_cast<const V*>(xq);
            const V wv = *reinterpret_cast<const V*>(wt);
#pragma unroll
            for (int v = 0; v < VEC; ++v)
              d[v] += static_cast<acc_t>(xv.v[v]) * static_cast<acc_t>(wv.v[v]);
          } else {
            d[0] += static_cast<acc_t>(*xq) * static_cast<acc_t>(wt[0]);
          }
        }
      }
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        const acc_t dv = static_cast<acc_t>(static_cast<scalar_t>(d[v]));  // as stored unfused
#pragma unroll
        for (int co = 0; co < CO; ++co) acc[co] += dv * s_w[cv + v][co];
      }
    }
  }
  if (!active) return;
  if (kChannelsLast) {
    scalar_t* yp = y + m * cout + co0;
    if (VEC > 1) {  // cout % VEC == 0: a vector is wholly inside or outside
#pragma unroll
      for (int co = 0; co < CO; co += VEC) {
        if (co0 + co >= cout) break;
        V out;
#pragma unroll
        for (int v = 0; v < VEC; ++v) out.v[v] = static_cast<scalar_t>(acc[co + v]);
        *reinterpret_cast<V*>(yp + co) = out;
      }
    } else {
#pragma unroll
      for (int co = 0; co < CO; ++co)
        if (co0 + co < cout) yp[co] = static_cast<scalar_t>(acc[co]);
    }
  } else {
    scalar_t* yp = y + (n * cout + co0) * plane + pix;
#pragma unroll
    for (int co = 0; co < CO; ++co)
      if (co0 + co < cout) yp[co * plane] = static_cast<scalar_t>(acc[co]);
  }
}

}  // namespace cuda
}  // namespace sepconv
