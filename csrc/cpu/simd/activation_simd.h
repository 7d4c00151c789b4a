// The activations (params.h's Activation) on vectors, written once against a Vec interface
// (vec_<isa>.h) and compiled per ISA: the store path of the forward kernels applies them to
// results still in registers (pointwise) or to rows still in L1 (depthwise). Same formulas as
// activation.h, the portable definition they are tested against (test_activation_kernels.cpp);
// exp and erf are polynomial approximations within a few float ulps (exp) and 1.5e-7 (erf).
#pragma once
#include <cstdint>

#include "../activation.h"

namespace sepconv {
namespace cpu {

template <class V>
struct ActivationSimd {
  using reg = typename V::reg;
  static constexpr int64_t W = V::width;

  // e^x: x = n ln2 + r, |r| <= ln2 / 2, e^r by Cephes' expf polynomial, times 2^n. x is clamped
  // to [-87, 88], where 2^n stays a normal float: the result saturates near 1.6e38 and 1.6e-38.
  static reg exp(reg x) {
    x = V::min(V::set1(88.f), V::max(V::set1(-87.f), x));
    const reg n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    reg r = V::fma(n, V::set1(-0.693359375f), x);  // ln2 in two parts: n * hi is exact
    r = V::fma(n, V::set1(2.12194440e-4f), r);
    reg p = V::set1(1.9875691500e-4f);
    p = V::fma(p, r, V::set1(1.3981999507e-3f));
    p = V::fma(p, r, V::set1(8.3334519073e-3f));
    p = V::fma(p, r, V::set1(4.1665795894e-2f));
    p = V::fma(p, r, V::set1(1.6666665459e-1f));
    p = V::fma(p, r, V::set1(5.0000001201e-1f));
    p = V::fma(p, V::mul(r, r), V::add(r, V::set1(1.f)));
    return V::mul(p, V::pow2(n));
  }

  // erf(a) for a >= 0: Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7.
  static reg erf_nonnegative(reg a) {
    const reg t = V::div(V::set1(1.f), V::fma(V::set1(0.3275911f), a, V::set1(1.f)));
    reg p = V::set1(1.061405429f);
    p = V::fma(p, t, V::set1(-1.453152027f));
    p = V::fma(p, t, V::set1(1.421413741f));
    p = V::fma(p, t, V::set1(-0.284496736f));
    p = V::fma(p, t, V::set1(0.254829592f));
    const reg e = exp(V::sub(V::zero(), V::mul(a, a)));
    return V::sub(V::set1(1.f), V::mul(V::mul(p, t), e));
  }

  // NaN in, NaN out: max/min put the value that may be NaN second (x86 returns the second
  // operand where either is NaN; NEON returns NaN).
  static reg clamp(reg x, float lo, float hi) {
    return V::min(V::set1(hi), V::max(V::set1(lo), x));
  }

  template <Activation::Kind K>
  static reg apply_as(reg x, const Activation& a) {
    if constexpr (K == Activation::kRelu) return V::max(V::zero(), x);
    if constexpr (K == Activation::kHardtanh)
      return clamp(x, static_cast<float>(a.min_val), static_cast<float>(a.max_val));
    if constexpr (K == Activation::kHardswish)
      return V::mul(x, V::mul(clamp(V::add(x, V::set1(3.f)), 0.f, 6.f), V::set1(1.f / 6.f)));
    if constexpr (K == Activation::kHardsigmoid)
      return V::mul(clamp(V::add(x, V::set1(3.f)), 0.f, 6.f), V::set1(1.f / 6.f));
    if constexpr (K == Activation::kSigmoid)
      return V::div(V::set1(1.f), V::add(V::set1(1.f), exp(V::sub(V::zero(), x))));
    if constexpr (K == Activation::kSilu)
      return V::div(x, V::add(V::set1(1.f), exp(V::sub(V::zero(), x))));
    if constexpr (K == Activation::kGelu) {
      // x * Phi(x) = (x + |x| erf(|x| / sqrt 2)) / 2: erf is odd.
      const reg ax = V::abs(x);
      const reg e = erf_nonnegative(V::mul(ax, V::set1(0.70710678118654752440f)));
      return V::mul(V::set1(0.5f), V::fma(ax, e, x));
    }
    return x;
  }

  // The switches are written here, not taken from activation.h's with_activation_kind: a
  // template defined before the ISA's target region is compiled without its instructions, and
  // its calls into this code would not inline.
  static reg apply(reg x, const Activation& a) {
    switch (a.kind) {
      case Activation::kNone:
        return x;
      case Activation::kRelu:
        return apply_as<Activation::kRelu>(x, a);
      case Activation::kHardtanh:
        return apply_as<Activation::kHardtanh>(x, a);
      case Activation::kHardswish:
        return apply_as<Activation::kHardswish>(x, a);
      case Activation::kHardsigmoid:
        return apply_as<Activation::kHardsigmoid>(x, a);
      case Activation::kSigmoid:
        return apply_as<Activation::kSigmoid>(x, a);
      case Activation::kSilu:
        return apply_as<Activation::kSilu>(x, a);
      case Activation::kGelu:
        return apply_as<Activation::kGelu>(x, a);
    }
    return x;
  }

  template <Activation::Kind K>
  static void span_as(float* y, int64_t n, const Activation& a) {
    int64_t i = 0;
    for (; i + W <= n; i += W) V::store(y + i, apply_as<K>(V::load(y + i), a));
    if (i < n) V::store(y + i, apply_as<K>(V::load(y + i, n - i), a), n - i);
  }

  // y[0 .. n) = activate(y[0 .. n)), in place.
  static void apply_span(float* y, int64_t n, const Activation& a) {
    switch (a.kind) {
      case Activation::kNone:
        return;
      case Activation::kRelu:
        return span_as<Activation::kRelu>(y, n, a);
      case Activation::kHardtanh:
        return span_as<Activation::kHardtanh>(y, n, a);
      case Activation::kHardswish:
        return span_as<Activation::kHardswish>(y, n, a);
      case Activation::kHardsigmoid:
        return span_as<Activation::kHardsigmoid>(y, n, a);
      case Activation::kSigmoid:
        return span_as<Activation::kSigmoid>(y, n, a);
      case Activation::kSilu:
        return span_as<Activation::kSilu>(y, n, a);
      case Activation::kGelu:
        return span_as<Activation::kGelu>(y, n, a);
    }
  }
};

}  // namespace cpu
}  // namespace sepconv
