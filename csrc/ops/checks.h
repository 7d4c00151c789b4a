// The one home of argument validation and output-size arithmetic for every op and every
// dispatch key (CPU, CUDA and Meta kernels all call these), so a shape the fake kernel reports
// is always the shape the real kernel produces, and every bad input fails the same way.
// Sizes are SymInt so the Meta kernels work under torch.compile with dynamic shapes.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>

#include <optional>
#include <string_view>
#include <vector>

#include "../cpu/params.h"

namespace sepconv {

// stride (2), padding (top, bottom, left, right), dilation (2), as the op schemas take them.
struct ConvGeometry {
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t dilation_h, dilation_w;
};

// Validates stride >= 1, padding >= 0 (four values), dilation >= 1.
ConvGeometry check_geometry(const char* op, at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation);

// Validate the forward arguments and return the output shape.
std::vector<c10::SymInt> check_depthwise_forward(const char* op, const at::Tensor& input,
                                                 const at::Tensor& weight,
                                                 const std::optional<at::Tensor>& bias,
                                                 const ConvGeometry& g);
std::vector<c10::SymInt> check_pointwise_forward(const char* op, const at::Tensor& input,
                                                 const at::Tensor& weight,
                                                 const std::optional<at::Tensor>& bias);

// Both convs' arguments; returns the final output shape.
std::vector<c10::SymInt> check_separable_forward(const char* op, const at::Tensor& input,
                                                 const at::Tensor& depthwise_weight,
                                                 const at::Tensor& pointwise_weight,
                                                 const std::optional<at::Tensor>& depthwise_bias,
                                                 const std::optional<at::Tensor>& pointwise_bias,
                                                 const ConvGeometry& g);

// Validate the backward ops' arguments against the forward they differentiate.
void check_depthwise_backward_input(const char* op, const at::Tensor& grad_output,
                                    const at::Tensor& weight, c10::SymIntArrayRef input_size,
                                    const ConvGeometry& g);
void check_depthwise_backward_weight(const char* op, const at::Tensor& grad_output,
                                     const at::Tensor& input, at::IntArrayRef kernel_size,
                                     const ConvGeometry& g);
void check_pointwise_backward_weight(const char* op, const at::Tensor& grad_output,
                                     const at::Tensor& input);
// The separable forward's arguments (no pointwise bias) and a grad_output of its output shape.
void check_separable_backward(const char* op, const at::Tensor& grad_output,
                              const at::Tensor& input, const at::Tensor& depthwise_weight,
                              const at::Tensor& pointwise_weight,
                              const std::optional<at::Tensor>& depthwise_bias,
                              const ConvGeometry& g);

// The inference ops' activation argument: one of 'none', 'relu', 'hardtanh' (min_val <=
// max_val, finite), 'hardswish', 'hardsigmoid', 'sigmoid', 'silu', 'gelu' (exact, erf).
cpu::Activation check_activation(const char* op, std::string_view activation, double min_val,
                                 double max_val);
// The name check_activation reads for a kind.
const char* activation_name(cpu::Activation::Kind kind);

// Layout of an op's output: channels_last in -> channels_last out, anything else -> NCHW.
at::MemoryFormat output_memory_format(const at::Tensor& like);

}  // namespace sepconv
