// CUDA kernel of the separable op: the composition of the two CUDA ops, the intermediate in
// global memory. A fused kernel is here too, opt-in with SEPCONV_CUDA_SEPARABLE=fused (tests run
// it; benchmarks/cuda_path_probes.py times it): the pointwise GEMM of pointwise_gemm.cuh whose B
// tiles are depthwise outputs computed on the fly (DepthwiseColumns), never stored. Measured on
// an H200 (N=32, 3x3, benchmarks/results/cuda-h200-path-probes.md) it runs 3-5x slower than the
// composition on every benchmark shape: each thread computes 16 channels x 9 taps per K step
// with per-element index math and spills, where the depthwise kernels stage tiles in shared
// memory. It stays opt-in until a producer that stages the input window in shared memory beats
// the composition.
// The choice and its override: path_policy.h.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstdint>

#include "../prepare.h"
#include "cuda_kernels.h"
#include "cuda_utils.cuh"
#include "path_policy.h"
#include "pointwise_gemm.cuh"

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
  const bool fused = separable_forward_path() == SeparableForwardPath::kFused;
  // Validated as the separable op in either case; the composition allocates its own output.
  const auto call = prepare_separable_forward(input, depthwise_weight, pointwise_weight,
                                              depthwise_bias, pointwise_bias, stride, padding,
                                              dilation, fused ? empty_tensor : nullptr);
  const int64_t mid = depthwise_weight.size(0), cout = call.out_channels;
  if (!fused || !fits_int32(cout)) {
    const at::Tensor intermediate =
        depthwise_conv2d_cuda(input, depthwise_weight, depthwise_bias, stride, padding, dilation);
    return pointwise_conv2d_cuda(intermediate, pointwise_weight, pointwise_bias);
  }
  at::Tensor output = call.output;
  if (output.numel() == 0) return output;
  c10::cuda::CUDAGuard guard(input.device());
  const auto& p = call.depthwise;
  const int64_t pixels = p.batch * p.out_h * p.out_w;
  const bool channels_last = call.format == kChannelsLast;
  const at::Tensor x = input.contiguous(call.format);
  const at::Tensor dw = depthwise_weight.permute({2, 3, 0, 1}).contiguous();  // (kH, kW, C*M)
  const at::Tensor pw = pointwise_weight.reshape({cout, mid}).contiguous();   // (Cout, C*M)
  const at::Tensor &db = call.depthwise_bias, &pb = call.pointwise_bias;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "separable_conv2d_cuda", [&] {
        const auto ptr = [](const at::Tensor& t) {
          return t.defined() ? t.const_data_ptr<scalar_t>() : nullptr;
        };
        const DepthwiseColumns<scalar_t> cols{p, ptr(x), ptr(dw), ptr(db), channels_last};
        const GemmOutput out{pixels, p.out_h * p.out_w, static_cast<int>(cout), channels_last};
        launch_gemm_columns<scalar_t>(ptr(pw), mid, cols, out, ptr(pb), output.data_ptr<scalar_t>(),
                                      input.options(), op);
      });
  return output;
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) { m.impl("separable_conv2d", separable_conv2d_impl); }

}  // namespace cuda
}  // namespace sepconv
