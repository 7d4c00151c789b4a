// The per-thread scratch arena (scratch.h).
#include "scratch.h"

#include <cstdint>

namespace sepconv {
namespace cpu {
namespace {

constexpr size_t kAlign = 64;
// The first block's size, and what an arena keeps when its outermost scope ends: more (a
// 31x31 kernel on a wide plane) is freed then, so one large call does not hold memory forever.
constexpr size_t kFirstBlockBytes = size_t(1) << 20;
constexpr size_t kRetainedBytes = size_t(64) << 20;

size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

ScratchArena& ScratchArena::of_this_thread() {
  thread_local ScratchArena arena;
  return arena;
}

void* ScratchArena::take(size_t bytes) {
  bytes = round_up(std::max<size_t>(bytes, 1));
  if (!blocks_.empty() && used_ + bytes <= blocks_[current_].size) {
    void* p = blocks_[current_].base + used_;
    used_ += bytes;
    return p;
  }
  // The next block (past the current one: free), grown to fit; the first request opens block 0.
  const size_t next = blocks_.empty() || used_ == 0 ? current_ : current_ + 1;
  const size_t last = blocks_.empty() ? kFirstBlockBytes : blocks_.back().size;
  if (next >= blocks_.size()) blocks_.resize(next + 1);
  Block& b = blocks_[next];
  if (b.size < bytes) {
    b.size = std::max(round_up(bytes), std::max(last, b.size) * 2);
    // new[] of unsigned char is aligned to __STDCPP_DEFAULT_NEW_ALIGNMENT__ only: over-allocate.
    b.memory.reset(new unsigned char[b.size + kAlign]);
    const uintptr_t at = reinterpret_cast<uintptr_t>(b.memory.get());
    b.base = b.memory.get() + (kAlign - at % kAlign) % kAlign;
  }
  current_ = next;
  used_ = bytes;
  return b.base;
}

void ScratchArena::release(Mark m) {
  current_ = m.block;
  used_ = m.used;
  if (m.block == 0 && m.used == 0 && capacity() > kRetainedBytes) blocks_.clear();
}

size_t ScratchArena::capacity() const {
  size_t total = 0;
  for (const Block& b : blocks_) total += b.size;
  return total;
}

}  // namespace cpu
}  // namespace sepconv
