// Depthwise float32 kernels written once against a vector interface V (vec_avx512.h,
// vec_avx2.h, vec_neon.h) and compiled once per ISA by csrc/cpu/kernels_<isa>.cpp. Everything
// is a template on V, so each ISA's instantiation is a distinct symbol compiled with that
// file's target options (no ODR mixing of AVX-512 code into other translation units).
//
// Same work-unit contract as depthwise.h; every layout, kernel size, stride, dilation and depth
// multiplier runs vector code. The files, each including only those before it:
//   depthwise_tiles.h    register tiles: the arithmetic, no allocation, no policy
//   depthwise_staging.h  blocked rows, rings, whole-plane images, transposes, weight packing
//   depthwise_blocked.h  drivers on channel-blocked rows: NCHW (all directions), wide NHWC dW
//   depthwise_nhwc.h     drivers for channels_last
//   depthwise_simd.h     this table
//
// Whole-batch weight-gradient sums are folded in double in a fixed order, as in the portable
// kernels, so results are bitwise reproducible for any thread count.
#pragma once
#include "../depthwise.h"
#include "depthwise_blocked.h"
#include "depthwise_nhwc.h"

namespace sepconv {
namespace cpu {

template <class V>
struct DepthwiseSimd {
  static const DepthwiseKernels<float>& kernels() {
    using Nchw = DepthwiseBlocked<V>;
    using Nhwc = DepthwiseNhwc<V>;
    using Staging = DepthwiseStaging<V>;
    static const DepthwiseKernels<float> k = {Staging::packed_forward_size,
                                              Staging::pack_forward,
                                              Nchw::forward_nchw,
                                              Nhwc::forward_nhwc,
                                              Staging::packed_backward_input_size,
                                              Staging::pack_backward_input,
                                              Nchw::backward_input_nchw,
                                              Nhwc::backward_input_nhwc,
                                              Nchw::backward_weight_nchw,
                                              Nhwc::backward_weight_nhwc};
    return k;
  }
};

}  // namespace cpu
}  // namespace sepconv
