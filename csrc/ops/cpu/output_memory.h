// Allocation of the CPU kernels' large outputs.
#pragma once
#include <ATen/core/Tensor.h>

namespace sepconv {

// at::empty(size, options), and for outputs of kHugePageOutputBytes or more a hint to the
// kernel to back them with transparent huge pages where the system allows it on request
// (THP "madvise", the usual default). Large outputs are often freshly mapped memory: above
// glibc's largest mmap threshold (32 MiB) always, and below it whenever malloc has just trimmed
// its heap, which the alternating large allocations of a forward+backward trigger. Each 4 KiB
// page then faults on first write, ~3 us in a VM. Measured here (1 thread, N=8): a 38.5 MB
// input gradient 37 -> 6.4 ms (30 ms were page faults); channels_last forward+backward of
// (144, 56, 56) 3x3 28 -> 16 ms and (32, 112, 112) 18 -> 12 ms (7000 faults per call -> ~200).
// PyTorch's own THP_MEM_ALLOC_ENABLE does the same for all of its large allocations.
at::Tensor empty_cpu_output(at::IntArrayRef size, const at::TensorOptions& options);

constexpr int64_t kHugePageOutputBytes = int64_t{4} << 20;  // two huge pages

}  // namespace sepconv
