// CPU kernel of the separable op. For now the composition of the two CPU kernels, with the
// intermediate tensor materialised; the fused kernel replaces this body, not its callers.
#include <torch/library.h>

#include "../checks.h"
#include "cpu_kernels.h"

namespace sepconv {
namespace {

at::Tensor separable_conv2d_cpu(const at::Tensor& input, const at::Tensor& depthwise_weight,
                                const at::Tensor& pointwise_weight,
                                const std::optional<at::Tensor>& depthwise_bias,
                                const std::optional<at::Tensor>& pointwise_bias,
                                at::IntArrayRef stride, at::IntArrayRef padding,
                                at::IntArrayRef dilation) {
  const auto g = check_geometry("sepconv::separable_conv2d", stride, padding, dilation);
  check_separable_forward("sepconv::separable_conv2d", input, depthwise_weight, pointwise_weight,
                          depthwise_bias, pointwise_bias, g);
  const at::Tensor mid =
      depthwise_conv2d_cpu(input, depthwise_weight, depthwise_bias, stride, padding, dilation);
  return pointwise_conv2d_cpu(mid, pointwise_weight, pointwise_bias);
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CPU, m) { m.impl("separable_conv2d", separable_conv2d_cpu); }

}  // namespace sepconv
