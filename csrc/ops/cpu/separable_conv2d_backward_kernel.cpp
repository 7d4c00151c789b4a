// CPU kernel of the separable backward: the fused kernel of csrc/cpu/separable.h, which never
// holds the intermediate tensor or its gradient whole (the composition where one image's
// intermediate fits a band anyway). Runs in grad_output's layout (the
// composition's grad_input follows it too). The weight gradients are summed in double, per
// thread chunk, and the chunks folded in order: bitwise reproducible for a given thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "../../cpu/dispatch.h"
#include "../../cpu/separable.h"
#include "../prepare.h"
#include "../separable_conv2d_backward.h"
#include "cpu_kernels.h"
#include "output_memory.h"

namespace sepconv {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> separable_conv2d_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& depthwise_weight,
    const at::Tensor& pointwise_weight, const std::optional<at::Tensor>& depthwise_bias,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    std::array<bool, 3> output_mask) {
  const auto call =
      prepare_separable_backward(grad_output, input, depthwise_weight, pointwise_weight,
                                 depthwise_bias, stride, padding, dilation);
  const bool want_input = output_mask[0], want_dw = output_mask[1], want_pw = output_mask[2];
  const int64_t mid = depthwise_weight.size(0), cout = call.out_channels;
  const auto& p = call.depthwise;
  const int64_t kh = p.kernel_h, kw = p.kernel_w, taps = kh * kw;
  const auto s = cpu::separable_backward_params(p, cout);
  const auto fmt = call.format;
  const bool channels_last = fmt == kChannelsLast;
  if (!cpu::separable_backward_fused(cpu::bands_per_image(s), channels_last))
    return separable_backward_composite_kernel(grad_output, input, depthwise_weight,
                                               pointwise_weight, depthwise_bias, stride, padding,
                                               dilation, output_mask);

  const auto empty = [&] { return at::empty({0}, input.options()); };  // one per output: no aliases
  at::Tensor grad_input =
      want_input ? empty_cpu_output(input.sizes(), input.options().memory_format(fmt)) : empty();
  // Weight-gradient sums in double: (pointwise (Cout, mid) | depthwise taps | depthwise bias)
  // per chunk of units, one chunk per thread.
  const int64_t pw_size = want_pw ? cout * mid : 0, dw_size = want_dw ? mid * taps : 0;
  const int64_t db_size = want_dw ? mid : 0, sum_size = pw_size + dw_size + db_size;
  const int64_t units = input.numel() == 0 ? 0 : cpu::separable_units(s);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(units, at::get_num_threads()));
  std::vector<double> sums(chunks * sum_size, 0.0);
  if (units == 0) {
    if (want_input) grad_input.zero_();
  } else {
    const at::Tensor x = input.contiguous(fmt);
    const at::Tensor gy = grad_output.contiguous(fmt);
    const at::Tensor pw = pointwise_weight.reshape({cout, mid});
    const at::Tensor pw_w = channels_last ? pw.contiguous() : pw.t().contiguous();
    const at::Tensor dw_b = contiguous_if_given(depthwise_bias);
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "separable_conv2d_backward_cpu", [&] {
      const auto& dwk = cpu::depthwise_kernels<scalar_t>();
      const auto& pwk = cpu::pointwise_kernels<scalar_t>();
      // The bands recompute the intermediate only for the pointwise weight's gradient.
      const scalar_t* dw_packed =
          want_pw ? pack_depthwise_forward(dwk, s.depthwise, channels_last, depthwise_weight, dw_b)
                  : nullptr;
      // Every band's input gradient reads it.
      const scalar_t* dw_backward =
          want_input
              ? pack_depthwise_backward_input(dwk, s.depthwise, channels_last, depthwise_weight)
              : nullptr;
      const cpu::SeparableWeights<scalar_t> w{dw_packed, dw_backward,
                                              pw_w.const_data_ptr<scalar_t>(), nullptr};
      const auto kernel = channels_last ? cpu::separable_backward_nhwc<scalar_t>
                                        : cpu::separable_backward_nchw<scalar_t>;
      scalar_t* gx = want_input ? grad_input.data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          double* base = sums.data() + c * sum_size;
          const cpu::SeparableGradSums chunk_sums{want_pw ? base : nullptr,
                                                  want_dw ? base + pw_size : nullptr,
                                                  want_dw ? base + pw_size + dw_size : nullptr};
          kernel(dwk, pwk, s, x.const_data_ptr<scalar_t>(), gy.const_data_ptr<scalar_t>(), w, gx,
                 chunk_sums, units * c / chunks, units * (c + 1) / chunks);
        }
      });
    });
  }
  for (int64_t c = 1; c < chunks; ++c)
    for (int64_t i = 0; i < sum_size; ++i) sums[i] += sums[c * sum_size + i];
  const auto to_tensor = [&](int64_t offset, int64_t size) {
    at::Tensor t = at::empty({size}, input.options().dtype(at::kDouble));
    std::copy(sums.begin() + offset, sums.begin() + offset + size, t.data_ptr<double>());
    return t.to(input.scalar_type());
  };
  at::Tensor grad_pw = want_pw ? to_tensor(0, pw_size).reshape(pointwise_weight.sizes()) : empty();
  at::Tensor grad_dw = empty(), grad_db = empty();
  if (want_dw) {
    const at::Tensor taps_grad = to_tensor(pw_size, dw_size);
    grad_dw = channels_last  // tap-major (kH, kW, mid) -> (mid, 1, kH, kW)
                  ? taps_grad.reshape({kh, kw, mid}).permute({2, 0, 1}).unsqueeze(1).contiguous()
                  : taps_grad.reshape({mid, 1, kh, kw});
    grad_db = to_tensor(pw_size + dw_size, db_size);
  }
  return {grad_input, grad_dw, grad_pw, grad_db};
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CPU, m) {
  m.impl("_separable_conv2d_backward", separable_conv2d_backward_cpu);
}

}  // namespace sepconv
