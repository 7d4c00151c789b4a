// The pointwise product as one tiled GEMM over every output pixel of the batch:
//   y[co, m] = bias[co] + sum over k of w[co, k] * B[k, m],   m = (image, pixel) flattened,
// where column m of B comes from a column source: the input itself (the pointwise op, both
// layouts; also the weight gradient, dW = GY^T X, whose columns are input channels) or the
// depthwise output computed on the fly (the opt-in fused separable forward, whose intermediate
// never goes to global memory). The rows kernel (pointwise_rows.cuh) keeps a pixel
// per thread and wins where Cout is small; this kernel wins where the GEMM is deep or wide: its
// block tile (64 output channels x 128 pixels, 256 threads) reuses each loaded element 64 or 128
// times, and K is split over several blocks when the tiles alone would leave multiprocessors idle.
//   float16/bfloat16: tensor-core mma.sync m16n8k16 with float32 accumulators (sm_80 and up; an
//     FMA loop over the same fragments below that); 8 warps of 32 x 32 outputs.
//   float32/float64: exact FMA (no TF32), each thread 4 x 8 outputs, 16-byte shared loads along K.
// Operands go through shared memory as scalar_t, K-contiguous rows padded by 16 bytes (conflict-
// free fragment and vector reads). Each thread loads BK/4 elements of w (row tid/4) and BK/2 of B
// (column tid/2, half tid%2 of the K step) into registers while the previous step computes.
// Split K: each slice's float partial tile goes to workspace[slice][co][m]; gemm_finish_kernel
// sums the slices in order and adds the bias (no atomics: bitwise repeatable).
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/params.h"
#include "cuda_utils.cuh"

