// CUDA kernels of the depthwise ops (forward, input gradient, weight gradient), float32/float64/
// float16/bfloat16 (half and bfloat16 accumulate in float32), NCHW and channels_last, any kernel
// size, stride, padding, dilation and depth multiplier.
//
// NCHW, K x K in {3, 5, 7}, stride 1 or 2, dilation 1: the register-window kernels of
// depthwise_nchw_window.cuh for the forward, the input gradient (stride 1: the forward of
// grad_output with flipped taps; stride 2: its own kernel, multiplier 1) and the weight
// gradient. Other NCHW geometries: one thread block per 16x32 output (or input-gradient) tile of
// one plane with the tile's input window and the taps staged in shared memory (global memory
// when the window would not fit in 48 KiB); the stride-1 input gradient is the forward again.
// channels_last: one thread per pixel and group of VEC channels; with multiplier 1 and C a
// multiple of VEC the loads and stores are 16-byte vectors along C, coalesced across the warp.
// Weight gradient: deterministic two-stage reduction, see backward_weight below; channels_last
// 3x3 with output planes of >= 100 pixels reads the tensors in place
// (depthwise_nhwc_backward_weight.cuh); other channels_last shapes go through NCHW copies.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include "../prepare.h"
#include "cuda_kernels.h"
#include "cuda_utils.cuh"
#include "depthwise_nchw_window.cuh"
#include "depthwise_nhwc_backward_weight.cuh"
#include "depthwise_nhwc_window.cuh"

