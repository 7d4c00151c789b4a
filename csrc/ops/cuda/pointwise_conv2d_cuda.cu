// CUDA kernels of the pointwise (1x1) ops as a hand-written shared-memory tiled GEMM (no cuBLAS,
// no cuDNN), float32/float64/float16/bfloat16 with float32 accumulation for the 16-bit types.
//   forward NCHW:         out[n] (Cout x P) = W (Cout x Cin) * X[n] (Cin x P), bias per row
//   forward channels_last: out (N*P x Cout) = X (N*P x Cin) * W^T (Cin x Cout), bias per column
//   weight gradient:      dW (Cout x Cin) = sum over n of GY[n] (Cout x P) * X[n]^T (P x Cin),
//                         split over the N*P reduction into a fixed number of slices whose
//                         partial tiles go to a workspace and are summed in order (no atomics:
//                         deterministic).
// Operands are described by strides, so both layouts share one kernel. 64x64 output tile, K step
// 16, 256 threads with 4x4 outputs each.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>

#include "../checks.h"
#include "cuda_kernels.h"
#include "cuda_utils.cuh"

namespace sepconv {
namespace cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kThreads = 256;

// Element (b, r, k) of an operand lives at b * batch + r * outer + k * inner; `outer` indexes
// the GEMM's M (for A) or N (for B) dimension, `inner` the reduction.
struct Operand {
  int64_t batch, outer, inner;
};

// acc += A[m0:m0+64, k_begin:k_end] * B[k_begin:k_end, n0:n0+64], both already offset to their
// batch. Out-of-range rows, columns and k are loaded as zeros.
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ void accumulate_tile(const scalar_t* __restrict__ A, Operand a,
                                                int64_t M, int64_t m0,
                                                const scalar_t* __restrict__ B, Operand b,
                                                int64_t N, int64_t n0, int64_t k_begin,
                                                int64_t k_end, acc_t (&acc)[4][4],
                                                acc_t (*As)[kBM], acc_t (*Bs)[kBN]) {
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
    // Consecutive threads walk the operand's contiguous dimension, so the loads coalesce.
#pragma unroll
    for (int e = tid; e < kBM * kBK; e += kThreads) {
      int r, kk;
      if (a.inner == 1) { r = e / kBK; kk = e % kBK; } else { r = e % kBM; kk = e / kBM; }
      const int64_t gr = m0 + r, gk = k0 + kk;
      As[kk][r] = (gr < M && gk < k_end) ? static_cast<acc_t>(A[gr * a.outer + gk * a.inner])
                                         : acc_t(0);
    }
#pragma unroll
    for (int e = tid; e < kBN * kBK; e += kThreads) {
      int c, kk;
      if (b.outer == 1) { c = e % kBN; kk = e / kBN; } else { c = e / kBK; kk = e % kBK; }
      const int64_t gc = n0 + c, gk = k0 + kk;
      Bs[kk][c] = (gc < N && gk < k_end) ? static_cast<acc_t>(B[gc * b.outer + gk * b.inner])
                                         : acc_t(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      acc_t av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
}

// C[b] = A[b] * B[b] (+ bias), b = blockIdx.y + k * gridDim.y; blockIdx.x enumerates 64x64 tiles.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    gemm_kernel(const scalar_t* __restrict__ A, Operand a, const scalar_t* __restrict__ B,
                Operand b, scalar_t* __restrict__ C, Operand c, const scalar_t* __restrict__ bias,
                bool bias_per_row, int64_t batches, int64_t M, int64_t N, int64_t K,
                int64_t tiles_n) {
  using acc_t = acc_type<scalar_t>;
  __shared__ acc_t As[kBK][kBM];
  __shared__ acc_t Bs[kBK][kBN];
  const int64_t m0 = (blockIdx.x / tiles_n) * kBM, n0 = (blockIdx.x % tiles_n) * kBN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  for (int64_t bi = blockIdx.y; bi < batches; bi += gridDim.y) {
    acc_t acc[4][4] = {};
    accumulate_tile<scalar_t, acc_t>(A + bi * a.batch, a, M, m0, B + bi * b.batch, b, N, n0, 0, K,
                                     acc, As, Bs);
    scalar_t* Cb = C + bi * c.batch;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t r = m0 + ty + 16 * i;
      if (r >= M) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t col = n0 + tx + 16 * j;
        if (col >= N) continue;
        acc_t v = acc[i][j];
        if (bias != nullptr) v += static_cast<acc_t>(bias[bias_per_row ? r : col]);
        Cb[r * c.outer + col * c.inner] = static_cast<scalar_t>(v);
      }
    }
  }
}

