// NCHW depthwise kernels with a vertical register window: one thread per output column and
// group of V consecutive output rows. Consecutive threads take consecutive columns, so every
// global load of a warp is coalesced along W; each input row of the window is loaded once per
// thread and feeds every output row of the group that uses it (up to V), from registers.
//
//   forward_nchw_window_kernel<K, S>:  K x K taps, stride S, dilation 1, taps in registers.
//   backward_input_nchw_window_kernel<K, S, PHASE>: the input gradient at stride S > 1.
//   backward_weight_nchw_window_kernel<K, S>: every tap of one channel accumulated in registers
//       over the thread's columns, then a fixed-order block reduction (deterministic).
//
// Work items are (image, output channel, row group, column) with the column fastest, counted in
// 32 bits per launch (the host cuts the batch into launches that fit): per-thread index math is
// then a few 32-bit divisions instead of 64-bit ones, which would cost as much as a 3x3 window.
// The launchers at the end take the shapes window_kernel_size (path_policy.h) accepts.
#pragma once
#include <cstdint>

#include "cpu/params.h"
#include "cuda_utils.cuh"
#include "depthwise_dispatch.cuh"
#include "path_policy.h"

namespace sepconv {
namespace cuda {

constexpr int kWindowThreads = 256;
constexpr int kWindowRows = 8;  // V: output rows per thread

// The coordinates of one work item. `item` counts (image, channel, row group, column) inside
// one launch; `first_image` is the launch's first image.
struct WindowItem {
  uint32_t col, row0;  // output column, first output row of the group
  uint32_t channel;    // output channel (forward) or channel of the plane
  int64_t image;
};

__device__ __forceinline__ WindowItem window_item(uint32_t item, uint32_t out_w,
                                                  uint32_t row_groups, uint32_t channels,
                                                  int64_t first_image, int rows) {
  WindowItem it;
  it.col = item % out_w;
  uint32_t t = item / out_w;
  it.row0 = (t % row_groups) * rows;
  t /= row_groups;
  it.channel = t % channels;
  it.image = first_image + t / channels;
  return it;
}

// ------------------------------------------------------------------ forward, K x K, stride S
template <typename scalar_t, int K, int S>
__global__ void __launch_bounds__(kWindowThreads)
    forward_nchw_window_kernel(cpu::DepthwiseParams p, const scalar_t* __restrict__ x,
                               const scalar_t* __restrict__ w, const scalar_t* __restrict__ bias,
                               scalar_t* __restrict__ y, int64_t first_image, uint32_t items,
                               uint32_t row_groups) {
  using acc_t = acc_type<scalar_t>;
  constexpr int V = kWindowRows;
  constexpr int R = (V - 1) * S + K;  // input rows under the group's V output rows
  const uint32_t item = blockIdx.x * kWindowThreads + threadIdx.x;
  if (item >= items) return;
  const uint32_t cout = static_cast<uint32_t>(p.channels * p.multiplier);
  const WindowItem it =
      window_item(item, static_cast<uint32_t>(p.out_w), row_groups, cout, first_image, V);
  const int in_h = static_cast<int>(p.in_h), in_w = static_cast<int>(p.in_w);
  const int64_t in_plane = it.image * p.channels + it.channel / static_cast<uint32_t>(p.multiplier);
  const int ih0 = static_cast<int>(it.row0) * S - static_cast<int>(p.pad_top);
  const int iw0 = static_cast<int>(it.col) * S - static_cast<int>(p.pad_left);

  acc_t wr[K * K];
  const scalar_t* wp = w + int64_t(it.channel) * (K * K);
#pragma unroll
  for (int t = 0; t < K * K; ++t) wr[t] = static_cast<acc_t>(wp[t]);
  const acc_t b0 = bias != nullptr ? static_cast<acc_t>(bias[it.channel]) : acc_t(0);
  acc_t acc[V];
#pragma unroll
  for (int v = 0; v < V; ++v) acc[v] = b0;
  bool col_in[K];
#pragma unroll
  for (int j = 0; j < K; ++j)
    col_in[j] = static_cast<unsigned>(iw0 + j) < static_cast<unsigned>(in_w);

  const scalar_t* xp = x + in_plane * p.in_h * p.in_w;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int ih = ih0 + r;
    if (static_cast<unsigned>(ih) >= static_cast<unsigned>(in_h)) continue;
    const scalar_t* row = xp + int64_t(ih) * in_w + iw0;
    acc_t in[K];
#pragma unroll
    for (int j = 0; j < K; ++j) in[j] = col_in[j] ? static_cast<acc_t>(row[j]) : acc_t(0);
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const int i = r - v * S;  // the tap row that input row r is for output row v (compile time)
      if (i < 0 || i >= K) continue;
#pragma unroll
      for (int j = 0; j < K; ++j) acc[v] += in[j] * wr[i * K + j];
    }
  }
  scalar_t* yp = y + (it.image * cout + it.channel) * p.out_h * p.out_w + it.col;
#pragma unroll
  for (int v = 0; v < V; ++v) {
    const int64_t oh = it.row0 + v;
    if (oh < p.out_h) yp[oh * p.out_w] = static_cast<scalar_t>(acc[v]);
  }
}

