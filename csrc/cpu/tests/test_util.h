// Shared by the torch-free microkernel tests: deterministic random data.
#pragma once
#include <cstdint>
#include <vector>

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

}  // namespace test
}  // namespace sepconv
