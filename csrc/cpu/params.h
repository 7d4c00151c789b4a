// Shapes and hyper-parameters handed to the CPU microkernels. Plain structs and raw pointers only:
// no ATen here, so the microkernels build and test without torch (natively and for aarch64).
#pragma once
#include <cstdint>

namespace sepconv {
namespace cpu {

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

  int64_t out_channels() const { return channels * multiplier; }
};

// Pointwise (1x1) convolution as a GEMM: for every image, out[Cout x P] = W[Cout x Cin] * in[Cin x P]
// with P = H*W pixels.
struct PointwiseParams {
  int64_t batch;
  int64_t in_channels;
  int64_t out_channels;
  int64_t pixels;  // H * W
};

// The range of output positions o in [lo, hi) for which o*stride + offset lies in [0, size).
// Every microkernel uses it to split a row into a border part (skipped taps) and an interior.
inline void valid_output_range(int64_t offset, int64_t stride, int64_t size, int64_t out_size,
                               int64_t* lo, int64_t* hi) {
  // smallest o with o*stride + offset >= 0
  int64_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // largest o with o*stride + offset <= size - 1, plus one
  int64_t last = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  *lo = first < out_size ? first : out_size;
  *hi = last < out_size ? last : out_size;
  if (*hi < *lo) *hi = *lo;
}

}  // namespace cpu
}  // namespace sepconv
