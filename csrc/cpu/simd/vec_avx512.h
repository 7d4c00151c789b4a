// 16 x float32 in one AVX-512 register. Include only where the avx512f target is enabled
// (csrc/cpu/*_avx512.cpp); the kernels in depthwise_simd.h are written against this interface.
#pragma once
#include <immintrin.h>

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
  static void stream(float* p, reg v) { _mm512_stream_ps(p, v); }  // p aligned, no RFO
  static void fence() { _mm_sfence(); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static float sum(reg v) { return _mm512_reduce_add_ps(v); }
  // p[0], p[2], ..., p[2(n-1)]: reads only those 2n-1 floats.
  static reg load_even(const float* p, int64_t n) {
    const int64_t span = 2 * n - 1;
    const reg lo = _mm512_maskz_loadu_ps(first(span), p);
    const reg hi = span > width ? _mm512_maskz_loadu_ps(first(span - width), p + width) : zero();
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(lo, even, hi);
  }
  // p[0], p[2], ..., p[2(W-1)], reading p[0 .. 2W-1] (the caller guarantees p[2W-1] exists).
  static reg load_even_full(const float* p) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(load(p), even, load(p + width));
  }
  // p[0], p[s], ..., p[s(n-1)] for any stride.
  static reg load_strided(const float* p, int64_t s, int64_t n) {
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(static_cast<int>(s)));
    return _mm512_mask_i32gather_ps(zero(), first(n), idx, p, 4);
  }
};

}  // namespace avx512
}  // namespace cpu
}  // namespace sepconv
