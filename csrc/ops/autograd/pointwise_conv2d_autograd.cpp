// Autograd kernels of the pointwise ops. The input gradient of y = W x is W^T gy: the forward op
// again, with the transposed weight. The weight gradient op is bilinear in (gy, x), so its own
// adjoints are pointwise convs too; the family is closed and differentiable to any order.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../op_calls.h"
#include "context.h"

namespace sepconv {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// (Cout, Cin[, 1, 1]) -> (Cin, Cout), as a differentiable view.
at::Tensor transposed_2d(const at::Tensor& weight) { return weight.flatten(1).t(); }

class PointwiseConv2d : public torch::autograd::Function<PointwiseConv2d> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({input, weight});
    save_arg_edges(ctx, {true, true, is_given(bias)});
    return ops::pointwise_conv2d(input, weight, bias);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &weight = saved[1], &grad = grads[0];
    at::Tensor grad_input, grad_weight, grad_bias;
    if (needs_grad(ctx, 0))
      grad_input = ops::pointwise_conv2d(grad, transposed_2d(weight), std::nullopt);
    if (needs_grad(ctx, 1))
      grad_weight =
          ops::pointwise_conv2d_backward_weight(grad, input).reshape_symint(weight.sym_sizes());
    if (needs_grad(ctx, 2)) grad_bias = grad.sum({0, 2, 3});
    return {grad_input, grad_weight, grad_bias};
  }
};

class PointwiseBackwardWeight : public torch::autograd::Function<PointwiseBackwardWeight> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output,
                            const at::Tensor& input) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({grad_output, input});
    return ops::pointwise_conv2d_backward_weight(grad_output, input);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &grad_output = saved[0], &input = saved[1], &grad = grads[0];
    at::Tensor grad_grad_output, grad_input;
    if (ctx->needs_input_grad(0))
      grad_grad_output = ops::pointwise_conv2d(input, grad, std::nullopt);
    if (ctx->needs_input_grad(1))
      grad_input = ops::pointwise_conv2d(grad_output, grad.t(), std::nullopt);
    return {grad_grad_output, grad_input};
  }
};

at::Tensor pointwise_conv2d(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias) {
  return PointwiseConv2d::apply(input, weight, bias);
}

at::Tensor backward_weight(const at::Tensor& grad_output, const at::Tensor& input) {
  return PointwiseBackwardWeight::apply(grad_output, input);
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, Autograd, m) {
  m.impl("pointwise_conv2d", pointwise_conv2d);
  m.impl("_pointwise_conv2d_backward_weight", backward_weight);
}

}  // namespace sepconv
