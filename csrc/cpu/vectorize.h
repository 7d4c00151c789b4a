// Compiler hints shared by the portable (scalar) microkernels.
#pragma once

// Register-blocked loops (a small accumulator array updated over a long reduction) must be
// vectorised across the block, not along the reduction. GCC's loop vectoriser picks the
// reduction and gathers with shuffles (~4x slower); with it off for the function, the SLP
// vectoriser turns the unrolled block into register-resident vector multiply-adds.
// Measured, GCC 12, baseline x86-64: GEMM tile 2.6 -> 10.4 GMAC/s.
#if defined(__GNUC__) && !defined(__clang__)
#define SEPCONV_BLOCK_KERNEL __attribute__((noinline, optimize("no-tree-loop-vectorize")))
#else
#define SEPCONV_BLOCK_KERNEL __attribute__((noinline))
#endif