// Weight gradient, stage 1: slice s of the flattened (image, pixel) reduction of length
// batches * K for one 64x64 tile of dW; the partial tile goes to workspace[s][M][N].
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    gemm_split_k_kernel(const scalar_t* __restrict__ A, Operand a, const scalar_t* __restrict__ B,
                        Operand b, acc_type<scalar_t>* __restrict__ workspace, int64_t batches,
                        int64_t M, int64_t N, int64_t K, int64_t tiles_n, int64_t splits) {
  using acc_t = acc_type<scalar_t>;
  __shared__ acc_t As[kBK][kBM];
  __shared__ acc_t Bs[kBK][kBN];
  const int64_t tile = blockIdx.x % (int64_t(gridDim.x) / splits);
  const int64_t s = blockIdx.x / (int64_t(gridDim.x) / splits);
  const int64_t m0 = (tile / tiles_n) * kBM, n0 = (tile % tiles_n) * kBN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t total = batches * K;
  const int64_t f_begin = s * total / splits, f_end = (s + 1) * total / splits;
  acc_t acc[4][4] = {};
  for (int64_t f = f_begin; f < f_end;) {
    const int64_t bi = f / K, k_begin = f % K;
    const int64_t k_end = std::min<int64_t>(K, k_begin + (f_end - f));
    accumulate_tile<scalar_t, acc_t>(A + bi * a.batch, a, M, m0, B + bi * b.batch, b, N, n0,
                                     k_begin, k_end, acc, As, Bs);
    f += k_end - k_begin;
  }
  acc_t* out = workspace + s * M * N;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t r = m0 + ty + 16 * i;
    if (r >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tx + 16 * j;
      if (col < N) out[r * N + col] = acc[i][j];
    }
  }
}

// Stage 2: out[i] = sum over s in order of workspace[s][i].
template <typename scalar_t>
__global__ void sum_splits_kernel(const acc_type<scalar_t>* __restrict__ workspace,
                                  scalar_t* __restrict__ out, int64_t splits, int64_t count) {
  using acc_t = acc_type<scalar_t>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    acc_t v = acc_t(0);
    for (int64_t s = 0; s < splits; ++s) v += workspace[s * count + i];
    out[i] = static_cast<scalar_t>(v);
  }
}

constexpr auto kChannelsLast = at::MemoryFormat::ChannelsLast;

