// Autograd kernels of the inference ops: they have no backward, so an input that requires grad
// (with grad mode on) is an error that says what to do, never a graph with a silently wrong or
// missing gradient. Otherwise the call goes on below autograd.
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/grad_mode.h>
#include <torch/library.h>

#include <initializer_list>

#include "../op_calls.h"

namespace sepconv {
namespace {

void check_no_grad(const char* op,
                   std::initializer_list<std::pair<const char*, const at::Tensor*>> args) {
  if (!at::GradMode::is_enabled()) return;
  for (const auto& [name, t] : args)
    TORCH_CHECK(t == nullptr || !t->defined() || !t->requires_grad(), op,
                " is for inference only (sc.optimize_for_inference) and has no backward, but ",
                name,
                " requires grad: run the optimized model under torch.no_grad() or "
                "torch.inference_mode(), or train the model before optimizing it");
}

const at::Tensor* given(const std::optional<at::Tensor>& t) { return t ? &*t : nullptr; }

at::Tensor fused_depthwise(const at::Tensor& input, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation,
                           c10::string_view activation, double min_val, double max_val) {
  check_no_grad("sepconv::fused_depthwise_conv2d",
                {{"input", &input}, {"weight", &weight}, {"bias", given(bias)}});
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  return ops::fused_depthwise_conv2d(input, weight, bias, stride, padding, dilation, activation,
                                     min_val, max_val);
}

at::Tensor fused_pointwise(const at::Tensor& input, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias, c10::string_view activation,
                           double min_val, double max_val) {
  check_no_grad("sepconv::fused_pointwise_conv2d",
                {{"input", &input}, {"weight", &weight}, {"bias", given(bias)}});
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  return ops::fused_pointwise_conv2d(input, weight, bias, activation, min_val, max_val);
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, Autograd, m) {
  m.impl("fused_depthwise_conv2d", fused_depthwise);
  m.impl("fused_pointwise_conv2d", fused_pointwise);
}

}  // namespace sepconv
