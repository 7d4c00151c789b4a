// Shared by the torch-free microkernel tests: deterministic random data, layout conversion.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "../depthwise.h"
#include "../pointwise.h"

namespace sepconv {
namespace test {

// A 64-bit LCG: the same numbers on every platform (x86-64 natively, aarch64 under qemu).
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() { return state = state * 6364136223846793005ull + 1442695040888963407ull; }
  float uniform() {  // in [-1, 1)
    return static_cast<float>((next() >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
  }
  int64_t integer(int64_t lo, int64_t hi) {  // in [lo, hi]
    return lo + static_cast<int64_t>((next() >> 33) % static_cast<uint64_t>(hi - lo + 1));
  }
  template <typename T = float>
  std::vector<T> vector(int64_t n) {
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(uniform());
    return v;
  }
};

// The i-th activation, cycling through every kind (none included); hardtanh clips both sides of
// the test data's range.
inline cpu::Activation activation_for(int64_t i) {
  cpu::Activation a;
  a.kind = static_cast<cpu::Activation::Kind>(i % (cpu::Activation::kGelu + 1));
  if (a.kind == cpu::Activation::kHardtanh) a.min_val = -0.5, a.max_val = 0.7;
  return a;
}

// (N, C, P) -> (N, P, C): an NCHW tensor (P = H*W) as NHWC.
template <typename T>
std::vector<T> to_nhwc(const std::vector<T>& x, int64_t n, int64_t c, int64_t pixels) {
  std::vector<T> y(x.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t q = 0; q < pixels; ++q)
        y[(i * pixels + q) * c + ch] = x[(i * c + ch) * pixels + q];
  return y;
}

// The pointwise weight (Cout, Cin), element (o, c) at w[o * rs + c * cs], packed as the
// forward kernels of `kernels` read it for the layout.
template <class Kernels, class Params, typename T>
std::vector<T> packed_pointwise_weight(const Kernels& kernels, const Params& p, bool nhwc,
                                       const T* w, int64_t rs, int64_t cs) {
  std::vector<T> packed(kernels.packed_weight_size(p, nhwc));
  kernels.pack_weight(p, nhwc, w, rs, cs, packed.data());
  return packed;
}

// The depthwise forward's weight (C*M, kH, kW) and bias (or null) as `kernels` packs them.
template <typename T>
std::vector<T> packed_depthwise_forward(const cpu::DepthwiseKernels<T>& kernels,
                                        const cpu::DepthwiseParams& p, bool nhwc, const T* w,
                                        const T* bias) {
  std::vector<T> packed(kernels.packed_forward_size(p));
  kernels.pack_forward(p, nhwc, w, bias, packed.data());
  return packed;
}

// The depthwise input gradient's weight (C*M, kH, kW) as `kernels` packs it.
template <typename T>
std::vector<T> packed_depthwise_backward_input(const cpu::DepthwiseKernels<T>& kernels,
                                               const cpu::DepthwiseParams& p, bool nhwc,
                                               const T* w) {
  std::vector<T> packed(kernels.packed_backward_input_size(p, nhwc));
  kernels.pack_backward_input(p, nhwc, w, packed.data());
  return packed;
}

// The pointwise weight gradient (Cout, Cin) through `kernels`, split for `threads` threads
// (csrc/cpu/pointwise.h), its units run in two calls as two threads would, then folded. Every
// element of the result that no unit writes stays NaN.
template <class Kernels, class Params, typename T>
std::vector<T> pointwise_weight_grad(const Kernels& kernels, const Params& p, bool nhwc,
                                     const T* grad_output, const T* input, int64_t threads) {
  const auto s = sepconv::cpu::pointwise_weight_grad_split(p, nhwc, threads, sizeof(T));
  const int64_t size = p.out_channels * p.in_channels, units = s.units();
  std::vector<T> gw(size, std::numeric_limits<T>::quiet_NaN());
  std::vector<T> parts(s.groups > 1 ? s.groups * size : 0, std::numeric_limits<T>::quiet_NaN());
  T* dst = s.groups > 1 ? parts.data() : gw.data();
  kernels.backward_weight(p, s, nhwc, grad_output, input, dst, 0, units / 3);
  kernels.backward_weight(p, s, nhwc, grad_output, input, dst, units / 3, units);
  sepconv::cpu::fold_weight_grad_parts(s, size, dst, gw.data());
  return gw;
}

}  // namespace test
}  // namespace sepconv
