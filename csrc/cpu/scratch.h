// Scratch memory for the kernels' staging (rings, whole-plane images, offset tables, packed
// weights, partial sums): each thread's arena keeps its blocks between calls, so a kernel call
// allocates nothing once its thread has run a problem that large. (A fresh buffer of a megabyte
// or more from malloc is mmap'ed and page-faults on first touch, ~3 us per 4 KiB here: as long
// as a batch-1 layer.) Memory is taken in stack order: a ScratchScope releases what was taken
// through it when it ends, so a driver's scope nests inside its caller's.
//
// Included before the ISA target regions of kernels_<isa>.cpp: nothing here is ISA code.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sepconv {
namespace cpu {

// n elements of T (a trivial type) in scratch memory, valid until the scope that took them
// ends.
template <typename T>
class ScratchArray {
 public:
  ScratchArray() = default;
  ScratchArray(T* data, int64_t size) : data_(data), size_(size) {}
  T* data() const { return data_; }
  int64_t size() const { return size_; }
  T& operator[](int64_t i) const { return data_[i]; }
  T* begin() const { return data_; }
  T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// One thread's blocks. Blocks past the current one are free (stack order), so a request that
// does not fit moves to the next block, growing it if it is too small.
class ScratchArena {
 public:
  static ScratchArena& of_this_thread();
  struct Mark {
    size_t block, used;
  };
  Mark mark() const { return {current_, used_}; }
  void release(Mark m);
  void* take(size_t bytes);  // 64-byte aligned
  size_t capacity() const;   // bytes held (tests)

 private:
  struct Block {
    std::unique_ptr<unsigned char[]> memory;
    unsigned char* base = nullptr;  // memory, 64-byte aligned
    size_t size = 0;                // usable bytes from base
  };
  std::vector<Block> blocks_;
  size_t current_ = 0, used_ = 0;
};

class ScratchScope {
 public:
  ScratchScope() : arena_(ScratchArena::of_this_thread()), mark_(arena_.mark()) {}
  ~ScratchScope() { arena_.release(mark_); }
  ScratchScope(const ScratchScope&) = delete;
  ScratchScope& operator=(const ScratchScope&) = delete;

  // n elements set to `value`.
  template <typename T>
  ScratchArray<T> filled(int64_t n, T value) {
    ScratchArray<T> a(static_cast<T*>(arena_.take(sizeof(T) * std::max<int64_t>(n, 0))), n);
    std::fill(a.begin(), a.end(), value);
    return a;
  }

 private:
  ScratchArena& arena_;
  ScratchArena::Mark mark_;
};

}  // namespace cpu
}  // namespace sepconv
