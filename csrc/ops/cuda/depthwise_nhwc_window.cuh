// channels_last depthwise forward, K x K in {3, 5, 7}, stride S in {1, 2}, dilation 1,
// multiplier 1, C a multiple of VEC (16-byte vectors): one thread per VEC channels and PIX
// consecutive output pixels of a row. For each tap row it loads the row's K weight vectors
// once, then walks the (PIX - 1) * S + K input pixels under its outputs, each loaded once and
// applied to every output pixel that uses it (a compile-time table): 2.7x fewer loads than one
// thread per output pixel at 3x3. Consecutive threads take consecutive channel groups, then
// consecutive pixel groups, so a warp's loads are contiguous runs of the row.
// Also runs the stride-1 input gradient (the forward of grad_output with flipped taps).
#pragma once
#include <cstdint>

#include "cpu/params.h"
#include "cuda_utils.cuh"
#include "depthwise_dispatch.cuh"

namespace sepconv {
namespace cuda {

constexpr int kNhwcWindowThreads = 256;
constexpr int kNhwcWindowPixels = 4;  // PIX

// Work items (image, output row, pixel group, channel group), channel group fastest, counted in
// 32 bits per launch from `first_image`.
template <typename scalar_t, int K, int S, int VEC>
__global__ void __launch_bounds__(kNhwcWindowThreads)
    forward_nhwc_window_kernel(cpu::DepthwiseParams p, const scalar_t* __restrict__ x,
                               const scalar_t* __restrict__ w, const scalar_t* __restrict__ bias,
                               scalar_t* __restrict__ y, int64_t first_image, uint32_t items,
                               uint32_t pixel_groups) {
  using acc_t = acc_type<scalar_t>;
  using V = Vec<scalar_t, VEC>;
  constexpr int PIX = kNhwcWindowPixels;
  constexpr int E = (PIX - 1) * S + K;  // input pixels under the group's outputs, per row
  const uint32_t item = blockIdx.x * kNhwcWindowThreads + threadIdx.x;
  if (item >= items) return;
  const uint32_t groups = static_cast<uint32_t>(p.channels / VEC);
  const uint32_t g = item % groups;
  uint32_t rest = item / groups;
  const int ow0 = static_cast<int>(rest % pixel_groups) * PIX;
  rest /= pixel_groups;
  const int oh = static_cast<int>(rest % static_cast<uint32_t>(p.out_h));
  const int64_t n = first_image + rest / static_cast<uint32_t>(p.out_h);
  const int64_t c0 = int64_t(g) * VEC, channels = p.channels;
  const int in_h = static_cast<int>(p.in_h), in_w = static_cast<int>(p.in_w);
  const int out_w = static_cast<int>(p.out_w);
  const int iw0 = ow0 * S - static_cast<int>(p.pad_left);

  acc_t acc[PIX][VEC];
  {
    acc_t b[VEC];
    if (bias != nullptr) {
      const V bv = *reinterpret_cast<const V*>(bias + c0);
#pragma unroll
      for (int v = 0; v < VEC; ++v) b[v] = static_cast<acc_t>(bv.v[v]);
    } else {
#pragma unroll
      for (int v = 0; v < VEC; ++v) b[v] = acc_t(0);
    }
#pragma unroll
    for (int q = 0; q < PIX; ++q)
#pragma unroll
      for (int v = 0; v < VEC; ++v) acc[q][v] = b[v];
  }
#pragma unroll
  for (int i = 0; i < K; ++i) {
    const int ih = oh * S - static_cast<int>(p.pad_top) + i;
    if (static_cast<unsigned>(ih) >= static_cast<unsigned>(in_h)) continue;
    acc_t wrow[K][VEC];  // weights are packed tap-major: (K, K, C)
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const V wv = *reinterpret_cast<const V*>(w + int64_t(i * K + j) * channels + c0);
#pragma unroll
      for (int v = 0; v < VEC; ++v) wrow[j][v] = static_cast<acc_t>(wv.v[v]);
    }
    const scalar_t* row = x + (n * in_h + ih) * int64_t(in_w) * channels + c0;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int iw = iw0 + e;
      if (static_cast<unsigned>(iw) >= static_cast<unsigned>(in_w)) continue;
      const V xv = *reinterpret_cast<const V*>(row + int64_t(iw) * channels);
      acc_t xs[VEC];
#pragma unroll
      for (int v = 0; v < VEC; ++v) xs[v] = static_cast<acc_t>(xv.v[v]);
#pragma unroll
      for (int q = 0; q < PIX; ++q) {
        const int j = e - q * S;  // tap column of input pixel e for output pixel q (compile time)
        if (j < 0 || j >= K) continue;
#pragma unroll
        for (int v = 0; v < VEC; ++v) acc[q][v] += xs[v] * wrow[j][v];
      }
    }
  }
  scalar_t* yp = y + ((n * p.out_h + oh) * int64_t(out_w) + ow0) * channels + c0;
#pragma unroll
  for (int q = 0; q < PIX; ++q) {
    if (ow0 + q >= out_w) break;
    V out;
#pragma unroll
    for (int v = 0; v < VEC; ++v) out.v[v] = static_cast<scalar_t>(acc[q][v]);
    *reinterpret_cast<V*>(yp + int64_t(q) * channels) = out;
  }
}

// Host: y = the channels_last forward on this kernel, for 16-byte channel vectors (VEC =
// 16 / sizeof(scalar_t)) and the shapes window_kernel_size (path_policy.h) accepts.
template <typename scalar_t>
void launch_forward_nhwc_window(const cpu::DepthwiseParams& p, const scalar_t* x, const scalar_t* w,
                                const scalar_t* bias, scalar_t* y, cudaStream_t stream,
                                const char* op) {
  constexpr int kVec = static_cast<int>(16 / sizeof(scalar_t));
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
}

}  // namespace cuda
}  // namespace sepconv
