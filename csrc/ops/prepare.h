// The host prologue of every op's CPU and CUDA kernel, written once: validate the arguments
// (checks.h), pick the output's memory format, allocate the output, and turn the sizes into the
// kernels' params. A backend kernel calls one prepare_* function and then only lays out its
// operands and launches. CPU and CUDA differ only in how the main output is allocated (the CPU
// keeps a cache of large blocks, output_memory.h), so the allocator is an argument. Meta
// kernels call checks.h directly: their sizes are symbolic and they need no params.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>

#include "../cpu/params.h"
#include "checks.h"

namespace sepconv {

constexpr auto kChannelsLast = at::MemoryFormat::ChannelsLast;

// How a backend allocates an op's main output (uninitialised, like at::empty). nullptr: the
// caller allocates it later, if at all (the output tensor is then left undefined).
using OutputAllocator = at::Tensor (*)(at::IntArrayRef size, const at::TensorOptions& options);
// at::empty as an OutputAllocator (the options carry the device: CUDA allocates on the tensors'
// device whatever the current one is).
at::Tensor empty_tensor(at::IntArrayRef size, const at::TensorOptions& options);

// `t` made contiguous, or an undefined tensor when it is absent (an optional bias).
at::Tensor contiguous_if_given(const std::optional<at::Tensor>& t);

struct DepthwiseForwardCall {
  at::Tensor output;            // allocated in `format`; nothing to compute when it is empty
  at::MemoryFormat format;      // the output's and the kernels' layout
  cpu::DepthwiseParams params;  // valid when output is not empty
  at::Tensor bias;              // contiguous, or undefined
};
// `op` names the op in error messages (the inference op sepconv::fused_depthwise_conv2d runs
// the same prologue).
DepthwiseForwardCall prepare_depthwise_forward(const at::Tensor& input, const at::Tensor& weight,
                                               const std::optional<at::Tensor>& bias,
                                               at::IntArrayRef stride, at::IntArrayRef padding,
                                               at::IntArrayRef dilation, OutputAllocator allocate,
                                               const char* op = "sepconv::depthwise_conv2d");

struct DepthwiseBackwardInputCall {
  at::Tensor grad_input;  // allocated in grad_output's layout; empty: nothing to compute
  at::MemoryFormat format;
  cpu::DepthwiseParams params;  // valid when grad_input is not empty
};
DepthwiseBackwardInputCall prepare_depthwise_backward_input(
    const at::Tensor& grad_output, const at::Tensor& weight, c10::SymIntArrayRef input_size,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    OutputAllocator allocate);

// The weight gradient is allocated by each backend (the CPU's channels_last kernel writes a
// tap-major copy first).
struct DepthwiseBackwardWeightCall {
  at::MemoryFormat format;  // input's layout, which the kernels read
  cpu::DepthwiseParams params;
};
DepthwiseBackwardWeightCall prepare_depthwise_backward_weight(
    const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation);

struct PointwiseForwardCall {
  at::Tensor output;  // allocated in `format`; nothing to compute when it is empty
  at::MemoryFormat format;
  cpu::PointwiseParams params;
  at::Tensor weight;  // (Cout, Cin), a view of the (Cout, Cin, 1, 1) weight where it can be
  at::Tensor bias;    // contiguous, or undefined
};
PointwiseForwardCall prepare_pointwise_forward(const at::Tensor& input, const at::Tensor& weight,
                                               const std::optional<at::Tensor>& bias,
                                               OutputAllocator allocate,
                                               const char* op = "sepconv::pointwise_conv2d");

struct PointwiseBackwardWeightCall {
  at::Tensor grad_weight;   // (Cout, Cin), allocated with at::empty
  at::MemoryFormat format;  // input's layout, which the kernels read
  cpu::PointwiseParams params;
};
PointwiseBackwardWeightCall prepare_pointwise_backward_weight(const at::Tensor& grad_output,
                                                              const at::Tensor& input);

struct SeparableForwardCall {
  at::Tensor output;  // allocated in `format` (undefined without an allocator)
  at::MemoryFormat format;
  cpu::DepthwiseParams depthwise;  // the depthwise conv: output = the intermediate
  int64_t out_channels;
  at::Tensor depthwise_bias, pointwise_bias;  // contiguous, or undefined
  bool empty() const {
    return depthwise.batch * depthwise.out_h * depthwise.out_w * out_channels == 0;
  }
};
SeparableForwardCall prepare_separable_forward(const at::Tensor& input,
                                               const at::Tensor& depthwise_weight,
                                               const at::Tensor& pointwise_weight,
                                               const std::optional<at::Tensor>& depthwise_bias,
                                               const std::optional<at::Tensor>& pointwise_bias,
                                               at::IntArrayRef stride, at::IntArrayRef padding,
                                               at::IntArrayRef dilation, OutputAllocator allocate);

// The gradients are allocated by the kernel (which of them is wanted is its output_mask).
struct SeparableBackwardCall {
  at::MemoryFormat format;  // grad_output's layout: the kernels' and grad_input's
  cpu::DepthwiseParams depthwise;
  int64_t out_channels;
};
SeparableBackwardCall prepare_separable_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, const std::optional<at::Tensor>& depthwise_bias,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation);

}  // namespace sepconv