namespace sepconv {
namespace cuda {

constexpr int kGemmBM = 64, kGemmBN = 128, kGemmThreads = 256;

// K step: 32, or 16 for double so the two tiles stay within 48 KiB of static shared memory.
template <typename scalar_t>
constexpr int gemm_bk() {
  return sizeof(scalar_t) == 8 ? 16 : 32;
}

// Where output (co, m) lives: y[column_offset(m) + co * row_step()].
struct GemmOutput {
  int64_t pixels, plane;
  int cout;
  bool channels_last;
  __device__ __forceinline__ int64_t column_offset(int64_t m) const {
    if (channels_last) return m * cout;
    const int64_t n = m / plane;
    return n * cout * plane + (m - n * plane);
  }
  __device__ __forceinline__ int64_t row_step() const { return channels_last ? 1 : plane; }
};

// v = p[0, COUNT) by 16-byte loads (p aligned, COUNT a multiple of the vector width).
template <typename scalar_t, int COUNT>
__device__ __forceinline__ void load_vectors(const scalar_t* p, scalar_t (&v)[COUNT]) {
  constexpr int kVec = static_cast<int>(16 / sizeof(scalar_t));
  static_assert(COUNT % kVec == 0, "whole vectors only");
  using V = Vec<scalar_t, kVec>;
#pragma unroll
  for (int e = 0; e < COUNT; e += kVec) {
    const V q = *reinterpret_cast<const V*>(p + e);
#pragma unroll
    for (int i = 0; i < kVec; ++i) v[e + i] = q.v[i];
  }
}

// Column source of the pointwise op: B[k, m] = x[pixel m, channel k], either layout.
template <typename scalar_t>
struct InputColumns {
  const scalar_t* x;
  int64_t cin, plane;
  bool channels_last;
  bool vectors;  // channels_last, Cin a multiple of the 16-byte vector, x 16-byte aligned
  const scalar_t* col = nullptr;
  int64_t k_step = 0;
  __device__ __forceinline__ void set_column(int64_t m) {
    if (channels_last) {
      col = x + m * cin;
      k_step = 1;
    } else {
      const int64_t n = m / plane;
      col = x + n * cin * plane + (m - n * plane);
      k_step = plane;
    }
  }
  // v[e] = B[k0 + e, m] for k0 + e < k_end, else 0. k0 is a multiple of the vector width.
  template <int COUNT>
  __device__ __forceinline__ void load(int64_t k0, int64_t k_end, scalar_t (&v)[COUNT]) const {
    if (vectors && k0 + COUNT <= k_end) {
      load_vectors(col + k0, v);
      return;
    }
#pragma unroll
    for (int e = 0; e < COUNT; ++e) v[e] = k0 + e < k_end ? col[(k0 + e) * k_step] : scalar_t(0);
  }
};

// Column source of the fused separable forward: B[c, m] = the depthwise output of intermediate
// channel c at output pixel m (bias included), rounded to scalar_t as the composition stores it.
// Taps outside the input are skipped once per pixel for all of the thread's channels.
template <typename scalar_t>
struct DepthwiseColumns {
  cpu::DepthwiseParams p;
  const scalar_t* x;
  const scalar_t* dw;       // (kH, kW, C*M), tap-major
  const scalar_t* dw_bias;  // C*M or nullptr
  bool channels_last;
  const scalar_t* image = nullptr;
  int64_t ih0 = 0, iw0 = 0;
  __device__ __forceinline__ void set_column(int64_t m) {
    const int64_t plane = p.out_h * p.out_w, n = m / plane, pix = m - n * plane;
    const int64_t oh = pix / p.out_w, ow = pix - oh * p.out_w;
    ih0 = oh * p.stride_h - p.pad_top;
    iw0 = ow * p.stride_w - p.pad_left;
    image = x + n * p.channels * p.in_h * p.in_w;
  }
  template <int COUNT>
  __device__ __forceinline__ void load(int64_t k0, int64_t k_end, scalar_t (&v)[COUNT]) const {
    using acc_t = acc_type<scalar_t>;
    const int64_t cmid = p.channels * p.multiplier;
    // Channel c reads input channel c / M at image[c_off + pixel * pixel_step].
    const int64_t c_step = channels_last ? 1 : p.in_h * p.in_w;
    const int64_t pixel_step = channels_last ? p.channels : 1;
    acc_t d[COUNT];
#pragma unroll
    for (int e = 0; e < COUNT; ++e)
      d[e] = dw_bias != nullptr && k0 + e < k_end ? static_cast<acc_t>(dw_bias[k0 + e]) : acc_t(0);
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      const int64_t ih = ih0 + i * p.dilation_h;
      if (ih < 0 || ih >= p.in_h) continue;
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        const int64_t iw = iw0 + j * p.dilation_w;
        if (iw < 0 || iw >= p.in_w) continue;
        const scalar_t* xp = image + (ih * p.in_w + iw) * pixel_step;
        const scalar_t* wp = dw + (i * p.kernel_w + j) * cmid;
#pragma unroll
        for (int e = 0; e < COUNT; ++e) {
          const int64_t c = k0 + e, xc = p.multiplier == 1 ? c : c / p.multiplier;
          if (c < k_end) d[e] += static_cast<acc_t>(xp[xc * c_step]) * static_cast<acc_t>(wp[c]);
        }
      }
    }
#pragma unroll
    for (int e = 0; e < COUNT; ++e) v[e] = static_cast<scalar_t>(d[e]);
  }
};

