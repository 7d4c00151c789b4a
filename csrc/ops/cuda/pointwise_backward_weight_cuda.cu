// The pointwise weight-gradient op on CUDA (sepconv::_pointwise_conv2d_backward_weight), every
// dtype and both layouts: dW (Cout x Cin) = sum over n of GY[n] (Cout x P) * X[n]^T (P x Cin).
// On the forward's GEMM (backward_weight_gemm: tensor cores for 16-bit) unless 32/64-bit with
// Cout <= 32 (path_policy.h); there the FMA tiles of pointwise_wgrad_tiles.cuh, split over the
// N*P reduction and summed in order (deterministic).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstdint>

#include "../prepare.h"
#include "cuda_utils.cuh"
#include "path_policy.h"
#include "pointwise_gemm.cuh"
#include "pointwise_wgrad_tiles.cuh"

namespace sepconv {
namespace cuda {
namespace {

// dW = GY^T X on the forward's GEMM (pointwise_gemm.cuh; tensor cores for the 16-bit types):
// A = GY^T (Cout x N*H*W, one transposing copy so its rows are contiguous), B[k, ci] = X[pixel k,
// ci] read as rows of the (N*H*W x Cin) matrix (in place for channels_last, one copy for NCHW),
// K = N*H*W split over blocks and summed in order.
void backward_weight_gemm(const at::Tensor& grad_output, const at::Tensor& input,
                          at::Tensor& grad_weight, const char* op) {
  const int64_t cin = input.size(1), cout = grad_output.size(1);
  const int64_t rows = input.size(0) * input.size(2) * input.size(3);
  const at::Tensor a = grad_output.transpose(0, 1).reshape({cout, rows}).contiguous();
  const at::Tensor x_rows = input.permute({0, 2, 3, 1}).reshape({rows, cin}).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "pointwise_backward_weight_gemm_cuda", [&] {
        // Column ci of B starts at x_rows + ci and steps by Cin along K (the NCHW form of
        // InputColumns with one "image" whose plane is Cin); dW is written the same way.
        const InputColumns<scalar_t> cols{x_rows.const_data_ptr<scalar_t>(), rows, cin, false,
                                          false};
        const GemmOutput out{cin, cin, static_cast<int>(cout), false};
        launch_gemm_columns<scalar_t>(a.const_data_ptr<scalar_t>(), rows, cols, out, nullptr,
                                      grad_weight.data_ptr<scalar_t>(), input.options(), op);
      });
}

at::Tensor backward_weight_impl(const at::Tensor& grad_output, const at::Tensor& input) {
  const char* op = "sepconv::_pointwise_conv2d_backward_weight";
  const auto call = prepare_pointwise_backward_weight(grad_output, input);
  c10::cuda::CUDAGuard guard(input.device());
  const int64_t batch = call.params.batch, cin = call.params.in_channels;
  const int64_t cout = call.params.out_channels, pixels = call.params.pixels;
  at::Tensor grad_weight = call.grad_weight;
  if (grad_weight.numel() == 0) return grad_weight;
  if (batch * pixels == 0) return grad_weight.zero_();
  const bool half_types = input.scalar_type() == at::kHalf || input.scalar_type() == at::kBFloat16;
  if (pointwise_weight_grad_path(half_types, cout) == PointwiseWeightGradPath::kGemm) {
    backward_weight_gemm(grad_output, input, grad_weight, op);
    return grad_weight;
  }
  const bool channels_last = call.format == kChannelsLast;
  const at::Tensor x = input.contiguous(call.format);
  const at::Tensor gy = grad_output.contiguous(call.format);
  // A = GY[n] (Cout x P), B = X[n]^T (P x Cin).
  const Operand a =
      channels_last ? Operand{pixels * cout, 1, cout} : Operand{cout * pixels, pixels, 1};
  const Operand b =
      channels_last ? Operand{pixels * cin, 1, cin} : Operand{cin * pixels, pixels, 1};
  const int device = input.get_device();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "pointwise_backward_weight_cuda", [&] {
        launch_weight_grad_tiles<scalar_t>(gy.const_data_ptr<scalar_t>(), a,
                                           x.const_data_ptr<scalar_t>(), b,
                                           grad_weight.data_ptr<scalar_t>(), batch, cout, cin,
                                           pixels, input.options(), device, stream, op);
      });
  return grad_weight;
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) {
  m.impl("_pointwise_conv2d_backward_weight", backward_weight_impl);
}

}  // namespace cuda
}  // namespace sepconv