namespace sepconv {
namespace cuda {
namespace {

using cpu::DepthwiseParams;

// NCHW tiles: 32x8 threads, each thread two rows of a 16x32 tile.
constexpr int kTileH = 16, kTileW = 32, kThreadsX = 32, kThreadsY = 8;
constexpr int kRowsPerThread = kTileH / kThreadsY;
constexpr int kThreads = kThreadsX * kThreadsY;

// ------------------------------------------------------------------ NCHW forward, any geometry
// One block per 16x32 output tile of one plane; the tile's input window and the taps staged in
// shared memory (kSmem), or read from global memory when they would not fit. For the shapes the
// window kernels do not take (kernels other than 3/5/7, dilation, unequal strides): measured on
// an H100 at 31x31 it ran 2.4x faster than a register-window variant reading through L1.
template <typename scalar_t, bool kSmem>
__global__ void __launch_bounds__(kThreads)
    forward_nchw_kernel(DepthwiseParams p, const scalar_t* __restrict__ x,
                        const scalar_t* __restrict__ w, const scalar_t* __restrict__ bias,
                        scalar_t* __restrict__ y, int64_t tiles_w, int64_t tiles_h, int in_tile_h,
                        int in_tile_w) {
  using acc_t = acc_type<scalar_t>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int taps = static_cast<int>(p.kernel_h * p.kernel_w);
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThreadsX + tx;

  int64_t blk = blockIdx.x;
  const int64_t tw = blk % tiles_w;
  blk /= tiles_w;
  const int64_t th = blk % tiles_h;
  const int64_t plane = blk / tiles_h;  // n * Cout + oc
  const int64_t cout = (p.channels * p.multiplier);
  const int64_t n = plane / cout, oc = plane % cout, c = oc / p.multiplier;
  const int64_t oh0 = th * kTileH, ow0 = tw * kTileW;
  const int64_t ih0 = oh0 * p.stride_h - p.pad_top, iw0 = ow0 * p.stride_w - p.pad_left;
  const scalar_t* xp = x + (n * p.channels + c) * p.in_h * p.in_w;
  const scalar_t* wp = w + oc * taps;

  acc_t* s_w = reinterpret_cast<acc_t*>(smem_raw);
  acc_t* s_x = s_w + taps;
  if (kSmem) {
    for (int t = tid; t < taps; t += kThreads) s_w[t] = static_cast<acc_t>(wp[t]);
    const int elems = in_tile_h * in_tile_w;
    for (int e = tid; e < elems; e += kThreads) {
      const int64_t ih = ih0 + e / in_tile_w, iw = iw0 + e % in_tile_w;
      const bool in = ih >= 0 && ih < p.in_h && iw >= 0 && iw < p.in_w;
      s_x[e] = in ? static_cast<acc_t>(xp[ih * p.in_w + iw]) : acc_t(0);
    }
    __syncthreads();
  }

  const acc_t b0 = bias != nullptr ? static_cast<acc_t>(bias[oc]) : acc_t(0);
  const int64_t ow = ow0 + tx;
#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) {
    const int lr = ty + r * kThreadsY;
    const int64_t oh = oh0 + lr;
    if (oh >= p.out_h || ow >= p.out_w) continue;
    acc_t sum = b0;
    for (int i = 0; i < p.kernel_h; ++i) {
      if (kSmem) {
        const acc_t* row = s_x + (lr * p.stride_h + i * p.dilation_h) * in_tile_w + tx * p.stride_w;
        const acc_t* wr = s_w + i * p.kernel_w;
        for (int j = 0; j < p.kernel_w; ++j) sum += row[j * p.dilation_w] * wr[j];
      } else {
        const int64_t ih = oh * p.stride_h - p.pad_top + i * p.dilation_h;
        if (ih < 0 || ih >= p.in_h) continue;
        for (int j = 0; j < p.kernel_w; ++j) {
          const int64_t iw = ow * p.stride_w - p.pad_left + j * p.dilation_w;
          if (iw < 0 || iw >= p.in_w) continue;
          sum +=
              static_cast<acc_t>(xp[ih * p.in_w + iw]) * static_cast<acc_t>(wp[i * p.kernel_w + j]);
        }
      }
    }
    y[plane * p.out_h * p.out_w + oh * p.out_w + ow] = static_cast<scalar_t>(sum);
  }
}

// ------------------------------------------------------------------ NCHW input gradient
// grad_input[n, c, hi, wi] = sum over m, i, j of grad_output[n, c*M+m, ho, wo] * w[c*M+m, i, j]
// with ho*stride_h = hi + pad_top - i*dilation_h (skipped unless divisible and in range).
// The tile stages grad_output rows [ho_lo, ho_lo + gy_tile_h) where ho_lo is the floor of the
// smallest candidate, so every (hi, i) maps to a non-negative local row; rows outside the
// plane are staged as zeros.
template <typename scalar_t, bool kSmem>
__global__ void __launch_bounds__(kThreads)
    backward_input_nchw_kernel(DepthwiseParams p, const scalar_t* __restrict__ gy,
                               const scalar_t* __restrict__ w, scalar_t* __restrict__ gx,
                               int64_t tiles_w, int64_t tiles_h, int gy_tile_h, int gy_tile_w) {
  using acc_t = acc_type<scalar_t>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int taps = static_cast<int>(p.kernel_h * p.kernel_w);
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThreadsX + tx;

  int64_t blk = blockIdx.x;
  const int64_t tw = blk % tiles_w;
  blk /= tiles_w;
  const int64_t th = blk % tiles_h;
  const int64_t plane = blk / tiles_h;  // n * C + c
  const int64_t n = plane / p.channels, c = plane % p.channels;
  const int64_t hi0 = th * kTileH, wi0 = tw * kTileW;
  const int64_t ho_lo = floor_div(hi0 + p.pad_top - (p.kernel_h - 1) * p.dilation_h, p.stride_h);
  const int64_t wo_lo = floor_div(wi0 + p.pad_left - (p.kernel_w - 1) * p.dilation_w, p.stride_w);
  const int64_t wi = wi0 + tx;

  acc_t* s_w = reinterpret_cast<acc_t*>(smem_raw);
  acc_t* s_gy = s_w + taps;
  acc_t sum[kRowsPerThread];
#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) sum[r] = acc_t(0);

  for (int64_t m = 0; m < p.multiplier; ++m) {
    const int64_t oc = c * p.multiplier + m;
    const scalar_t* gp = gy + (n * (p.channels * p.multiplier) + oc) * p.out_h * p.out_w;
    const scalar_t* wp = w + oc * taps;
    if (kSmem) {
      if (m > 0) __syncthreads();  // everyone is done with the previous channel's tile
      for (int t = tid; t < taps; t += kThreads) s_w[t] = static_cast<acc_t>(wp[t]);
      const int elems = gy_tile_h * gy_tile_w;
      for (int e = tid; e < elems; e += kThreads) {
        const int64_t ho = ho_lo + e / gy_tile_w, wo = wo_lo + e % gy_tile_w;
        const bool in = ho >= 0 && ho < p.out_h && wo >= 0 && wo < p.out_w;
        s_gy[e] = in ? static_cast<acc_t>(gp[ho * p.out_w + wo]) : acc_t(0);
      }
      __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int64_t hi = hi0 + ty + r * kThreadsY;
      if (hi >= p.in_h || wi >= p.in_w) continue;
      acc_t s = acc_t(0);
      for (int i = 0; i < p.kernel_h; ++i) {
        const int64_t th_ = hi + p.pad_top - i * p.dilation_h;  // = ho * stride_h if it exists
        if (kSmem) {
          const int64_t t = th_ - ho_lo * p.stride_h;  // >= 0 by the choice of ho_lo
          if (t % p.stride_h != 0) continue;
          const acc_t* row = s_gy + (t / p.stride_h) * gy_tile_w;
          for (int j = 0; j < p.kernel_w; ++j) {
            const int64_t u = wi + p.pad_left - j * p.dilation_w - wo_lo * p.stride_w;
            if (u % p.stride_w != 0) continue;
            s += row[u / p.stride_w] * s_w[i * p.kernel_w + j];
          }
        } else {
          if (th_ < 0 || th_ % p.stride_h != 0) continue;
          const int64_t ho = th_ / p.stride_h;
          if (ho >= p.out_h) continue;
          for (int j = 0; j < p.kernel_w; ++j) {
            const int64_t tw_ = wi + p.pad_left - j * p.dilation_w;
            if (tw_ < 0 || tw_ % p.stride_w != 0) continue;
            const int64_t wo = tw_ / p.stride_w;
            if (wo >= p.out_w) continue;
            s += static_cast<acc_t>(gp[ho * p.out_w + wo]) *
                 static_cast<acc_t>(wp[i * p.kernel_w + j]);
          }
        }
      }
      sum[r] += s;
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) {
    const int64_t hi = hi0 + ty + r * kThreadsY;
    if (hi < p.in_h && wi < p.in_w)
      gx[plane * p.in_h * p.in_w + hi * p.in_w + wi] = static_cast<scalar_t>(sum[r]);
  }
}

// ------------------------------------------------------------------ channels_last
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

// ------------------------------------------------------------------ weight gradient
// grad_w[oc, i, j] = sum over n, ho, wo of gy[n, oc, ho, wo] * x[n, c, ho*sh + i*dh - pt, ...].
// Stage 1: block (oc, chunk) walks a fixed range of 8x32 output tiles of channel oc, stages the
// tile of gy and its input window in shared memory (each element read once per tile) and
// accumulates taps in registers: thread `slot` owns taps slot, slot + TS, ... (TS = min(taps,
// 256)); when there are fewer than 256 taps the remaining threads split the tile's pixels into
// G = 256 / TS lanes. Lanes are summed in a fixed order and the block's partial sum goes to
// workspace[oc][chunk][tap]. Stage 2 sums the chunks in order. No atomics: the result depends
// only on the shapes and the device's SM count, so repeated runs are bitwise equal.
constexpr int kBwTileH = 8, kBwTileW = 32, kBwPixels = kBwTileH * kBwTileW;
constexpr int kBwThreads = 256, kTapsPerThread = 4;

template <typename scalar_t, bool kSmem>
__global__ void __launch_bounds__(kBwThreads)
    backward_weight_partial_kernel(DepthwiseParams p, const scalar_t* __restrict__ gy,
                                   const scalar_t* __restrict__ x,
                                   acc_type<scalar_t>* __restrict__ workspace, int64_t chunks,
                                   int64_t tiles_w, int64_t tiles_h, int in_tile_h, int in_tile_w) {
  using acc_t = acc_type<scalar_t>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int tid = threadIdx.x;
  const int taps = static_cast<int>(p.kernel_h * p.kernel_w);
  const int ts = taps < kBwThreads ? taps : kBwThreads;
  const int lanes = kBwThreads / ts;
  const int slot = tid % ts, lane = tid / ts;
  const bool active = lane < lanes;
  const int group_taps = ts * kTapsPerThread;

  const int64_t oc = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t c = oc / p.multiplier, cout = (p.channels * p.multiplier);
  const int64_t tiles_per_image = tiles_w * tiles_h, units = p.batch * tiles_per_image;
  const int64_t u_begin = chunk * units / chunks, u_end = (chunk + 1) * units / chunks;

  acc_t* s_gy = reinterpret_cast<acc_t*>(smem_raw);  // kBwPixels
  acc_t* s_red = s_gy + kBwPixels;                   // lanes * group_taps <= 256 * 4
  acc_t* s_x = s_red + kBwThreads * kTapsPerThread;  // in_tile_h * in_tile_w (kSmem)

  for (int tap_base = 0; tap_base < taps; tap_base += group_taps) {
    acc_t acc[kTapsPerThread];
    int ti[kTapsPerThread], tj[kTapsPerThread];
#pragma unroll
    for (int q = 0; q < kTapsPerThread; ++q) {
      acc[q] = acc_t(0);
      const int tap = tap_base + q * ts + slot;
      ti[q] = tap / static_cast<int>(p.kernel_w);
      tj[q] = tap % static_cast<int>(p.kernel_w);
    }
    for (int64_t u = u_begin; u < u_end; ++u) {
      const int64_t n = u / tiles_per_image, t = u % tiles_per_image;
      const int64_t oh0 = (t / tiles_w) * kBwTileH, ow0 = (t % tiles_w) * kBwTileW;
      const int64_t ih0 = oh0 * p.stride_h - p.pad_top, iw0 = ow0 * p.stride_w - p.pad_left;
      const scalar_t* gp = gy + (n * cout + oc) * p.out_h * p.out_w;
      const scalar_t* xp = x + (n * p.channels + c) * p.in_h * p.in_w;
      __syncthreads();  // the previous tile is no longer read
      {
        const int64_t oh = oh0 + tid / kBwTileW, ow = ow0 + tid % kBwTileW;
        s_gy[tid] =
            (oh < p.out_h && ow < p.out_w) ? static_cast<acc_t>(gp[oh * p.out_w + ow]) : acc_t(0);
      }
      if (kSmem) {
        const int elems = in_tile_h * in_tile_w;
        for (int e = tid; e < elems; e += kBwThreads) {
          const int64_t ih = ih0 + e / in_tile_w, iw = iw0 + e % in_tile_w;
          const bool in = ih >= 0 && ih < p.in_h && iw >= 0 && iw < p.in_w;
          s_x[e] = in ? static_cast<acc_t>(xp[ih * p.in_w + iw]) : acc_t(0);
        }
      }
      __syncthreads();
      if (!active) continue;
#pragma unroll
      for (int q = 0; q < kTapsPerThread; ++q) {
        if (tap_base + q * ts + slot >= taps) continue;
        const int oi = ti[q] * static_cast<int>(p.dilation_h);
        const int oj = tj[q] * static_cast<int>(p.dilation_w);
        acc_t a = acc_t(0);
        for (int px = lane; px < kBwPixels; px += lanes) {
          const int pr = px / kBwTileW, pc = px % kBwTileW;
          const acc_t g = s_gy[px];
          if (kSmem) {
            a += g * s_x[(pr * p.stride_h + oi) * in_tile_w + pc * p.stride_w + oj];
          } else {
            const int64_t ih = ih0 + pr * p.stride_h + oi, iw = iw0 + pc * p.stride_w + oj;
            if (ih >= 0 && ih < p.in_h && iw >= 0 && iw < p.in_w)
              a += g * static_cast<acc_t>(xp[ih * p.in_w + iw]);
          }
        }
        acc[q] += a;
      }
    }
    // Fixed-order reduction over lanes.
    __syncthreads();
    if (active) {
#pragma unroll
      for (int q = 0; q < kTapsPerThread; ++q) s_red[lane * group_taps + q * ts + slot] = acc[q];
    }
    __syncthreads();
    for (int t = tid; t < group_taps; t += kBwThreads) {
      const int tap = tap_base + t;
      if (tap >= taps) continue;
      acc_t s = acc_t(0);
      for (int l = 0; l < lanes; ++l) s += s_red[l * group_taps + t];
      workspace[(oc * chunks + chunk) * taps + tap] = s;
    }
  }
}

template <typename scalar_t>
__global__ void sum_chunks_kernel(const acc_type<scalar_t>* __restrict__ workspace,
                                  scalar_t* __restrict__ out, int64_t rows, int64_t chunks,
                                  int64_t cols) {
  using acc_t = acc_type<scalar_t>;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < rows * cols;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = idx / cols, col = idx % cols;
    acc_t s = acc_t(0);
    for (int64_t k = 0; k < chunks; ++k) s += workspace[(r * chunks + k) * cols + col];
    out[idx] = static_cast<scalar_t>(s);
  }
}

// ------------------------------------------------------------------ host side
int vector_width(const DepthwiseParams& p, size_t elem_size,
                 std::initializer_list<const void*> ptrs) {
  const int vec = static_cast<int>(16 / elem_size);
  if (p.multiplier != 1 || p.channels % vec != 0) return 1;
  for (const void* ptr : ptrs)
    if (ptr != nullptr && reinterpret_cast<uintptr_t>(ptr) % 16 != 0) return 1;
  return vec;
}

unsigned int elementwise_blocks(int64_t total, int device) {
  const int64_t want = ceil_div(total, 256);
  const int64_t cap = int64_t(multiprocessor_count(device)) * 32;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min(want, cap)));
}

