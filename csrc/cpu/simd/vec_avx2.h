// 8 x float32 in one AVX2 register (with FMA). Include only where the avx2,fma target is
// enabled (csrc/cpu/*_avx2.cpp); same interface as vec_avx512.h.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace sepconv {
namespace cpu {
namespace avx2 {

struct Vec {
  using reg = __m256;
  static constexpr int64_t width = 8;

  static __m256i first(int64_t n) {
    const __m256i lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < width ? n : width)), lanes);
  }
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg load(const float* p, int64_t n) { return _mm256_maskload_ps(p, first(n)); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  // Partial stores through a buffer: vmaskmovps stores are microcoded (slow) on AMD Zen.
  static void store(float* p, reg v, int64_t n) {
    alignas(32) float buf[width];
    _mm256_store_ps(buf, v);
    for (int64_t i = 0; i < n && i < width; ++i) p[i] = buf[i];
  }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  // For the activations (activation_simd.h). max and min return b where either is NaN.
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg abs(reg a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), a); }
  static reg round(reg a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-126, 127].
  static reg pow2(reg n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static float sum(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // r[i][j] -> r[j][i]: the 8 x 8 matrix whose rows are r[0..7], transposed in registers.
  static void transpose(reg* r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    // u[4 * h + j], 128-bit half k: rows 4h .. 4h + 3 of column 4k + j
    for (int h = 0; h < 8; h += 4) {
      u[h] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; ++j) {
      r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
      r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
  }
};

}  // namespace avx2
}  // namespace cpu
}  // namespace sepconv