// ------------------------------------------------------------------ input gradient, K x K, stride
// S > 1 grad_input[hi] = sum of grad_output[ho] * w[i] over hi = ho * S - pad + i. Work items are
// (image, channel, group of V input rows, input column); multiplier 1. With V a multiple of S,
// the tap row that links the group's first input row to its first grad_output row is the same
// for every group: K - 1 - PHASE with PHASE = (K - 1 - pad_top) mod S, a template argument, so
// the (grad row, input row) -> tap row table is resolved at compile time as in the forward.
// Columns: tap j reaches grad column (wi + pad_left - j) / S when that divides; the others load 0.
template <typename scalar_t, int K, int S, int PHASE>
__global__ void __launch_bounds__(kWindowThreads)
    backward_input_nchw_window_kernel(cpu::DepthwiseParams p, const scalar_t* __restrict__ gy,
                                      const scalar_t* __restrict__ w, scalar_t* __restrict__ gx,
                                      int64_t first_image, uint32_t items, uint32_t row_groups) {
  using acc_t = acc_type<scalar_t>;
  constexpr int V = kWindowRows;
  static_assert(V % S == 0, "row groups must start on the same phase");
  constexpr int kBase = K - 1 - PHASE;        // tap row of (first input row, first grad row)
  constexpr int R = (kBase + V - 1) / S + 1;  // grad rows reaching the group
  const uint32_t item = blockIdx.x * kWindowThreads + threadIdx.x;
  if (item >= items) return;
  const WindowItem it = window_item(item, static_cast<uint32_t>(p.in_w), row_groups,
                                    static_cast<uint32_t>(p.channels), first_image, V);
  const int out_h = static_cast<int>(p.out_h), out_w = static_cast<int>(p.out_w);
  // Exact: row0 + pad_top - (K - 1) + PHASE is a multiple of S.
  const int ho_lo = (static_cast<int>(it.row0) + static_cast<int>(p.pad_top) - (K - 1) + PHASE) / S;
  const int t0 = static_cast<int>(it.col) + static_cast<int>(p.pad_left);

  acc_t wr[K * K];
  const scalar_t* wp = w + int64_t(it.channel) * (K * K);
#pragma unroll
  for (int t = 0; t < K * K; ++t) wr[t] = static_cast<acc_t>(wp[t]);
  bool col_in[K];
  int col_wo[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    const int t = t0 - j;  // = wo * S when tap j of grad column wo lands on this column
    col_wo[j] = t / S;
    col_in[j] = t >= 0 && t % S == 0 && col_wo[j] < out_w;
  }
  acc_t acc[V];
#pragma unroll
  for (int v = 0; v < V; ++v) acc[v] = acc_t(0);
  const int64_t plane = it.image * p.channels + it.channel;
  const scalar_t* gp = gy + plane * p.out_h * p.out_w;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int ho = ho_lo + r;
    if (static_cast<unsigned>(ho) >= static_cast<unsigned>(out_h)) continue;
    const scalar_t* row = gp + int64_t(ho) * out_w;
    acc_t g[K];
#pragma unroll
    for (int j = 0; j < K; ++j) g[j] = col_in[j] ? static_cast<acc_t>(row[col_wo[j]]) : acc_t(0);
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const int i = kBase + v - r * S;  // compile time
      if (i < 0 || i >= K) continue;
#pragma unroll
      for (int j = 0; j < K; ++j) acc[v] += g[j] * wr[i * K + j];
    }
  }
  scalar_t* xp = gx + plane * p.in_h * p.in_w + it.col;
