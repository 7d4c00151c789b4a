// Shared helpers of the CUDA kernels and their launchers (the path choices: path_policy.h).
// Only c10/cuda headers (stream, guard, launch check): ATen/cuda/CUDAContext.h pulls in cusparse
// headers that a bare toolkit may not ship.
#pragma once
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace sepconv {
namespace cuda {

// Half and bfloat16 accumulate in float, float in float, double in double.
template <typename T>
using acc_type = at::opmath_type<T>;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grids are one-dimensional over blockIdx.x (limit 2^31 - 1) so no problem size hits the 65535
// limit of the y and z dimensions.
inline unsigned int grid_size(int64_t blocks, const char* op) {
  TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(), op,
              ": problem too large for one launch (", blocks, " thread blocks)");
  return static_cast<unsigned int>(blocks < 1 ? 1 : blocks);
}

inline int multiprocessor_count(int device) {
  int count = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count > 0 ? count : 1;
}

// Blocks of 256 threads for a grid-stride loop over `total` elements: enough to cover them, at
// most 32 per multiprocessor.
inline unsigned int elementwise_blocks(int64_t total, int device) {
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

// floor(a / b) for b > 0 and any sign of a.
__device__ __forceinline__ int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (q * b > a) ? q - 1 : q;
}

// VEC elements of T loaded or stored with one instruction (the address must be aligned).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

}  // namespace cuda
}  // namespace sepconv
