// Torch-free test of the pointwise microkernels: every ISA this build has and this CPU runs is
// compared with the portable kernels, both layouts, forward and weight gradient, over channel
// and pixel counts below, at and above the register tile of every ISA (edge tiles included).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../dispatch.h"

using sepconv::cpu::PointwiseKernels;
using sepconv::cpu::PointwiseParams;

namespace {

uint64_t rng_state = 0x2545F4914F6CDD1Dull;
float next_uniform() {  // deterministic, in [-1, 1)
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<float>((rng_state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}
std::vector<float> random_vector(int64_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = next_uniform();
  return v;
}

int failures = 0;

void expect_close(const char* isa, const char* kernel, const PointwiseParams& p,
                  const std::vector<float>& got, const std::vector<float>& want, double terms) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (!(std::fabs(double(got[i]) - double(want[i])) <= 1e-5 * terms + 1e-6)) {
      std::printf("FAIL %s %s at %zu: got %.7g want %.7g | N=%ld Cin=%ld Cout=%ld P=%ld\n", isa,
                  kernel, i, got[i], want[i], (long)p.batch, (long)p.in_channels,
                  (long)p.out_channels, (long)p.pixels);
      ++failures;
      return;
    }
  }
}

void check_case(const char* isa, const PointwiseKernels<float>& test, const PointwiseParams& p) {
  const auto& ref = sepconv::cpu::pointwise_scalar_kernels<float>();
  const int64_t m = p.batch * p.pixels;
  const auto x = random_vector(m * p.in_channels), w = random_vector(p.out_channels * p.in_channels);
  const auto b = random_vector(p.out_channels), gy = random_vector(m * p.out_channels);
  std::vector<float> wt(w.size());  // (Cin, Cout)
  for (int64_t o = 0; o < p.out_channels; ++o)
    for (int64_t c = 0; c < p.in_channels; ++c) wt[c * p.out_channels + o] = w[o * p.in_channels + c];
  const int64_t nchw_units = sepconv::cpu::pointwise_nchw_units(p);
  for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
    std::vector<float> got(m * p.out_channels), want(m * p.out_channels);
    test.forward_nchw(p, x.data(), w.data(), bias, got.data(), 0, nchw_units / 2);
    test.forward_nchw(p, x.data(), w.data(), bias, got.data(), nchw_units / 2, nchw_units);
    ref.forward_nchw(p, x.data(), w.data(), bias, want.data(), 0, nchw_units);
    expect_close(isa, "forward_nchw", p, got, want, double(p.in_channels));
    test.forward_nhwc(p, x.data(), wt.data(), bias, got.data(), 0, m / 3);
    test.forward_nhwc(p, x.data(), wt.data(), bias, got.data(), m / 3, m);
    ref.forward_nhwc(p, x.data(), wt.data(), bias, want.data(), 0, m);
    expect_close(isa, "forward_nhwc", p, got, want, double(p.in_channels));
  }
  std::vector<float> gw(w.size()), gw_ref(w.size());
  test.backward_weight_nchw(p, gy.data(), x.data(), gw.data(), 0, p.out_channels);
  ref.backward_weight_nchw(p, gy.data(), x.data(), gw_ref.data(), 0, p.out_channels);
  expect_close(isa, "backward_weight_nchw", p, gw, gw_ref, double(m));
  test.backward_weight_nhwc(p, gy.data(), x.data(), gw.data(), 0, p.out_channels);
  ref.backward_weight_nhwc(p, gy.data(), x.data(), gw_ref.data(), 0, p.out_channels);
  expect_close(isa, "backward_weight_nhwc", p, gw, gw_ref, double(m));
}

}  // namespace

int main() {
  std::vector<PointwiseParams> cases;
  for (int64_t cin : {1, 3, 8, 17, 64})
    for (int64_t cout : {1, 4, 7, 8, 15, 16, 17, 32, 33, 40})
      for (int64_t pixels : {1, 5, 16, 31, 33, 130}) cases.push_back({2, cin, cout, pixels});
  cases.push_back({1, 96, 24, 56 * 56});
  cases.push_back({1, 320, 1280, 49});
  int tested = 0;
  for (const std::string& isa : sepconv::cpu::usable_isas()) {
    sepconv::cpu::set_active_isa(isa);
    for (const auto& p : cases) check_case(isa.c_str(), sepconv::cpu::pointwise_kernels<float>(), p);
    ++tested;
    std::printf("%-7s %zu cases x 4 kernels: %s\n", isa.c_str(), cases.size(),
                failures ? "FAILURES" : "ok");
  }
  std::printf("%d ISA(s) tested against scalar, %d failure(s)\n", tested, failures);
  return failures == 0 && tested > 0 ? 0 : 1;
}
