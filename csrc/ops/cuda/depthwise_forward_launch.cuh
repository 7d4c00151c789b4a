// Host: the depthwise forward on either layout, on the kernel path_policy.h picks. Run by the
// forward op and, with flipped taps, by the stride-1 input gradient (the forward of grad_output
// with padding (k - 1) * dilation - pad; input and output sizes swap roles).
#pragma once
#include "cpu/params.h"
#include "cuda_utils.cuh"
#include "depthwise_nchw_tiles.cuh"
#include "depthwise_nchw_window.cuh"
#include "depthwise_nhwc_pixel.cuh"
#include "depthwise_nhwc_window.cuh"
#include "path_policy.h"

namespace sepconv {
namespace cuda {

// y (NCHW) = depthwise forward of x (NCHW): the register-window kernel or the tiles.
template <typename scalar_t>
void launch_forward_nchw(const cpu::DepthwiseParams& p, const scalar_t* x, const scalar_t* w,
                         const scalar_t* bias, scalar_t* y, cudaStream_t stream, const char* op) {
  switch (depthwise_nchw_forward_path(p)) {
    case DepthwiseNchwForwardPath::kTiles:
      launch_forward_nchw_tiles(p, x, w, bias, y, stream, op);
      return;
    case DepthwiseNchwForwardPath::kWindow:
      launch_forward_nchw_window(p, x, w, bias, y, stream, op);
      return;
  }
}

// y (channels_last) = depthwise forward of x (channels_last), w packed tap-major (kH, kW, Cout):
// the window kernel or one thread per output pixel and group of channels.
template <typename scalar_t>
void launch_forward_nhwc(const cpu::DepthwiseParams& p, const scalar_t* x, const scalar_t* w,
                         const scalar_t* bias, scalar_t* y, cudaStream_t stream, const char* op) {
  const int vec = depthwise_vector_width(p, sizeof(scalar_t), {x, w, bias, y});
  constexpr int kVec = static_cast<int>(16 / sizeof(scalar_t));
  switch (depthwise_nhwc_forward_path(p, vec, kVec)) {
    case DepthwiseNhwcForwardPath::kWindow:
      launch_forward_nhwc_window(p, x, w, bias, y, stream, op);
      return;
    case DepthwiseNhwcForwardPath::kPixels:
      launch_forward_nhwc_pixels(p, x, w, bias, y, vec, stream, op);
      return;
  }
}

}  // namespace cuda
}  // namespace sepconv
