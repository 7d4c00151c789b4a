// Test builds only (tests/test_cpu_kernels.py, -DSEPCONV_AVX512_VIA_SIMDE): the AVX-512 kernels
// on a CPU without AVX-512. SIMDe (https://github.com/simd-everywhere/simde, pip cmeel-simde
// 0.8.2) implements the x86 intrinsics in portable C; its native aliases let simd/vec_avx512.h
// compile unchanged. Three intrinsics are replaced here:
// - the masked load and store, lane by lane: SIMDe's read and write all 16 lanes, where the
//   hardware suppresses the masked-off ones (a load past the end of a row must not fault, a
//   store must not touch its neighbour), so SIMDe's would hide exactly the tail bugs we test for;
// - the horizontal sum, which SIMDe 0.8.2 lacks (pairwise halves, as GCC's own expansion).
#pragma once
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

// The rounding-control constants, which SIMDe 0.8.2's native aliases do not define.
#ifndef _MM_FROUND_TO_NEAREST_INT
#define _MM_FROUND_TO_NEAREST_INT SIMDE_MM_FROUND_TO_NEAREST_INT
#endif
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif

namespace sepconv_simde_shims {

inline simde__m512 maskz_loadu_ps(simde__mmask16 k, const void* p) {
  const float* src = static_cast<const float*>(p);
  float v[16];
  for (int i = 0; i < 16; ++i) v[i] = ((k >> i) & 1) ? src[i] : 0.0f;
  return simde_mm512_loadu_ps(v);
}

inline void mask_storeu_ps(void* p, simde__mmask16 k, simde__m512 a) {
  float* dst = static_cast<float*>(p);
  float v[16];
  simde_mm512_storeu_ps(v, a);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) dst[i] = v[i];
}

inline float reduce_add_ps(simde__m512 a) {
  float v[16];
  simde_mm512_storeu_ps(v, a);
  for (int n = 8; n >= 1; n /= 2)
    for (int i = 0; i < n; ++i) v[i] += v[i + n];
  return v[0];
}

}  // namespace sepconv_simde_shims

#undef _mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#define _mm512_maskz_loadu_ps(k, p) sepconv_simde_shims::maskz_loadu_ps(k, p)
#define _mm512_mask_storeu_ps(p, k, a) sepconv_simde_shims::mask_storeu_ps(p, k, a)
#define _mm512_reduce_add_ps(a) sepconv_simde_shims::reduce_add_ps(a)
