#include "op_calls.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace sepconv {
namespace ops {
namespace {

template <typename Signature>
c10::TypedOperatorHandle<Signature> handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

using OptTensor = const std::optional<at::Tensor>&;
using Ints = at::IntArrayRef;

}  // namespace

at::Tensor depthwise_conv2d(const at::Tensor& input, const at::Tensor& weight, OptTensor bias,
                            Ints stride, Ints padding, Ints dilation) {
  static const auto op =
      handle<at::Tensor(const at::Tensor&, const at::Tensor&, OptTensor, Ints, Ints, Ints)>(
          "sepconv::depthwise_conv2d");
  return op.call(input, weight, bias, stride, padding, dilation);
}

at::Tensor depthwise_conv2d_backward_input(const at::Tensor& grad_output, const at::Tensor& weight,
                                           c10::SymIntArrayRef input_size, Ints stride,
                                           Ints padding, Ints dilation) {
  static const auto op =
      handle<at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, Ints, Ints,
                        Ints)>("sepconv::_depthwise_conv2d_backward_input");
  return op.call(grad_output, weight, input_size, stride, padding, dilation);
}

at::Tensor depthwise_conv2d_backward_weight(const at::Tensor& grad_output, const at::Tensor& input,
                                            Ints kernel_size, Ints stride, Ints padding,
                                            Ints dilation) {
  static const auto op =
      handle<at::Tensor(const at::Tensor&, const at::Tensor&, Ints, Ints, Ints, Ints)>(
          "sepconv::_depthwise_conv2d_backward_weight");
  return op.call(grad_output, input, kernel_size, stride, padding, dilation);
}

at::Tensor pointwise_conv2d(const at::Tensor& input, const at::Tensor& weight, OptTensor bias) {
  static const auto op = handle<at::Tensor(const at::Tensor&, const at::Tensor&, OptTensor)>(
      "sepconv::pointwise_conv2d");
  return op.call(input, weight, bias);
}

at::Tensor pointwise_conv2d_backward_weight(const at::Tensor& grad_output,
                                            const at::Tensor& input) {
  static const auto op = handle<at::Tensor(const at::Tensor&, const at::Tensor&)>(
      "sepconv::_pointwise_conv2d_backward_weight");
  return op.call(grad_output, input);
}

at::Tensor separable_conv2d(const at::Tensor& input, const at::Tensor& depthwise_weight,
                            const at::Tensor& pointwise_weight, OptTensor depthwise_bias,
                            OptTensor pointwise_bias, Ints stride, Ints padding, Ints dilation) {
  static const auto op =
      handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, OptTensor,
                        OptTensor, Ints, Ints, Ints)>("sepconv::separable_conv2d");
  return op.call(input, depthwise_weight, pointwise_weight, depthwise_bias, pointwise_bias, stride,
                 padding, dilation);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> separable_conv2d_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, OptTensor depthwise_bias, Ints stride, Ints padding,
    Ints dilation, std::array<bool, 3> output_mask) {
  using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
  static const auto op =
      handle<Grads(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                   OptTensor, Ints, Ints, Ints, std::array<bool, 3>)>(
          "sepconv::_separable_conv2d_backward");
  return op.call(grad_output, input, depthwise_weight, pointwise_weight, depthwise_bias, stride,
                 padding, dilation, output_mask);
}

at::Tensor fused_depthwise_conv2d(const at::Tensor& input, const at::Tensor& weight, OptTensor bias,
                                  Ints stride, Ints padding, Ints dilation,
                                  c10::string_view activation, double min_val, double max_val) {
  static const auto op =
      handle<at::Tensor(const at::Tensor&, const at::Tensor&, OptTensor, Ints, Ints, Ints,
                        c10::string_view, double, double)>("sepconv::fused_depthwise_conv2d");
  return op.call(input, weight, bias, stride, padding, dilation, activation, min_val, max_val);
}

at::Tensor fused_pointwise_conv2d(const at::Tensor& input, const at::Tensor& weight, OptTensor bias,
                                  c10::string_view activation, double min_val, double max_val) {
  static const auto op =
      handle<at::Tensor(const at::Tensor&, const at::Tensor&, OptTensor, c10::string_view, double,
                        double)>("sepconv::fused_pointwise_conv2d");
  return op.call(input, weight, bias, activation, min_val, max_val);
}

}  // namespace ops
}  // namespace sepconv
