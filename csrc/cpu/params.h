// Shapes and hyper-parameters handed to the CPU microkernels. Plain structs and raw pointers only:
// no ATen here, so the microkernels build and test without torch (natively and for aarch64).
#pragma once
#include <cstdint>
#include <vector>

namespace sepconv {
namespace cpu {

// The activation a forward kernel applies to its output, after the bias: the epilogue of the
// inference ops (sepconv::fused_*), which fold BatchNorm into the weight and bias and fuse the
// activation that follows. One description for every kernel: the portable definition is
// activation.h, the vector one simd/activation_simd.h (one per ISA through its Vec).
struct Activation {
  enum Kind : int32_t { kNone, kRelu, kHardtanh, kHardswish, kHardsigmoid, kSigmoid, kSilu, kGelu };
  Kind kind = kNone;
  double min_val = 0, max_val = 0;  // kHardtanh's bounds (ReLU6: 0, 6); float32 rounds them
  bool none() const { return kind == kNone; }
};

// Depthwise 2-D convolution: output channel oc reads input channel oc / multiplier.
// Output size is computed once by the caller (csrc/ops/checks.h) and passed in, so the
// microkernels never disagree with the shape the op reported.
struct DepthwiseParams {
  int64_t batch;
  int64_t channels;    // input channels C
  int64_t multiplier;  // M: output channels = C * M
  int64_t in_h, in_w;
  int64_t out_h, out_w;
  int64_t kernel_h, kernel_w;
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left;  // bottom/right padding is implied by out_h/out_w
  int64_t dilation_h, dilation_w;
  Activation activation;  // forward only; the backward kernels ignore it

  int64_t out_channels() const { return channels * multiplier; }
};

// Pointwise (1x1) convolution as a GEMM: for every image, out[Cout x P] = W[Cout x Cin] * in[Cin x
// P] with P = H*W pixels.
struct PointwiseParams {
  int64_t batch;
  int64_t in_channels;
  int64_t out_channels;
  int64_t pixels;         // H * W
  Activation activation;  // forward only
};

// One GEMM, C[m x n] = A[m x k] * B[k x n] (+ bias). A and B take any element strides (the
// weight gradients read transposed operands; packing makes that free), C is row-major. The
// depth may run over several images: with k_seg > 0 it is cut into segments of k_seg, and
// depth p sits at (p / k_seg) * seg + (p % k_seg) * cs in A and in B (a_seg, b_seg).
struct Gemm {
  int64_t m, n, k;
  int64_t a_rs, a_cs;  // A(i, p) = a[i * a_rs + p * a_cs]
  int64_t b_rs, b_cs;  // B(p, j) = b[p * b_rs + j * b_cs]
  int64_t ldc;         // C(i, j) = c[i * ldc + j]
  int64_t k_seg = 0, a_seg = 0, b_seg = 0;
  Activation activation = {};  // applied to C = AB + bias (not with accumulate)

  static Gemm row_major(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
    return {m, n, k, lda, 1, ldb, 1, ldc};
  }
  bool segmented() const { return k_seg > 0 && k_seg < k; }
  // Offset of depth p from depth 0 along an operand with depth stride cs and segment stride seg.
  int64_t depth_offset(int64_t p, int64_t cs, int64_t seg) const {
    return segmented() ? p / k_seg * seg + p % k_seg * cs : p * cs;
  }
};

// The range of output positions o in [lo, hi) for which o*stride + offset lies in [0, size).
// Every microkernel uses it to split a row into a border part (skipped taps) and an interior.
inline void valid_output_range(int64_t offset, int64_t stride, int64_t size, int64_t out_size,
                               int64_t* lo, int64_t* hi) {
  if (stride == 1) {  // the common case, without divisions (they cost more than short rows)
    *lo = offset >= 0 ? 0 : -offset < out_size ? -offset : out_size;
    *hi = size - offset < out_size ? size - offset : out_size;
    if (*hi < *lo) *hi = *lo;
    return;
  }
  // smallest o with o*stride + offset >= 0
  int64_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // largest o with o*stride + offset <= size - 1, plus one
  int64_t last = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  *lo = first < out_size ? first : out_size;
  *hi = last < out_size ? last : out_size;
  if (*hi < *lo) *hi = *lo;
}

// For every horizontal tap j of a row kernel: the output columns [lo, lo + count) whose
// input column (ow * stride + j * dilation - pad_left) lies inside the row, and the input column
// `first` of output column lo. Computed once per call, not per row: integer divisions in the row
// loop cost more than the short rows themselves.
struct TapRanges {
  std::vector<int64_t> lo, count, first;
  // Output columns [interior_lo, interior_hi) read every tap inside the row (no clipping).
  int64_t interior_lo = 0, interior_hi = 0;
  explicit TapRanges(const DepthwiseParams& p)
      : lo(p.kernel_w), count(p.kernel_w), first(p.kernel_w), interior_hi(p.out_w) {
    for (int64_t j = 0; j < p.kernel_w; ++j) {
      const int64_t off = j * p.dilation_w - p.pad_left;
      int64_t hi;
      valid_output_range(off, p.stride_w, p.in_w, p.out_w, &lo[j], &hi);
      count[j] = hi - lo[j];
      first[j] = lo[j] * p.stride_w + off;
      interior_lo = lo[j] > interior_lo ? lo[j] : interior_lo;
      interior_hi = hi < interior_hi ? hi : interior_hi;
    }
    if (interior_hi < interior_lo) interior_hi = interior_lo;
  }
};

}  // namespace cpu
}  // namespace sepconv
