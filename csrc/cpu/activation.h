// The portable definition of every Activation (params.h): what the portable kernels apply and
// what the vector version (simd/activation_simd.h) is tested against. Same formulas as torch's
// modules, NaN in, NaN out.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "params.h"

namespace sepconv {
namespace cpu {

template <typename T>
inline T clamp_keep_nan(T x, T lo, T hi) {
  return x < lo ? lo : x > hi ? hi : x;
}

// One activation, chosen at compile time: activate_span picks it once per span.
template <Activation::Kind K, typename T>
inline T activate_as(T x, const Activation& a) {
  if constexpr (K == Activation::kRelu) return x < T(0) ? T(0) : x;
  if constexpr (K == Activation::kHardtanh) return clamp_keep_nan(x, T(a.min_val), T(a.max_val));
  if constexpr (K == Activation::kHardswish) return x * clamp_keep_nan(x + T(3), T(0), T(6)) / T(6);
  if constexpr (K == Activation::kHardsigmoid) return clamp_keep_nan(x + T(3), T(0), T(6)) / T(6);
  if constexpr (K == Activation::kSigmoid) return T(1) / (T(1) + std::exp(-x));
  if constexpr (K == Activation::kSilu) return x / (T(1) + std::exp(-x));
  // the exact (erf) form, nn.GELU's default
  if constexpr (K == Activation::kGelu)
    return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
  return x;
}

// Calls f(kind) with the activation's kind as a std::integral_constant, so that f's body is
// compiled once per kind and the choice is made once per call, not per element.
template <Activation::Kind K>
using ActivationKind = std::integral_constant<Activation::Kind, K>;
template <class F>
inline void with_activation_kind(const Activation& a, F&& f) {
  switch (a.kind) {
    case Activation::kNone:
      return f(ActivationKind<Activation::kNone>{});
    case Activation::kRelu:
      return f(ActivationKind<Activation::kRelu>{});
    case Activation::kHardtanh:
      return f(ActivationKind<Activation::kHardtanh>{});
    case Activation::kHardswish:
      return f(ActivationKind<Activation::kHardswish>{});
    case Activation::kHardsigmoid:
      return f(ActivationKind<Activation::kHardsigmoid>{});
    case Activation::kSigmoid:
      return f(ActivationKind<Activation::kSigmoid>{});
    case Activation::kSilu:
      return f(ActivationKind<Activation::kSilu>{});
    case Activation::kGelu:
      return f(ActivationKind<Activation::kGelu>{});
  }
}

template <typename T>
inline T activate(T x, const Activation& a) {
  T y = x;
  with_activation_kind(a, [&](auto kind) { y = activate_as<decltype(kind)::value>(x, a); });
  return y;
}

// y[0 .. n) = activate(y[0 .. n)), in place.
template <typename T>
void activate_span(T* y, int64_t n, const Activation& a) {
  with_activation_kind(a, [&](auto kind) {
    constexpr Activation::Kind K = decltype(kind)::value;
    if constexpr (K != Activation::kNone)
      for (int64_t i = 0; i < n; ++i) y[i] = activate_as<K>(y[i], a);
  });
}

// activate_span for float32 with each ISA's vectors (csrc/cpu/kernels_<isa>.cpp; each exists
// only on its architecture), in the dispatch table for the kernel tests.
using ActivationSpanFn = void (*)(float* y, int64_t n, const Activation& a);
void activate_span_avx512(float* y, int64_t n, const Activation& a);
void activate_span_avx2(float* y, int64_t n, const Activation& a);
void activate_span_neon(float* y, int64_t n, const Activation& a);

}  // namespace cpu
}  // namespace sepconv
