// CUDA kernels of the pointwise (1x1) ops, hand-written (no cuBLAS, no cuDNN), float32/float64/
// float16/bfloat16 with float32 accumulation for the 16-bit types.
//   forward (and the input gradient, which autograd runs as the forward with W^T), both layouts:
//     a tiled GEMM over all pixels of the batch (pointwise_gemm.cuh: tensor cores for the 16-bit
//     types, split K when the tiles are few), or for small GEMMs (Cout <= 32 and Cin <= 64) one
//     thread per pixel with a tile of output channels in registers (pointwise_rows.cuh), which
//     reads x once and wastes no FMA on a 64-row tile of 16 or 32 channels;
//   weight gradient: dW (Cout x Cin) = sum over n of GY[n] (Cout x P) * X[n]^T (P x Cin); on the
//     forward's GEMM (backward_weight_gemm: tensor cores for 16-bit) unless 32/64-bit with
//     Cout <= 32; there a shared-memory tiled GEMM (64x64 output tile, 32 wide along a dimension
//     of <= 32 channels; K step 16; each thread 4x4 outputs) split over the N*P reduction into a
//     fixed number of slices whose partial tiles go to a workspace and are summed in order (no
//     atomics: deterministic). Operands are described by strides, so both layouts share one
//     kernel.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../prepare.h"
#include "cuda_kernels.h"
#include "cuda_utils.cuh"
#include "pointwise_gemm.cuh"
#include "pointwise_rows.cuh"

