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
  static reg fma(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  static reg add(reg a, reg b) { return vaddq_f32(a, b); }
  // For the activations (activation_simd.h). max and min return NaN where either is NaN.
  static reg sub(reg a, reg b) { return vsubq_f32(a, b); }
  static reg mul(reg a, reg b) { return vmulq_f32(a, b); }
  static reg div(reg a, reg b) { return vdivq_f32(a, b); }
  static reg max(reg a, reg b) { return vmaxq_f32(a, b); }
  static reg min(reg a, reg b) { return vminq_f32(a, b); }
  static reg abs(reg a) { return vabsq_f32(a); }
  static reg round(reg a) { return vrndnq_f32(a); }
  // 2^n for integral n in [-126, 127].
  static reg pow2(reg n) {
    const int32x4_t e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(e, 23));
  }
  static float sum(reg v) { return vaddvq_f32(v); }
  // r[i][j] -> r[j][i]: the 4 x 4 matrix whose rows are r[0..3], transposed in registers.
  static void transpose(reg* r) {
    const float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
    const float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
    const auto pairs = [](float32x4_t a, float32x4_t b, bool high) {
      const float64x2_t x = vreinterpretq_f64_f32(a), y = vreinterpretq_f64_f32(b);
      return vreinterpretq_f32_f64(high ? vtrn2q_f64(x, y) : vtrn1q_f64(x, y));
    };
    r[0] = pairs(t0, t2, false), r[1] = pairs(t1, t3, false);
    r[2] = pairs(t0, t2, true), r[3] = pairs(t1, t3, true);
  }
};

}  // namespace neon
}  // namespace cpu
}  // namespace sepconv
