// Autograd kernel of the separable op. The backward recomputes the depthwise output instead of
// saving it (the forward may be fused and never hold it whole): through the fused backward op
// when no graph of the backward is recorded, else through the differentiable composition of
// the other sepconv ops, so double backward works.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../op_calls.h"
#include "../separable_conv2d_backward.h"
#include "context.h"

namespace sepconv {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SeparableConv2d : public torch::autograd::Function<SeparableConv2d> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& depthwise_weight, const at::Tensor& pointwise_weight,
                            const std::optional<at::Tensor>& depthwise_bias,
                            const std::optional<at::Tensor>& pointwise_bias, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward(
        {input, depthwise_weight, pointwise_weight, depthwise_bias.value_or(at::Tensor())});
    save_geometry(ctx, stride, padding, dilation);
    save_arg_edges(ctx, {true, true, true, is_given(depthwise_bias), is_given(pointwise_bias)});
    return ops::separable_conv2d(input, depthwise_weight, pointwise_weight, depthwise_bias,
                                 pointwise_bias, stride, padding, dilation);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &dw_weight = saved[1], &pw_weight = saved[2],
                     &dw_bias = saved[3], &grad = grads[0];
    const SavedGeometry g(ctx);
    const std::optional<at::Tensor> dw_bias_opt =
        dw_bias.defined() ? std::optional<at::Tensor>(dw_bias) : std::nullopt;

    // Recording a graph of the backward (double backward): the differentiable composition.
    // Otherwise the fused op, where the backend has one.
    const std::array<bool, 3> mask{needs_grad(ctx, 0), needs_grad(ctx, 1) || needs_grad(ctx, 3),
                                   needs_grad(ctx, 2)};
    auto [grad_input, grad_dw_weight, grad_pw_weight, grad_dw_bias] =
        at::GradMode::is_enabled()
            ? separable_backward_composition(grad, input, dw_weight, pw_weight, dw_bias_opt,
                                             g.stride, g.padding, g.dilation, mask)
            : ops::separable_conv2d_backward(grad, input, dw_weight, pw_weight, dw_bias_opt,
                                             g.stride, g.padding, g.dilation, mask);
    const auto wanted = [&](const at::Tensor& t, size_t arg) {
      return needs_grad(ctx, arg) ? t : at::Tensor();
    };
    const at::Tensor grad_pw_bias = needs_grad(ctx, 4) ? grad.sum({0, 2, 3}) : at::Tensor();
    return {wanted(grad_input, 0),
            wanted(grad_dw_weight, 1),
            wanted(grad_pw_weight, 2),
            wanted(grad_dw_bias, 3),
            grad_pw_bias,
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

at::Tensor separable_conv2d(const at::Tensor& input, const at::Tensor& depthwise_weight,
                            const at::Tensor& pointwise_weight,
                            const std::optional<at::Tensor>& depthwise_bias,
                            const std::optional<at::Tensor>& pointwise_bias, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation) {
  return SeparableConv2d::apply(input, depthwise_weight, pointwise_weight, depthwise_bias,
                                pointwise_bias, stride, padding, dilation);
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, Autograd, m) { m.impl("separable_conv2d", separable_conv2d); }

}  // namespace sepconv
