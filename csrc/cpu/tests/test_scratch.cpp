// Torch-free test of the per-thread scratch arena (scratch.h): arrays are filled, 64-byte
// aligned and disjoint while their scopes are open; a scope's memory is reused by the next one
// (no growth on a repeated call); requests larger than a block, nested scopes that outgrow the
// current block, and an outermost release past the retained size all keep every open array
// intact.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "../scratch.h"

using sepconv::cpu::ScratchArena;
using sepconv::cpu::ScratchArray;
using sepconv::cpu::ScratchScope;

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (ok) return;
  std::printf("FAIL %s\n", what);
  ++failures;
}

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; }

// Fills a with a pattern of its own and checks it later: another array overlapping it breaks it.
struct Checked {
  ScratchArray<int64_t> a;
  int64_t tag;
  void fill() {
    for (int64_t i = 0; i < a.size(); ++i) a[i] = tag * 1000003 + i;
  }
  bool intact() const {
    for (int64_t i = 0; i < a.size(); ++i)
      if (a[i] != tag * 1000003 + i) return false;
    return true;
  }
};

// Opens `depth` nested scopes, each taking arrays of the given sizes (in int64 elements), and
// checks every outer array after the inner scopes have taken theirs.
void nested(int depth, const std::vector<int64_t>& sizes, int64_t tag) {
  if (depth == 0) return;
  ScratchScope scope;
  std::vector<Checked> arrays;
  for (int64_t n : sizes) {
    Checked c{scope.filled(n, int64_t{7}), tag++};
    bool filled = true;
    for (int64_t v : c.a) filled &= v == 7;
    expect(filled, "filled() sets every element");
    expect(aligned(c.a.data()), "arrays are 64-byte aligned");
    c.fill();
    arrays.push_back(c);
  }
  nested(depth - 1, sizes, tag + 100);
  for (const Checked& c : arrays) expect(c.intact(), "an inner scope leaves outer arrays intact");
}

}  // namespace

int main() {
  ScratchArena& arena = ScratchArena::of_this_thread();
  // Small, block-sized and larger-than-a-block requests (a block starts at 1 MiB).
  nested(4, {1, 3, 17, 1000}, 1);
  nested(3, {100000, 200000, 7}, 50);  // 0.8 and 1.6 MB: each scope outgrows the block
  nested(2, {1 << 20, 3}, 90);         // 8 MB
  const size_t held = arena.capacity();
  nested(3, {100000, 200000, 7}, 50);
  expect(arena.capacity() == held, "a repeated call reuses the blocks (no growth)");
  {
    ScratchScope scope;
    const ScratchArray<float> empty = scope.filled(0, 1.f);
    expect(empty.size() == 0 && empty.data() != nullptr, "an empty array has a valid pointer");
  }
  nested(1, {int64_t(10) << 20}, 7);  // 80 MB: past the retained size, freed at the end
  expect(arena.capacity() == 0, "the outermost scope frees more than the retained size");
  nested(2, {5, 6}, 3);
  std::printf("scratch arena: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
