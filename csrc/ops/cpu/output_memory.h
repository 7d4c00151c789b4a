// Allocation of the CPU kernels' large outputs (forward outputs and input gradients).
//
// A network allocates the same output sizes at every step, and on Linux a large block from
// malloc is often freshly mapped memory: above glibc's mmap threshold (at most 32 MiB) always,
// and below it whenever malloc has just trimmed its heap. The kernel then zeroes each page on
// its first write, inside our kernel's time: measured on the 2-vCPU Zen 4 VM, MobileNetV2
// inference at batch 8, channels_last, 2 threads spent 62 of its 131 ms in page faults (23,000
// faults per forward; 68 ms with malloc told never to unmap). So outputs of kCachedOutputBytes
// or more come from a cache of the blocks our earlier outputs used: a freed output's block is
// kept (up to a limit) and handed to the next output of about its size, already mapped and
// touched, as PyTorch's CUDA caching allocator does for device memory.
//
// The limit on the bytes held while no tensor uses them: SEPCONV_CPU_CACHE_MB (read once, at the
// first large output; default 1024, but 0 in AddressSanitizer builds so that ASan sees every
// block freed; 0 turns the cache off). sepconv_ext.empty_cpu_cache() releases the held blocks.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sepconv {

// An uninitialised tensor like at::empty(size, options) (options carry the memory format).
at::Tensor empty_cpu_output(at::IntArrayRef size, const at::TensorOptions& options);

constexpr int64_t kCachedOutputBytes = int64_t{256} << 10;  // smaller: at::empty
constexpr int64_t kHugePageOutputBytes = int64_t{4} << 20;  // two huge pages: THP advice

struct OutputCacheStats {
  int64_t limit_bytes;   // held blocks never exceed this
  int64_t cached_bytes;  // held now, in no tensor
  int64_t hits;          // outputs served from a held block
  int64_t misses;        // outputs that needed a fresh block
};
OutputCacheStats output_cache_stats();

// Frees every held block (blocks in live tensors return to the cache when those die).
void empty_output_cache();

}  // namespace sepconv
