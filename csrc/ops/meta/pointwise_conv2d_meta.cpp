// Meta (fake) kernels of the pointwise ops; see depthwise_conv2d_meta.cpp.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../checks.h"

namespace sepconv {
namespace {

at::Tensor forward(const at::Tensor& input, const at::Tensor& weight,
                   const std::optional<at::Tensor>& bias) {
  const auto out = check_pointwise_forward("sepconv::pointwise_conv2d", input, weight, bias);
  return at::empty_symint(out, input.options().memory_format(output_memory_format(input)));
}

at::Tensor fused_forward(const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias, c10::string_view activation,
                         double min_val, double max_val) {
  const char* op = "sepconv::fused_pointwise_conv2d";
  check_activation(op, activation, min_val, max_val);
  const auto out = check_pointwise_forward(op, input, weight, bias);
  return at::empty_symint(out, input.options().memory_format(output_memory_format(input)));
}

at::Tensor backward_weight(const at::Tensor& grad_output, const at::Tensor& input) {
  check_pointwise_backward_weight("sepconv::_pointwise_conv2d_backward_weight", grad_output, input);
  return at::empty_symint({grad_output.sym_size(1), input.sym_size(1)}, input.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, Meta, m) {
  m.impl("pointwise_conv2d", forward);
  m.impl("fused_pointwise_conv2d", fused_forward);
  m.impl("_pointwise_conv2d_backward_weight", backward_weight);
}

}  // namespace sepconv
