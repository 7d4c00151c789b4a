// The CUDA kernels of the ops, callable directly so one CUDA kernel can build on another (the
// composed separable forward: depthwise, then pointwise) without a second trip through the
// dispatcher.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>

namespace sepconv {
namespace cuda {

at::Tensor depthwise_conv2d_cuda(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 at::IntArrayRef padding, at::IntArrayRef dilation);
at::Tensor pointwise_conv2d_cuda(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias);

}  // namespace cuda
}  // namespace sepconv
