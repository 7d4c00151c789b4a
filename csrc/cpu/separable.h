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

inline int64_t bands_per_image(const SeparableParams& s) {
  return (s.depthwise.out_h + s.band_rows - 1) / s.band_rows;
}

// The depthwise problem of output rows [row0, row0 + rows) of one image: the same input, the
// window moved down by row0 * stride_h rows (pad_top may go negative).
inline DepthwiseParams band_problem(const DepthwiseParams& p, int64_t row0, int64_t rows) {
  DepthwiseParams q = p;
  q.batch = 1;
  q.out_h = rows;
  q.pad_top = p.pad_top - row0 * p.stride_h;
  return q;
}

template <typename T>
struct SeparableWeights {
  // The depthwise weight and bias as DepthwiseKernels::pack_forward packed them for the layout,
  // once per call: every band's depthwise forward reads them.
  const T* depthwise_packed;
  // The depthwise weight as DepthwiseKernels::pack_backward_input packed it for the layout, once
  // per call: every band's input gradient reads it. Unused (null) in the forward.
  const T* depthwise_backward_input;
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

// ---------------------------------------------------------------------------- fused backward
//
// Same bands as the forward, and per (image, band) everything the gradients need, on chip:
//   1. the band's intermediate, recomputed (depthwise forward), and dW_pw += dY_band * mid^T;
//   2. dmid = W_pw^T * dY for the band's rows plus the rows above it that its input rows also
//      read (a halo of (kH - 1) * dilation / stride rows, computed by both bands);
//   3. dX for the input rows the band owns (input rows are split between bands, so every dX
//      element has one writer), and dW_dw += dmid * X, db_dw += dmid over the band's own rows.
// Neither the intermediate nor its gradient is ever written out whole. The weight gradients
// are summed per band in T (a few thousand terms) and added into the caller's double sums:
// the caller gives each thread its own sums and folds them in a fixed order.

// The caller's per-thread weight-gradient sums (added to, never overwritten); null: not wanted.
struct SeparableGradSums {
  double* pointwise;       // (Cout, C*M)
  double* depthwise;       // NCHW: (C*M, kH, kW); NHWC: tap-major (kH, kW, C*M)
  double* depthwise_bias;  // (C*M), wanted with `depthwise`
};

// Chooses band_rows for the backward (the band's dmid, halo included, stays in L2).
SeparableParams separable_backward_params(const DepthwiseParams& depthwise, int64_t out_channels);

// Units as separable_units. grad_input (dense in the layout, or null: not wanted) gets one
// writer per element. The pointwise weight is in the opposite layout to the forward's:
// NCHW: transposed (C*M, Cout); NHWC: (Cout, C*M). pointwise_bias is not used.
template <typename T>
void separable_backward_nchw(const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                             const SeparableParams& s, const T* input, const T* grad_output,
                             const SeparableWeights<T>& w, T* grad_input,
                             const SeparableGradSums& sums, int64_t begin, int64_t end);
template <typename T>
void separable_backward_nhwc(const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                             const SeparableParams& s, const T* input, const T* grad_output,
                             const SeparableWeights<T>& w, T* grad_input,
                             const SeparableGradSums& sums, int64_t begin, int64_t end);

}  // namespace cpu
}  // namespace sepconv