__device__ __forceinline__ uint32_t load_pair(const void* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// acc += a (16 x 16, row-major fragment) * b (16 x 8, column-major fragment), float32 sums.
template <typename scalar_t>
__device__ __forceinline__ void mma_16x8x16(float& c0, float& c1, float& c2, float& c3,
                                            const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (std::is_same_v<scalar_t, c10::Half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

template <typename scalar_t>
constexpr bool gemm_uses_mma() {
  return std::is_same_v<scalar_t, c10::Half> || std::is_same_v<scalar_t, c10::BFloat16>;
}

// Thread layout of the outputs, shared by the compute and the epilogue.
//   mma: warp w covers rows 32 * (w / 4) + [0, 32) and columns 32 * (w % 4) + [0, 32); its
//     accumulator acc[mi][ni][q] is row 16 * mi + g + 8 * (q / 2), column 8 * ni + 2 * t + q % 2
//     of that warp tile (g = lane / 4, t = lane % 4: the m16n8 C-fragment layout).
//   FMA: thread (ty = tid / 16, tx = tid % 16) owns rows ty + 16 * i, columns tx + 16 * j.
template <typename scalar_t>
struct GemmTile {
  static constexpr int BK = gemm_bk<scalar_t>();
  static constexpr int kPad = static_cast<int>(16 / sizeof(scalar_t));
  static constexpr int kVec = kPad;  // elements per 16-byte shared access
  static constexpr int kALoad = BK / 4, kBLoad = BK / 2;
  struct Smem {
    scalar_t a[kGemmBM][BK + kPad];
    scalar_t b[kGemmBN][BK + kPad];
  };
  using acc_t = acc_type<scalar_t>;
  using V = Vec<scalar_t, kVec>;

  // mma: [2][4][4], FMA: [4][8] (flattened to 32 either way).
  acc_t acc[32];

  __device__ __forceinline__ void compute(const Smem& s) {
    const int tid = threadIdx.x;
    if constexpr (gemm_uses_mma<scalar_t>()) {
      const int warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
      const int r0 = 32 * (warp / 4), c0 = 32 * (warp % 4);
#pragma unroll
      for (int kb = 0; kb < BK; kb += 16) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
        uint32_t a[2][4], b[4][2];
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
          const int r = r0 + 16 * mi + g;
          a[mi][0] = load_pair(&s.a[r][kb + 2 * t]);
          a[mi][1] = load_pair(&s.a[r + 8][kb + 2 * t]);
          a[mi][2] = load_pair(&s.a[r][kb + 2 * t + 8]);
          a[mi][3] = load_pair(&s.a[r + 8][kb + 2 * t + 8]);
        }
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          const int c = c0 + 8 * ni + g;
          b[ni][0] = load_pair(&s.b[c][kb + 2 * t]);
          b[ni][1] = load_pair(&s.b[c][kb + 2 * t + 8]);
        }
#pragma unroll
        for (int mi = 0; mi < 2; ++mi)
#pragma unroll
          for (int ni = 0; ni < 4; ++ni) {
            float* c = &acc[(mi * 4 + ni) * 4];  // compile-time offsets: stays in registers
            mma_16x8x16<scalar_t>(c[0], c[1], c[2], c[3], a[mi], b[ni]);
          }
#else  // no m16n8k16 tensor-core op: the same fragments by FMA
#pragma unroll
        for (int q = 0; q < 32; ++q) {
          const int r = r0 + 16 * (q / 16) + g + 8 * ((q % 4) / 2);
          const int c = c0 + 8 * ((q / 4) % 4) + 2 * t + q % 2;
          for (int k = kb; k < kb + 16; ++k)
            acc[q] += static_cast<float>(s.a[r][k]) * static_cast<float>(s.b[c][k]);
        }
#endif
      }
    } else {
      const int ty = tid / 16, tx = tid % 16;
#pragma unroll
      for (int kk = 0; kk < BK; kk += kVec) {
        V av[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) av[i] = *reinterpret_cast<const V*>(&s.a[ty + 16 * i][kk]);
#pragma unroll
        for (int j = 0; j < 8; ++j) {  // one B vector live at a time: two blocks fit per SM
          const V bv = *reinterpret_cast<const V*>(&s.b[tx + 16 * j][kk]);
#pragma unroll
          for (int v = 0; v < kVec; ++v)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[i * 8 + j] += av[i].v[v] * bv.v[v];
        }
      }
    }
  }

  // f(row, column, value) for each of the thread's accumulators, row and column within the tile;
  // f(column) first, once per column: it returns the column's output offset.
  template <typename Column, typename Element>
  __device__ __forceinline__ void for_each_output(Column&& column, Element&& element) const {
    const int tid = threadIdx.x;
    if constexpr (gemm_uses_mma<scalar_t>()) {
      const int warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
      const int r0 = 32 * (warp / 4), c0 = 32 * (warp % 4);
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int c = c0 + 8 * ni + 2 * t + h;
          const auto offset = column(c);
#pragma unroll
          for (int mi = 0; mi < 2; ++mi)
#pragma unroll
            for (int half = 0; half < 2; ++half)
              element(r0 + 16 * mi + g + 8 * half, c, offset,
                      acc[(mi * 4 + ni) * 4 + 2 * half + h]);
        }
    } else {
      const int ty = tid / 16, tx = tid % 16;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int c = tx + 16 * j;
        const auto offset = column(c);
#pragma unroll
        for (int i = 0; i < 4; ++i) element(ty + 16 * i, c, offset, acc[i * 8 + j]);
      }
    }
  }
};

