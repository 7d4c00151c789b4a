// The depthwise weight-gradient op on CUDA (sepconv::_depthwise_conv2d_backward_weight), every
// dtype, layout and geometry of the forward (depthwise_forward_cuda.cu). A deterministic
// two-stage reduction: blocks write partial sums over fixed chunks of the reduction to a
// workspace, a second kernel sums the chunks in order (no atomics: bitwise repeatable).
// path_policy.h picks: channels_last 3x3 with output planes of >= 100 pixels reads the tensors in
// place (depthwise_nhwc_backward_weight.cuh); other shapes reduce over NCHW planes
// (channels_last tensors converted first) on the register-window kernel for K x K in {3, 5, 7}
// at stride 1 or 2 (depthwise_nchw_window.cuh) or the shared-memory tiles
// (depthwise_nchw_backward_weight.cuh).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

#include "../prepare.h"
#include "cuda_utils.cuh"
#include "depthwise_nchw_backward_weight.cuh"
#include "depthwise_nchw_window.cuh"
#include "depthwise_nhwc_backward_weight.cuh"
#include "path_policy.h"

namespace sepconv {
namespace cuda {
namespace {

at::Tensor backward_weight_impl(const at::Tensor& grad_output, const at::Tensor& input,
                                at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::_depthwise_conv2d_backward_weight";
  const auto call =
      prepare_depthwise_backward_weight(grad_output, input, kernel_size, stride, padding, dilation);
  c10::cuda::CUDAGuard guard(input.device());
  const auto& p = call.params;
  const int64_t cout = (p.channels * p.multiplier), taps = p.kernel_h * p.kernel_w;
  at::Tensor grad_weight = at::empty({cout, 1, p.kernel_h, p.kernel_w}, input.options());
  if (grad_weight.numel() == 0) return grad_weight;
  if (grad_output.numel() == 0 || input.numel() == 0) return grad_weight.zero_();
  TORCH_CHECK(taps <= std::numeric_limits<int32_t>::max() / 4, op, ": kernel of ", p.kernel_h, "x",
              p.kernel_w, " taps is too large");
  const int device = input.get_device();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t window_items = backward_weight_window_items(p);
  auto path = depthwise_backward_weight_path(p, call.format == kChannelsLast, window_items);
  if (path == DepthwiseBackwardWeightPath::kNhwcInPlace) {
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, input.scalar_type(), "depthwise_backward_weight_nhwc_cuda", [&] {
          done =
              launch_backward_weight_nhwc<scalar_t>(p, grad_output, input, grad_weight, stream, op);
        });
    if (done) return grad_weight;
    path = depthwise_backward_weight_nchw_path(p, window_items);  // C or alignment did not fit
  }
  // Other cases reduce over NCHW planes: channels_last tensors are converted first.
  const at::Tensor x = input.contiguous();
  const at::Tensor gy = grad_output.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "depthwise_backward_weight_cuda", [&] {
        launch_backward_weight_nchw<scalar_t>(
            p, path == DepthwiseBackwardWeightPath::kNchwWindow, gy.const_data_ptr<scalar_t>(),
            x.const_data_ptr<scalar_t>(), grad_weight, input.options(), device, stream, op);
      });
  return grad_weight;
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) {
  m.impl("_depthwise_conv2d_backward_weight", backward_weight_impl);
}

}  // namespace cuda
}  // namespace sepconv
