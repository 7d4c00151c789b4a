// CUDA kernel of the separable op. For now the composition of the two CUDA kernels (depthwise,
// then the pointwise GEMM) with the intermediate tensor materialised in global memory; a fused
// kernel (depthwise tile kept on chip and fed to the GEMM) replaces this body, not its callers.
#include <torch/library.h>

#include "../checks.h"
#include "cuda_kernels.h"
#include "cuda_utils.cuh"

namespace sepconv {
namespace cuda {
namespace {

at::Tensor separable_conv2d_impl(const at::Tensor& input, const at::Tensor& depthwise_weight,
                                 const at::Tensor& pointwise_weight,
                                 const std::optional<at::Tensor>& depthwise_bias,
                                 const std::optional<at::Tensor>& pointwise_bias,
                                 at::IntArrayRef stride, at::IntArrayRef padding,
                                 at::IntArrayRef dilation) {
  const char* op = "sepconv::separable_conv2d";
  const auto g = check_geometry(op, stride, padding, dilation);
  check_separable_forward(op, input, depthwise_weight, pointwise_weight, depthwise_bias,
                          pointwise_bias, g);
  c10::cuda::CUDAGuard guard(input.device());
  const at::Tensor mid =
      depthwise_conv2d_cuda(input, depthwise_weight, depthwise_bias, stride, padding, dilation);
  return pointwise_conv2d_cuda(mid, pointwise_weight, pointwise_bias);
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) { m.impl("separable_conv2d", separable_conv2d_impl); }

}  // namespace cuda
}  // namespace sepconv