// One block per (64 x 128 output tile, K slice); see the top of this file.
// workspace == nullptr: one slice, the bias added and y written here.
// Two blocks per multiprocessor (<= 128 registers) except for double, whose 32 sums take 64.
template <typename scalar_t>
constexpr int gemm_min_blocks() {
  return sizeof(scalar_t) == 8 ? 1 : 2;
}

template <typename scalar_t, typename Columns>
__global__ void __launch_bounds__(kGemmThreads, gemm_min_blocks<scalar_t>())
    gemm_columns_kernel(const scalar_t* __restrict__ w,  // (cout, k_total) row-major
                        int64_t k_total, bool w_vectors, int64_t k_per_slice, Columns cols,
                        GemmOutput out, const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
                        acc_type<scalar_t>* __restrict__ workspace, int64_t tiles_m, int slices) {
  using Tile = GemmTile<scalar_t>;
  using acc_t = acc_type<scalar_t>;
  constexpr int BK = Tile::BK, kA = Tile::kALoad, kB = Tile::kBLoad, kVec = Tile::kVec;
  using V = typename Tile::V;
  __shared__ __align__(16) unsigned char raw[sizeof(typename Tile::Smem)];
  auto& smem = *reinterpret_cast<typename Tile::Smem*>(raw);

  const int64_t block = blockIdx.x;
  const int slice = static_cast<int>(block % slices);
  const int64_t tile = block / slices;
  const int64_t co0 = (tile % tiles_m) * kGemmBM, m0 = (tile / tiles_m) * kGemmBN;
  const int64_t k_begin = slice * k_per_slice;
  const int64_t k_end = k_begin + k_per_slice < k_total ? k_begin + k_per_slice : k_total;

  const int tid = threadIdx.x;
  const int a_row = tid / 4, a_k = (tid % 4) * kA;  // this thread's share of the w tile
  const int b_col = tid / 2, b_k = (tid % 2) * kB;  // ... and of the B tile
  const int64_t co = co0 + a_row, m = m0 + b_col;
  const bool a_live = co < out.cout, b_live = m < out.pixels;
  if (b_live) cols.set_column(m);

  scalar_t ra[kA], rb[kB];
  auto load = [&](int64_t k0) {
    if (w_vectors && a_live && k0 + a_k + kA <= k_end) {
      load_vectors(w + co * k_total + k0 + a_k, ra);
    } else {
#pragma unroll
      for (int e = 0; e < kA; ++e) {
        const int64_t k = k0 + a_k + e;
        ra[e] = a_live && k < k_end ? w[co * k_total + k] : scalar_t(0);
      }
    }
    if (b_live) {
      cols.load(k0 + b_k, k_end, rb);
    } else {
#pragma unroll
      for (int e = 0; e < kB; ++e) rb[e] = scalar_t(0);
    }
  };

  Tile t;
#pragma unroll
  for (int q = 0; q < 32; ++q) t.acc[q] = acc_t(0);
  load(k_begin);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
    __syncthreads();  // everyone is done with the previous step's tiles
#pragma unroll
    for (int e = 0; e < kA; e += kVec) {
      V v;
#pragma unroll
      for (int i = 0; i < kVec; ++i) v.v[i] = ra[e + i];
      *reinterpret_cast<V*>(&smem.a[a_row][a_k + e]) = v;
    }
#pragma unroll
    for (int e = 0; e < kB; e += kVec) {
      V v;
#pragma unroll
      for (int i = 0; i < kVec; ++i) v.v[i] = rb[e + i];
      *reinterpret_cast<V*>(&smem.b[b_col][b_k + e]) = v;
    }
    __syncthreads();
    if (k0 + BK < k_end) load(k0 + BK);  // in flight while this step computes
    t.compute(smem);
  }

  if (workspace == nullptr) {
    t.for_each_output(
        [&](int c) { return m0 + c < out.pixels ? out.column_offset(m0 + c) : int64_t(-1); },
        [&](int r, int c, int64_t offset, acc_t v) {
          if (offset < 0 || co0 + r >= out.cout) return;
          if (bias != nullptr) v += static_cast<acc_t>(bias[co0 + r]);
          y[offset + (co0 + r) * out.row_step()] = static_cast<scalar_t>(v);
        });
  } else {
    acc_t* ws = workspace + int64_t(slice) * out.cout * out.pixels;
    t.for_each_output([&](int c) { return m0 + c; },
                      [&](int r, int c, int64_t col, acc_t v) {
                        if (col < out.pixels && co0 + r < out.cout)
                          ws[(co0 + r) * out.pixels + col] = v;
                      });
  }
}