namespace sepconv {
namespace cuda {
namespace {

constexpr int kBK = 16;

// Threads of a BM x BN tile: each computes 4 x 4 outputs.
template <int BM, int BN>
constexpr int tile_threads() {
  return (BM / 4) * (BN / 4);
}

// Element (b, r, k) of an operand lives at b * batch + r * outer + k * inner; `outer` indexes
// the GEMM's M (for A) or N (for B) dimension, `inner` the reduction.
struct Operand {
  int64_t batch, outer, inner;
};

// acc += A[m0:m0+BM, k_begin:k_end] * B[k_begin:k_end, n0:n0+BN], both already offset to their
// batch. Out-of-range rows, columns and k are loaded as zeros. Thread (tx, ty) owns rows
// ty + BM/4 * i and columns tx + BN/4 * j.
template <typename scalar_t, typename acc_t, int BM, int BN>
__device__ __forceinline__ void accumulate_tile(const scalar_t* __restrict__ A, Operand a,
                                                int64_t M, int64_t m0,
                                                const scalar_t* __restrict__ B, Operand b,
                                                int64_t N, int64_t n0, int64_t k_begin,
                                                int64_t k_end, acc_t (&acc)[4][4], acc_t (*As)[BM],
                                                acc_t (*Bs)[BN]) {
  constexpr int kThreads = tile_threads<BM, BN>();
  const int tid = threadIdx.x, tx = tid % (BN / 4), ty = tid / (BN / 4);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
    // Consecutive threads walk the operand's contiguous dimension, so the loads coalesce.
#pragma unroll
    for (int e = tid; e < BM * kBK; e += kThreads) {
      int r, kk;
      if (a.inner == 1) {
        r = e / kBK;
        kk = e % kBK;
      } else {
        r = e % BM;
        kk = e / BM;
      }
      const int64_t gr = m0 + r, gk = k0 + kk;
      As[kk][r] =
          (gr < M && gk < k_end) ? static_cast<acc_t>(A[gr * a.outer + gk * a.inner]) : acc_t(0);
    }
#pragma unroll
    for (int e = tid; e < BN * kBK; e += kThreads) {
      int c, kk;
      if (b.outer == 1) {
        c = e % BN;
        kk = e / BN;
      } else {
        c = e / kBK;
        kk = e % kBK;
      }
      const int64_t gc = n0 + c, gk = k0 + kk;
      Bs[kk][c] =
          (gc < N && gk < k_end) ? static_cast<acc_t>(B[gc * b.outer + gk * b.inner]) : acc_t(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      acc_t av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = As[kk][ty + (BM / 4) * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx + (BN / 4) * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
}

// Weight gradient, stage 1: slice s of the flattened (image, pixel) reduction of length
// batches * K for one BM x BN tile of dW; the partial tile goes to workspace[s][M][N]. The tile
// is 32 wide where dW is that narrow (Cout or Cin <= 32), so fewer FMAs run on zero padding.
template <typename scalar_t, int BM, int BN>
__global__ void __launch_bounds__(tile_threads<BM, BN>())
    gemm_split_k_kernel(const scalar_t* __restrict__ A, Operand a, const scalar_t* __restrict__ B,
                        Operand b, acc_type<scalar_t>* __restrict__ workspace, int64_t batches,
                        int64_t M, int64_t N, int64_t K, int64_t tiles_n, int64_t splits) {
  using acc_t = acc_type<scalar_t>;
  __shared__ acc_t As[kBK][BM];
  __shared__ acc_t Bs[kBK][BN];
  const int64_t tile = blockIdx.x % (int64_t(gridDim.x) / splits);
  const int64_t s = blockIdx.x / (int64_t(gridDim.x) / splits);
  const int64_t m0 = (tile / tiles_n) * BM, n0 = (tile % tiles_n) * BN;
  const int tx = threadIdx.x % (BN / 4), ty = threadIdx.x / (BN / 4);
  const int64_t total = batches * K;
  const int64_t f_begin = s * total / splits, f_end = (s + 1) * total / splits;
  acc_t acc[4][4] = {};
  for (int64_t f = f_begin; f < f_end;) {
    const int64_t bi = f / K, k_begin = f % K;
    const int64_t k_end = std::min<int64_t>(K, k_begin + (f_end - f));
    accumulate_tile<scalar_t, acc_t, BM, BN>(A + bi * a.batch, a, M, m0, B + bi * b.batch, b, N, n0,
                                             k_begin, k_end, acc, As, Bs);
    f += k_end - k_begin;
  }
  acc_t* out = workspace + s * M * N;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t r = m0 + ty + (BM / 4) * i;
    if (r >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tx + (BN / 4) * j;
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

// dW = GY^T X on the forward's GEMM (pointwise_gemm.cuh; tensor cores for the 16-bit types):
// A = GY^T (Cout x N*H*W, one transposing copy so its rows are contiguous), B[k, ci] = X[pixel k,
// ci] read as rows of the (N*H*W x Cin) matrix (in place for channels_last, one copy for NCHW),
// K = N*H*W split over blocks and summed in order.
void backward_weight_gemm(const at::Tensor& grad_output, const at::Tensor& input,
                          at::Tensor& grad_weight, const char* op) {
  const int64_t cin = input.size(1), cout = grad_output.size(1);
  const int64_t rows = input.size(0) * input.size(2) * input.size(3);
  const at::Tensor a = grad_output.transpose(0, 1).reshape({cout, rows}).contiguous();
  const at::Tensor x_rows = input.permute({0, 2, 3, 1}).reshape({rows, cin}).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "pointwise_backward_weight_gemm_cuda", [&] {
        // Column ci of B starts at x_rows + ci and steps by Cin along K (the NCHW form of
        // InputColumns with one "image" whose plane is Cin); dW is written the same way.
        const InputColumns<scalar_t> cols{x_rows.const_data_ptr<scalar_t>(), rows, cin, false,
                                          false};
        const GemmOutput out{cin, cin, static_cast<int>(cout), false};
        launch_gemm_columns<scalar_t>(a.const_data_ptr<scalar_t>(), rows, cols, out, nullptr,
                                      grad_weight.data_ptr<scalar_t>(), input.options(), op);
      });
}

at::Tensor backward_weight_impl(const at::Tensor& grad_output, const at::Tensor& input) {
  const char* op = "sepconv::_pointwise_conv2d_backward_weight";
  const auto call = prepare_pointwise_backward_weight(grad_output, input);
  c10::cuda::CUDAGuard guard(input.device());
  const int64_t batch = call.params.batch, cin = call.params.in_channels;
  const int64_t cout = call.params.out_channels, pixels = call.params.pixels;
  at::Tensor grad_weight = call.grad_weight;
  if (grad_weight.numel() == 0) return grad_weight;
  if (batch * pixels == 0) return grad_weight.zero_();
  // The GEMM on GY^T except for 32/64-bit with Cout <= 32, where its 64-row tiles are mostly
  // padding and (NCHW) the copies of X cost more than they save: measured on an H200
  // (benchmarks/results/cuda-h200-path-probes.md), the GEMM is 1.25-4.6x faster for every 16-bit
  // shape and 1.05-2.1x for float32 with Cout >= 64, the tiles 1.2-1.7x faster for float32 with
  // Cout <= 32.
  const bool half_types = input.scalar_type() == at::kHalf || input.scalar_type() == at::kBFloat16;
  const bool gemm =
      std::strcmp(forced_path("SEPCONV_CUDA_POINTWISE_WGRAD",
                              half_types || cout > 32 ? "gemm" : "tiles", "tiles", "gemm"),
                  "gemm") == 0;
  if (gemm && cout <= std::numeric_limits<int32_t>::max()) {
    backward_weight_gemm(grad_output, input, grad_weight, op);
    return grad_weight;
  }
  const bool channels_last = call.format == kChannelsLast;
  const at::Tensor x = input.contiguous(call.format);
  const at::Tensor gy = grad_output.contiguous(call.format);
  // A = GY[n] (Cout x P), B = X[n]^T (P x Cin).
  const Operand a =
      channels_last ? Operand{pixels * cout, 1, cout} : Operand{cout * pixels, pixels, 1};
  const Operand b =
      channels_last ? Operand{pixels * cin, 1, cin} : Operand{cin * pixels, pixels, 1};
  const int device = input.get_device();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "pointwise_backward_weight_cuda", [&] {
        using acc_t = acc_type<scalar_t>;
        int64_t splits = 1;
        at::Tensor workspace;
        auto launch = [&](auto bm_tag, auto bn_tag) {
          constexpr int BM = decltype(bm_tag)::value, BN = decltype(bn_tag)::value;
          constexpr int threads = tile_threads<BM, BN>();
          const int64_t tiles_n = ceil_div(cin, BN), tiles = ceil_div(cout, BM) * tiles_n;
          // Slices: about 512 threads' worth of blocks per multiprocessor, each slice at least 256
          // reduction steps long. A pure function of shape and device, so the summation order never
          // changes between runs.
          const int64_t target = int64_t(multiprocessor_count(device)) * (512 / threads);
          splits = std::max<int64_t>(
              1, std::min(ceil_div(target, tiles), ceil_div(batch * pixels, 256)));
          workspace = at::empty({splits, cout, cin},
                                input.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
          gemm_split_k_kernel<scalar_t, BM, BN>
              <<<grid_size(tiles * splits, op), threads, 0, stream>>>(
                  gy.const_data_ptr<scalar_t>(), a, x.const_data_ptr<scalar_t>(), b,
                  workspace.data_ptr<acc_t>(), batch, cout, cin, pixels, tiles_n, splits);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        };
        using std::integral_constant;
        if (cout <= 32 && cin <= 32)
          launch(integral_constant<int, 32>(), integral_constant<int, 32>());
        else if (cout <= 32)
          launch(integral_constant<int, 32>(), integral_constant<int, 64>());
        else if (cin <= 32)
          launch(integral_constant<int, 64>(), integral_constant<int, 32>());
        else
          launch(integral_constant<int, 64>(), integral_constant<int, 64>());
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
  const auto call = prepare_pointwise_forward(input, weight, bias, empty_tensor);
  at::Tensor output = call.output;
  if (output.numel() == 0) return output;
  c10::cuda::CUDAGuard guard(input.device());
  const auto fmt = call.format;
  const int64_t cin = call.params.in_channels, cout = call.params.out_channels;
  const int64_t plane = call.params.pixels, pixels = call.params.batch * plane;
  TORCH_CHECK(
      cin <= std::numeric_limits<int32_t>::max() && cout <= std::numeric_limits<int32_t>::max(), op,
      ": too many channels for the CUDA kernel");
  const at::Tensor& b = call.bias;
  const bool channels_last = fmt == kChannelsLast;
  const at::Tensor x = input.contiguous(fmt);
  const bool small = cout <= 32 && cin <= 64;
  const bool gemm =
      std::strcmp(forced_path("SEPCONV_CUDA_POINTWISE", small ? "rows" : "gemm", "rows", "gemm"),
                  "gemm") == 0;
  // The GEMM reads W (Cout x Cin) along its rows; the rows kernel W^T (Cin x Cout), so its
  // weight-tile reads coalesce. For the input gradient the weight is a transposed view, and the
  // rows kernel's operand copies nothing.
  const at::Tensor w = gemm ? call.weight.contiguous() : call.weight.t().contiguous();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int co_tile = rows_co_tile(pixels, cout, input.get_device());
  const int64_t co_tiles = ceil_div(cout, co_tile);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "pointwise_conv2d_cuda", [&] {
        const scalar_t* xp = x.const_data_ptr<scalar_t>();
        const scalar_t* wp = w.const_data_ptr<scalar_t>();
        const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
        scalar_t* yp = output.data_ptr<scalar_t>();
        if (gemm) {
          const bool vectors = channels_last && cin % (16 / sizeof(scalar_t)) == 0 &&
                               reinterpret_cast<uintptr_t>(xp) % 16 == 0;
          const InputColumns<scalar_t> cols{xp, cin, plane, channels_last, vectors};
          const GemmOutput out{pixels, plane, static_cast<int>(cout), channels_last};
          launch_gemm_columns<scalar_t>(wp, cin, cols, out, bp, yp, input.options(), op);
          return;
        }
        constexpr int kVec = static_cast<int>(16 / sizeof(scalar_t));
        const bool vectors = channels_last && cin % kVec == 0 && cout % kVec == 0 &&
                             reinterpret_cast<uintptr_t>(xp) % 16 == 0 &&
                             reinterpret_cast<uintptr_t>(yp) % 16 == 0;
        const unsigned int blocks = grid_size(ceil_div(pixels, kRowsThreads) * co_tiles, op);
        with_rows_config<scalar_t>(
            co_tile, channels_last, vectors, [&](auto co, auto cl, auto vec) {
              pointwise_rows_kernel<scalar_t, decltype(co)::value, decltype(cl)::value,
                                    decltype(vec)::value><<<blocks, kRowsThreads, 0, stream>>>(
                  xp, wp, bp, yp, pixels, plane, static_cast<int>(cin), static_cast<int>(cout),
                  static_cast<int>(co_tiles));
              C10_CUDA_KERNEL_LAUNCH_CHECK();
            });
      });
  return output;
}

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) {
  m.impl("pointwise_conv2d", pointwise_conv2d_cuda);
  m.impl("_pointwise_conv2d_backward_weight", backward_weight_impl);
}

}  // namespace cuda
}  // namespace sepconv