// Kernels whose work items are counted in 32 bits (cheap index math) take the batch in
// launches of whole images whose items fit: calls launch(first_image, items, blocks) for each.
template <typename F>
void for_each_launch(int64_t batch, int64_t items_per_image, int threads, const char* op,
                     F&& launch) {
  constexpr int64_t kMaxItems = std::numeric_limits<int32_t>::max();
  TORCH_CHECK(items_per_image <= kMaxItems, op, ": one image is too large for the CUDA kernels (",
              items_per_image, " work items)");
  const int64_t images = std::max<int64_t>(1, kMaxItems / std::max<int64_t>(items_per_image, 1));
  for (int64_t n0 = 0; n0 < batch; n0 += images) {
    const auto items = static_cast<uint32_t>(std::min(images, batch - n0) * items_per_image);
    launch(n0, items, grid_size(ceil_div(items, threads), op));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

// The unrolled window kernels index rows and columns in 32 bits and know K and S at compile time.
int window_kernel_size(const DepthwiseParams& p) {
  constexpr int64_t kLimit = int64_t(1) << 30;
  const bool small = p.in_h < kLimit && p.in_w < kLimit && p.out_h < kLimit && p.out_w < kLimit &&
                     std::abs(p.pad_top) < kLimit && std::abs(p.pad_left) < kLimit;
  const bool square = p.kernel_h == p.kernel_w && p.stride_h == p.stride_w && p.dilation_h == 1 &&
                      p.dilation_w == 1 && (p.stride_h == 1 || p.stride_h == 2);
  const bool templated = p.kernel_h == 3 || p.kernel_h == 5 || p.kernel_h == 7;
  return small && square && templated ? static_cast<int>(p.kernel_h) : 0;
}

// Calls f(std::integral_constant<int, K>, std::integral_constant<int, S>) for the window
// kernel's K and S (window_kernel_size(p) must be non-zero).
template <typename F>
void with_window_shape(const DepthwiseParams& p, F&& f) {
  using std::integral_constant;
  const int k = window_kernel_size(p);
  const bool s2 = p.stride_h == 2;
  if (k == 3)
    s2 ? f(integral_constant<int, 3>(), integral_constant<int, 2>())
       : f(integral_constant<int, 3>(), integral_constant<int, 1>());
  else if (k == 5)
    s2 ? f(integral_constant<int, 5>(), integral_constant<int, 2>())
       : f(integral_constant<int, 5>(), integral_constant<int, 1>());
  else
    s2 ? f(integral_constant<int, 7>(), integral_constant<int, 2>())
       : f(integral_constant<int, 7>(), integral_constant<int, 1>());
}

// y (NCHW) = depthwise forward of x (NCHW); also the stride-1 input gradient (see callers).
template <typename scalar_t>
void launch_forward_nchw(const DepthwiseParams& p, const scalar_t* x, const scalar_t* w,
                         const scalar_t* bias, scalar_t* y, cudaStream_t stream, const char* op) {
  if (window_kernel_size(p) == 0) {
    using acc_t = acc_type<scalar_t>;
    const int64_t cout = p.channels * p.multiplier;
    const int64_t tiles_h = ceil_div(p.out_h, kTileH), tiles_w = ceil_div(p.out_w, kTileW);
    const int64_t in_tile_h = (kTileH - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
    const int64_t in_tile_w = (kTileW - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
    const size_t smem = size_t(p.kernel_h * p.kernel_w + in_tile_h * in_tile_w) * sizeof(acc_t);
    const dim3 threads(kThreadsX, kThreadsY);
    // One block per tile; the batch in launches whose grids fit (blocks counted as items).
    const int64_t blocks_per_image = cout * tiles_h * tiles_w;
    for_each_launch(
        p.batch, blocks_per_image, 1, op, [&](int64_t n0, uint32_t items, unsigned int blocks) {
          DepthwiseParams q = p;
          q.batch = items / blocks_per_image;
          const scalar_t* xq = x + n0 * p.channels * p.in_h * p.in_w;
          scalar_t* yq = y + n0 * cout * p.out_h * p.out_w;
          if (smem <= kMaxDynamicSmem) {
            forward_nchw_kernel<scalar_t, true><<<blocks, threads, smem, stream>>>(
                q, xq, w, bias, yq, tiles_w, tiles_h, static_cast<int>(in_tile_h),
                static_cast<int>(in_tile_w));
          } else {
            forward_nchw_kernel<scalar_t, false>
                <<<blocks, threads, 0, stream>>>(q, xq, w, bias, yq, tiles_w, tiles_h, 0, 0);
          }
        });
    return;
  }
  const int64_t row_groups = ceil_div(p.out_h, kWindowRows);
  const int64_t per_image = p.channels * p.multiplier * row_groups * p.out_w;
  const auto rg = static_cast<uint32_t>(row_groups);
  for_each_launch(p.batch, per_image, kWindowThreads, op,
                  [&](int64_t n0, uint32_t items, unsigned int blocks) {
                    with_window_shape(p, [&](auto k, auto s) {
                      forward_nchw_window_kernel<scalar_t, decltype(k)::value, decltype(s)::value>
                          <<<blocks, kWindowThreads, 0, stream>>>(p, x, w, bias, y, n0, items, rg);
                    });
                  });
}

// channels_last forward: the window kernel for 16-byte channel vectors and K x K in {3, 5, 7}
// at stride 1 or 2, else one thread per output pixel and group of channels.
template <typename scalar_t>
void launch_forward_nhwc(const DepthwiseParams& p, const scalar_t* x, const scalar_t* w,
                         const scalar_t* bias, scalar_t* y, cudaStream_t stream, const char* op) {
  const int vec = vector_width(p, sizeof(scalar_t), {x, w, bias, y});
  constexpr int kVec = static_cast<int>(16 / sizeof(scalar_t));
  if (vec == kVec && window_kernel_size(p) != 0) {
    const int64_t pixel_groups = ceil_div(p.out_w, kNhwcWindowPixels);
    const int64_t per_image = p.out_h * pixel_groups * (p.channels / kVec);
    for_each_launch(
        p.batch, per_image, kNhwcWindowThreads, op,
        [&](int64_t n0, uint32_t items, unsigned int blocks) {
          with_window_shape(p, [&](auto k, auto s) {
            forward_nhwc_window_kernel<scalar_t, decltype(k)::value, decltype(s)::value, kVec>
                <<<blocks, kNhwcWindowThreads, 0, stream>>>(p, x, w, bias, y, n0, items,
                                                            static_cast<uint32_t>(pixel_groups));
          });
        });
    return;
  }
  const int64_t per_image = p.out_h * p.out_w * ((p.channels * p.multiplier) / vec);
  auto launch = [&](auto vec_tag) {
    constexpr int V = decltype(vec_tag)::value;
    for_each_launch(p.batch, per_image, kNhwcThreads, op,
                    [&](int64_t n0, uint32_t items, unsigned int blocks) {
                      forward_nhwc_kernel<scalar_t, V>
                          <<<blocks, kNhwcThreads, 0, stream>>>(p, x, w, bias, y, n0, items);
                    });
  };
  if (vec == 8)
    launch(std::integral_constant<int, 8>());
  else if (vec == 4)
    launch(std::integral_constant<int, 4>());
  else if (vec == 2)
    launch(std::integral_constant<int, 2>());
  else
    launch(std::integral_constant<int, 1>());
}

// The stride-1 input gradient as a forward: grad_input = forward(grad_output, taps flipped)
// with padding (k - 1) * dilation - pad (may be negative); input and output sizes swap roles.
DepthwiseParams flipped_forward_params(const DepthwiseParams& p) {
  DepthwiseParams q = p;
  std::swap(q.in_h, q.out_h);
  std::swap(q.in_w, q.out_w);
  q.pad_top = (p.kernel_h - 1) * p.dilation_h - p.pad_top;
  q.pad_left = (p.kernel_w - 1) * p.dilation_w - p.pad_left;
  return q;
}

bool aligned_to(const at::Tensor& t, size_t bytes) {
  return reinterpret_cast<uintptr_t>(t.const_data_ptr()) % bytes == 0;
}

// The channels_last weight gradient read in place (depthwise_nhwc_backward_weight.cuh) when the
// shape is one it wins on; false (nothing written) otherwise. Measured on an H200 (N=32,
// benchmarks/results/cuda-h200-path-probes.md): 1.3-2.9x faster than the NCHW route for 3x3 on
// planes of 14x14 and up, 0.73-1.13x on 7x7 output planes, 0.30-0.34x for 7x7 kernels (49 sums
// per channel in registers leave one channel per thread; the NCHW window kernel does better).
template <typename scalar_t>
bool backward_weight_nhwc(const DepthwiseParams& p, const at::Tensor& grad_output,
                          const at::Tensor& input, at::Tensor& grad_weight, cudaStream_t stream,
                          const char* op) {
  const int64_t pixels = p.batch * p.out_h * p.out_w;
  if (p.multiplier != 1 || p.kernel_h != 3 || p.kernel_w != 3 || p.out_h * p.out_w < 100 ||
      pixels > std::numeric_limits<int32_t>::max())
    return false;
  bool done = false;
  auto run = [&](auto k_tag) {
    using acc_t = acc_type<scalar_t>;
    constexpr int K = decltype(k_tag)::value;
    constexpr int VEC = nhwc_weight_vec<scalar_t, K>();
    if (p.channels % VEC != 0) return;
    const at::Tensor x = input.contiguous(kChannelsLast);
    const at::Tensor gy = grad_output.contiguous(kChannelsLast);
    if (!aligned_to(x, sizeof(scalar_t) * VEC) || !aligned_to(gy, sizeof(scalar_t) * VEC)) return;
    // At most 64 channel groups per block (at least 4 pixel lanes), enough blocks to fill the
    // GPU, at least 16 pixels per lane so the reduction and workspace stay small next to the
    // sums. A pure function of shape and device: the summation order never changes between runs.
    const int64_t groups = p.channels / VEC;
    const int64_t per_block = std::min<int64_t>(groups, 64);
    const int64_t channel_blocks = ceil_div(groups, per_block);
    const int64_t lanes = kNhwcWeightThreads / per_block;
    const int64_t target = int64_t(multiprocessor_count(input.get_device())) * 8;
    const int64_t chunks = std::max<int64_t>(
        1, std::min(ceil_div(target, channel_blocks), ceil_div(pixels, lanes * 16)));
    at::Tensor workspace = at::empty({chunks, K * K, p.channels},
                                     input.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    backward_weight_nhwc_kernel<scalar_t, K, VEC>
        <<<grid_size(channel_blocks * chunks, op), kNhwcWeightThreads, 0, stream>>>(
            p, gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
            workspace.data_ptr<acc_t>(), static_cast<uint32_t>(chunks),
            static_cast<uint32_t>(pixels), static_cast<uint32_t>(per_block));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const int64_t total = p.channels * K * K;
    sum_chunks_nhwc_kernel<scalar_t>
        <<<elementwise_blocks(total, input.get_device()), 256, 0, stream>>>(
            workspace.data_ptr<acc_t>(), grad_weight.data_ptr<scalar_t>(), p.channels, K * K,
            chunks);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    done = true;
  };
  run(std::integral_constant<int, 3>());
  return done;
}

at::Tensor forward_impl(const at::Tensor& input, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                        at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::depthwise_conv2d";
  const auto call =
      prepare_depthwise_forward(input, weight, bias, stride, padding, dilation, empty_tensor);
  at::Tensor output = call.output;
  if (output.numel() == 0) return output;
  c10::cuda::CUDAGuard guard(input.device());
  const auto& p = call.params;
  const auto fmt = call.format;
  const at::Tensor& b = call.bias;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "depthwise_conv2d_cuda", [&] {
        const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
        scalar_t* y = output.data_ptr<scalar_t>();
        if (fmt == kChannelsLast) {
          const at::Tensor x = input.contiguous(kChannelsLast);
          const at::Tensor w = weight.permute({2, 3, 0, 1}).contiguous();  // (kH, kW, Cout)
          launch_forward_nhwc(p, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), bp, y,
                              stream, op);
        } else {
          const at::Tensor x = input.contiguous();
          const at::Tensor w = weight.contiguous();
          launch_forward_nchw(p, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), bp, y,
                              stream, op);
        }
      });
  return output;
}

at::Tensor backward_input_impl(const at::Tensor& grad_output, const at::Tensor& weight,
                               c10::SymIntArrayRef input_size, at::IntArrayRef stride,
                               at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::_depthwise_conv2d_backward_input";
  const auto call = prepare_depthwise_backward_input(grad_output, weight, input_size, stride,
                                                     padding, dilation, empty_tensor);
  at::Tensor grad_input = call.grad_input;
  if (grad_input.numel() == 0) return grad_input;
  c10::cuda::CUDAGuard guard(grad_output.device());
  const auto& p = call.params;
  const auto fmt = call.format;
  const int64_t taps = p.kernel_h * p.kernel_w;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "depthwise_backward_input_cuda", [&] {
        using acc_t = acc_type<scalar_t>;
        scalar_t* gx = grad_input.data_ptr<scalar_t>();
        if (grad_output.numel() == 0) {  // no output pixel: every input gradient is zero
          grad_input.zero_();
          return;
        }
        if (fmt == kChannelsLast && p.stride_h == 1 && p.stride_w == 1 && p.multiplier == 1) {
          // As for NCHW below: the forward of grad_output with flipped taps.
          const at::Tensor gy = grad_output.contiguous(kChannelsLast);
          const at::Tensor w = weight.flip({2, 3}).permute({2, 3, 0, 1}).contiguous();
          launch_forward_nhwc<scalar_t>(flipped_forward_params(p), gy.const_data_ptr<scalar_t>(),
                                        w.const_data_ptr<scalar_t>(), nullptr, gx, stream, op);
        } else if (fmt == kChannelsLast) {
          const at::Tensor gy = grad_output.contiguous(kChannelsLast);
          const at::Tensor w = weight.permute({2, 3, 0, 1}).contiguous();  // (kH, kW, Cout)
          const scalar_t* gp = gy.const_data_ptr<scalar_t>();
          const scalar_t* wp = w.const_data_ptr<scalar_t>();
          const int vec = vector_width(p, sizeof(scalar_t), {gp, wp, gx});
          const int64_t per_image = p.in_h * p.in_w * (p.channels / vec);
          auto launch = [&](auto vec_tag) {
            constexpr int V = decltype(vec_tag)::value;
            for_each_launch(p.batch, per_image, kNhwcThreads, op,
                            [&](int64_t n0, uint32_t items, unsigned int blocks) {
                              backward_input_nhwc_kernel<scalar_t, V>
                                  <<<blocks, kNhwcThreads, 0, stream>>>(p, gp, wp, gx, n0, items);
                            });
          };
          if (vec == 8)
            launch(std::integral_constant<int, 8>());
          else if (vec == 4)
            launch(std::integral_constant<int, 4>());
          else if (vec == 2)
            launch(std::integral_constant<int, 2>());
          else
            launch(std::integral_constant<int, 1>());
        } else if (p.stride_h == 1 && p.stride_w == 1 && p.multiplier == 1) {
          const at::Tensor gy = grad_output.contiguous();
          const at::Tensor w = weight.flip({2, 3}).contiguous();
          launch_forward_nchw<scalar_t>(flipped_forward_params(p), gy.const_data_ptr<scalar_t>(),
                                        w.const_data_ptr<scalar_t>(), nullptr, gx, stream, op);
        } else if (p.stride_h == 2 && p.multiplier == 1 && window_kernel_size(p) != 0) {
          const at::Tensor gy = grad_output.contiguous();
          const at::Tensor w = weight.contiguous();
          const int64_t per_image = p.channels * ceil_div(p.in_h, kWindowRows) * p.in_w;
          const auto rg = static_cast<uint32_t>(ceil_div(p.in_h, kWindowRows));
          const int phase = static_cast<int>(((p.kernel_h - 1 - p.pad_top) % 2 + 2) % 2);
          for_each_launch(p.batch, per_image, kWindowThreads, op,
                          [&](int64_t n0, uint32_t items, unsigned int blocks) {
                            with_window_shape(p, [&](auto k, auto) {
                              constexpr int K = decltype(k)::value;
                              auto kernel =
                                  phase == 0 ? backward_input_nchw_window_kernel<scalar_t, K, 2, 0>
                                             : backward_input_nchw_window_kernel<scalar_t, K, 2, 1>;
                              kernel<<<blocks, kWindowThreads, 0, stream>>>(
                                  p, gy.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                                  gx, n0, items, rg);
                            });
                          });
        } else {
          const at::Tensor gy = grad_output.contiguous();
          const at::Tensor w = weight.contiguous();
          const int64_t tiles_h = ceil_div(p.in_h, kTileH), tiles_w = ceil_div(p.in_w, kTileW);
          const unsigned int blocks = grid_size(p.batch * p.channels * tiles_h * tiles_w, op);
          // Upper bound on the distinct grad_output rows one tile can touch (see the kernel).
          const int64_t gy_tile_h =
              ((kTileH - 1) + (p.kernel_h - 1) * p.dilation_h) / p.stride_h + 2;
          const int64_t gy_tile_w =
              ((kTileW - 1) + (p.kernel_w - 1) * p.dilation_w) / p.stride_w + 2;
          const size_t smem = size_t(taps + gy_tile_h * gy_tile_w) * sizeof(acc_t);
          const dim3 threads(kThreadsX, kThreadsY);
          if (smem <= kMaxDynamicSmem) {
            backward_input_nchw_kernel<scalar_t, true><<<blocks, threads, smem, stream>>>(
                p, gy.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), gx, tiles_w,
                tiles_h, static_cast<int>(gy_tile_h), static_cast<int>(gy_tile_w));
          } else {
            backward_input_nchw_kernel<scalar_t, false><<<blocks, threads, 0, stream>>>(
                p, gy.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), gx, tiles_w,
                tiles_h, 0, 0);
          }
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      });
  return grad_input;
}

