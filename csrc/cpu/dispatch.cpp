#include "dispatch.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace sepconv {
namespace cpu {
namespace {

bool always() { return true; }

#if defined(__x86_64__) || defined(_M_X64)
// __builtin_cpu_supports also checks that the OS saves the wide registers (XGETBV).
bool has_avx512() {
#if defined(SEPCONV_AVX512_VIA_SIMDE)  // test builds only: the kernels are portable code
  return true;
#endif
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

// Best first; scalar must stay last.
const CpuKernelTable kTable[] = {
#if defined(__x86_64__) || defined(_M_X64)
    {"avx512", has_avx512, depthwise_avx512_kernels, pointwise_avx512_kernels,
     activate_span_avx512},
    {"avx2", has_avx2, depthwise_avx2_kernels, pointwise_avx2_kernels, activate_span_avx2},
#endif
#if defined(__aarch64__)
    {"neon", always, depthwise_neon_kernels, pointwise_neon_kernels, activate_span_neon},
#endif
    {"scalar", always, depthwise_scalar_kernels<float>, pointwise_scalar_kernels<float>,
     activate_span<float>},
};
constexpr int kRows = sizeof(kTable) / sizeof(kTable[0]);

int find_usable(const std::string& name) {
  for (int i = 0; i < kRows; ++i)
    if (name == kTable[i].isa && kTable[i].cpu_supports()) return i;
  return -1;
}

std::string joined_usable() {
  std::string s;
  for (const auto& n : usable_isas()) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

// The first row this CPU supports, overridden by SEPCONV_CPU_ISA when that names a usable ISA.
int initial_row() {
  int best = kRows - 1;
  for (int i = 0; i < kRows; ++i)
    if (kTable[i].cpu_supports()) {
      best = i;
      break;
    }
  const char* env = std::getenv("SEPCONV_CPU_ISA");
  if (env == nullptr || *env == '\0') return best;
  const int row = find_usable(env);
  if (row >= 0) return row;
  std::fprintf(stderr,
               "sepconv_ext: ignoring SEPCONV_CPU_ISA='%s': not usable here (usable: %s); "
               "using '%s'\n",
               env, joined_usable().c_str(), kTable[best].isa);
  return best;
}

std::atomic<int>& active_row() {
  static std::atomic<int> row{initial_row()};
  return row;
}

}  // namespace

std::vector<std::string> usable_isas() {
  std::vector<std::string> names;
  for (int i = 0; i < kRows; ++i)
    if (kTable[i].cpu_supports()) names.emplace_back(kTable[i].isa);
  return names;
}

std::string active_isa() { return kTable[active_row().load()].isa; }

std::string set_active_isa(const std::string& name) {
  const int row = find_usable(name);
  if (row < 0)
    throw std::invalid_argument("set_cpu_isa: expected one of " + joined_usable() +
                                " (compiled in and supported by this CPU), got '" + name + "'");
  return kTable[active_row().exchange(row)].isa;
}

const CpuKernelTable& active_kernels() { return kTable[active_row().load()]; }

template <>
const DepthwiseKernels<float>& depthwise_kernels<float>() {
  return active_kernels().depthwise_f32();
}
template <>
const DepthwiseKernels<double>& depthwise_kernels<double>() {
  return depthwise_scalar_kernels<double>();
}
template <>
const PointwiseKernels<float>& pointwise_kernels<float>() {
  return active_kernels().pointwise_f32();
}
template <>
const PointwiseKernels<double>& pointwise_kernels<double>() {
  return pointwise_scalar_kernels<double>();
}

}  // namespace cpu
}  // namespace sepconv
