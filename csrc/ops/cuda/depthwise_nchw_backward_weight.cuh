// NCHW depthwise weight gradient over shared-memory tiles, any geometry and multiplier, and the
// in-order sum of the partial sums both NCHW weight-gradient kernels write (this file's tiles and
// backward_weight_nchw_window_kernel of depthwise_nchw_window.cuh): a deterministic two-stage
// reduction, see below. launch_backward_weight_nchw runs either (path_policy.h picks).
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstdint>

#include "cpu/params.h"
#include "cuda_utils.cuh"
#include "depthwise_nchw_window.cuh"
#include "path_policy.h"

namespace sepconv {
namespace cuda {

using cpu::DepthwiseParams;

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

// Host: grad_weight (Cout, 1, kH, kW) from gy and x (both NCHW contiguous): stage 1 on the
// register-window kernel (`window`: DepthwiseBackwardWeightPath::kNchwWindow) or the tiles, into
// workspace[oc][chunk][tap], then sum_chunks_kernel.
template <typename scalar_t>
void launch_backward_weight_nchw(const DepthwiseParams& p, bool window, const scalar_t* gy,
                                 const scalar_t* x, at::Tensor& grad_weight,
                                 const at::TensorOptions& options, int device, cudaStream_t stream,
                                 const char* op) {
  using acc_t = acc_type<scalar_t>;
  const int64_t cout = (p.channels * p.multiplier), taps = p.kernel_h * p.kernel_w;
  // Enough blocks to fill the GPU a few times over; the chunking is a pure function of shape
  // and device, so the summation order (and result) never changes between runs.
  const int64_t target_blocks = int64_t(multiprocessor_count(device)) * 8;
  const auto chunks_for = [&](int64_t units) {
    return std::max<int64_t>(1, std::min(units, ceil_div(target_blocks, cout)));
  };
  const int64_t tiles_h = ceil_div(p.out_h, kBwTileH), tiles_w = ceil_div(p.out_w, kBwTileW);
  const int64_t chunks = window
                             ? chunks_for(ceil_div(backward_weight_window_items(p), kWindowThreads))
                             : chunks_for(p.batch * tiles_h * tiles_w);
  const unsigned int blocks = grid_size(cout * chunks, op);
  at::Tensor workspace =
      at::empty({cout, chunks, taps}, options.dtype(c10::CppTypeToScalarType<acc_t>::value));
  acc_t* ws = workspace.data_ptr<acc_t>();
  if (window) {
    launch_backward_weight_nchw_window<scalar_t>(p, gy, x, ws, chunks, blocks, stream);
  } else {
    const int64_t in_tile_h = (kBwTileH - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
    const int64_t in_tile_w = (kBwTileW - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
    const size_t base = size_t(kBwPixels + kBwThreads * kTapsPerThread) * sizeof(acc_t);
    const size_t smem = base + size_t(in_tile_h * in_tile_w) * sizeof(acc_t);
    if (fits_dynamic_smem(smem)) {
      backward_weight_partial_kernel<scalar_t, true><<<blocks, kBwThreads, smem, stream>>>(
          p, gy, x, ws, chunks, tiles_w, tiles_h, static_cast<int>(in_tile_h),
          static_cast<int>(in_tile_w));
    } else {
      backward_weight_partial_kernel<scalar_t, false>
          <<<blocks, kBwThreads, base, stream>>>(p, gy, x, ws, chunks, tiles_w, tiles_h, 0, 0);
    }
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t total = cout * taps;
  sum_chunks_kernel<scalar_t><<<elementwise_blocks(total, device), 256, 0, stream>>>(
      ws, grad_weight.data_ptr<scalar_t>(), cout, chunks, taps);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace sepconv
