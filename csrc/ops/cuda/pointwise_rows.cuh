// Pointwise forward (and input gradient: the forward with the transposed weight) as one thread
// per pixel and a tile of CO output channels in registers:
//   y[pixel, co0 + co] = bias[co0 + co] + sum over ci of x[pixel, ci] * w[co0 + co, ci].
// The weight tile (kRowsKc input channels x CO outputs, read from the transposed weight so the
// reads coalesce) is staged in shared memory and read as broadcasts, four outputs per load; each
// input element is loaded once per output tile. These GEMMs are skinny (C of 16 to 1280 against
// N*H*W pixels): a pixel per thread keeps the memory traffic at one read of x and one write of y
// per tile, where a square 64x64 tile wastes most of its FMAs on channel counts below 64.
// NCHW: consecutive threads read and write consecutive pixels of a plane (coalesced).
// channels_last: each thread reads its pixel's channels as VEC-wide vectors and writes its
// outputs likewise when the channel counts and pointers allow (VEC = 1 otherwise).
#pragma once
#include <cstdint>
#include <type_traits>

#include "cuda_utils.cuh"

namespace sepconv {
namespace cuda {

constexpr int kRowsThreads = 128;  // pixels per block
constexpr int kRowsKc = 32;        // input channels staged per step

template <typename scalar_t, int CO, bool kChannelsLast, int VEC>
__global__ void __launch_bounds__(kRowsThreads)
    pointwise_rows_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ wt,
                          const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
                          int64_t pixels, int64_t plane, int cin, int cout, int co_tiles) {
  using acc_t = acc_type<scalar_t>;
  using V = Vec<scalar_t, VEC>;
  static_assert(CO % VEC == 0 && kRowsKc % VEC == 0, "vectors must not straddle tiles");
  __shared__ acc_t s_w[kRowsKc][CO];
  const int co0 = static_cast<int>(blockIdx.x % co_tiles) * CO;
  const int64_t m = int64_t(blockIdx.x / co_tiles) * kRowsThreads + threadIdx.x;
  const bool active = m < pixels;
  // x[pixel, ci] = xp[ci * x_step], y[pixel, co0 + co] = yp[co * y_step]
  const scalar_t* xp;
  scalar_t* yp;
  int64_t step;
  if (kChannelsLast) {
    xp = x + m * cin;
    yp = y + m * cout + co0;
    step = 1;
  } else {
    const int64_t n = m / plane, p = m % plane;
    xp = x + n * cin * plane + p;
    yp = y + (n * cout + co0) * plane + p;
    step = plane;
  }

  acc_t acc[CO];
#pragma unroll
  for (int co = 0; co < CO; ++co)
    acc[co] = bias != nullptr && co0 + co < cout ? static_cast<acc_t>(bias[co0 + co]) : acc_t(0);
  for (int c0 = 0; c0 < cin; c0 += kRowsKc) {
    const int kc = min(kRowsKc, cin - c0);
    __syncthreads();  // everyone is done with the previous step's weights
    for (int e = threadIdx.x; e < kRowsKc * CO; e += kRowsThreads) {
      const int ci = e / CO, co = e % CO;  // consecutive threads: consecutive outputs
      s_w[ci][co] = ci < kc && co0 + co < cout
                        ? static_cast<acc_t>(wt[int64_t(c0 + ci) * cout + co0 + co])
                        : acc_t(0);
    }
    __syncthreads();
    if (!active) continue;
    if (kChannelsLast && VEC > 1) {  // cin % VEC == 0, so kc is a multiple of VEC
      for (int ci = 0; ci < kc; ci += VEC) {
        const V xv = *reinterpret_cast<const V*>(xp + c0 + ci);
#pragma unroll
        for (int v = 0; v < VEC; ++v) {
          const acc_t xs = static_cast<acc_t>(xv.v[v]);
#pragma unroll
          for (int co = 0; co < CO; ++co) acc[co] += xs * s_w[ci + v][co];
        }
      }
    } else {
      for (int ci = 0; ci < kc; ++ci) {
        const acc_t xs = static_cast<acc_t>(xp[(c0 + ci) * step]);
#pragma unroll
        for (int co = 0; co < CO; ++co) acc[co] += xs * s_w[ci][co];
      }
    }
  }
  if (!active) return;
  if (kChannelsLast && VEC > 1) {  // cout % VEC == 0: a vector is wholly inside or outside
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
      if (co0 + co < cout) yp[co * step] = static_cast<scalar_t>(acc[co]);
  }
}

// Host: the output-channel tile, 16 or 32 (the dispatcher runs this kernel for Cout <= 32; a
// forced run on more channels takes several tiles): 16 when Cout fits or when 32 would leave
// fewer than two blocks per multiprocessor.
inline int rows_co_tile(int64_t pixels, int64_t cout, int device) {
  const int64_t pixel_blocks = ceil_div(pixels, kRowsThreads);
  const int64_t min_blocks = 2 * int64_t(multiprocessor_count(device));
  return cout <= 16 || pixel_blocks * ceil_div(cout, 32) < min_blocks ? 16 : 32;
}

// Host: calls f(CO, CHANNELS_LAST, VEC) as integral constants for a rows-style kernel: VEC is
// the 16-byte vector width when `vectors` (channels_last, channel counts and pointers allow).
template <typename scalar_t, typename F>
void with_rows_config(int co_tile, bool channels_last, bool vectors, F&& f) {
  using std::integral_constant;
  constexpr int kVec = static_cast<int>(16 / sizeof(scalar_t));
  auto with_layout = [&](auto co) {
    if (vectors)
      f(co, std::true_type(), integral_constant<int, kVec>());
    else if (channels_last)
      f(co, std::true_type(), integral_constant<int, 1>());
    else
      f(co, std::false_type(), integral_constant<int, 1>());
  };
  if (co_tile == 16)
    with_layout(integral_constant<int, 16>());
  else
    with_layout(integral_constant<int, 32>());
}

}  // namespace cuda
}  // namespace sepconv
