// 4 x float32 in one NEON register (AArch64). Same interface as vec_avx512.h; NEON has no
// masked loads, so partial vectors go through a small stack buffer.
#pragma once
#include <arm_neon.h>

#include <cstdint>

namespace sepconv {
namespace cpu {
namespace neon {

struct Vec {
  using reg = float32x4_t;
  static constexpr int64_t width = 4;

  static reg zero() { return vdupq_n_f32(0.f); }
  static reg set1(float v) { return vdupq_n_f32(v); }
  static reg load(const float* p) { return vld1q_f32(p); }
  static reg load(const float* p, int64_t n) {
    float buf[width] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t i = 0; i < n && i < width; ++i) buf[i] = p[i];
    return vld1q_f32(buf);
  }
  static void store(float* p, reg v) { vst1q_f32(p, v); }
  static void store(float* p, reg v, int64_t n) {
    float buf[width];
    vst1q_f32(buf, v);
    for (int64_t i = 0; i < n && i < width; ++i) p[i] = buf[i];
  }
  // No non-temporal hint here: a plain store (nothing to fence).
  static void stream(float* p, reg v) { vst1q_f32(p, v); }
  static void fence() {}
  static reg fma(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  static reg add(reg a, reg b) { return vaddq_f32(a, b); }
  static float sum(reg v) { return vaddvq_f32(v); }
  // p[0], p[2], ..., p[2(n-1)]: reads only those 2n-1 floats (vld2q_f32 would read 2n).
  static reg load_even(const float* p, int64_t n) {
    if (n < width) return load_strided(p, 2, n);
    return vuzp1q_f32(vld1q_f32(p), load(p + width, width - 1));
  }
  // p[0], p[2], ..., p[2(W-1)], reading p[0 .. 2W-1] (the caller guarantees p[2W-1] exists).
  static reg load_even_full(const float* p) { return vld2q_f32(p).val[0]; }
  static reg load_strided(const float* p, int64_t s, int64_t n) {
    float buf[width] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t i = 0; i < n && i < width; ++i) buf[i] = p[i * s];
    return vld1q_f32(buf);
  }
};

}  // namespace neon
}  // namespace cpu
}  // namespace sepconv
