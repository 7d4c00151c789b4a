// What the CPU kernels of the ops share: the depthwise NHWC weight layout and the thread split.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>

namespace sepconv {

// Depthwise weight (C*M, 1, kH, kW) -> (kH, kW, C*M), the NHWC kernels' layout: they read one
// tap across all channels.
at::Tensor pack_weight_tap_major(const at::Tensor& weight);

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
