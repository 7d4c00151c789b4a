// The separable backward as a composition of the other sepconv ops: the autograd kernel's
// differentiable path (double backward records it), and the kernel of
// sepconv::_separable_conv2d_backward on every backend without a fused one (CUDA, Meta).
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

namespace sepconv {

// Recomputes the depthwise output for the pointwise weight gradient and goes through its
// gradient for the rest. Gradients not asked for by output_mask (input; depthwise weight and
// bias; pointwise weight) are undefined tensors.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> separable_backward_composition(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, const std::optional<at::Tensor>& depthwise_bias,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    std::array<bool, 3> output_mask);

// The op's kernel built on it (arguments validated, gradients not asked for as empty tensors):
// the CompositeExplicitAutograd kernel, and the CPU kernel's choice where fusing does not pay.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> separable_backward_composite_kernel(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, const std::optional<at::Tensor>& depthwise_bias,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    std::array<bool, 3> output_mask);

}  // namespace sepconv
