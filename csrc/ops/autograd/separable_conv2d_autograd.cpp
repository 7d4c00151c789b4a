// Autograd kernel of the separable op. The backward recomputes the depthwise output instead of
// saving it (the forward may be fused and never hold it whole), then chains the two convs'
// gradients, all through differentiable sepconv ops so double backward works.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../op_calls.h"
#include "needs_grad.h"

namespace sepconv {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SeparableConv2d : public torch::autograd::Function<SeparableConv2d> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& depthwise_weight, const at::Tensor& pointwise_weight,
                            const std::optional<at::Tensor>& depthwise_bias,
                            const std::optional<at::Tensor>& pointwise_bias,
                            at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({input, depthwise_weight, pointwise_weight,
                            depthwise_bias.value_or(at::Tensor())});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    save_arg_edges(ctx, {true, true, true, is_given(depthwise_bias), is_given(pointwise_bias)});
    return ops::separable_conv2d(input, depthwise_weight, pointwise_weight, depthwise_bias,
                                 pointwise_bias, stride, padding, dilation);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &dw_weight = saved[1], &pw_weight = saved[2],
                     &dw_bias = saved[3], &grad = grads[0];
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const auto dilation = ctx->saved_data["dilation"].toIntVector();
    const std::optional<at::Tensor> dw_bias_opt =
        dw_bias.defined() ? std::optional<at::Tensor>(dw_bias) : std::nullopt;

    at::Tensor grad_input, grad_dw_weight, grad_pw_weight, grad_dw_bias, grad_pw_bias;
    if (needs_grad(ctx, 2)) {
      const at::Tensor mid =
          ops::depthwise_conv2d(input, dw_weight, dw_bias_opt, stride, padding, dilation);
      grad_pw_weight = ops::pointwise_conv2d_backward_weight(grad, mid)
                           .reshape_symint(pw_weight.sym_sizes());
    }
    if (needs_grad(ctx, 4)) grad_pw_bias = grad.sum({0, 2, 3});
    if (needs_grad(ctx, 0) || needs_grad(ctx, 1) || needs_grad(ctx, 3)) {
      const at::Tensor grad_mid =
          ops::pointwise_conv2d(grad, pw_weight.flatten(1).t(), std::nullopt);
      if (needs_grad(ctx, 0))
        grad_input = ops::depthwise_conv2d_backward_input(grad_mid, dw_weight, input.sym_sizes(),
                                                          stride, padding, dilation);
      if (needs_grad(ctx, 1))
        grad_dw_weight = ops::depthwise_conv2d_backward_weight(
            grad_mid, input,
            {dw_weight.sym_size(2).guard_int(__FILE__, __LINE__),
             dw_weight.sym_size(3).guard_int(__FILE__, __LINE__)},
            stride, padding, dilation);
      if (needs_grad(ctx, 3)) grad_dw_bias = grad_mid.sum({0, 2, 3});
    }
    return {grad_input,   grad_dw_weight, grad_pw_weight, grad_dw_bias,
            grad_pw_bias, at::Tensor(),   at::Tensor(),   at::Tensor()};
  }
};

at::Tensor separable_conv2d(const at::Tensor& input, const at::Tensor& depthwise_weight,
                            const at::Tensor& pointwise_weight,
                            const std::optional<at::Tensor>& depthwise_bias,
                            const std::optional<at::Tensor>& pointwise_bias,
                            at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation) {
  return SeparableConv2d::apply(input, depthwise_weight, pointwise_weight, depthwise_bias,
                                pointwise_bias, stride, padding, dilation);
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, Autograd, m) { m.impl("separable_conv2d", separable_conv2d); }

}  // namespace sepconv