// Split K, stage 2: y[co, m] = bias[co] + the slices' partial sums, added in slice order.
template <typename scalar_t>
__global__ void gemm_finish_kernel(const acc_type<scalar_t>* __restrict__ workspace, int slices,
                                   GemmOutput out, const scalar_t* __restrict__ bias,
                                   scalar_t* __restrict__ y) {
  using acc_t = acc_type<scalar_t>;
  const int64_t count = int64_t(out.cout) * out.pixels;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t co = i / out.pixels, m = i - co * out.pixels;
    acc_t v = bias != nullptr ? static_cast<acc_t>(bias[co]) : acc_t(0);
    for (int s = 0; s < slices; ++s) v += workspace[s * count + i];
    y[out.column_offset(m) + co * out.row_step()] = static_cast<scalar_t>(v);
  }
}

// Host: y = w * B (+ bias) for the column source `cols`, on the current stream. Slices of K
// when the tiles fill fewer than two blocks per multiprocessor, each at least four K steps long;
// a pure function of shape and device, so the summation order never changes between runs.
template <typename scalar_t, typename Columns>
void launch_gemm_columns(const scalar_t* w, int64_t k_total, const Columns& cols,
                         const GemmOutput& out, const scalar_t* bias, scalar_t* y,
                         const at::TensorOptions& options, const char* op) {
  using acc_t = acc_type<scalar_t>;
  constexpr int BK = gemm_bk<scalar_t>();
  const int device = options.device().index();
  const auto stream = c10::cuda::getCurrentCUDAStream(device);
  const int64_t tiles_m = ceil_div(out.cout, kGemmBM);
  const int64_t tiles = tiles_m * ceil_div(out.pixels, kGemmBN);
  const int64_t steps = ceil_div(k_total, BK);
  const int64_t sms = multiprocessor_count(device);
  const int64_t target = 2 * sms;
  int64_t slices = 1;
  if (tiles < target) slices = std::max<int64_t>(1, std::min(ceil_div(target, tiles), steps / 4));
  const int64_t k_per_slice = std::max<int64_t>(1, ceil_div(steps, slices)) * BK;
  slices = std::max<int64_t>(1, ceil_div(k_total, k_per_slice));  // no empty slice
  at::Tensor workspace;
  if (slices > 1)
    workspace = at::empty({slices, int64_t(out.cout), out.pixels},
                          options.dtype(c10::CppTypeToScalarType<acc_t>::value));
  acc_t* ws = slices > 1 ? workspace.data_ptr<acc_t>() : nullptr;
  // Rows of w start on 16-byte boundaries: every K step's share is whole vectors.
  const bool w_vectors = k_total % static_cast<int64_t>(16 / sizeof(scalar_t)) == 0 &&
                         reinterpret_cast<uintptr_t>(w) % 16 == 0;
  gemm_columns_kernel<scalar_t, Columns>
      <<<grid_size(tiles * slices, op), kGemmThreads, 0, stream>>>(
          w, k_total, w_vectors, k_per_slice, cols, out, bias, y, ws, tiles_m,
          static_cast<int>(slices));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (slices > 1) {
    const int64_t blocks =
        std::min<int64_t>(ceil_div(int64_t(out.cout) * out.pixels, 256), 8 * sms);
    gemm_finish_kernel<scalar_t>
        <<<grid_size(blocks, op), 256, 0, stream>>>(ws, static_cast<int>(slices), out, bias, y);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

}  // namespace cuda
}  // namespace sepconv
