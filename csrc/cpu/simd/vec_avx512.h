// 16 x float32 in one AVX-512 register. Include only where the avx512f target is enabled
// (csrc/cpu/*_avx512.cpp); the kernels in depthwise_*.h are written against this interface.
#pragma once
#if defined(SEPCONV_AVX512_VIA_SIMDE)  // test builds only: see tests/simde_avx512.h
#include "tests/simde_avx512.h"
#else
#include <immintrin.h>
#endif

#include <cstdint>

namespace sepconv {
namespace cpu {
namespace avx512 {

struct Vec {
  using reg = __m512;
  static constexpr int64_t width = 16;

  static __mmask16 first(int64_t n) {
    return n >= width ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
  }
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg load(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, reg v, int64_t n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  // For the activations (activation_simd.h). max and min return b where either is NaN.
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg abs(reg a) {  // AVX512F has no float and: clear the sign bit as integers
    return _mm512_castsi512_ps(
        _mm512_and_epi32(_mm512_castps_si512(a), _mm512_set1_epi32(0x7FFFFFFF)));
  }
  static reg round(reg a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-126, 127].
  static reg pow2(reg n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static float sum(reg v) { return _mm512_reduce_add_ps(v); }
  // r[i][j] -> r[j][i]: the 16 x 16 matrix whose rows are r[0..15], transposed in registers.
  static void transpose(reg* r) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    // u[4 * h + j], 128-bit block k: rows 4h .. 4h + 3 of column 4k + j
    for (int h = 0; h < 16; h += 4) {
      u[h] = _mm512_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[h + 1] = _mm512_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[h + 2] = _mm512_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[h + 3] = _mm512_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    // A 4 x 4 transpose of 128-bit blocks for each j: column 4k + j = block k of u[j], u[4 + j],
    // u[8 + j], u[12 + j]. 0x88 takes blocks (0, 2) of each operand, 0xDD blocks (1, 3).
    for (int j = 0; j < 4; ++j) {
      const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
      const __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
      const __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
      const __m512 v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
      r[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
      r[8 + j] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
      r[4 + j] = _mm512_shuffle_f32x4(v1, v3, 0x88);
      r[12 + j] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
  }
};

}  // namespace avx512
}  // namespace cpu
}  // namespace sepconv
