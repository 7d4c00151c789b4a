// Torch-free test of the forward kernels' epilogue: every ISA's vector activations (and the
// portable ones) against activation.h's formulas in double, over values from -100 to 100
// (exp's range reduction and clamping, erf's polynomial), NaN, and every span length around
// the vector widths (masked tails that must not write past the span).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../dispatch.h"
#include "test_util.h"

using sepconv::cpu::Activation;

namespace {

int failures = 0;

const char* name_of(Activation::Kind k) {
  static const char* names[] = {"none",        "relu",    "hardtanh", "hardswish",
                                "hardsigmoid", "sigmoid", "silu",     "gelu"};
  return names[k];
}

void check(const char* isa, sepconv::cpu::ActivationSpanFn apply, const Activation& a) {
  std::vector<float> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(float(i) * 0.025f);  // [-100, 100]
  for (float v : {1e-30f, -1e-30f, 1e-7f, -1e-7f, 0.f, -0.f, 3.f, -3.f, 6.f}) x.push_back(v);
  std::vector<float> y = x;
  apply(y.data(), int64_t(y.size()), a);
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = sepconv::cpu::activate(double(x[i]), a);
    // exp: a few ulps; erf: 1.5e-7 absolute, times |x| / 2 in GELU; saturated exp (|x| > 87):
    // results below 1e-30 stand for zero.
    const double tol =
        4e-6 * std::fabs(want) +
        (a.kind == Activation::kGelu ? 2e-7 * std::fmax(1.0, std::fabs(x[i])) : 1e-30);
    if (!(std::fabs(double(y[i]) - want) <= tol)) {
      std::printf("FAIL %s %s(%.9g): got %.9g want %.9g\n", isa, name_of(a.kind), x[i], y[i], want);
      ++failures;
      return;
    }
  }
  float nan = std::nanf("");
  apply(&nan, 1, a);
  if (!std::isnan(nan)) {
    std::printf("FAIL %s %s(NaN) = %g, not NaN\n", isa, name_of(a.kind), nan);
    ++failures;
  }
  // Spans of every length up to 3 vectors of 16 and one more: each element once, none past n.
  for (int64_t n = 0; n <= 49; ++n) {
    std::vector<float> span(n + 8, 7.f), expect(n + 8, 7.f);
    for (int64_t i = 0; i < n; ++i) span[i] = float(i) * 0.5f - 6.f;
    for (int64_t i = 0; i < n; ++i) expect[i] = float(sepconv::cpu::activate(double(span[i]), a));
    apply(span.data(), n, a);
    for (int64_t i = 0; i < n + 8; ++i)
      if (!(std::fabs(double(span[i]) - double(expect[i])) <= 4e-6 * std::fabs(expect[i]) + 4e-7)) {
        std::printf("FAIL %s %s span of %ld at %ld: got %.9g want %.9g\n", isa, name_of(a.kind),
                    (long)n, (long)i, span[i], expect[i]);
        ++failures;
        return;
      }
  }
}

}  // namespace

int main() {
  int tested = 0;
  for (const std::string& isa : sepconv::cpu::usable_isas()) {
    sepconv::cpu::set_active_isa(isa);
    const int before = failures;
    for (int64_t k = 0; k <= Activation::kGelu; ++k)
      check(isa.c_str(), sepconv::cpu::active_kernels().activate_f32,
            sepconv::test::activation_for(k));
    ++tested;
    std::printf("%-7s %d activations: %s\n", isa.c_str(), Activation::kGelu + 1,
                failures > before ? "FAILURES" : "ok");
  }
  std::printf("%d ISA(s) tested against the double formulas, %d failure(s)\n", tested, failures);
  return failures == 0 && tested > 0 ? 0 : 1;
}