at::Tensor backward_weight_impl(const at::Tensor& grad_output, const at::Tensor& input,
                                at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::_depthwise_conv2d_backward_weight";
  const auto call =
      prepare_depthwise_backward_weight(grad_output, input, kernel_size, stride, padding, dilation);
  c10::cuda::CUDAGuard guard(input.device());
  const auto& p = call.params;
  const int64_t cout = (p.channels * p.multiplier), taps = p.kernel_h * p.kernel_w;
  at::Tensor grad_weight = at::empty({cout, 1, p.kernel_h, p.kernel_w}, input.options());
  if (grad_weight.numel() == 0) return grad_weight;
  if (grad_output.numel() == 0 || input.numel() == 0) return grad_weight.zero_();
  TORCH_CHECK(taps <= std::numeric_limits<int32_t>::max() / 4, op, ": kernel of ", p.kernel_h, "x",
              p.kernel_w, " taps is too large");
  const int device = input.get_device();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  if (call.format == kChannelsLast) {
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, input.scalar_type(), "depthwise_backward_weight_nhwc_cuda", [&] {
          done = backward_weight_nhwc<scalar_t>(p, grad_output, input, grad_weight, stream, op);
        });
    if (done) return grad_weight;
  }
  // Other cases reduce over NCHW planes: channels_last tensors are converted first.
  const at::Tensor x = input.contiguous();
  const at::Tensor gy = grad_output.contiguous();
  // Enough blocks to fill the GPU a few times over; the chunking is a pure function of shape
  // and device, so the summation order (and result) never changes between runs.
  const int64_t target_blocks = int64_t(multiprocessor_count(device)) * 8;
  const auto chunks_for = [&](int64_t units) {
    return std::max<int64_t>(1, std::min(units, ceil_div(target_blocks, cout)));
  };
  const int64_t window_rows = ceil_div(p.out_h, kWindowRows);
  const int64_t window_items = p.batch * window_rows * p.out_w;  // per channel
  const bool window =
      window_kernel_size(p) != 0 && window_items <= std::numeric_limits<int32_t>::max();
  const int64_t tiles_h = ceil_div(p.out_h, kBwTileH), tiles_w = ceil_div(p.out_w, kBwTileW);
  const int64_t chunks = window ? chunks_for(ceil_div(window_items, kWindowThreads))
                                : chunks_for(p.batch * tiles_h * tiles_w);
  const unsigned int blocks = grid_size(cout * chunks, op);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "depthwise_backward_weight_cuda", [&] {
        using acc_t = acc_type<scalar_t>;
        at::Tensor workspace = at::empty(
            {cout, chunks, taps}, input.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
        acc_t* ws = workspace.data_ptr<acc_t>();
        if (window) {
          with_window_shape(p, [&](auto k, auto s) {
            backward_weight_nchw_window_kernel<scalar_t, decltype(k)::value, decltype(s)::value>
                <<<blocks, kWindowThreads, 0, stream>>>(
                    p, gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), ws,
                    static_cast<uint32_t>(chunks), static_cast<uint32_t>(window_items),
                    static_cast<uint32_t>(window_rows));
          });
        } else {
          const int64_t in_tile_h =
              (kBwTileH - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
          const int64_t in_tile_w =
              (kBwTileW - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
          const size_t base = size_t(kBwPixels + kBwThreads * kTapsPerThread) * sizeof(acc_t);
          const size_t smem = base + size_t(in_tile_h * in_tile_w) * sizeof(acc_t);
          if (smem <= kMaxDynamicSmem) {
            backward_weight_partial_kernel<scalar_t, true><<<blocks, kBwThreads, smem, stream>>>(
                p, gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), ws, chunks, tiles_w,
                tiles_h, static_cast<int>(in_tile_h), static_cast<int>(in_tile_w));
          } else {
            backward_weight_partial_kernel<scalar_t, false><<<blocks, kBwThreads, base, stream>>>(
                p, gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), ws, chunks, tiles_w,
                tiles_h, 0, 0);
          }
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        const int64_t total = cout * taps;
        sum_chunks_kernel<scalar_t><<<elementwise_blocks(total, device), 256, 0, stream>>>(
            ws, grad_weight.data_ptr<scalar_t>(), cout, chunks, taps);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return grad_weight;
}

}  // namespace

at::Tensor depthwise_conv2d_cuda(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 at::IntArrayRef padding, at::IntArrayRef dilation) {
  return forward_impl(input, weight, bias, stride, padding, dilation);
}

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) {
  m.impl("depthwise_conv2d", depthwise_conv2d_cuda);
  m.impl("_depthwise_conv2d_backward_input", backward_input_impl);
  m.impl("_depthwise_conv2d_backward_weight", backward_weight_impl);
}

}  // namespace cuda
}  // namespace sepconv
