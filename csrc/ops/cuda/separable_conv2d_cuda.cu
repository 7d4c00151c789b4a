// CUDA kernel of the separable op: the fused kernel of separable_fused.cuh (the depthwise values
// computed per output pixel inside the pointwise kernel, never stored) where recomputing them
// for every output-channel tile costs at most what the pointwise products cost (kh * kw * tiles
// <= Cout: true for 3x3 and, with enough pixels, up to 7x7); otherwise the composition of the
// two CUDA kernels with the intermediate tensor in global memory.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

#include "../checks.h"
#include "cuda_kernels.h"
#include "cuda_utils.cuh"
#include "separable_fused.cuh"

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
  const auto out_sym = check_separable_forward(op, input, depthwise_weight, pointwise_weight,
                                               depthwise_bias, pointwise_bias, g);
  const auto out_size = C10_AS_INTARRAYREF_SLOW(out_sym);
  c10::cuda::CUDAGuard guard(input.device());
  const int64_t mid = depthwise_weight.size(0), cout = out_size[1];
  const int64_t kh = depthwise_weight.size(2), kw = depthwise_weight.size(3);
  const int64_t pixels = out_size[0] * out_size[2] * out_size[3];
  const int co_tile = rows_co_tile(pixels, cout, input.get_device());
  const int64_t co_tiles = ceil_div(cout, co_tile);
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  if (kh * kw * co_tiles > cout || mid > kIntMax || cout > kIntMax) {
    const at::Tensor intermediate =
        depthwise_conv2d_cuda(input, depthwise_weight, depthwise_bias, stride, padding, dilation);
    return pointwise_conv2d_cuda(intermediate, pointwise_weight, pointwise_bias);
  }
  const auto fmt = output_memory_format(input);
  at::Tensor output = at::empty(out_size, input.options().memory_format(fmt));
  if (output.numel() == 0) return output;
  const bool channels_last = fmt == at::MemoryFormat::ChannelsLast;
  const auto p = depthwise_params(input.sizes(), {out_size[0], mid, out_size[2], out_size[3]}, kh,
                                  kw, g);
  const at::Tensor x = input.contiguous(fmt);
  const at::Tensor dw = depthwise_weight.permute({2, 3, 0, 1}).contiguous();  // (kH, kW, C*M)
  const at::Tensor pwt = pointwise_weight.reshape({cout, mid}).t().contiguous();  // (C*M, Cout)
  const auto optional_contiguous = [](const std::optional<at::Tensor>& t) {
    return t.has_value() && t->defined() ? t->contiguous() : at::Tensor();
  };
  const at::Tensor db = optional_contiguous(depthwise_bias);
  const at::Tensor pb = optional_contiguous(pointwise_bias);
  const unsigned int blocks = grid_size(ceil_div(pixels, kRowsThreads) * co_tiles, op);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "separable_conv2d_cuda", [&] {
    const auto ptr = [](const at::Tensor& t) {
      return t.defined() ? t.const_data_ptr<scalar_t>() : nullptr;
    };
    const scalar_t* xp = ptr(x);
    const scalar_t* dwp = ptr(dw);
    scalar_t* yp = output.data_ptr<scalar_t>();
    constexpr int kVec = static_cast<int>(16 / sizeof(scalar_t));
    const auto aligned = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
    const bool vectors = channels_last && p.multiplier == 1 && mid % kVec == 0 &&
                         cout % kVec == 0 && aligned(xp) && aligned(dwp) && aligned(yp);
    with_rows_config<scalar_t>(co_tile, channels_last, vectors, [&](auto co, auto cl, auto vec) {
      separable_fused_kernel<scalar_t, decltype(co)::value, decltype(cl)::value, decltype(vec)::value>
          <<<blocks, kRowsThreads, 0, stream>>>(p, xp, dwp, ptr(db), ptr(pwt), ptr(pb), yp,
                                                static_cast<int>(cout), static_cast<int>(co_tiles));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return output;
}

}  // namespace

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) { m.impl("separable_conv2d", separable_conv2d_impl); }

}  // namespace cuda
}  // namespace sepconv
