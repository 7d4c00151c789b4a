// channels_last depthwise weight gradient read in place (no conversion of input and grad_output
// to NCHW, which cost two full transposes): K x K (the dispatcher runs it for 3x3, where it
// wins; see depthwise_backward_weight_nhwc_in_place in path_policy.h), any stride and dilation,
// multiplier 1, C a multiple of VEC.
//
// Block (channel block, chunk of output pixels). Thread (lane, g) owns the VEC channels of group
// g and walks the chunk's pixels lane, lane + lanes, ...: one vector load of grad_output per
// pixel, one vector load of the input per tap, all K*K x VEC sums in registers. Consecutive
// threads take consecutive channel groups, then consecutive pixels, so a warp's loads are one
// contiguous run of memory. The block then sums its lanes tap by tap in a fixed order and writes
// workspace[chunk][tap][channel] (coalesced along the channels); sum_chunks_nhwc_kernel adds the
// chunks in order, so results are bitwise repeatable (no atomics).
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/params.h"
#include "cuda_utils.cuh"

namespace sepconv {
namespace cuda {

constexpr int kNhwcWeightThreads = 256;

// Channels per thread: registers hold K*K*VEC sums, so fewer channels for larger kernels.
template <typename scalar_t, int K>
constexpr int nhwc_weight_vec() {
  constexpr int by_bytes = static_cast<int>(16 / sizeof(scalar_t));
  constexpr int by_regs = K == 3 ? 8 : (K == 5 && sizeof(scalar_t) < 8) ? 2 : 1;
  return by_bytes < by_regs ? by_bytes : by_regs;
}

template <typename scalar_t, int K, int VEC>
__global__ void __launch_bounds__(kNhwcWeightThreads, 2)  // <= 128 registers: two blocks per SM
    backward_weight_nhwc_kernel(cpu::DepthwiseParams p, const scalar_t* __restrict__ gy,
                                const scalar_t* __restrict__ x,
                                acc_type<scalar_t>* __restrict__ workspace, uint32_t chunks,
                                uint32_t pixels, uint32_t groups_per_block) {
  using acc_t = acc_type<scalar_t>;
  using V = Vec<scalar_t, VEC>;
  __shared__ acc_t s_red[kNhwcWeightThreads * VEC];
  const uint32_t block = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const uint32_t lanes = kNhwcWeightThreads / groups_per_block;
  const uint32_t g_local = threadIdx.x % groups_per_block, lane = threadIdx.x / groups_per_block;
  const int64_t channels = p.channels;
  const int64_t c0 = (int64_t(block) * groups_per_block + g_local) * VEC;
  const bool active = lane < lanes && c0 < channels;
  const uint32_t begin = static_cast<uint32_t>(uint64_t(chunk) * pixels / chunks);
  const uint32_t end = static_cast<uint32_t>(uint64_t(chunk + 1) * pixels / chunks);
  const uint32_t out_w = static_cast<uint32_t>(p.out_w), out_h = static_cast<uint32_t>(p.out_h);

  acc_t acc[K * K][VEC];
#pragma unroll
  for (int t = 0; t < K * K; ++t)
#pragma unroll
    for (int v = 0; v < VEC; ++v) acc[t][v] = acc_t(0);
  if (active) {
    for (uint32_t pix = begin + lane; pix < end; pix += lanes) {
      const uint32_t ow = pix % out_w, rest = pix / out_w;
      const uint32_t oh = rest % out_h;
      const int64_t n = rest / out_h;
      const V g = *reinterpret_cast<const V*>(gy + int64_t(pix) * channels + c0);
      acc_t gv[VEC];
#pragma unroll
      for (int v = 0; v < VEC; ++v) gv[v] = static_cast<acc_t>(g.v[v]);
#pragma unroll
      for (int i = 0; i < K; ++i) {
        const int64_t ih = int64_t(oh) * p.stride_h - p.pad_top + i * p.dilation_h;
        if (ih < 0 || ih >= p.in_h) continue;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          const int64_t iw = int64_t(ow) * p.stride_w - p.pad_left + j * p.dilation_w;
          if (iw < 0 || iw >= p.in_w) continue;
          const V xv =
              *reinterpret_cast<const V*>(x + ((n * p.in_h + ih) * p.in_w + iw) * channels + c0);
#pragma unroll
          for (int v = 0; v < VEC; ++v) acc[i * K + j][v] += gv[v] * static_cast<acc_t>(xv.v[v]);
        }
      }
    }
  }

  // Sum the lanes tap by tap, in lane order.
  const uint32_t width = groups_per_block * VEC;  // channels of this block
#pragma unroll
  for (int t = 0; t < K * K; ++t) {  // unrolled: acc is indexed by compile-time constants only
    if (lane < lanes) {
#pragma unroll
      for (int v = 0; v < VEC; ++v) s_red[lane * width + g_local * VEC + v] = acc[t][v];
    }
    __syncthreads();
    for (uint32_t e = threadIdx.x; e < width; e += kNhwcWeightThreads) {
      const int64_t c = int64_t(block) * width + e;
      if (c >= channels) continue;
      acc_t s = acc_t(0);
      for (uint32_t l = 0; l < lanes; ++l) s += s_red[l * width + e];
      workspace[(int64_t(chunk) * (K * K) + t) * channels + c] = s;  // coalesced along c
    }
    __syncthreads();
  }
}

// grad_weight[c][tap] = sum over chunks, in order, of workspace[chunk][tap][c].
template <typename scalar_t>
__global__ void sum_chunks_nhwc_kernel(const acc_type<scalar_t>* __restrict__ workspace,
                                       scalar_t* __restrict__ out, int64_t channels, int64_t taps,
                                       int64_t chunks) {
  using acc_t = acc_type<scalar_t>;
  const int64_t count = channels * taps;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < count;
       idx += int64_t(gridDim.x) * blockDim.x) {  // idx = tap * channels + c: coalesced reads
    acc_t s = acc_t(0);
    for (int64_t k = 0; k < chunks; ++k) s += workspace[k * count + idx];
    const int64_t tap = idx / channels, c = idx % channels;
    out[c * taps + tap] = static_cast<scalar_t>(s);
  }
}

// ------------------------------------------------------------------ host
inline bool aligned_to(const at::Tensor& t, size_t bytes) {
  return reinterpret_cast<uintptr_t>(t.const_data_ptr()) % bytes == 0;
}

// grad_weight from the channels_last tensors read in place, for the shapes
// depthwise_backward_weight_nhwc_in_place (path_policy.h) accepts; false (nothing written) when
// C is not a multiple of the kernel's VEC or the tensors are not aligned to it.
template <typename scalar_t>
bool launch_backward_weight_nhwc(const cpu::DepthwiseParams& p, const at::Tensor& grad_output,
                                 const at::Tensor& input, at::Tensor& grad_weight,
                                 cudaStream_t stream, const char* op) {
  const int64_t pixels = p.batch * p.out_h * p.out_w;
  bool done = false;
  auto run = [&](auto k_tag) {
    using acc_t = acc_type<scalar_t>;
    constexpr int K = decltype(k_tag)::value;
    constexpr int VEC = nhwc_weight_vec<scalar_t, K>();
    if (p.channels % VEC != 0) return;
    const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor gy = grad_output.contiguous(at::MemoryFormat::ChannelsLast);
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

}  // namespace cuda
}  // namespace sepconv
