// Allocation of the CPU kernels' large outputs.
#pragma once
#include <ATen/core/Tensor.h>

namespace sepconv {

// at::empty(size, options), and for outputs of kHugePageOutputBytes or more a hint to the
// kernel to back them with transparent huge pages where the system allows it on request
// (THP "madvise", the usual default). Such outputs sit above glibc's largest mmap threshold
// (32 MiB), so every call gets freshly mapped memory and faults it in on first write: 4 KiB
// pages cost ~3 us each in a VM (measured here: 30 of the 37 ms of a 38.5 MB input gradient,
// (8, 96, 112, 112), were page faults; 2 MiB pages cut that to ~4 ms). PyTorch's own
// THP_MEM_ALLOC_ENABLE does the same for all of its large allocations.
at::Tensor empty_cpu_output(at::IntArrayRef size, const at::TensorOptions& options);

constexpr int64_t kHugePageOutputBytes = int64_t{32} << 20;

}  // namespace sepconv
