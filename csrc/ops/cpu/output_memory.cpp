#include "output_memory.h"

#include <ATen/EmptyTensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/Allocator.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace sepconv {
namespace {

constexpr size_t kPage = 4096, kHugePage = size_t{2} << 20;

// A block of memory and its size, the context of every DataPtr the cache hands out.
struct Block {
  void* ptr;
  size_t bytes;
  uint64_t released = 0;  // when it last came back: the oldest held block is evicted first
};

#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kDefaultLimitMiB = 0;  // ASan then sees every block freed, unless told otherwise
#else
constexpr int64_t kDefaultLimitMiB = 1024;
#endif

int64_t limit_from_environment() {
  const char* mb = std::getenv("SEPCONV_CPU_CACHE_MB");
  if (mb == nullptr || *mb == '\0') return kDefaultLimitMiB << 20;
  char* end = nullptr;
  const long long v = std::strtoll(mb, &end, 10);
  TORCH_CHECK(*end == '\0' && v >= 0 && v < (1LL << 40), "SEPCONV_CPU_CACHE_MB=", mb,
              ": expected a whole number of MiB (0 turns the CPU output cache off)");
  return static_cast<int64_t>(v) << 20;
}

// Freshly mapped memory for `bytes`; huge-page aligned and advised when large, so that the
// kernel backs it with 2 MiB pages where THP allows it on request (the usual "madvise"): 512x
// fewer faults and TLB entries for the first use.
Block* fresh_block(size_t bytes) {
  const bool huge = bytes >= static_cast<size_t>(kHugePageOutputBytes);
  void* p = nullptr;
  if (posix_memalign(&p, huge ? kHugePage : 64, bytes) != 0 || p == nullptr) {
    TORCH_CHECK_WITH(OutOfMemoryError, false, "sepconv: could not allocate ", bytes,
                     " bytes of CPU memory for an output");
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // A hint: if it fails (THP "never", an old kernel) the pages are simply small.
  if (huge) (void)madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  return new Block{p, bytes};
}

class OutputCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    const size_t bytes = (std::max<size_t>(n, 1) + kPage - 1) / kPage * kPage;
    Block* block = take(bytes);
    if (block == nullptr) block = fresh_block(bytes);
    return {block->ptr, block, &OutputCache::release, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, size_t count) const override {
    default_copy_data(dest, src, count);
  }

  OutputCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {limit(), cached_, hits_, misses_};
  }

  void empty() {
    std::multimap<size_t, Block*> held;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      held.swap(free_);
      cached_ = 0;
    }
    for (auto& entry : held) destroy(entry.second);
  }

 private:
  // The smallest held block of at least `bytes` and at most 1/8 more (a network asks for the
  // same sizes again; a much larger block would be wasted), the last released among equals, the
  // likeliest to be still in cache (as glibc's bins, LIFO). Or null.
  Block* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    // limit() is read here first, so that a bad setting errors in allocate, not in a deleter.
    const auto fit = free_.lower_bound(bytes);
    if (limit() == 0 || fit == free_.end() || fit->first > bytes + bytes / 8) {
      ++misses_;
      return nullptr;
    }
    const auto it = std::prev(free_.upper_bound(fit->first));  // equal keys: insertion order
    Block* block = it->second;
    free_.erase(it);
    cached_ -= static_cast<int64_t>(block->bytes);
    ++hits_;
    return block;
  }

  // A block whose tensor died: held if it fits under the limit, after evicting the blocks held
  // longest (so that a new workload's sizes replace an old one's); else freed.
  static void release(void* context) {
    Block* block = static_cast<Block*>(context);
    OutputCache& cache = instance();
    std::vector<Block*> evicted;
    {
      std::lock_guard<std::mutex> lock(cache.mutex_);
      const auto bytes = static_cast<int64_t>(block->bytes);
      if (bytes <= cache.limit()) {
        while (cache.cached_ + bytes > cache.limit()) evicted.push_back(cache.evict_oldest());
        block->released = ++cache.releases_;
        cache.free_.emplace(block->bytes, block);
        cache.cached_ += bytes;
        block = nullptr;
      }
    }
    for (Block* b : evicted) destroy(b);
    if (block != nullptr) destroy(block);
  }

  Block* evict_oldest() {  // under mutex_, free_ not empty
    auto oldest = free_.begin();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->second->released < oldest->second->released) oldest = it;
    Block* block = oldest->second;
    free_.erase(oldest);
    cached_ -= static_cast<int64_t>(block->bytes);
    return block;
  }

  static void destroy(Block* block) {
    std::free(block->ptr);
    delete block;
  }

  int64_t limit() {  // under mutex_; the environment is read at the first allocation
    if (limit_ < 0) limit_ = limit_from_environment();
    return limit_;
  }

 public:
  // Never destroyed: tensors may die during static destruction, after a static cache would.
  static OutputCache& instance() {
    static OutputCache* cache = new OutputCache();
    return *cache;
  }

 private:
  std::mutex mutex_;
  std::multimap<size_t, Block*> free_;  // held blocks by size
  int64_t cached_ = 0, hits_ = 0, misses_ = 0;
  uint64_t releases_ = 0;
  int64_t limit_ = -1;  // -1: not read yet
};

}  // namespace

at::Tensor empty_cpu_output(at::IntArrayRef size, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (const int64_t s : size) numel *= s;
  const int64_t bytes = numel * static_cast<int64_t>(options.dtype().itemsize());
  if (bytes < kCachedOutputBytes) return at::empty(size, options);
  return at::detail::empty_generic(size, &OutputCache::instance(),
                                   c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   options.dtype().toScalarType(), options.memory_format_opt());
}

OutputCacheStats output_cache_stats() { return OutputCache::instance().stats(); }

void empty_output_cache() { OutputCache::instance().empty(); }

}  // namespace sepconv
