// Autograd kernels of the depthwise ops. Each op's backward is written with the sepconv ops
// themselves (through the dispatcher), so every gradient is again differentiable: the forward,
// the input-gradient op and the weight-gradient op are one closed family, since
//   backward_input(gy, w)  is linear in gy and w: its adjoints are forward(.., w) and
//   backward_weight(gy, ..) backward_weight(gy, x) is linear in gy and x: its adjoints are
//   forward(x, ..) and backward_input(gy, ..)
// Registered on the Autograd key, so TorchScript and C++ callers get gradients too.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../op_calls.h"
#include "context.h"

namespace sepconv {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<int64_t> kernel_size_of(const at::Tensor& weight) {
  return {weight.sym_size(2).guard_int(__FILE__, __LINE__),
          weight.sym_size(3).guard_int(__FILE__, __LINE__)};
}

class DepthwiseConv2d : public torch::autograd::Function<DepthwiseConv2d> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({input, weight});
    save_geometry(ctx, stride, padding, dilation);
    save_arg_edges(ctx, {true, true, is_given(bias)});
    return ops::depthwise_conv2d(input, weight, bias, stride, padding, dilation);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &weight = saved[1], &grad = grads[0];
    const SavedGeometry g(ctx);
    at::Tensor grad_input, grad_weight, grad_bias;
    if (needs_grad(ctx, 0))
      grad_input = ops::depthwise_conv2d_backward_input(grad, weight, input.sym_sizes(), g.stride,
                                                        g.padding, g.dilation);
    if (needs_grad(ctx, 1))
      grad_weight = ops::depthwise_conv2d_backward_weight(grad, input, kernel_size_of(weight),
                                                          g.stride, g.padding, g.dilation);
    if (needs_grad(ctx, 2)) grad_bias = grad.sum({0, 2, 3});
    return {grad_input, grad_weight, grad_bias, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class DepthwiseBackwardInput : public torch::autograd::Function<DepthwiseBackwardInput> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output,
                            const at::Tensor& weight, c10::SymIntArrayRef input_size,
                            at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({grad_output, weight});
    save_geometry(ctx, stride, padding, dilation);
    return ops::depthwise_conv2d_backward_input(grad_output, weight, input_size, stride, padding,
                                                dilation);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &grad_output = saved[0], &weight = saved[1], &grad = grads[0];
    const SavedGeometry g(ctx);
    at::Tensor grad_grad_output, grad_weight;
    if (ctx->needs_input_grad(0))
      grad_grad_output =
          ops::depthwise_conv2d(grad, weight, std::nullopt, g.stride, g.padding, g.dilation);
    if (ctx->needs_input_grad(1))
      grad_weight = ops::depthwise_conv2d_backward_weight(grad_output, grad, kernel_size_of(weight),
                                                          g.stride, g.padding, g.dilation);
    return {grad_grad_output, grad_weight, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class DepthwiseBackwardWeight : public torch::autograd::Function<DepthwiseBackwardWeight> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output,
                            const at::Tensor& input, at::IntArrayRef kernel_size,
                            at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({grad_output, input});
    save_geometry(ctx, stride, padding, dilation);
    return ops::depthwise_conv2d_backward_weight(grad_output, input, kernel_size, stride, padding,
                                                 dilation);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &grad_output = saved[0], &input = saved[1], &grad = grads[0];
    const SavedGeometry g(ctx);
    at::Tensor grad_grad_output, grad_input;
    if (ctx->needs_input_grad(0))
      grad_grad_output =
          ops::depthwise_conv2d(input, grad, std::nullopt, g.stride, g.padding, g.dilation);
    if (ctx->needs_input_grad(1))
      grad_input = ops::depthwise_conv2d_backward_input(grad_output, grad, input.sym_sizes(),
                                                        g.stride, g.padding, g.dilation);
    return {grad_grad_output, grad_input, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor depthwise_conv2d(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation) {
  return DepthwiseConv2d::apply(input, weight, bias, stride, padding, dilation);
}

at::Tensor backward_input(const at::Tensor& grad_output, const at::Tensor& weight,
                          c10::SymIntArrayRef input_size, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation) {
  return DepthwiseBackwardInput::apply(grad_output, weight, input_size, stride, padding, dilation);
}

at::Tensor backward_weight(const at::Tensor& grad_output, const at::Tensor& input,
                           at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation) {
  return DepthwiseBackwardWeight::apply(grad_output, input, kernel_size, stride, padding, dilation);
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, Autograd, m) {
  m.impl("depthwise_conv2d", depthwise_conv2d);
  m.impl("_depthwise_conv2d_backward_input", backward_input);
  m.impl("_depthwise_conv2d_backward_weight", backward_weight);
}

}  // namespace sepconv
