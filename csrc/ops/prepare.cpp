#include "prepare.h"

#include <ATen/ops/empty.h>

namespace sepconv {
namespace {

cpu::DepthwiseParams depthwise_params(at::IntArrayRef input_size, at::IntArrayRef output_size,
                                      int64_t kernel_h, int64_t kernel_w, const ConvGeometry& g) {
  cpu::DepthwiseParams p;
  p.batch = input_size[0];
  p.channels = input_size[1];
  p.multiplier = output_size[1] / input_size[1];
  p.in_h = input_size[2];
  p.in_w = input_size[3];
  p.out_h = output_size[2];
  p.out_w = output_size[3];
  p.kernel_h = kernel_h;
  p.kernel_w = kernel_w;
  p.stride_h = g.stride_h;
  p.stride_w = g.stride_w;
  p.pad_top = g.pad_top;
  p.pad_left = g.pad_left;
  p.dilation_h = g.dilation_h;
  p.dilation_w = g.dilation_w;
  return p;
}

cpu::PointwiseParams pointwise_params(const at::Tensor& input, int64_t out_channels) {
  return {input.size(0), input.size(1), out_channels, input.size(2) * input.size(3)};
}

at::Tensor allocate_or_undefined(OutputAllocator allocate, at::IntArrayRef size,
                                 const at::TensorOptions& options) {
  return allocate ? allocate(size, options) : at::Tensor();
}

}  // namespace

at::Tensor empty_tensor(at::IntArrayRef size, const at::TensorOptions& options) {
  return at::empty(size, options);
}

at::Tensor contiguous_if_given(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? t->contiguous() : at::Tensor();
}

DepthwiseForwardCall prepare_depthwise_forward(const at::Tensor& input, const at::Tensor& weight,
                                               const std::optional<at::Tensor>& bias,
                                               at::IntArrayRef stride, at::IntArrayRef padding,
                                               at::IntArrayRef dilation, OutputAllocator allocate,
                                               const char* op) {
  const auto g = check_geometry(op, stride, padding, dilation);
  const auto out_sym = check_depthwise_forward(op, input, weight, bias, g);
  const auto out_size = C10_AS_INTARRAYREF_SLOW(out_sym);
  DepthwiseForwardCall call;
  call.format = output_memory_format(input);
  call.output =
      allocate_or_undefined(allocate, out_size, input.options().memory_format(call.format));
  call.params = depthwise_params(input.sizes(), out_size, weight.size(2), weight.size(3), g);
  call.bias = contiguous_if_given(bias);
  return call;
}

DepthwiseBackwardInputCall prepare_depthwise_backward_input(
    const at::Tensor& grad_output, const at::Tensor& weight, c10::SymIntArrayRef input_size,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    OutputAllocator allocate) {
  const char* op = "sepconv::_depthwise_conv2d_backward_input";
  const auto g = check_geometry(op, stride, padding, dilation);
  check_depthwise_backward_input(op, grad_output, weight, input_size, g);
  const auto in_size = C10_AS_INTARRAYREF_SLOW(input_size);
  DepthwiseBackwardInputCall call;
  call.format = output_memory_format(grad_output);
  call.grad_input =
      allocate_or_undefined(allocate, in_size, grad_output.options().memory_format(call.format));
  call.params = depthwise_params(in_size, grad_output.sizes(), weight.size(2), weight.size(3), g);
  return call;
}

DepthwiseBackwardWeightCall prepare_depthwise_backward_weight(
    const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::_depthwise_conv2d_backward_weight";
  const auto g = check_geometry(op, stride, padding, dilation);
  check_depthwise_backward_weight(op, grad_output, input, kernel_size, g);
  return {output_memory_format(input),
          depthwise_params(input.sizes(), grad_output.sizes(), kernel_size[0], kernel_size[1], g)};
}

PointwiseForwardCall prepare_pointwise_forward(const at::Tensor& input, const at::Tensor& weight,
                                               const std::optional<at::Tensor>& bias,
                                               OutputAllocator allocate, const char* op) {
  const auto out_sym = check_pointwise_forward(op, input, weight, bias);
  const auto out_size = C10_AS_INTARRAYREF_SLOW(out_sym);
  PointwiseForwardCall call;
  call.format = output_memory_format(input);
  call.output =
      allocate_or_undefined(allocate, out_size, input.options().memory_format(call.format));
  call.params = pointwise_params(input, out_size[1]);
  call.weight = weight.reshape({call.params.out_channels, call.params.in_channels});
  call.bias = contiguous_if_given(bias);
  return call;
}

PointwiseBackwardWeightCall prepare_pointwise_backward_weight(const at::Tensor& grad_output,
                                                              const at::Tensor& input) {
  check_pointwise_backward_weight("sepconv::_pointwise_conv2d_backward_weight", grad_output, input);
  PointwiseBackwardWeightCall call;
  call.format = output_memory_format(input);
  call.params = pointwise_params(input, grad_output.size(1));
  call.grad_weight =
      at::empty({call.params.out_channels, call.params.in_channels}, input.options());
  return call;
}

SeparableForwardCall prepare_separable_forward(const at::Tensor& input,
                                               const at::Tensor& depthwise_weight,
                                               const at::Tensor& pointwise_weight,
                                               const std::optional<at::Tensor>& depthwise_bias,
                                               const std::optional<at::Tensor>& pointwise_bias,
                                               at::IntArrayRef stride, at::IntArrayRef padding,
                                               at::IntArrayRef dilation, OutputAllocator allocate) {
  const char* op = "sepconv::separable_conv2d";
  const auto g = check_geometry(op, stride, padding, dilation);
  const auto out_sym = check_separable_forward(op, input, depthwise_weight, pointwise_weight,
                                               depthwise_bias, pointwise_bias, g);
  const auto out_size = C10_AS_INTARRAYREF_SLOW(out_sym);
  SeparableForwardCall call;
  call.format = output_memory_format(input);
  call.output =
      allocate_or_undefined(allocate, out_size, input.options().memory_format(call.format));
  const int64_t mid = depthwise_weight.size(0);
  call.depthwise = depthwise_params(input.sizes(), {out_size[0], mid, out_size[2], out_size[3]},
                                    depthwise_weight.size(2), depthwise_weight.size(3), g);
  call.out_channels = out_size[1];
  call.depthwise_bias = contiguous_if_given(depthwise_bias);
  call.pointwise_bias = contiguous_if_given(pointwise_bias);
  return call;
}

SeparableBackwardCall prepare_separable_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, const std::optional<at::Tensor>& depthwise_bias,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::_separable_conv2d_backward";
  const auto g = check_geometry(op, stride, padding, dilation);
  check_separable_backward(op, grad_output, input, depthwise_weight, pointwise_weight,
                           depthwise_bias, g);
  const int64_t mid = depthwise_weight.size(0);
  return {output_memory_format(grad_output),
          depthwise_params(input.sizes(),
                           {grad_output.size(0), mid, grad_output.size(2), grad_output.size(3)},
                           depthwise_weight.size(2), depthwise_weight.size(3), g),
          pointwise_weight.size(0)};
}

}  // namespace sepconv
