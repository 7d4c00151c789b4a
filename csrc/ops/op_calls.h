// Typed calls of the sepconv ops through the dispatcher (autograd included), for C++ code that
// builds on the ops: the autograd kernels write every gradient in terms of these.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

namespace sepconv {
namespace ops {

at::Tensor depthwise_conv2d(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation);
at::Tensor depthwise_conv2d_backward_input(const at::Tensor& grad_output, const at::Tensor& weight,
                                           c10::SymIntArrayRef input_size, at::IntArrayRef stride,
                                           at::IntArrayRef padding, at::IntArrayRef dilation);
at::Tensor depthwise_conv2d_backward_weight(const at::Tensor& grad_output, const at::Tensor& input,
                                            at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                            at::IntArrayRef padding, at::IntArrayRef dilation);
at::Tensor pointwise_conv2d(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias);
at::Tensor pointwise_conv2d_backward_weight(const at::Tensor& grad_output, const at::Tensor& input);
at::Tensor separable_conv2d(const at::Tensor& input, const at::Tensor& depthwise_weight,
                            const at::Tensor& pointwise_weight,
                            const std::optional<at::Tensor>& depthwise_bias,
                            const std::optional<at::Tensor>& pointwise_bias, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation);
at::Tensor fused_depthwise_conv2d(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                  at::IntArrayRef padding, at::IntArrayRef dilation,
                                  c10::string_view activation, double min_val, double max_val);
at::Tensor fused_pointwise_conv2d(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias,
                                  c10::string_view activation, double min_val, double max_val);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> separable_conv2d_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, const std::optional<at::Tensor>& depthwise_bias,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    std::array<bool, 3> output_mask);

}  // namespace ops
}  // namespace sepconv
