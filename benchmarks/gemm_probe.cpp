// The pointwise GEMM register tile in isolation, for bench_pointwise.py: the active ISA's
// PointwiseKernels::gemm on operands that stay in L2 (96 x 256 times 256 x 256, the size of
// one cache block), best of many repetitions, one thread. Prints one JSON line per ISA.
// Built from csrc/cpu/*.cpp alone (no torch), like the microkernel tests.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "dispatch.h"

using namespace sepconv::cpu;

int main() {
  const int64_t m = 96, n = 256, k = 256;
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  const auto g = Gemm::row_major(m, n, k, k, n, n);
  for (const std::string& isa : usable_isas()) {
    set_active_isa(isa);
    const auto& kernels = pointwise_kernels<float>();
    double best = 1e30;
    for (int rep = 0; rep < 300; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 10; ++i) kernels.gemm(g, a.data(), b.data(), c.data(), nullptr, nullptr);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10;
      best = std::min(best, s);
    }
    std::printf("{\"isa\": \"%s\", \"m\": %ld, \"n\": %ld, \"k\": %ld, \"gflops\": %.2f}\n",
                isa.c_str(), (long)m, (long)n, (long)k, 2.0 * m * n * k / best * 1e-9);
  }
  return 0;
}