at::Tensor backward_weight_impl(const at::Tensor& grad_output, const at::Tensor& input) {
  const char* op = "sepconv::_pointwise_conv2d_backward_weight";
  check_pointwise_backward_weight(op, grad_output, input);
  c10::cuda::CUDAGuard guard(input.device());
  const int64_t batch = input.size(0), cin = input.size(1), cout = grad_output.size(1);
  const int64_t pixels = input.size(2) * input.size(3);
  at::Tensor grad_weight = at::empty({cout, cin}, input.options());
  if (grad_weight.numel() == 0) return grad_weight;
  if (batch * pixels == 0) return grad_weight.zero_();
  const bool channels_last = output_memory_format(input) == kChannelsLast;
  const auto fmt = channels_last ? kChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x = input.contiguous(fmt);
  const at::Tensor gy = grad_output.contiguous(fmt);
  // A = GY[n] (Cout x P), B = X[n]^T (P x Cin).
  const Operand a = channels_last ? Operand{pixels * cout, 1, cout} : Operand{cout * pixels, pixels, 1};
  const Operand b = channels_last ? Operand{pixels * cin, 1, cin} : Operand{cin * pixels, pixels, 1};
  const int64_t tiles_n = ceil_div(cin, kBN), tiles = ceil_div(cout, kBM) * tiles_n;
  const int device = input.get_device();
  // Slices: enough blocks to fill the GPU, each slice at least 256 reduction steps long. A pure
  // function of shape and device, so the summation order never changes between runs.
  const int64_t target = int64_t(multiprocessor_count(device)) * 2;
  const int64_t splits = std::max<int64_t>(
      1, std::min(ceil_div(target, tiles), ceil_div(batch * pixels, 256)));
  const unsigned int blocks = grid_size(tiles * splits, op);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "pointwise_backward_weight_cuda", [&] {
    using acc_t = acc_type<scalar_t>;
    at::Tensor workspace = at::empty({splits, cout, cin},
                                     input.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    gemm_split_k_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        gy.const_data_ptr<scalar_t>(), a, x.const_data_ptr<scalar_t>(), b,
        workspace.data_ptr<acc_t>(), batch, cout, cin, pixels, tiles_n, splits);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const int64_t count = cout * cin;
    const int64_t sum_blocks = std::min<int64_t>(ceil_div(count, 256), 65535);
    sum_splits_kernel<scalar_t><<<static_cast<unsigned int>(sum_blocks), 256, 0, stream>>>(
        workspace.data_ptr<acc_t>(), grad_weight.data_ptr<scalar_t>(), splits, count);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_weight;
}

}  // namespace

at::Tensor pointwise_conv2d_cuda(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias) {
  const char* op = "sepconv::pointwise_conv2d";
  const auto out_sym = check_pointwise_forward(op, input, weight, bias);
  const auto out_size = C10_AS_INTARRAYREF_SLOW(out_sym);
  c10::cuda::CUDAGuard guard(input.device());
  const auto fmt = output_memory_format(input);
  at::Tensor output = at::empty(out_size, input.options().memory_format(fmt));
  if (output.numel() == 0) return output;
  const int64_t batch = input.size(0), cin = input.size(1), cout = out_size[1];
  const int64_t pixels = input.size(2) * input.size(3);
  const at::Tensor w = weight.reshape({cout, cin}).contiguous();
  const at::Tensor b = bias.has_value() && bias->defined() ? bias->contiguous() : at::Tensor();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const bool channels_last = fmt == kChannelsLast;
  const at::Tensor x = input.contiguous(fmt);
  // NCHW: per image, A = W (Cout x Cin), B = X[n] (Cin x P), C = Y[n] (Cout x P).
  // channels_last: one GEMM, A = X (N*P x Cin), B = W^T (Cin x Cout), C = Y (N*P x Cout).
  const int64_t M = channels_last ? batch * pixels : cout;
  const int64_t N = channels_last ? cout : pixels;
  const int64_t batches = channels_last ? 1 : batch;
  const Operand a = channels_last ? Operand{0, cin, 1} : Operand{0, cin, 1};
  const Operand bo = channels_last ? Operand{0, cin, 1} : Operand{cin * pixels, 1, pixels};
  const Operand c = channels_last ? Operand{0, cout, 1} : Operand{cout * pixels, pixels, 1};
  const int64_t tiles_n = ceil_div(N, kBN);
  const unsigned int blocks = grid_size(ceil_div(M, kBM) * tiles_n, op);
  const unsigned int grid_y = static_cast<unsigned int>(std::min<int64_t>(batches, 65535));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "pointwise_conv2d_cuda", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* wp = w.const_data_ptr<scalar_t>();
    gemm_kernel<scalar_t><<<dim3(blocks, grid_y), kThreads, 0, stream>>>(
        channels_last ? xp : wp, a, channels_last ? wp : xp, bo, output.data_ptr<scalar_t>(), c,
        b.defined() ? b.const_data_ptr<scalar_t>() : nullptr, /*bias_per_row=*/!channels_last,
        batches, M, N, cin, tiles_n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return output;
}

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) {
  m.impl("pointwise_conv2d", pointwise_conv2d_cuda);
  m.impl("_pointwise_conv2d_backward_weight", backward_weight_impl);
}

}  // namespace cuda
}  // namespace sepconv
