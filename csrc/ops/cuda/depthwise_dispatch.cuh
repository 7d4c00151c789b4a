// Host: the compile-time dispatch shared by the depthwise launchers. Each turns a run-time
// choice (made in path_policy.h or by the launcher) into template arguments, once for every
// kernel family that needs it.
#pragma once
#include <type_traits>

#include "cpu/params.h"
#include "path_policy.h"

namespace sepconv {
namespace cuda {

// Calls f(std::integral_constant<int, K>, std::integral_constant<int, S>) for the window
// kernel's K and S (window_kernel_size(p) must be non-zero).
template <typename F>
void with_window_shape(const cpu::DepthwiseParams& p, F&& f) {
  using std::integral_constant;
  const int k = window_kernel_size(p);
  const bool s2 = p.stride_h == 2;
  if (k == 3)
    s2 ? f(integral_constant<int, 3>(), integral_constant<int, 2>())
       : f(integral_constant<int, 3>(), integral_constant<int, 1>());
  else if (k == 5)
    s2 ? f(integral_constant<int, 5>(), integral_constant<int, 2>())
       : f(integral_constant<int, 5>(), integral_constant<int, 1>());
  else
    s2 ? f(integral_constant<int, 7>(), integral_constant<int, 2>())
       : f(integral_constant<int, 7>(), integral_constant<int, 1>());
}

// Calls f(std::integral_constant<int, VEC>) for the vector width `vec` of the channels_last
// pixel kernels (depthwise_vector_width: 8, 4, 2 or 1).
template <typename F>
void with_vector_width(int vec, F&& f) {
  if (vec == 8)
    f(std::integral_constant<int, 8>());
  else if (vec == 4)
    f(std::integral_constant<int, 4>());
  else if (vec == 2)
    f(std::integral_constant<int, 2>());
  else
    f(std::integral_constant<int, 1>());
}

}  // namespace cuda
}  // namespace sepconv
