// The Python module sepconv_ext._C. Loading it runs the static TORCH_LIBRARY registrations of
// the ops; the functions here expose the run-time backend choice to sepconv_ext.backend_info()
// and set_cpu_isa(), and the CPU output cache to cpu_cache_info() / empty_cpu_cache(). The CMake
// (libtorch) build leaves this file out.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cpu/dispatch.h"
#include "ops/cpu/output_memory.h"
#include "ops/cuda/path_policy.h"

namespace {

bool cuda_compiled() {
#ifdef SEPCONV_WITH_CUDA
  return true;
#else
  return false;
#endif
}

// SEPCONV_CUDA_ARCHS is set by setup.py to the comma-separated archs it compiled for.
std::vector<std::string> cuda_archs() {
  std::vector<std::string> archs;
#ifdef SEPCONV_CUDA_ARCHS
  std::string all = SEPCONV_CUDA_ARCHS, item;
  for (char ch : all + ",") {
    if (ch == ',') {
      if (!item.empty()) archs.push_back(item);
      item.clear();
    } else {
      item += ch;
    }
  }
#endif
  return archs;
}

pybind11::dict cpu_cache_info() {
  const sepconv::OutputCacheStats s = sepconv::output_cache_stats();
  pybind11::dict d;
  d["limit_bytes"] = s.limit_bytes;
  d["cached_bytes"] = s.cached_bytes;
  d["hits"] = s.hits;
  d["misses"] = s.misses;
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "sepconv_ext native library: registers the torch.ops.sepconv operators";
  m.def("cpu_isa", &sepconv::cpu::active_isa, "The active CPU ISA.");
  m.def("cpu_isas", &sepconv::cpu::usable_isas,
        "CPU ISAs compiled in and usable here, best first.");
  m.def("set_cpu_isa", &sepconv::cpu::set_active_isa, pybind11::arg("name"),
        "Activate a CPU ISA; returns the previous one. ValueError if it is not usable here.");
  m.def("cuda_compiled", &cuda_compiled, "Whether the CUDA kernels were compiled in.");
  m.def("cuda_archs", &cuda_archs, "The CUDA architectures the kernels were compiled for.");
  m.def("cpu_cache_info", &cpu_cache_info,
        "The CPU output cache's limit, held bytes, hits, misses.");
  m.def("empty_cpu_cache", &sepconv::empty_output_cache,
        "Free the CPU output cache's held blocks.");
  // Private: tests and benchmarks that change the CUDA path overrides in-process (read once,
  // csrc/ops/cuda/path_policy.h) call it after each change. Any build; CPU-only: nothing reads
  // them.
  m.def("_reload_cuda_path_overrides", &sepconv::cuda::reload_cuda_path_overrides,
        "Re-read SEPCONV_CUDA_POINTWISE, SEPCONV_CUDA_POINTWISE_WGRAD, SEPCONV_CUDA_SEPARABLE.");
}
