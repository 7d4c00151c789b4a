// Pointwise (1x1) convolution microkernels: declarations shared by every ISA.
// Same conventions as depthwise.h: each kernel handles the units [begin, end), one writer per unit.
//   *_nchw: input (N, Cin, P), weight (Cout, Cin), output (N, Cout, P), P = H*W
//   *_nhwc: input (N*P, Cin), output (N*P, Cout)
// The forward kernels read the weight packed by pack_weight; the weight gradients write (Cout, Cin).
#pragma once
#include "params.h"

namespace sepconv {
namespace cpu {

// NCHW work unit: (image, block of pointwise_pixel_block(p) pixels, block of kPointwiseRowBlock
// output channels). The unit packs its (Cin x pixel block) input slice, at most 64K floats per
// depth block, which stays in L2 while the output channels read it: narrow inputs take longer
// pixel blocks, so each of the Cin rows the unit reads is a longer sequential run. Splitting
// channels too keeps both threads busy when an image has few pixels (7x7 layers).
constexpr int64_t kPointwisePixelBlock = 256, kPointwiseRowBlock = 96, kPointwisePackFloats = 1 << 16;

// Up to this many pixels (N*P), the NHWC forward dots weight rows in place (forward_dot)
// instead of packing the weight for the GEMM tile.
constexpr int64_t kPointwiseDotRows = 16;

inline int64_t pointwise_pixel_block(const PointwiseParams& p) {
  const int64_t depth = p.in_channels < 256 ? (p.in_channels > 0 ? p.in_channels : 1) : 256;
  const int64_t wide = kPointwisePackFloats / depth / kPointwisePixelBlock * kPointwisePixelBlock;
  return wide > kPointwisePixelBlock ? wide : kPointwisePixelBlock;
}

inline int64_t pointwise_nchw_units(const PointwiseParams& p) {
  const int64_t block = pointwise_pixel_block(p);
  return p.batch * ((p.pixels + block - 1) / block) *
         ((p.out_channels + kPointwiseRowBlock - 1) / kPointwiseRowBlock);
}

template <typename T>
struct PointwiseKernels {
  // C = A * B + bias on the calling thread (cache-blocked, register-tiled, see gemm.h);
  // row_bias adds row_bias[i] to row i, col_bias adds col_bias[j] to column j (either may be
  // null). The fused separable kernel (separable.h) runs its pointwise half through this.
  void (*gemm)(const Gemm&, const T* a, const T* b, T* c, const T* row_bias, const T* col_bias);
  // The forward's weight, packed once per call for the layout (nhwc or NCHW) into the register
  // tile's panels: packed_weight_size floats; the weight (Cout, Cin) is read as w[o * rs + c * cs].
  int64_t (*packed_weight_size)(const PointwiseParams&, bool nhwc);
  void (*pack_weight)(const PointwiseParams&, bool nhwc, const T* weight, int64_t rs, int64_t cs,
                      T* packed);
  // units: pointwise_nchw_units(p) blocks of (image, pixels, output channels)
  void (*forward_nchw)(const PointwiseParams&, const T* input, const T* weight_packed,
                       const T* bias, T* output, int64_t begin, int64_t end);
  // units: pixels n * P + i
  void (*forward_nhwc)(const PointwiseParams&, const T* input, const T* weight_packed,
                       const T* bias, T* output, int64_t begin, int64_t end);
  // The NHWC forward for N*P <= kPointwiseDotRows, on the unpacked weight (Cout, Cin) with
  // unit column stride; units: output channels o
  void (*forward_dot)(const PointwiseParams&, const T* input, const T* weight, const T* bias,
                      T* output, int64_t begin, int64_t end);
  // units: output channels o; grad_weight (Cout, Cin) summed over the batch in a fixed order
  void (*backward_weight_nchw)(const PointwiseParams&, const T* grad_output, const T* input,
                               T* grad_weight, int64_t begin, int64_t end);
  void (*backward_weight_nhwc)(const PointwiseParams&, const T* grad_output, const T* input,
                               T* grad_weight, int64_t begin, int64_t end);
};

template <typename T>
const PointwiseKernels<T>& pointwise_scalar_kernels();

// float32 SIMD kernels (csrc/cpu/kernels_<isa>.cpp); each exists only on its architecture.
const PointwiseKernels<float>& pointwise_avx512_kernels();
const PointwiseKernels<float>& pointwise_avx2_kernels();
const PointwiseKernels<float>& pointwise_neon_kernels();

}  // namespace cpu
}  // namespace sepconv
