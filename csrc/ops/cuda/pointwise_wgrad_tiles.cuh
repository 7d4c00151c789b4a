// The pointwise weight gradient's FMA tiles, for 32/64-bit with Cout <= 32 (path_policy.h), where
// the GEMM's 64-row tiles would be mostly padding: dW (Cout x Cin) = sum over n of GY[n] (Cout x
// P) * X[n]^T (P x Cin) as a shared-memory tiled GEMM (64x64 output tile, 32 wide along a
// dimension of <= 32 channels; K step 16; each thread 4x4 outputs) split over the N*P reduction
// into a fixed number of slices whose partial tiles go to a workspace and are summed in order (no
// atomics: deterministic). Operands are described by strides, so both layouts share one kernel.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda_utils.cuh"

namespace sepconv {
namespace cuda {

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

// Host: dW = sum over n of A[n] * B[n] (A = GY[n], B = X[n]^T, both described by `a` and `b`)
// into grad_weight (Cout x Cin), on the current stream.
template <typename scalar_t>
void launch_weight_grad_tiles(const scalar_t* gy, Operand a, const scalar_t* x, Operand b,
                              scalar_t* grad_weight, int64_t batch, int64_t cout, int64_t cin,
                              int64_t pixels, const at::TensorOptions& options, int device,
                              cudaStream_t stream, const char* op) {
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
    splits = std::max<int64_t>(1, std::min(ceil_div(target, tiles), ceil_div(batch * pixels, 256)));
    workspace =
        at::empty({splits, cout, cin}, options.dtype(c10::CppTypeToScalarType<acc_t>::value));
    gemm_split_k_kernel<scalar_t, BM, BN><<<grid_size(tiles * splits, op), threads, 0, stream>>>(
        gy, a, x, b, workspace.data_ptr<acc_t>(), batch, cout, cin, pixels, tiles_n, splits);
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
      workspace.data_ptr<acc_t>(), grad_weight, splits, count);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace sepconv
