// How the CPU kernels choose between their paths: every such threshold and predicate, each with
// the measurement that set it. (The ISA is chosen in dispatch.cpp: the best one this CPU runs,
// or SEPCONV_CPU_ISA / sepconv_ext.set_cpu_isa. Block sizes that tune one path, such as the
// GEMM's kGemmKc or the separable bands, stay beside the code they size.) README's "How the
// kernels are chosen" lists them.
//
// Included by depthwise.h and pointwise.h, so that kernels_<isa>.cpp sees it before its target
// region: these inline functions are never compiled with an ISA's instructions.
#pragma once
#include <cstdint>

#include "params.h"

namespace sepconv {
namespace cpu {

// ---- Depthwise, channels_last forward: rows read in place, or through the ring --------------
// Where the in-place rows (forward_nhwc_direct; multiplier 1, whole vectors of channels) beat
// the ring, measured on Zen 4 (AVX-512, MobileNetV2's layers, 1 and 2 threads, builds
// alternating): at stride 2 always (the ring copies each input row for 1.5 output rows); at
// stride 1 where the input is in cache (N=1 and small planes: 1.05-1.7x, narrow 7x7 and 14x14
// rows included), or where a pixel is at most two cache lines ((32, 112) at N=8, 13 MB:
// 1.1-1.3x). A larger stride-1 input from DRAM streams better through the ring's in-order row
// copy than as C / W interleaved strided passes: (144, 56) at N=8, 14 MB, 0.83-0.88x in place.
constexpr int64_t kDepthwiseInPlaceMaxInputBytes = int64_t(8) << 20;
constexpr int64_t kDepthwiseInPlaceMaxPixelBytes = 128;
inline bool depthwise_nhwc_forward_in_place(const DepthwiseParams& p) {
  const int64_t pixel = p.channels * int64_t(sizeof(float));
  return p.stride_w >= 2 || pixel <= kDepthwiseInPlaceMaxPixelBytes ||
         p.batch * p.in_h * p.in_w * pixel <= kDepthwiseInPlaceMaxInputBytes;
}

// ---- Depthwise, NCHW: whole-plane images, or row by row through the ring --------------------
// When a group's zero-padded blocked image fits in kDepthwiseImageBytes, its vector-width planes
// are transposed whole instead of row by row through the ring, and the output can be one long
// row over the image: one row-kernel call covers the plane. On 7x7 and 14x14 planes the per-row
// calls, ring bookkeeping and partial vectors of the row-by-row path cost more than the
// arithmetic. Measured on Zen 3 (AVX2, N=8, 1 thread), forward against the ring: (960,7,3,1)
// 0.58x the time, (384,14,3,1) 0.65x, (576,14,3,2) 0.75x, 56x56 0.85x, 112x112 0.9x; 224x224
// (1.6 MB images, past L2) 1.25x, so larger planes keep the ring.
constexpr int64_t kDepthwiseImageBytes = 512 << 10;
// The fewest groups of vector-width planes a call must have to take the image paths: building
// an image (zeroed padding, offset tables, output buffer) costs about as much as computing a few
// groups on it (separable (32,16,112,1) forward, 12 bands of 4 groups per image: 1.3x slower
// through images). Mutable for the kernel tests, which run every case with 0 (images wherever
// they fit) and with no images at all.
inline int64_t& depthwise_image_min_groups() {
  static int64_t groups = 16;
  return groups;
}
// Whether a call takes the image path: its image (image_bytes) fits, and it serves `groups`
// groups of vector-width planes.
inline bool depthwise_whole_images(int64_t image_bytes, int64_t groups) {
  return groups >= depthwise_image_min_groups() && image_bytes <= kDepthwiseImageBytes;
}

// ---- Pointwise --------------------------------------------------------------------------------
// Up to this many pixels (N*P: squeeze-excitation's 1x1 planes, batch 1 at 4x4) the NHWC forward
// dots weight rows in place (forward_dot), and the input gradient reads the transposed weight
// in place, instead of packing the weight for the GEMM tile: packing cost more than the
// multiply-adds (960x240, N=1: 0.13 -> 0.033 ms on Zen 3).
constexpr int64_t kPointwiseDotRows = 16;

// Up to kPointwiseColumnSplitRows pixels, with at least two blocks of output channels, the NHWC
// forward splits the output channels over the threads and each packs only its own share of
// the weight (forward_nhwc_columns), instead of one thread packing the whole weight for every
// thread's pixels: at few pixels that serial packing was as long as the multiply-adds.
constexpr int64_t kPointwiseColumnBlock = 64;  // a multiple of every tile's NR
constexpr int64_t kPointwiseColumnSplitRows = 512;
inline bool pointwise_forward_by_columns(int64_t rows, int64_t out_channels) {
  return rows <= kPointwiseColumnSplitRows && out_channels >= 2 * kPointwiseColumnBlock;
}

// The register tile's vectors run along the GEMM's columns. Where the input channels are the
// narrower side (16-32 of them against 64-192 output channels: the networks' first layers), dW
// is computed transposed, dW^T = X * dY^T, so that the wide side fills the vectors: with Cin
// along the columns a 16-wide panel left the narrow tile's six accumulators FMA-latency bound
// and a 24-wide one left a quarter of a 32-wide panel's lanes empty (measured on Zen 4,
// AVX-512, N=8: 31 GF/s for 16 -> 96 at 112x112 and 24 -> 144 at 56x56, against 60-90 GF/s
// for the other orientation's shapes).
inline bool pointwise_backward_weight_transposed(const PointwiseParams& p) {
  return p.in_channels < p.out_channels;
}

// B blocks of the GEMM up to this size are swept by rows of tiles, so that C is written row by
// row in the order the hardware prefetcher follows (these shapes are bound by C's traffic);
// larger ones by columns, each B panel staying in L1 while a column of tiles uses it (BLIS).
constexpr int64_t kGemmRowOrderBytes = 128 * 1024;

// ---- Separable backward: fused, or composed of the depthwise and pointwise ops ---------------
// Fusing saves the intermediate's memory traffic, which matters only where one image's
// intermediate does not fit a band (in L2). Where it does (7x7 to 14x14 planes in MobileNet),
// the fused kernel's per-image weight-gradient GEMMs are shallow (depth = one image's pixels)
// and the composition, whose GEMMs run over the whole batch, is as fast or faster (measured
// (960,320,7) 0.80-0.88x fused / composed, AVX2). NCHW runs its band kernels per channel plane,
// which costs more: there two bands also lost (0.79-0.89x at (384,96,14,1) and (96,24,56,2)),
// seven or more won (1.25-2.3x at 56x56 and 112x112).
inline bool separable_backward_fused(int64_t bands_per_image, bool channels_last) {
  return bands_per_image >= (channels_last ? 2 : 3);
}

}  // namespace cpu
}  // namespace sepconv
