// The depthwise input-gradient op on CUDA (sepconv::_depthwise_conv2d_backward_input), every
// dtype, layout and geometry of the forward (depthwise_forward_cuda.cu). path_policy.h picks:
//   stride 1, multiplier 1: the forward of grad_output with flipped taps, on either layout
//     (depthwise_forward_launch.cuh);
//   other channels_last shapes: one thread per input pixel and group of VEC channels
//     (depthwise_nhwc_pixel.cuh);
//   NCHW stride 2, multiplier 1, K x K in {3, 5, 7}: its own register-window kernel
//     (depthwise_nchw_window.cuh);
//   other NCHW shapes: one thread block per 16x32 input-gradient tile (depthwise_nchw_tiles.cuh).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <utility>

#include "../prepare.h"
#include "cuda_utils.cuh"
#include "depthwise_forward_launch.cuh"
#include "depthwise_nchw_tiles.cuh"
#include "depthwise_nchw_window.cuh"
#include "depthwise_nhwc_pixel.cuh"
#include "path_policy.h"

namespace sepconv {
namespace cuda {
namespace {

// The stride-1 input gradient as a forward: grad_input = forward(grad_output, taps flipped)
// with padding (k - 1) * dilation - pad (may be negative); input and output sizes swap roles.
DepthwiseParams flipped_forward_params(const DepthwiseParams& p) {
  DepthwiseParams q = p;
  std::swap(q.in_h, q.out_h);
  std::swap(q.in_w, q.out_w);
  q.pad_top = (p.kernel_h - 1) * p.dilation_h - p.pad_top;
  q.pad_left = (p.kernel_w - 1) * p.dilation_w - p.pad_left;
  return q;
}

at::Tensor backward_input_impl(const at::Tensor& grad_output, const at::Tensor& weight,
                               c10::SymIntArrayRef input_size, at::IntArrayRef stride,
                               at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::_depthwise_conv2d_backward_input";
  const auto call = prepare_depthwise_backward_input(grad_output, weight, input_size, stride,
                                                     padding, dilation, empty_tensor);
  at::Tensor grad_input = call.grad_input;
  if (grad_input.numel() == 0) return grad_input;
  c10::cuda::CUDAGuard guard(grad_output.device());
  const auto& p = call.params;
  const auto path = depthwise_backward_input_path(p, call.format == kChannelsLast);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "depthwise_backward_input_cuda", [&] {
        scalar_t* gx = grad_input.data_ptr<scalar_t>();
        if (grad_output.numel() == 0) {  // no output pixel: every input gradient is zero
          grad_input.zero_();
          return;
        }
        switch (path) {
          case DepthwiseBackwardInputPath::kNhwcFlippedForward: {
            const at::Tensor gy = grad_output.contiguous(kChannelsLast);
            const at::Tensor w = weight.flip({2, 3}).permute({2, 3, 0, 1}).contiguous();
            launch_forward_nhwc<scalar_t>(flipped_forward_params(p), gy.const_data_ptr<scalar_t>(),
                                          w.const_data_ptr<scalar_t>(), nullptr, gx, stream, op);
            return;
          }
          case DepthwiseBackwardInputPath::kNhwcPixels: {
            const at::Tensor gy = grad_output.contiguous(kChannelsLast);
            const at::Tensor w = weight.permute({2, 3, 0, 1}).contiguous();  // (kH, kW, Cout)
            launch_backward_input_nhwc_pixels<scalar_t>(
                p, gy.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), gx, stream, op);
            return;
          }
          case DepthwiseBackwardInputPath::kNchwFlippedForward: {
            const at::Tensor gy = grad_output.contiguous();
            const at::Tensor w = weight.flip({2, 3}).contiguous();
            launch_forward_nchw<scalar_t>(flipped_forward_params(p), gy.const_data_ptr<scalar_t>(),
                                          w.const_data_ptr<scalar_t>(), nullptr, gx, stream, op);
            return;
          }
          case DepthwiseBackwardInputPath::kNchwWindowStride2: {
            const at::Tensor gy = grad_output.contiguous();
            const at::Tensor w = weight.contiguous();
            launch_backward_input_nchw_window_stride2<scalar_t>(
                p, gy.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), gx, stream, op);
            return;
          }
          case DepthwiseBackwardInputPath::kNchwTiles: {
            const at::Tensor gy = grad_output.contiguous();
            const at::Tensor w = weight.contiguous();
            launch_backward_input_nchw_tiles<scalar_t>(
                p, gy.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), gx, stream, op);
            return;
          }
        }
      });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) {
  m.impl("_depthwise_conv2d_backward_input", backward_input_impl);
}

}  // namespace cuda
}  // namespace sepconv
