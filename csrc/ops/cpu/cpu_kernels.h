// What the CPU kernels of the ops share: the depthwise weight layouts and the thread split.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "../../cpu/depthwise.h"

namespace sepconv {

// The depthwise forward's weight (C*M, 1, kH, kW) and bias (undefined: none) packed once per
// call for `kernels` (DepthwiseKernels::pack_forward), read by every thread and band. The buffer
// is the calling thread's, kept between calls (a fresh one of a megabyte or more comes from mmap
// and page-faults on every call: 31x31 kernels); valid until that thread packs again.
template <typename T>
const T* pack_depthwise_forward(const cpu::DepthwiseKernels<T>& kernels,
                                const cpu::DepthwiseParams& p, bool nhwc, const at::Tensor& weight,
                                const at::Tensor& bias) {
  thread_local std::vector<T> packed;
  packed.resize(kernels.packed_forward_size(p));
  kernels.pack_forward(p, nhwc, weight.contiguous().const_data_ptr<T>(),
                       bias.defined() ? bias.const_data_ptr<T>() : nullptr, packed.data());
  return packed.data();
}

// The same for the input gradient's weight (DepthwiseKernels::pack_backward_input), in a buffer
// of its own: the fused separable backward holds both packings at once.
template <typename T>
const T* pack_depthwise_backward_input(const cpu::DepthwiseKernels<T>& kernels,
                                       const cpu::DepthwiseParams& p, bool nhwc,
                                       const at::Tensor& weight) {
  thread_local std::vector<T> packed;
  packed.resize(kernels.packed_backward_input_size(p, nhwc));
  kernels.pack_backward_input(p, nhwc, weight.contiguous().const_data_ptr<T>(), packed.data());
  return packed.data();
}

// Splits [0, units) over the intra-op threads with chunks of at least ~64K multiply-adds, so
// small problems stay on one thread instead of paying for the wake-up.
template <typename F>
void parallel_units(int64_t units, int64_t work_per_unit, const F& f);

}  // namespace sepconv

#include <ATen/Parallel.h>

template <typename F>
void sepconv::parallel_units(int64_t units, int64_t work_per_unit, const F& f) {
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, work_per_unit));
  at::parallel_for(0, units, grain, f);
}
