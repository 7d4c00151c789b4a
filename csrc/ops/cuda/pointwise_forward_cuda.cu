// The pointwise (1x1) forward op on CUDA, hand-written (no cuBLAS, no cuDNN), float32/float64/
// float16/bfloat16 with float32 accumulation for the 16-bit types; also the input gradient,
// which autograd runs as the forward with W^T. Both layouts, on the kernel path_policy.h picks:
// a tiled GEMM over all pixels of the batch (pointwise_gemm.cuh: tensor cores for the 16-bit
// types, split K when the tiles are few), or for small GEMMs (Cout <= 32 and Cin <= 64) one
// thread per pixel with a tile of output channels in registers (pointwise_rows.cuh), which reads
// x once and wastes no FMA on a 64-row tile of 16 or 32 channels. The weight gradient is
// pointwise_backward_weight_cuda.cu.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

#include "../prepare.h"
#include "cuda_kernels.h"
#include "cuda_utils.cuh"
#include "path_policy.h"
#include "pointwise_gemm.cuh"
#include "pointwise_rows.cuh"

namespace sepconv {
namespace cuda {

at::Tensor pointwise_conv2d_cuda(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias) {
  const char* op = "sepconv::pointwise_conv2d";
  const auto call = prepare_pointwise_forward(input, weight, bias, empty_tensor);
  at::Tensor output = call.output;
  if (output.numel() == 0) return output;
  c10::cuda::CUDAGuard guard(input.device());
  const auto fmt = call.format;
  const int64_t cin = call.params.in_channels, cout = call.params.out_channels;
  const int64_t plane = call.params.pixels, pixels = call.params.batch * plane;
  TORCH_CHECK(
      cin <= std::numeric_limits<int32_t>::max() && cout <= std::numeric_limits<int32_t>::max(), op,
      ": too many channels for the CUDA kernel");
  const at::Tensor& b = call.bias;
  const bool channels_last = fmt == kChannelsLast;
  const at::Tensor x = input.contiguous(fmt);
  const bool gemm = pointwise_forward_path(cin, cout) == PointwiseForwardPath::kGemm;
  // The GEMM reads W (Cout x Cin) along its rows; the rows kernel W^T (Cin x Cout), so its
  // weight-tile reads coalesce. For the input gradient the weight is a transposed view, and the
  // rows kernel's operand copies nothing.
  const at::Tensor w = gemm ? call.weight.contiguous() : call.weight.t().contiguous();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int co_tile = rows_co_tile(pixels, cout, input.get_device());
  const int64_t co_tiles = ceil_div(cout, co_tile);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "pointwise_conv2d_cuda", [&] {
        const scalar_t* xp = x.const_data_ptr<scalar_t>();
        const scalar_t* wp = w.const_data_ptr<scalar_t>();
        const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
        scalar_t* yp = output.data_ptr<scalar_t>();
        if (gemm) {
          const bool vectors = channels_last && cin % (16 / sizeof(scalar_t)) == 0 &&
                               reinterpret_cast<uintptr_t>(xp) % 16 == 0;
          const InputColumns<scalar_t> cols{xp, cin, plane, channels_last, vectors};
          const GemmOutput out{pixels, plane, static_cast<int>(cout), channels_last};
          launch_gemm_columns<scalar_t>(wp, cin, cols, out, bp, yp, input.options(), op);
          return;
        }
        constexpr int kVec = static_cast<int>(16 / sizeof(scalar_t));
        const bool vectors = channels_last && cin % kVec == 0 && cout % kVec == 0 &&
                             reinterpret_cast<uintptr_t>(xp) % 16 == 0 &&
                             reinterpret_cast<uintptr_t>(yp) % 16 == 0;
        const unsigned int blocks = grid_size(ceil_div(pixels, kRowsThreads) * co_tiles, op);
        with_rows_config<scalar_t>(
            co_tile, channels_last, vectors, [&](auto co, auto cl, auto vec) {
              pointwise_rows_kernel<scalar_t, decltype(co)::value, decltype(cl)::value,
                                    decltype(vec)::value><<<blocks, kRowsThreads, 0, stream>>>(
                  xp, wp, bp, yp, pixels, plane, static_cast<int>(cin), static_cast<int>(cout),
                  static_cast<int>(co_tiles));
              C10_CUDA_KERNEL_LAUNCH_CHECK();
            });
      });
  return output;
}

TORCH_LIBRARY_IMPL(sepconv, CUDA, m) { m.impl("pointwise_conv2d", pointwise_conv2d_cuda); }

}  // namespace cuda
}  // namespace sepconv
