#include "separable_conv2d_backward.h"

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "checks.h"
#include "op_calls.h"

namespace sepconv {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> separable_backward_composition(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, const std::optional<at::Tensor>& depthwise_bias,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    std::array<bool, 3> output_mask) {
  at::Tensor grad_input, grad_dw_weight, grad_pw_weight, grad_dw_bias;
  if (output_mask[2]) {
    const at::Tensor mid =
        ops::depthwise_conv2d(input, depthwise_weight, depthwise_bias, stride, padding, dilation);
    grad_pw_weight = ops::pointwise_conv2d_backward_weight(grad_output, mid)
                         .reshape_symint(pointwise_weight.sym_sizes());
  }
  if (output_mask[0] || output_mask[1]) {
    const at::Tensor grad_mid =
        ops::pointwise_conv2d(grad_output, pointwise_weight.flatten(1).t(), std::nullopt);
    if (output_mask[0])
      grad_input = ops::depthwise_conv2d_backward_input(
          grad_mid, depthwise_weight, input.sym_sizes(), stride, padding, dilation);
    if (output_mask[1]) {
      grad_dw_weight = ops::depthwise_conv2d_backward_weight(
          grad_mid, input,
          {depthwise_weight.sym_size(2).guard_int(__FILE__, __LINE__),
           depthwise_weight.sym_size(3).guard_int(__FILE__, __LINE__)},
          stride, padding, dilation);
      grad_dw_bias = grad_mid.sum({0, 2, 3});
    }
  }
  return {grad_input, grad_dw_weight, grad_pw_weight, grad_dw_bias};
}

// The op's schema returns tensors: a gradient not asked for is an empty one.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> separable_backward_composite_kernel(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, const std::optional<at::Tensor>& depthwise_bias,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    std::array<bool, 3> output_mask) {
  const char* op = "sepconv::_separable_conv2d_backward";
  check_separable_backward(op, grad_output, input, depthwise_weight, pointwise_weight,
                           depthwise_bias, check_geometry(op, stride, padding, dilation));
  auto grads =
      separable_backward_composition(grad_output, input, depthwise_weight, pointwise_weight,
                                     depthwise_bias, stride, padding, dilation, output_mask);
  const auto or_empty = [&](at::Tensor& t) {
    if (!t.defined()) t = at::empty({0}, input.options());
  };
  or_empty(std::get<0>(grads)), or_empty(std::get<1>(grads)), or_empty(std::get<2>(grads));
  or_empty(std::get<3>(grads));
  return grads;
}

TORCH_LIBRARY_IMPL(sepconv, CompositeExplicitAutograd, m) {
  m.impl("_separable_conv2d_backward", separable_backward_composite_kernel);
}

}  // namespace sepconv