#pragma unroll
  for (int v = 0; v < V; ++v) {
    const int64_t hi = it.row0 + v;
    if (hi < p.in_h) xp[hi * p.in_w] = static_cast<scalar_t>(acc[v]);
  }
}

// ------------------------------------------------------------------ weight gradient, K x K, stride
// S Block (oc, chunk) sums over items [begin, end) of channel oc (image, row group, column): each
// thread accumulates all K*K taps in registers, the block reduces them in a fixed order (warp
// butterfly, then warps in index order) and writes workspace[oc][chunk][tap]; sum_chunks adds
// the chunks in order. No atomics: bitwise-repeatable results.
template <typename scalar_t, int K, int S>
__global__ void __launch_bounds__(kWindowThreads)
    backward_weight_nchw_window_kernel(cpu::DepthwiseParams p, const scalar_t* __restrict__ gy,
                                       const scalar_t* __restrict__ x,
                                       acc_type<scalar_t>* __restrict__ workspace, uint32_t chunks,
                                       uint32_t items_per_channel, uint32_t row_groups) {
  using acc_t = acc_type<scalar_t>;
  constexpr int V = kWindowRows;
  constexpr int R = (V - 1) * S + K;
  constexpr int kWarps = kWindowThreads / 32;
  __shared__ acc_t s_red[kWarps][K * K];

  const uint32_t oc = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const uint32_t begin = static_cast<uint32_t>(uint64_t(chunk) * items_per_channel / chunks);
  const uint32_t end = static_cast<uint32_t>(uint64_t(chunk + 1) * items_per_channel / chunks);
  const int64_t cout = p.channels * p.multiplier;
  const int64_t c = oc / p.multiplier;
  const int in_h = static_cast<int>(p.in_h), in_w = static_cast<int>(p.in_w);
  const uint32_t out_w = static_cast<uint32_t>(p.out_w);

  acc_t acc[K * K];
#pragma unroll
  for (int t = 0; t < K * K; ++t) acc[t] = acc_t(0);
  for (uint32_t item = begin + threadIdx.x; item < end; item += kWindowThreads) {
    // items of one channel: (image, row group, column); channels = 1 in the decomposition
    const WindowItem it = window_item(item, out_w, row_groups, 1u, 0, V);
    const scalar_t* gp = gy + (it.image * cout + oc) * p.out_h * p.out_w + it.col;
    acc_t g[V];
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const int64_t oh = it.row0 + v;
      g[v] = oh < p.out_h ? static_cast<acc_t>(gp[oh * p.out_w]) : acc_t(0);
    }
    const int ih0 = static_cast<int>(it.row0) * S - static_cast<int>(p.pad_top);
    const int iw0 = static_cast<int>(it.col) * S - static_cast<int>(p.pad_left);
    const scalar_t* xp = x + (it.image * p.channels + c) * p.in_h * p.in_w;
    bool col_in[K];
#pragma unroll
    for (int j = 0; j < K; ++j)
      col_in[j] = static_cast<unsigned>(iw0 + j) < static_cast<unsigned>(in_w);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int ih = ih0 + r;
      if (static_cast<unsigned>(ih) >= static_cast<unsigned>(in_h)) continue;
      const scalar_t* row = xp + int64_t(ih) * in_w + iw0;
      acc_t in[K];
#pragma unroll
      for (int j = 0; j < K; ++j) in[j] = col_in[j] ? static_cast<acc_t>(row[j]) : acc_t(0);
#pragma unroll
      for (int v = 0; v < V; ++v) {
        const int i = r - v * S;
        if (i < 0 || i >= K) continue;
#pragma unroll
        for (int j = 0; j < K; ++j) acc[i * K + j] += g[v] * in[j];
      }
    }
  }

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int t = 0; t < K * K; ++t) {
    acc_t s = acc[t];
#pragma unroll
    for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) s_red[warp][t] = s;
  }
  __syncthreads();
  for (int t = threadIdx.x; t < K * K; t += kWindowThreads) {
    acc_t s = acc_t(0);
#pragma unroll
    for (int q = 0; q < kWarps; ++q) s += s_red[q][t];
    workspace[(int64_t(oc) * chunks + chunk) * (K * K) + t] = s;
  }
}

