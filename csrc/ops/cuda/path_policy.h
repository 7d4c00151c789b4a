// Every choice the CUDA host ops make between kernels, in one place: each predicate with the
// measurement or the limit behind it, and the environment overrides that force a choice.
// The host ops (depthwise_*_cuda.cu, pointwise_*_cuda.cu, separable_conv2d_cuda.cu) prepare,
// ask here which path, then launch; the launchers of the kernel headers ask here where they pick
// a variant (shared or global memory, window or generic kernel, vector width).
//
// Plain C++, no CUDA headers: path_policy.cpp (the override store) is compiled in CPU-only builds
// too, so sepconv_ext._C._reload_cuda_path_overrides() exists in every build.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <limits>

#include "cpu/params.h"

namespace sepconv {
namespace cuda {

// ------------------------------------------------------------------ environment overrides
// Where a dispatcher chooses between two kernels, an environment variable can force one (the
// tests run both; benchmarks/cuda_path_probes.py times both):
//   SEPCONV_CUDA_POINTWISE=rows|gemm          pointwise forward (and input gradient)
//   SEPCONV_CUDA_POINTWISE_WGRAD=tiles|gemm   pointwise weight gradient
//   SEPCONV_CUDA_SEPARABLE=fused|composed     separable forward
// The variables are read once, on first use, and again by reload_cuda_path_overrides()
// (sepconv_ext._C._reload_cuda_path_overrides(), which a process that changes them after its
// first CUDA op call must call). Unset or empty: the automatic choice. Any other value than the
// two names fails the op that consults it with "<NAME> must be '<a>' or '<b>', got '<value>'".
enum class PathOverride { kPointwise, kPointwiseWgrad, kSeparable };
enum class Forced { kAuto, kFirst, kSecond };  // kFirst: the first name above (rows, tiles, fused)

// The forced choice of `which` as last read; throws on an invalid value (see above).
Forced forced_path(PathOverride which);
// Reads the environment variables again (validation happens on use, in forced_path).
void reload_cuda_path_overrides();

// ------------------------------------------------------------------ shared limits
// Without opting in to more, a block may use 48 KiB of dynamic shared memory on every arch we
// build for; kernels whose staged tiles would need more take their global-memory variant.
constexpr size_t kMaxDynamicSmem = 48 * 1024;
inline bool fits_dynamic_smem(size_t bytes) { return bytes <= kMaxDynamicSmem; }

// Counts some kernels hold in 32 bits; larger ones take another path: the GEMM's output channels
// (GemmOutput::cout; else the pointwise weight-gradient tiles, the separable composition), the
// depthwise weight-gradient window kernel's work items (else the tiles) and the channels_last
// weight gradient's pixels (else the NCHW route).
inline bool fits_int32(int64_t n) { return n <= std::numeric_limits<int32_t>::max(); }

// ------------------------------------------------------------------ depthwise
// The unrolled window kernels index rows and columns in 32 bits and know K and S at compile time.
// Returns K when the window kernels (depthwise_nchw_window.cuh, depthwise_nhwc_window.cuh) take
// the shape (K x K in {3, 5, 7}, stride 1 or 2 on both axes, dilation 1), else 0.
inline int window_kernel_size(const cpu::DepthwiseParams& p) {
  constexpr int64_t kLimit = int64_t(1) << 30;
  const bool small = p.in_h < kLimit && p.in_w < kLimit && p.out_h < kLimit && p.out_w < kLimit &&
                     std::abs(p.pad_top) < kLimit && std::abs(p.pad_left) < kLimit;
  const bool square = p.kernel_h == p.kernel_w && p.stride_h == p.stride_w && p.dilation_h == 1 &&
                      p.dilation_w == 1 && (p.stride_h == 1 || p.stride_h == 2);
  const bool templated = p.kernel_h == 3 || p.kernel_h == 5 || p.kernel_h == 7;
  return small && square && templated ? static_cast<int>(p.kernel_h) : 0;
}

// Channels per thread of the channels_last pixel kernels (depthwise_nhwc_pixel.cuh): 16-byte
// vectors (16 / elem_size channels) with multiplier 1, C a multiple of the vector and every
// non-null pointer 16-byte aligned; else 1.
inline int depthwise_vector_width(const cpu::DepthwiseParams& p, size_t elem_size,
                                  std::initializer_list<const void*> ptrs) {
  const int vec = static_cast<int>(16 / elem_size);
  if (p.multiplier != 1 || p.channels % vec != 0) return 1;
  for (const void* ptr : ptrs)
    if (ptr != nullptr && reinterpret_cast<uintptr_t>(ptr) % 16 != 0) return 1;
  return vec;
}

// NCHW forward (also the stride-1 input gradient, as the forward with flipped taps): the
// register-window kernel where it takes the shape, else the shared-memory tiles, which for those
// shapes (kernels other than 3/5/7, dilation, unequal strides), measured on an H100 at 31x31,
// ran 2.4x faster than a register-window variant reading through L1.
enum class DepthwiseNchwForwardPath { kWindow, kTiles };
inline DepthwiseNchwForwardPath depthwise_nchw_forward_path(const cpu::DepthwiseParams& p) {
  return window_kernel_size(p) != 0 ? DepthwiseNchwForwardPath::kWindow
                                    : DepthwiseNchwForwardPath::kTiles;
}

// channels_last forward: the window kernel for 16-byte channel vectors (`vec`, from
// depthwise_vector_width, equal to the full vector `full_vec`) and K x K in {3, 5, 7} at stride
// 1 or 2, else one thread per output pixel and group of channels.
enum class DepthwiseNhwcForwardPath { kWindow, kPixels };
inline DepthwiseNhwcForwardPath depthwise_nhwc_forward_path(const cpu::DepthwiseParams& p, int vec,
                                                            int full_vec) {
  return vec == full_vec && window_kernel_size(p) != 0 ? DepthwiseNhwcForwardPath::kWindow
                                                       : DepthwiseNhwcForwardPath::kPixels;
}

// Input gradient. Stride 1 with multiplier 1 (both layouts): the forward of grad_output with
// flipped taps (the forward's own path choice then applies). Other channels_last shapes: one
// thread per input pixel and group of channels. NCHW stride 2, multiplier 1, in the window
// kernels' shapes: the register-window kernel of its own. Other NCHW shapes: the tiles (shared
// memory, or global memory where the window would not fit).
enum class DepthwiseBackwardInputPath {
  kNhwcFlippedForward,
  kNhwcPixels,
  kNchwFlippedForward,
  kNchwWindowStride2,
  kNchwTiles,
};
inline DepthwiseBackwardInputPath depthwise_backward_input_path(const cpu::DepthwiseParams& p,
                                                                bool channels_last) {
  const bool flipped_forward = p.stride_h == 1 && p.stride_w == 1 && p.multiplier == 1;
  if (channels_last)
    return flipped_forward ? DepthwiseBackwardInputPath::kNhwcFlippedForward
                           : DepthwiseBackwardInputPath::kNhwcPixels;
  if (flipped_forward) return DepthwiseBackwardInputPath::kNchwFlippedForward;
  if (p.stride_h == 2 && p.multiplier == 1 && window_kernel_size(p) != 0)
    return DepthwiseBackwardInputPath::kNchwWindowStride2;
  return DepthwiseBackwardInputPath::kNchwTiles;
}

// Weight gradient. channels_last read in place (depthwise_nhwc_backward_weight.cuh) when the
// shape is one it wins on: multiplier 1, 3x3, output planes of >= 100 pixels and the batch's
// pixels counted in 32 bits. Measured on an H200 (N=32,
// benchmarks/results/cuda-h200-path-probes.md): 1.3-2.9x faster than the NCHW route for 3x3 on
// planes of 14x14 and up, 0.73-1.13x on 7x7 output planes, 0.30-0.34x for 7x7 kernels (49 sums
// per channel in registers leave one channel per thread; the NCHW window kernel does better).
// The launcher still falls back to the NCHW route when C is not a multiple of its vector or the
// tensors are not aligned to it. Everything else reduces over NCHW planes (channels_last
// tensors converted first): the register-window kernel in its shapes when the per-channel work
// items fit in 32 bits, else the shared-memory tiles.
enum class DepthwiseBackwardWeightPath { kNhwcInPlace, kNchwWindow, kNchwTiles };
inline bool depthwise_backward_weight_nhwc_in_place(const cpu::DepthwiseParams& p) {
  const int64_t pixels = p.batch * p.out_h * p.out_w;
  return p.multiplier == 1 && p.kernel_h == 3 && p.kernel_w == 3 && p.out_h * p.out_w >= 100 &&
         fits_int32(pixels);
}
// The NCHW route alone (also the fallback of kNhwcInPlace); `window_items` is the window
// kernel's work items per channel (backward_weight_window_items).
inline DepthwiseBackwardWeightPath depthwise_backward_weight_nchw_path(
    const cpu::DepthwiseParams& p, int64_t window_items) {
  return window_kernel_size(p) != 0 && fits_int32(window_items)
             ? DepthwiseBackwardWeightPath::kNchwWindow
             : DepthwiseBackwardWeightPath::kNchwTiles;
}
inline DepthwiseBackwardWeightPath depthwise_backward_weight_path(const cpu::DepthwiseParams& p,
                                                                  bool channels_last,
                                                                  int64_t window_items) {
  if (channels_last && depthwise_backward_weight_nhwc_in_place(p))
    return DepthwiseBackwardWeightPath::kNhwcInPlace;
  return depthwise_backward_weight_nchw_path(p, window_items);
}

// ------------------------------------------------------------------ pointwise
// Forward (and the input gradient, which autograd runs as the forward with W^T): for small GEMMs
// (Cout <= 32 and Cin <= 64) one thread per pixel with a tile of output channels in registers
// (pointwise_rows.cuh), which reads x once and wastes no FMA on a 64-row tile of 16 or 32
// channels; else the tiled GEMM (pointwise_gemm.cuh). SEPCONV_CUDA_POINTWISE forces one.
enum class PointwiseForwardPath { kRows, kGemm };
inline PointwiseForwardPath pointwise_forward_path(int64_t cin, int64_t cout) {
  switch (forced_path(PathOverride::kPointwise)) {
    case Forced::kFirst:
      return PointwiseForwardPath::kRows;
    case Forced::kSecond:
      return PointwiseForwardPath::kGemm;
    case Forced::kAuto:
      break;
  }
  const bool small = cout <= 32 && cin <= 64;
  return small ? PointwiseForwardPath::kRows : PointwiseForwardPath::kGemm;
}

// Weight gradient: the GEMM on GY^T except for 32/64-bit with Cout <= 32, where its 64-row tiles
// are mostly padding and (NCHW) the copies of X cost more than they save: measured on an H200
// (benchmarks/results/cuda-h200-path-probes.md), the GEMM is 1.25-4.6x faster for every 16-bit
// shape and 1.05-2.1x for float32 with Cout >= 64, the tiles 1.2-1.7x faster for float32 with
// Cout <= 32. SEPCONV_CUDA_POINTWISE_WGRAD forces one; the GEMM needs Cout in 32 bits.
enum class PointwiseWeightGradPath { kTiles, kGemm };
inline PointwiseWeightGradPath pointwise_weight_grad_path(bool half_types, int64_t cout) {
  bool gemm = half_types || cout > 32;
  switch (forced_path(PathOverride::kPointwiseWgrad)) {
    case Forced::kFirst:
      gemm = false;
      break;
    case Forced::kSecond:
      gemm = true;
      break;
    case Forced::kAuto:
      break;
  }
  return gemm && fits_int32(cout) ? PointwiseWeightGradPath::kGemm
                                  : PointwiseWeightGradPath::kTiles;
}

// ------------------------------------------------------------------ separable
// Forward: the composition of the two CUDA ops (the intermediate in global memory) unless
// SEPCONV_CUDA_SEPARABLE=fused: the fused kernel (the pointwise GEMM whose B tiles are depthwise
// outputs computed on the fly) measured on an H200 (N=32, 3x3,
// benchmarks/results/cuda-h200-path-probes.md) 3-5x slower than the composition on every
// benchmark shape (see separable_conv2d_cuda.cu). Asked before the op allocates its output (the
// composition allocates its own); the fused kernel also needs Cout in 32 bits (fits_int32).
enum class SeparableForwardPath { kFused, kComposed };
inline SeparableForwardPath separable_forward_path() {
  return forced_path(PathOverride::kSeparable) == Forced::kFirst ? SeparableForwardPath::kFused
                                                                 : SeparableForwardPath::kComposed;
}

}  // namespace cuda
}  // namespace sepconv
