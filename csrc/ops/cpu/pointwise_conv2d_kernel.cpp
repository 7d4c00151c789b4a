// CPU kernels of the pointwise ops: NCHW runs one GEMM per image (W x X), channels_last one GEMM
// over all N*H*W pixels (X x W^T). The arithmetic is in csrc/cpu/.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "../../cpu/dispatch.h"
#include "../prepare.h"
#include "cpu_kernels.h"
#include "output_memory.h"

namespace sepconv {
namespace {

at::Tensor backward_weight(const at::Tensor& grad_output, const at::Tensor& input) {
  const auto call = prepare_pointwise_backward_weight(grad_output, input);
  const auto& p = call.params;
  at::Tensor grad_weight = call.grad_weight;
  const bool channels_last = call.format == kChannelsLast;
  const at::Tensor x = input.contiguous(call.format);
  const at::Tensor gy = grad_output.contiguous(call.format);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pointwise_backward_weight_cpu", [&] {
    const auto& kernels = cpu::pointwise_kernels<scalar_t>();
    const auto split =
        cpu::pointwise_weight_grad_split(p, channels_last, at::get_num_threads(), sizeof(scalar_t));
    const int64_t size = p.out_channels * p.in_channels;
    // One group writes grad_weight itself; more write their partial sums first. Kept per
    // thread: a fresh buffer of a megabyte or more is mmapped and page-faults on first touch.
    thread_local std::vector<scalar_t> parts_buffer;
    parts_buffer.resize(split.groups > 1 ? split.groups * size : 0);
    scalar_t* const parts =
        split.groups > 1 ? parts_buffer.data() : grad_weight.data_ptr<scalar_t>();
    const int64_t work = split.group_images * p.pixels * split.block_channels * p.in_channels;
    parallel_units(split.units(), work, [&](int64_t b, int64_t e) {
      kernels.backward_weight(p, split, channels_last, gy.const_data_ptr<scalar_t>(),
                              x.const_data_ptr<scalar_t>(), parts, b, e);
    });
    cpu::fold_weight_grad_parts(split, size, parts, grad_weight.data_ptr<scalar_t>());
  });
  return grad_weight;
}

// The forward of both ops: `op` names it in errors, `activation` is the epilogue (the inference
// op's; none for sepconv::pointwise_conv2d and for the input gradient).
at::Tensor pointwise_forward(const char* op, const at::Tensor& input, const at::Tensor& weight,
                             const std::optional<at::Tensor>& bias,
                             const cpu::Activation& activation) {
  auto call = prepare_pointwise_forward(input, weight, bias, empty_cpu_output, op);
  at::Tensor output = call.output;
  if (output.numel() == 0) return output;
  call.params.activation = activation;
  const auto& p = call.params;
  const at::Tensor& w = call.weight;
  const at::Tensor& b = call.bias;
  // On 1x1 planes (squeeze-excitation) NCHW and channels_last are the same memory: the NHWC
  // kernel runs all images as one GEMM instead of one matrix-vector product per image.
  const bool nhwc = call.format == kChannelsLast || p.pixels == 1;
  const at::Tensor x = input.contiguous(nhwc ? kChannelsLast : at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pointwise_conv2d_cpu", [&] {
    const auto& kernels = cpu::pointwise_kernels<scalar_t>();
    const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* y = output.data_ptr<scalar_t>();
    // Few pixels: read the weight in place rather than pack it (packing would cost more than
    // the multiply-adds). The forward's weight rows are dotted with the input rows; the input
    // gradient's transposed weight has contiguous columns, which the GEMM tile reads in place.
    const int64_t rows = p.batch * p.pixels;
    const scalar_t* wp = w.const_data_ptr<scalar_t>();
    if (nhwc && rows <= cpu::kPointwiseDotRows && w.stride(1) == 1 &&
        w.stride(0) == p.in_channels) {
      parallel_units(p.out_channels, rows * p.in_channels, [&](int64_t b0, int64_t e0) {
        kernels.forward_dot(p, xp, wp, bp, y, b0, e0);
      });
      return;
    }
    if (nhwc && rows <= cpu::kPointwiseDotRows && w.stride(0) == 1) {
      constexpr int64_t kColumns = 64;  // a unit: this many output channels
      parallel_units((p.out_channels + kColumns - 1) / kColumns, kColumns * rows * p.in_channels,
                     [&](int64_t b0, int64_t e0) {
                       const int64_t j0 = b0 * kColumns,
                                     j1 = std::min(p.out_channels, e0 * kColumns);
                       cpu::Gemm g{rows,        j1 - j0, p.in_channels, p.in_channels, 1,
                                   w.stride(1), 1,       p.out_channels};
                       g.activation = p.activation;
                       kernels.gemm(g, xp, wp + j0, y + j0, nullptr, bp ? bp + j0 : nullptr);
                     });
      return;
    }
    if (nhwc && cpu::pointwise_forward_by_columns(rows, p.out_channels)) {
      const int64_t block = cpu::kPointwiseColumnBlock;
      parallel_units((p.out_channels + block - 1) / block, block * rows * p.in_channels,
                     [&](int64_t b0, int64_t e0) {
                       kernels.forward_nhwc_columns(p, xp, wp, w.stride(0), w.stride(1), bp, y, b0,
                                                    e0);
                     });
      return;
    }
    // Packed once, read by every thread (w may be a transposed view: the input gradient).
    // The buffer is the calling thread's, kept between calls: a fresh one of a megabyte or more
    // comes from mmap, and its page faults (~3 us per 4 KiB here) cost as much as a batch-1
    // GEMM of a 7x7 layer.
    // (A thread_local is not captured: the workers must get the pointer, not the name.)
    thread_local std::vector<scalar_t> packed_buffer;
    packed_buffer.resize(kernels.packed_weight_size(p, nhwc));
    scalar_t* const packed = packed_buffer.data();
    kernels.pack_weight(p, nhwc, wp, w.stride(0), w.stride(1), packed);
    if (nhwc) {
      parallel_units(
          p.batch * p.pixels, p.in_channels * p.out_channels,
          [&](int64_t b0, int64_t e0) { kernels.forward_nhwc(p, xp, packed, bp, y, b0, e0); });
    } else {
      parallel_units(
          cpu::pointwise_nchw_units(p),
          cpu::pointwise_pixel_block(p) * p.in_channels *
              std::min(p.out_channels, cpu::kPointwiseRowBlock),
          [&](int64_t b0, int64_t e0) { kernels.forward_nchw(p, xp, packed, bp, y, b0, e0); });
    }
  });
  return output;
}

at::Tensor pointwise_conv2d_cpu(const at::Tensor& input, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias) {
  return pointwise_forward("sepconv::pointwise_conv2d", input, weight, bias, cpu::Activation{});
}

at::Tensor fused_pointwise_conv2d_cpu(const at::Tensor& input, const at::Tensor& weight,
                                      const std::optional<at::Tensor>& bias,
                                      c10::string_view activation, double min_val, double max_val) {
  const char* op = "sepconv::fused_pointwise_conv2d";
  return pointwise_forward(op, input, weight, bias,
                           check_activation(op, activation, min_val, max_val));
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CPU, m) {
  m.impl("pointwise_conv2d", pointwise_conv2d_cpu);
  m.impl("fused_pointwise_conv2d", fused_pointwise_conv2d_cpu);
  m.impl("_pointwise_conv2d_backward_weight", backward_weight);
}

}  // namespace sepconv
