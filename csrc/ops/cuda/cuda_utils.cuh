// Shared helpers of the CUDA kernels. Only c10/cuda headers (stream, guard, launch check):
// ATen/cuda/CUDAContext.h pulls in cusparse headers that a bare toolkit may not ship.
#pragma once
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace sepconv {
namespace cuda {

// Half and bfloat16 accumulate in float, float in float, double in double.
template <typename T>
using acc_type = at::opmath_type<T>;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Without opting in to more, a block may use 48 KiB of dynamic shared memory on every arch we
// build for; kernels whose staged tiles would need more take their global-memory variant.
constexpr size_t kMaxDynamicSmem = 48 * 1024;

// Grids are one-dimensional over blockIdx.x (limit 2^31 - 1) so no problem size hits the 65535
// limit of the y and z dimensions.
inline unsigned int grid_size(int64_t blocks, const char* op) {
  TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(), op,
              ": problem too large for one launch (", blocks, " thread blocks)");
  return static_cast<unsigned int>(blocks < 1 ? 1 : blocks);
}

// Where a dispatcher chooses between two kernels, an environment variable can force one (the
// tests run both; benchmarks/cuda_path_probes.py times both): returns `automatic` when `name` is
// unset or empty, else its value, which must be one of `a` and `b`.
inline const char* forced_path(const char* name, const char* automatic, const char* a,
                               const char* b) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return automatic;
  TORCH_CHECK(std::strcmp(v, a) == 0 || std::strcmp(v, b) == 0, name, " must be '", a, "' or '", b,
              "', got '", v, "'");
  return v;
}

inline int multiprocessor_count(int device) {
  int count = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count > 0 ? count : 1;
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
