#include "output_memory.h"

#include <ATen/ops/empty.h>

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace sepconv {

at::Tensor empty_cpu_output(at::IntArrayRef size, const at::TensorOptions& options) {
  at::Tensor t = at::empty(size, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const int64_t bytes = static_cast<int64_t>(t.nbytes());
  if (bytes >= kHugePageOutputBytes) {
    // Only whole 2 MiB pages inside the tensor: the advice never reaches a neighbour's memory.
    constexpr uintptr_t kHuge = uintptr_t{2} << 20;
    const auto start = reinterpret_cast<uintptr_t>(t.data_ptr());
    const uintptr_t lo = (start + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t hi = (start + static_cast<uintptr_t>(bytes)) & ~(kHuge - 1);
    // A hint: if it fails (THP "never", an old kernel) the pages are simply small.
    if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
  }
#endif
  return t;
}

}  // namespace sepconv
