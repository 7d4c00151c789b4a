// Fused separable forward: depthwise then pointwise without the intermediate tensor.
//
// The output is cut into bands of whole output rows. For each (image, band) the depthwise
// kernel writes the band's intermediate (C*M channels x band pixels) into a buffer small enough
// to stay in L2, and the pointwise GEMM consumes it at once, so the intermediate never goes to
// memory. Both halves are the active ISA's own kernels, reached through their tables: the band
// is an ordinary depthwise problem (one image, band_rows output rows, the window shifted down by
// moving pad_top, which may go negative), so every depthwise kernel computes it unchanged.
#pragma once
#include "depthwise.h"
#include "pointwise.h"

namespace sepconv {
namespace cpu {

struct SeparableParams {
  DepthwiseParams depthwise;  // input -> intermediate (C*M channels)
  int64_t out_channels;       // of the pointwise conv
  int64_t band_rows;          // output rows per work unit
};

// Chooses band_rows for the given depthwise problem (the intermediate band stays in L2).
SeparableParams separable_params(const DepthwiseParams& depthwise, int64_t out_channels);

// Work units: (image, band), n * bands + band; one writer per output element.
int64_t separable_units(const SeparableParams& s);

template <typename T>
struct SeparableWeights {
  const T* depthwise;       // NCHW: (C*M, kH, kW); NHWC: packed tap-major (kH, kW, C*M)
  const T* depthwise_bias;  // (C*M) or null
  const T* pointwise;       // NCHW: (Cout, C*M); NHWC: transposed (C*M, Cout)
  const T* pointwise_bias;  // (Cout) or null
};

// Dense layouts as in depthwise.h: NCHW input (N, C, H, W) -> output (N, Cout, Ho, Wo);
// NHWC input (N, H, W, C) -> output (N, Ho, Wo, Cout).
template <typename T>
void separable_forward_nchw(const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                            const SeparableParams& s, const T* input, const SeparableWeights<T>& w,
                            T* output, int64_t begin, int64_t end);
template <typename T>
void separable_forward_nhwc(const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                            const SeparableParams& s, const T* input, const SeparableWeights<T>& w,
                            T* output, int64_t begin, int64_t end);

}  // namespace cpu
}  // namespace sepconv
