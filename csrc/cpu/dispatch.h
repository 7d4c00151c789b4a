// Run-time choice of the CPU microkernels. Every compiled ISA has one row in a best-first table;
// the active row is the best one this CPU can run, unless SEPCONV_CPU_ISA or set_cpu_isa() says
// otherwise. float32 goes through the table; float64 always uses the portable kernels.
#pragma once
#include <string>
#include <vector>

#include "activation.h"
#include "depthwise.h"
#include "pointwise.h"

namespace sepconv {
namespace cpu {

struct CpuKernelTable {
  const char* isa;         // 'avx512' | 'avx2' | 'neon' | 'scalar'
  bool (*cpu_supports)();  // can this CPU execute it?
  const DepthwiseKernels<float>& (*depthwise_f32)();
  const PointwiseKernels<float>& (*pointwise_f32)();
  ActivationSpanFn activate_f32;  // the forward kernels' epilogue on its own, for the tests
};

// Names of the ISAs compiled into this build that this CPU can run, best first.
std::vector<std::string> usable_isas();
// The active ISA's name.
std::string active_isa();
// Makes `name` active and returns the previous one; throws std::invalid_argument (naming the
// usable ISAs) for an unknown name or one this CPU or build cannot run.
std::string set_active_isa(const std::string& name);

const CpuKernelTable& active_kernels();

template <typename T>
const DepthwiseKernels<T>& depthwise_kernels();
template <typename T>
const PointwiseKernels<T>& pointwise_kernels();

}  // namespace cpu
}  // namespace sepconv
