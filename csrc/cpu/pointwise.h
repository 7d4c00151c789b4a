// Pointwise (1x1) convolution microkernels: declarations shared by every ISA.
// Same conventions as depthwise.h: each kernel handles the units [begin, end), one writer per unit.
//   *_nchw: input (N, Cin, P), weight (Cout, Cin), output (N, Cout, P), P = H*W
//   *_nhwc: input (N*P, Cin), output (N*P, Cout)
// The forward kernels read the weight packed by pack_weight; the weight gradients write (Cout,
// Cin).
#pragma once
#include <algorithm>
#include <utility>

#include "params.h"
#include "policy.h"

namespace sepconv {
namespace cpu {

// NCHW work unit: (image, block of pointwise_pixel_block(p) pixels, block of kPointwiseRowBlock
// output channels). The unit packs its (Cin x pixel block) input slice, at most 64K floats per
// depth block, which stays in L2 while the output channels read it: narrow inputs take longer
// pixel blocks, so each of the Cin rows the unit reads is a longer sequential run. Splitting
// channels too keeps both threads busy when an image has few pixels (7x7 layers).
constexpr int64_t kPointwisePixelBlock = 256, kPointwiseRowBlock = 96,
                  kPointwisePackFloats = 1 << 16;

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

// The weight gradient dW = sum over images of dY_n X_n^T, split so that threads share the
// images as well as the output channels. The batch is cut into `groups` groups of
// `group_images` images, about kPointwiseFloatTerms products per weight element each; a unit is
// one float GEMM of (group, block of `block_channels` output channels), writing that group's
// partial dW; the groups are then folded in double, in image order (fold_weight_grad_parts). No
// float sum runs over more than ~kPointwiseFloatTerms terms, and the result does not depend on
// the thread count: threads only change the channel blocks, and no element's sum crosses one.
// (Split over output channels alone, a 112x112 or 56x56 layer of 16-24 input channels ran no
// faster on 2 threads than on 1: each thread re-read the whole input for a thin slice of dW.)
struct PointwiseWeightGradSplit {
  int64_t group_images, groups, block_channels, blocks;
  int64_t units() const { return groups * blocks; }
};

constexpr int64_t kPointwiseFloatTerms = 4096;
// The partial dWs of all groups are held at once: at most this many bytes of them (a batch
// past that gets larger groups, i.e. longer float sums).
constexpr int64_t kPointwisePartsBytes = int64_t(64) << 20;

inline PointwiseWeightGradSplit pointwise_weight_grad_split(const PointwiseParams& p, bool nhwc,
                                                            int64_t threads, int64_t elem_bytes) {
  const int64_t batch = p.batch > 0 ? p.batch : 1, P = p.pixels > 0 ? p.pixels : 1;
  const int64_t size = p.out_channels * p.in_channels > 0 ? p.out_channels * p.in_channels : 1;
  // NCHW planes of 256 pixels or more go one image at a time: the GEMM then reads dY's rows in
  // place instead of packing an image-segmented depth (measured: ~2x the forward's time packed).
  int64_t group = !nhwc && P >= 256 ? 1 : std::max<int64_t>(1, kPointwiseFloatTerms / P);
  const int64_t max_groups = std::max<int64_t>(1, kPointwisePartsBytes / (size * elem_bytes));
  group = std::max(group, (batch + max_groups - 1) / max_groups);
  const int64_t groups = (batch + group - 1) / group;
  // units = lcm(groups, threads): every thread gets the same number of equal units; channel
  // blocks of at least 8 channels.
  int64_t a = groups, b = threads > 0 ? threads : 1;
  while (b != 0) a %= b, std::swap(a, b);
  const int64_t want_blocks = (threads > 0 ? threads : 1) / a;
  const int64_t cout = p.out_channels > 0 ? p.out_channels : 1;
  const int64_t blocks_max = (cout + 7) / 8;
  const int64_t block =
      (cout + std::min(want_blocks, blocks_max) - 1) / std::min(want_blocks, blocks_max);
  return {group, groups, block, (cout + block - 1) / block};
}

// grad_weight = the sum of the groups' partial dWs (size floats each) in double, in group
// order; with one group, parts is grad_weight itself and nothing is left to do.
template <typename T>
void fold_weight_grad_parts(const PointwiseWeightGradSplit& s, int64_t size, const T* parts,
                            T* grad_weight) {
  if (s.groups == 1) return;
  for (int64_t i = 0; i < size; ++i) {
    double total = 0.0;
    for (int64_t g = 0; g < s.groups; ++g) total += double(parts[g * size + i]);
    grad_weight[i] = T(total);
  }
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
  // The NHWC forward split by output channels, each unit packing its own share of the weight
  // (weight(o, c) = weight[o * rs + c * cs]); units: blocks of kPointwiseColumnBlock channels
  void (*forward_nhwc_columns)(const PointwiseParams&, const T* input, const T* weight, int64_t rs,
                               int64_t cs, const T* bias, T* output, int64_t begin, int64_t end);
  // The NHWC forward for N*P <= kPointwiseDotRows, on the unpacked weight (Cout, Cin) with
  // unit column stride; units: output channels o
  void (*forward_dot)(const PointwiseParams&, const T* input, const T* weight, const T* bias,
                      T* output, int64_t begin, int64_t end);
  // The weight gradient's units of a split (see PointwiseWeightGradSplit), either layout:
  // each writes its image group's float partial dW (Cout, Cin) rows into parts.
  void (*backward_weight)(const PointwiseParams&, const PointwiseWeightGradSplit&, bool nhwc,
                          const T* grad_output, const T* input, T* parts, int64_t begin,
                          int64_t end);
};

template <typename T>
const PointwiseKernels<T>& pointwise_scalar_kernels();

// float32 SIMD kernels (csrc/cpu/kernels_<isa>.cpp); each exists only on its architecture.
const PointwiseKernels<float>& pointwise_avx512_kernels();
const PointwiseKernels<float>& pointwise_avx2_kernels();
const PointwiseKernels<float>& pointwise_neon_kernels();

}  // namespace cpu
}  // namespace sepconv