// ------------------------------------------------------------------ host
// y (NCHW) = depthwise forward of x (NCHW); also the stride-1 input gradient (see
// launch_forward_nchw).
template <typename scalar_t>
void launch_forward_nchw_window(const cpu::DepthwiseParams& p, const scalar_t* x, const scalar_t* w,
                                const scalar_t* bias, scalar_t* y, cudaStream_t stream,
                                const char* op) {
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

// gx (NCHW) = the input gradient of gy (NCHW) at stride 2, multiplier 1.
template <typename scalar_t>
void launch_backward_input_nchw_window_stride2(const cpu::DepthwiseParams& p, const scalar_t* gy,
                                               const scalar_t* w, scalar_t* gx, cudaStream_t stream,
                                               const char* op) {
  const int64_t per_image = p.channels * ceil_div(p.in_h, kWindowRows) * p.in_w;
  const auto rg = static_cast<uint32_t>(ceil_div(p.in_h, kWindowRows));
  const int phase = static_cast<int>(((p.kernel_h - 1 - p.pad_top) % 2 + 2) % 2);
  for_each_launch(
      p.batch, per_image, kWindowThreads, op, [&](int64_t n0, uint32_t items, unsigned int blocks) {
        with_window_shape(p, [&](auto k, auto) {
          constexpr int K = decltype(k)::value;
          auto kernel = phase == 0 ? backward_input_nchw_window_kernel<scalar_t, K, 2, 0>
                                   : backward_input_nchw_window_kernel<scalar_t, K, 2, 1>;
          kernel<<<blocks, kWindowThreads, 0, stream>>>(p, gy, w, gx, n0, items, rg);
        });
      });
}

// The weight gradient's work items per channel: (image, row group, column).
inline int64_t backward_weight_window_items(const cpu::DepthwiseParams& p) {
  return p.batch * ceil_div(p.out_h, kWindowRows) * p.out_w;
}

// Weight gradient, stage 1 (see depthwise_nchw_backward_weight.cuh): `blocks` = Cout * chunks
// blocks write workspace[oc][chunk][tap].
template <typename scalar_t>
void launch_backward_weight_nchw_window(const cpu::DepthwiseParams& p, const scalar_t* gy,
                                        const scalar_t* x, acc_type<scalar_t>* ws, int64_t chunks,
                                        unsigned int blocks, cudaStream_t stream) {
  const int64_t window_rows = ceil_div(p.out_h, kWindowRows);
  const int64_t window_items = backward_weight_window_items(p);
  with_window_shape(p, [&](auto k, auto s) {
    backward_weight_nchw_window_kernel<scalar_t, decltype(k)::value, decltype(s)::value>
        <<<blocks, kWindowThreads, 0, stream>>>(p, gy, x, ws, static_cast<uint32_t>(chunks),
                                                static_cast<uint32_t>(window_items),
                                                static_cast<uint32_t>(window_rows));
  });
}

}  // namespace cuda
}  // namespace sepconv
