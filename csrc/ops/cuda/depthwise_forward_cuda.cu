// The depthwise forward op on CUDA, float32/float64/float16/bfloat16 (half and bfloat16
// accumulate in float32), NCHW and channels_last, any kernel size, stride, padding, dilation and
// depth multiplier. The input gradient is depthwise_backward_input_cuda.cu, the weight gradient
// depthwise_backward_weight_cuda.cu; the kernel choice is path_policy.h's:
//   NCHW, K x K in {3, 5, 7}, stride 1 or 2, dilation 1: the register-window kernel of
//     depthwise_nchw_window.cuh; other geometries: one thread block per 16x32 output tile of one
//     plane with the tile's input window and the taps staged in shared memory (global memory
//     when the window would not fit in 48 KiB), depthwise_nchw_tiles.cuh;
//   channels_last: the window kernel of depthwise_nhwc_window.cuh for 16-byte channel vectors
//     and those shapes, else one thread per pixel and group of VEC channels
//     (depthwise_nhwc_pixel.cuh); with multiplier 1 and C a multiple of VEC the loads and stores
//     are 16-byte vectors along C, coalesced across the warp.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../prepare.h"
#include "cuda_kernels.h"
#include "cuda_utils.cuh"
#include "depthwise_forward_launch.cuh"

namespace sepconv {
namespace cuda {

at::Tensor depthwise_conv2d_cuda(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "sepconv::depthwise_conv2d";
  const auto call =
      prepare_depthwise_forward(input, weight, bias, stride, padding, dilation, empty_tensor);
  at::Tensor output = call.output;
  if (output.numel() == 0) return output;
  c10::cuda::CUDAGuard guard(input.device());
  const auto& p = call.params;
  const auto fmt = call.format;
  const at::Tensor& b = call.bias;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "depthwise_conv2d_cuda", [&] {
        const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
        scalar_t* y = output.data_ptr<scalar_t>();
        if (fmt == kChannelsLast) {
          const at::Tensor x = input.contiguous(kChannelsLast);
          const at::Tensor w = weight.permute({2, 3, 0, 1}).contiguous();  // (kH, kW, Cout)
          launch_forward_nhwc(p, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), bp, y,
                              stream, op);
        } else {
          const at::Tensor x = input.contiguous();
          const at::Tensor w = weight.contiguous();
          launch_forward_nchw(p, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), bp, y,
                              stream, op);
        }
      });
  return output;
}

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) { m.impl("depthwise_conv2d", depthwise_conv2d_cuda); }

}  // namespace cuda
}  // namespace sepconv
