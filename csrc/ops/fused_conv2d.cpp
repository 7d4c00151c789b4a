// Schemas of the inference ops that sc.optimize_for_inference builds its modules on: a
// depthwise or pointwise conv whose weight and bias already hold the folded BatchNorm, with the
// activation that followed it applied in the kernels' epilogue (cpu::Activation), so the output
// is written once, activated. Inference only: no backward (an input that requires grad is an
// error, csrc/ops/autograd/fused_conv2d_autograd.cpp).
//
// Backends without a fused kernel (CUDA for now) run the composition below: the op itself, then
// the activation in place, which gives the same result through two passes over the output.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "checks.h"
#include "op_calls.h"

namespace sepconv {
namespace {

// y = act(y), in place, with ATen's own activations.
void activate_(at::Tensor& y, const cpu::Activation& a) {
  switch (a.kind) {
    case cpu::Activation::kNone:
      return;
    case cpu::Activation::kRelu:
      at::relu_(y);
      return;
    case cpu::Activation::kHardtanh:
      at::hardtanh_(y, a.min_val, a.max_val);
      return;
    case cpu::Activation::kHardswish:
      at::hardswish_(y);
      return;
    case cpu::Activation::kHardsigmoid:
      at::hardsigmoid_(y);
      return;
    case cpu::Activation::kSigmoid:
      at::sigmoid_(y);
      return;
    case cpu::Activation::kSilu:
      at::silu_(y);
      return;
    case cpu::Activation::kGelu:
      at::gelu_(y);
      return;
  }
}

at::Tensor fused_depthwise_composite(const at::Tensor& input, const at::Tensor& weight,
                                     const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                     at::IntArrayRef padding, at::IntArrayRef dilation,
                                     c10::string_view activation, double min_val, double max_val) {
  const auto a = check_activation("sepconv::fused_depthwise_conv2d", activation, min_val, max_val);
  at::Tensor y = ops::depthwise_conv2d(input, weight, bias, stride, padding, dilation);
  activate_(y, a);
  return y;
}

at::Tensor fused_pointwise_composite(const at::Tensor& input, const at::Tensor& weight,
                                     const std::optional<at::Tensor>& bias,
                                     c10::string_view activation, double min_val, double max_val) {
  const auto a = check_activation("sepconv::fused_pointwise_conv2d", activation, min_val, max_val);
  at::Tensor y = ops::pointwise_conv2d(input, weight, bias);
  activate_(y, a);
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(sepconv, m) {
  m.def(
      "fused_depthwise_conv2d(Tensor input, Tensor weight, Tensor? bias=None, int[2] stride=1, "
      "int[4] padding=0, int[2] dilation=1, str activation='none', float min_val=0., "
      "float max_val=0.) -> Tensor");
  m.def(
      "fused_pointwise_conv2d(Tensor input, Tensor weight, Tensor? bias=None, "
      "str activation='none', float min_val=0., float max_val=0.) -> Tensor");
}

// Any backend without its own kernel for these ops (registered for CPU and Meta) composes them.
TORCH_LIBRARY_IMPL(sepconv, CompositeExplicitAutograd, m) {
  m.impl("fused_depthwise_conv2d", fused_depthwise_composite);
  m.impl("fused_pointwise_conv2d", fused_pointwise_composite);
}

}  // namespace sepconv
