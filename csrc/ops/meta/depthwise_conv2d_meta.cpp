// Meta (fake) kernels of the depthwise ops: the same checks and output-size arithmetic as the
// real kernels (checks.h), on symbolic sizes, so torch.compile and torch.export trace the ops.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../checks.h"

namespace sepconv {
namespace {

at::Tensor forward(const at::Tensor& input, const at::Tensor& weight,
                   const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                   at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::depthwise_conv2d";
  const auto out = check_depthwise_forward(op, input, weight, bias,
                                           check_geometry(op, stride, padding, dilation));
  return at::empty_symint(out, input.options().memory_format(output_memory_format(input)));
}

at::Tensor fused_forward(const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                         at::IntArrayRef padding, at::IntArrayRef dilation,
                         c10::string_view activation, double min_val, double max_val) {
  const char* op = "sepconv::fused_depthwise_conv2d";
  check_activation(op, activation, min_val, max_val);
  const auto out = check_depthwise_forward(op, input, weight, bias,
                                           check_geometry(op, stride, padding, dilation));
  return at::empty_symint(out, input.options().memory_format(output_memory_format(input)));
}

at::Tensor backward_input(const at::Tensor& grad_output, const at::Tensor& weight,
                          c10::SymIntArrayRef input_size, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::_depthwise_conv2d_backward_input";
  check_depthwise_backward_input(op, grad_output, weight, input_size,
                                 check_geometry(op, stride, padding, dilation));
  return at::empty_symint(input_size,
                          grad_output.options().memory_format(output_memory_format(grad_output)));
}

at::Tensor backward_weight(const at::Tensor& grad_output, const at::Tensor& input,
                           at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::_depthwise_conv2d_backward_weight";
  check_depthwise_backward_weight(op, grad_output, input, kernel_size,
                                  check_geometry(op, stride, padding, dilation));
  return at::empty_symint({grad_output.sym_size(1), 1, kernel_size[0], kernel_size[1]},
                          input.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, Meta, m) {
  m.impl("depthwise_conv2d", forward);
  m.impl("fused_depthwise_conv2d", fused_forward);
  m.impl("_depthwise_conv2d_backward_input", backward_input);
  m.impl("_depthwise_conv2d_backward_weight", backward_weight);
}

}  // namespace sepconv
