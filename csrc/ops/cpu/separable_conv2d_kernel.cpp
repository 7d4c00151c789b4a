// CPU kernel of the separable op: the fused kernel of csrc/cpu/separable.h, which never holds
// the intermediate tensor whole. Same layout rule as the other ops (channels_last in,
// channels_last out); any dtype the depthwise and pointwise kernels take.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../../cpu/dispatch.h"
#include "../../cpu/separable.h"
#include "../prepare.h"
#include "cpu_kernels.h"
#include "output_memory.h"

namespace sepconv {
namespace {

at::Tensor separable_conv2d_cpu(const at::Tensor& input, const at::Tensor& depthwise_weight,
                                const at::Tensor& pointwise_weight,
                                const std::optional<at::Tensor>& depthwise_bias,
                                const std::optional<at::Tensor>& pointwise_bias,
                                at::IntArrayRef stride, at::IntArrayRef padding,
                                at::IntArrayRef dilation) {
  const auto call =
      prepare_separable_forward(input, depthwise_weight, pointwise_weight, depthwise_bias,
                                pointwise_bias, stride, padding, dilation, empty_cpu_output);
  at::Tensor output = call.output;
  if (output.numel() == 0) return output;
  const int64_t mid = depthwise_weight.size(0), cout = call.out_channels;
  const auto s = cpu::separable_params(call.depthwise, cout);
  const at::Tensor pw = pointwise_weight.reshape({cout, mid});
  const bool channels_last = call.format == kChannelsLast;
  const at::Tensor x = input.contiguous(call.format);
  const at::Tensor pw_w = channels_last ? pw.t().contiguous() : pw.contiguous();
  const at::Tensor &dw_b = call.depthwise_bias, &pw_b = call.pointwise_bias;
  const int64_t work_per_unit =  // multiply-adds of one band, both convs
      s.band_rows * s.depthwise.out_w * mid * (s.depthwise.kernel_h * s.depthwise.kernel_w + cout);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "separable_conv2d_cpu", [&] {
    const auto& dw = cpu::depthwise_kernels<scalar_t>();
    const auto& pwk = cpu::pointwise_kernels<scalar_t>();
    const auto ptr = [](const at::Tensor& t) {
      return t.defined() ? t.const_data_ptr<scalar_t>() : nullptr;
    };
    const cpu::SeparableWeights<scalar_t> w{
        pack_depthwise_forward(dw, s.depthwise, channels_last, depthwise_weight, dw_b), nullptr,
        ptr(pw_w), ptr(pw_b)};
    const auto kernel = channels_last ? cpu::separable_forward_nhwc<scalar_t>
                                      : cpu::separable_forward_nchw<scalar_t>;
    parallel_units(cpu::separable_units(s), work_per_unit, [&](int64_t b, int64_t e) {
      kernel(dw, pwk, s, x.const_data_ptr<scalar_t>(), w, output.data_ptr<scalar_t>(), b, e);
    });
  });
  return output;
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CPU, m) { m.impl("separable_conv2d", separable_conv2d_cpu); }

}  // namespace sepconv
