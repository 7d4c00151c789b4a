// Meta (fake) kernel of the separable op; see depthwise_conv2d_meta.cpp.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../checks.h"

namespace sepconv {
namespace {

at::Tensor forward(const at::Tensor& input, const at::Tensor& depthwise_weight,
                   const at::Tensor& pointwise_weight,
                   const std::optional<at::Tensor>& depthwise_bias,
                   const std::optional<at::Tensor>& pointwise_bias, at::IntArrayRef stride,
                   at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::separable_conv2d";
  const auto out =
      check_separable_forward(op, input, depthwise_weight, pointwise_weight, depthwise_bias,
                              pointwise_bias, check_geometry(op, stride, padding, dilation));
  return at::empty_symint(out, input.options().memory_format(output_memory_format(input)));
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, Meta, m) { m.impl("separable_conv2d", forward); }

}  // namespace sepconv
