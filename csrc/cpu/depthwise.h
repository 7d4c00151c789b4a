// Depthwise convolution microkernels: declarations shared by every ISA.
//
// Each kernel processes a range [begin, end) of independent work units, so the caller (the ATen
// kernel in csrc/ops/cpu/) owns threading and every unit is written by exactly one thread: the
// results do not depend on the thread count. Tensors are dense in the layout the name says.
//   *_nchw: input (N, C, H, W), weight (C*M, kH, kW), output (N, C*M, Ho, Wo)
//   *_nhwc: input (N, H, W, C), weight packed tap-major (kH, kW, C*M), output (N, Ho, Wo, C*M)
// except the forward and input-gradient kernels, which read the weight (and the forward's bias)
// as pack_forward / pack_backward_input packed them.
#pragma once
#include "params.h"
#include "policy.h"

namespace sepconv {
namespace cpu {

template <typename T>
struct DepthwiseKernels {
  // The forward's weight (C*M, kH, kW) and bias (C*M, or null: zero), packed once per call into
  // the layout this ISA's forward kernels read for the memory format: packed_forward_size
  // floats, shared by every thread and, in the fused separable kernels, by every band (a band's
  // problem has the call's channels and kernel).
  int64_t (*packed_forward_size)(const DepthwiseParams&);
  void (*pack_forward)(const DepthwiseParams&, bool nhwc, const T* weight, const T* bias,
                       T* packed);
  // units: output planes n * C*M + oc
  void (*forward_nchw)(const DepthwiseParams&, const T* input, const T* packed, T* output,
                       int64_t begin, int64_t end);
  // units: output rows n * Ho + oh
  void (*forward_nhwc)(const DepthwiseParams&, const T* input, const T* packed, T* output,
                       int64_t begin, int64_t end);
  // The input gradient's weight (C*M, kH, kW), packed once per call into the layout this ISA's
  // backward_input kernels read for the memory format: packed_backward_input_size floats, shared
  // by every thread and, in the fused separable backward, by every band. Depends only on the
  // channels, multiplier, kernel and stride, which a band's problem shares with its call.
  int64_t (*packed_backward_input_size)(const DepthwiseParams&, bool nhwc);
  void (*pack_backward_input)(const DepthwiseParams&, bool nhwc, const T* weight, T* packed);
  // units: input planes n * C + c
  void (*backward_input_nchw)(const DepthwiseParams&, const T* grad_output, const T* packed,
                              T* grad_input, int64_t begin, int64_t end);
  // units: input rows n * H + ih
  void (*backward_input_nhwc)(const DepthwiseParams&, const T* grad_output, const T* packed,
                              T* grad_input, int64_t begin, int64_t end);
  // units: output channels oc; sums over the whole batch in a fixed order
  void (*backward_weight_nchw)(const DepthwiseParams&, const T* grad_output, const T* input,
                               T* grad_weight, int64_t begin, int64_t end);
  // units: input channels c (each writes the packed columns c*M .. c*M+M-1)
  void (*backward_weight_nhwc)(const DepthwiseParams&, const T* grad_output, const T* input,
                               T* grad_weight_packed, int64_t begin, int64_t end);
};

// The portable C++ kernels (csrc/cpu/depthwise_scalar.cpp), defined for float and double.
template <typename T>
const DepthwiseKernels<T>& depthwise_scalar_kernels();

// float32 SIMD kernels (csrc/cpu/kernels_<isa>.cpp); each exists only on its architecture.
const DepthwiseKernels<float>& depthwise_avx512_kernels();
const DepthwiseKernels<float>& depthwise_avx2_kernels();
const DepthwiseKernels<float>& depthwise_neon_kernels();

}  // namespace cpu
}  // namespace sepconv
