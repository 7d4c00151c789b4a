// CPU kernels of the depthwise ops: validate, pick the layout, lay tensors out densely for the
// microkernels, and split the work units over threads. The arithmetic is in csrc/cpu/.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>

#include "../../cpu/dispatch.h"
#include "../prepare.h"
#include "cpu_kernels.h"
#include "output_memory.h"

namespace sepconv {
namespace {

at::Tensor backward_input(const at::Tensor& grad_output, const at::Tensor& weight,
                          c10::SymIntArrayRef input_size, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation) {
  const auto call = prepare_depthwise_backward_input(grad_output, weight, input_size, stride,
                                                     padding, dilation, empty_cpu_output);
  at::Tensor grad_input = call.grad_input;
  if (grad_input.numel() == 0) return grad_input;
  const auto& p = call.params;
  const auto fmt = call.format;
  const int64_t taps = p.kernel_h * p.kernel_w;
  AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "depthwise_backward_input_cpu", [&] {
    const auto& kernels = cpu::depthwise_kernels<scalar_t>();
    scalar_t* gx = grad_input.data_ptr<scalar_t>();
    const bool nhwc = fmt == kChannelsLast;
    // Packed here, once: the workers only read it (the buffer is this thread's).
    const scalar_t* packed = pack_depthwise_backward_input(kernels, p, nhwc, weight);
    if (nhwc) {
      const at::Tensor gy = grad_output.contiguous(kChannelsLast);
      parallel_units(p.batch * p.in_h, p.in_w * p.channels * taps, [&](int64_t b, int64_t e) {
        kernels.backward_input_nhwc(p, gy.const_data_ptr<scalar_t>(), packed, gx, b, e);
      });
    } else {
      const at::Tensor gy = grad_output.contiguous();
      parallel_units(
          p.batch * p.channels, p.multiplier * p.out_h * p.out_w * taps, [&](int64_t b, int64_t e) {
            kernels.backward_input_nchw(p, gy.const_data_ptr<scalar_t>(), packed, gx, b, e);
          });
    }
  });
  return grad_input;
}

at::Tensor backward_weight(const at::Tensor& grad_output, const at::Tensor& input,
                           at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation) {
  const auto call =
      prepare_depthwise_backward_weight(grad_output, input, kernel_size, stride, padding, dilation);
  const auto& p = call.params;
  const int64_t cout = p.out_channels(), taps = p.kernel_h * p.kernel_w;
  const int64_t work = p.batch * p.out_h * p.out_w * taps;  // per output channel
  at::Tensor grad_weight;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "depthwise_backward_weight_cpu", [&] {
    const auto& kernels = cpu::depthwise_kernels<scalar_t>();
    if (call.format == kChannelsLast) {
      const at::Tensor x = input.contiguous(kChannelsLast);
      const at::Tensor gy = grad_output.contiguous(kChannelsLast);
      at::Tensor packed = at::empty({p.kernel_h, p.kernel_w, cout}, input.options());
      // Threads split the channels at multiples of 16, a multiple of every vector width: the
      // SIMD kernel sums whole vectors of channels in another order than a partial one, so a
      // split inside a vector would make the result depend on the thread count.
      constexpr int64_t kChannelsPerUnit = 16;
      const int64_t units = (p.channels + kChannelsPerUnit - 1) / kChannelsPerUnit;
      parallel_units(units, work * p.multiplier * kChannelsPerUnit, [&](int64_t b, int64_t e) {
        kernels.backward_weight_nhwc(p, gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                     packed.data_ptr<scalar_t>(), b * kChannelsPerUnit,
                                     std::min(p.channels, e * kChannelsPerUnit));
      });
      grad_weight = packed.permute({2, 0, 1}).unsqueeze(1).contiguous();
    } else {
      const at::Tensor x = input.contiguous();
      const at::Tensor gy = grad_output.contiguous();
      grad_weight = at::empty({cout, 1, p.kernel_h, p.kernel_w}, input.options());
      parallel_units(cout, work, [&](int64_t b, int64_t e) {
        kernels.backward_weight_nchw(p, gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                     grad_weight.data_ptr<scalar_t>(), b, e);
      });
    }
  });
  return grad_weight;
}

// The forward of both ops: `op` names it in errors, `activation` is the epilogue (the inference
// op's; none for sepconv::depthwise_conv2d).
at::Tensor depthwise_forward(const char* op, const at::Tensor& input, const at::Tensor& weight,
                             const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation,
                             const cpu::Activation& activation) {
  auto call = prepare_depthwise_forward(input, weight, bias, stride, padding, dilation,
                                        empty_cpu_output, op);
  at::Tensor output = call.output;
  if (output.numel() == 0) return output;
  call.params.activation = activation;
  const auto& p = call.params;
  const auto fmt = call.format;
  const int64_t taps = p.kernel_h * p.kernel_w;
  const at::Tensor& b = call.bias;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "depthwise_conv2d_cpu", [&] {
    const auto& kernels = cpu::depthwise_kernels<scalar_t>();
    scalar_t* y = output.data_ptr<scalar_t>();
    const bool nhwc = fmt == kChannelsLast;
    const scalar_t* packed = pack_depthwise_forward(kernels, p, nhwc, weight, b);
    // Packed here, once: the workers only read it (the buffer is this thread's).
    if (nhwc) {
      const at::Tensor x = input.contiguous(kChannelsLast);
      parallel_units(p.batch * p.out_h, p.out_w * p.out_channels() * taps,
                     [&](int64_t b0, int64_t e0) {
                       kernels.forward_nhwc(p, x.const_data_ptr<scalar_t>(), packed, y, b0, e0);
                     });
    } else {
      const at::Tensor x = input.contiguous();
      parallel_units(p.batch * p.out_channels(), p.out_h * p.out_w * taps,
                     [&](int64_t b0, int64_t e0) {
                       kernels.forward_nchw(p, x.const_data_ptr<scalar_t>(), packed, y, b0, e0);
                     });
    }
  });
  return output;
}

at::Tensor depthwise_conv2d_cpu(const at::Tensor& input, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                at::IntArrayRef padding, at::IntArrayRef dilation) {
  return depthwise_forward("sepconv::depthwise_conv2d", input, weight, bias, stride, padding,
                           dilation, cpu::Activation{});
}

at::Tensor fused_depthwise_conv2d_cpu(const at::Tensor& input, const at::Tensor& weight,
                                      const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                      at::IntArrayRef padding, at::IntArrayRef dilation,
                                      c10::string_view activation, double min_val, double max_val) {
  const char* op = "sepconv::fused_depthwise_conv2d";
  return depthwise_forward(op, input, weight, bias, stride, padding, dilation,
                           check_activation(op, activation, min_val, max_val));
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CPU, m) {
  m.impl("depthwise_conv2d", depthwise_conv2d_cpu);
  m.impl("fused_depthwise_conv2d", fused_depthwise_conv2d_cpu);
  m.impl("_depthwise_conv2d_backward_input", backward_input);
  m.impl("_depthwise_conv2d_backward_weight", backward_weight);
}

}  // namespace sepconv
