// The store of the CUDA path overrides (path_policy.h): the environment variables read once, on
// first use, and again on reload_cuda_path_overrides(). Plain C++ (no CUDA headers), compiled in
// every build: in a CPU-only build nothing consults it, but the reload binding still exists.
#include "path_policy.h"

#include <c10/util/Exception.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace sepconv {
namespace cuda {
namespace {

struct OverrideSpec {
  const char* name;
  const char* first;
  const char* second;
};

// In the order of PathOverride.
constexpr std::array<OverrideSpec, 3> kSpecs = {{
    {"SEPCONV_CUDA_POINTWISE", "rows", "gemm"},
    {"SEPCONV_CUDA_POINTWISE_WGRAD", "tiles", "gemm"},
    {"SEPCONV_CUDA_SEPARABLE", "fused", "composed"},
}};

constexpr int kInvalid = -1;

// Each variable's choice as an atomic (an op call reads one load); the text of an invalid value
// for the error message, under the mutex (read only on the failing path).
class OverrideStore {
 public:
  OverrideStore() { read(); }

  void read() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < kSpecs.size(); ++i) {
      const OverrideSpec& s = kSpecs[i];
      const char* v = std::getenv(s.name);
      int choice = kInvalid;
      if (v == nullptr || *v == '\0')
        choice = static_cast<int>(Forced::kAuto);
      else if (std::strcmp(v, s.first) == 0)
        choice = static_cast<int>(Forced::kFirst);
      else if (std::strcmp(v, s.second) == 0)
        choice = static_cast<int>(Forced::kSecond);
      invalid_[i] = choice == kInvalid ? std::string(v) : std::string();
      choice_[i].store(choice, std::memory_order_release);
    }
  }

  Forced get(PathOverride which) {
    const auto i = static_cast<size_t>(which);
    const int choice = choice_[i].load(std::memory_order_acquire);
    if (choice != kInvalid) return static_cast<Forced>(choice);
    std::lock_guard<std::mutex> lock(mutex_);
    const int again = choice_[i].load(std::memory_order_relaxed);  // a reload may have fixed it
    const OverrideSpec& s = kSpecs[i];
    TORCH_CHECK(again != kInvalid, s.name, " must be '", s.first, "' or '", s.second, "', got '",
                invalid_[i], "'");
    return static_cast<Forced>(again);
  }

 private:
  std::mutex mutex_;
  std::array<std::atomic<int>, kSpecs.size()> choice_{};
  std::array<std::string, kSpecs.size()> invalid_;
};

OverrideStore& store() {
  static OverrideStore instance;  // the first use reads the environment
  return instance;
}

}  // namespace

Forced forced_path(PathOverride which) { return store().get(which); }

void reload_cuda_path_overrides() { store().read(); }

}  // namespace cuda
}  // namespace sepconv
