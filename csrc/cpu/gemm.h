// The packed, cache-blocked GEMM shared by every ISA, and the pointwise kernels built on it.
//
// Every pointwise computation is one GEMM (params.h's Gemm, any operand strides):
//   forward NCHW, per image:  Y (Cout x P)   = W (Cout x Cin)   * X (Cin x P),    bias per row
//   forward NHWC:             Y (NP x Cout)  = X (NP x Cin)     * W^T (Cin x Cout), bias per column
//   weight grad NCHW, image n: dW (Cout x Cin) += dY_n (Cout x P) * X_n^T (P x Cin)
//   weight grad NHWC, image n: dW (Cout x Cin) += dY_n^T (Cout x P) * X_n (P x Cin)
//
// Blocking as in BLIS: depth blocks of kKc, row blocks of kMc, panels of MR rows x NR columns
// for the register tile. Operands are read in place where the tile can read them (unit stride
// along a row of B, along the depth of A): for these skinny GEMMs (a few dozen channels, many
// pixels) a packing copy costs as much as the multiply-adds. Packed are: transposed operands
// (the weight gradients) and the last, partial panels, zero-padded so the tile never reads past
// an operand's end.
//
// Templates only, on a Tile type each ISA defines for itself:
//   MR, NR, NR_NARROW           tile rows; panel width; the last panel's width when at most
//                               NR_NARROW columns remain (a divisor of NR; = NR if none)
//   micro<NRP>(k, PanelA, PanelB, c, ldc, mr, nr, epilogue)
//                               C[mr x nr] (+)= A panel * B panel, for a panel of width NRP
// so every instantiation is private to one ISA's file.
#pragma once
#include <algorithm>
#include <vector>

#include "activation.h"
#include "pointwise.h"

namespace sepconv {
namespace cpu {

// How a tile is written: C = AB + bias (first depth block), or C += AB (later ones), then
// C = act(C) (the last depth block, when there is an activation; the tile's own registers on
// SIMD). The bias pointers are already offset to the tile's first row / column.
template <typename T>
struct Epilogue {
  bool accumulate;
  const T* row_bias;
  const T* col_bias;
  const Activation* act = nullptr;  // null: none
};

// The activation of the depth block [p0, p0 + kc) of a depth k: only the last one applies it.
inline const Activation* last_block_activation(const Activation& a, int64_t p0, int64_t kc,
                                               int64_t k) {
  return a.none() || p0 + kc < k ? nullptr : &a;
}

// Where the register tile reads its operands: A(i, p) = a[i * rs + p * cs] (packed: rs 1, cs MR;
// in place: rs lda, cs 1) and B(p, j) = b[p * rs + j] (packed: rs = panel width).
template <typename T>
struct PanelA {
  const T* a;
  int64_t rs, cs;
};
template <typename T>
struct PanelB {
  const T* b;
  int64_t rs;
};

// kKc x NR floats of B (16 KiB) stay in L1 while MC/MR tiles use them; the kMc x kKc block of
// A (96 KiB) in L2. kMc is a multiple of every tile's MR (4, 6, 8, 12).
constexpr int64_t kGemmKc = 256, kGemmMc = 96, kGemmNc = 2048;
static_assert(
    kGemmKc == 256,
    "pointwise_pixel_block and pointwise_weight_grad_split (pointwise.h) assume this depth block");

// Offsets of depths [p0, p0 + kc) along one operand (kc <= kGemmKc): packing reads through
// them, so plain, transposed and image-segmented depths are one code path.
inline void depth_offsets(const Gemm& g, int64_t p0, int64_t kc, int64_t cs, int64_t seg,
                          int64_t* off) {
  for (int64_t p = 0; p < kc; ++p) off[p] = g.depth_offset(p0 + p, cs, seg);
}

// dst = A[i0 .. i0+mc) x [p0 .. p0+kc) as MR-row panels, column-major inside each panel.
// Depth-outer so the writes are sequential; full panels without per-element tests.
template <int64_t MR, typename T>
void pack_a(const Gemm& g, const T* a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* dst) {
  int64_t off[kGemmKc];
  depth_offsets(g, p0, kc, g.a_cs, g.a_seg, off);
  for (int64_t ip = 0; ip < mc; ip += MR, dst += MR * kc) {
    const int64_t mr = std::min(MR, mc - ip);
    const T* src = a + (i0 + ip) * g.a_rs;
    if (mr == MR) {
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t i = 0; i < MR; ++i) dst[p * MR + i] = src[i * g.a_rs + off[p]];
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t i = 0; i < MR; ++i) dst[p * MR + i] = i < mr ? src[i * g.a_rs + off[p]] : T(0);
    }
  }
}

// Width of the panel that starts nr_left columns before the end.
template <class Tile>
constexpr int64_t panel_width(int64_t nr_left) {
  return nr_left <= Tile::NR_NARROW ? Tile::NR_NARROW : Tile::NR;
}

// dst = B[p0 .. p0+kc) x [j0 .. j0+nc) as panels of panel_width columns, row-major inside each
// panel; the panel starting at column jr (relative to j0) begins at dst + jr * kc.
template <class Tile, typename T>
void pack_b(const Gemm& g, const T* b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T* dst) {
  int64_t off[kGemmKc];
  depth_offsets(g, p0, kc, g.b_rs, g.b_seg, off);
  for (int64_t jr = 0; jr < nc; jr += Tile::NR) {
    const int64_t nr = std::min(Tile::NR, nc - jr), w = panel_width<Tile>(nr);
    T* d = dst + jr * kc;
    const T* src = b + (j0 + jr) * g.b_cs;
    if (g.b_cs == 1 && nr == Tile::NR) {  // a full panel: one fixed-size copy per depth step
      for (int64_t p = 0; p < kc; ++p) std::copy_n(src + off[p], Tile::NR, d + p * Tile::NR);
    } else if (g.b_cs == 1) {  // rows contiguous: copy a row segment per depth step
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t j = 0; j < w; ++j) d[p * w + j] = j < nr ? src[off[p] + j] : T(0);
    } else {
      for (int64_t j = 0; j < w; ++j)
        for (int64_t p = 0; p < kc; ++p) d[p * w + j] = j < nr ? src[off[p] + j * g.b_cs] : T(0);
    }
  }
}

// One register tile for a B panel `width` (NR or NR_NARROW) columns wide, chosen at compile time.
template <class Tile, typename T>
void run_tile(int64_t width, int64_t kc, const PanelA<T>& a, const PanelB<T>& b, T* c, int64_t ldc,
              int64_t mr, int64_t nr, const Epilogue<T>& e) {
  if (width == Tile::NR)
    Tile::template micro<Tile::NR>(kc, a, b, c, ldc, mr, nr, e);
  else
    Tile::template micro<Tile::NR_NARROW>(kc, a, b, c, ldc, mr, nr, e);
}

template <typename T>
void fill_bias(const Gemm& g, T* c, const T* row_bias, const T* col_bias) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j)
      c[i * g.ldc + j] =
          activate((row_bias ? row_bias[i] : T(0)) + (col_bias ? col_bias[j] : T(0)), g.activation);
}

// C = act(A * B + row_bias (per row) + col_bias (per column)), act = g.activation; either bias
// may be null. `accumulate`: C += A * B (no activation).
template <class Tile, typename T>
void gemm_blocked(const Gemm& g, const T* a, const T* b, T* c, const T* row_bias, const T* col_bias,
                  bool accumulate = false) {
  constexpr int64_t MR = Tile::MR, NR = Tile::NR;
  if (g.k == 0) {
    if (!accumulate) fill_bias(g, c, row_bias, col_bias);
    return;
  }
  // In place only where the tile can walk the depth with one stride. A is read in place also
  // when its MR rows at one depth are contiguous (a_rs == 1: the weight gradients' dY^T and
  // X^T in NHWC): each depth step then broadcasts from one short run.
  const bool direct_a = (g.a_cs == 1 || g.a_rs == 1) && !g.segmented();
  const bool direct_b = g.b_cs == 1 && !g.segmented();
  // Per thread, grown once: packing buffers must not be allocated per call (the fused
  // separable kernel calls this once per band). With in-place operands they hold one panel.
  thread_local std::vector<T> a_pack, b_pack;
  const int64_t nc_max = std::min(kGemmNc, (g.n + NR - 1) / NR * NR);
  a_pack.resize(std::max<size_t>(a_pack.size(), (direct_a ? MR : kGemmMc) * kGemmKc));
  b_pack.resize(std::max<size_t>(b_pack.size(), (direct_b ? NR : nc_max) * kGemmKc));
  for (int64_t jc = 0; jc < g.n; jc += kGemmNc) {
    const int64_t nc = std::min(kGemmNc, g.n - jc);
    for (int64_t pc = 0; pc < g.k; pc += kGemmKc) {
      const int64_t kc = std::min(kGemmKc, g.k - pc);
      const bool first = pc == 0 && !accumulate;
      if (!direct_b) pack_b<Tile>(g, b, pc, kc, jc, nc, b_pack.data());
      for (int64_t ic = 0; ic < g.m; ic += kGemmMc) {
        const int64_t mc = std::min(kGemmMc, g.m - ic);
        // Rows [0, packed_from) of the block are read in place, the rest from packed panels:
        // the one starting at row ir is at a_block + (ir - packed_from) * kc.
        int64_t packed_from = 0;
        const T* a_block = a_pack.data();
        if (!direct_a) {
          pack_a<MR>(g, a, ic, mc, pc, kc, a_pack.data());
        } else {
          packed_from = mc / MR * MR;
          if (packed_from < mc)
            pack_a<MR>(g, a, ic + packed_from, mc - packed_from, pc, kc, a_pack.data());
        }
        const auto panel_b = [&](int64_t jr, int64_t nr) {
          if (!direct_b) return PanelB<T>{b_pack.data() + jr * kc, panel_width<Tile>(nr)};
          if (nr == NR) return PanelB<T>{b + pc * g.b_rs + jc + jr, g.b_rs};
          pack_b<Tile>(g, b, pc, kc, jc + jr, nr, b_pack.data());
          return PanelB<T>{b_pack.data(), panel_width<Tile>(nr)};
        };
        const auto tile = [&](int64_t ir, int64_t jr, int64_t nr, const PanelB<T>& bp) {
          const int64_t i = ic + ir, j = jc + jr, mr = std::min(MR, mc - ir);
          const PanelA<T> ap = ir < packed_from
                                   ? PanelA<T>{a + i * g.a_rs + pc * g.a_cs, g.a_rs, g.a_cs}
                                   : PanelA<T>{a_block + (ir - packed_from) * kc, 1, MR};
          const Epilogue<T> e{
              !first, first && row_bias ? row_bias + i : nullptr,
              first && col_bias ? col_bias + j : nullptr,
              accumulate ? nullptr : last_block_activation(g.activation, pc, kc, g.k)};
          run_tile<Tile>(panel_width<Tile>(nr), kc, ap, bp, c + i * g.ldc + j, g.ldc, mr, nr, e);
        };
        if (kc * nc * int64_t(sizeof(T)) <= kGemmRowOrderBytes) {
          // Small B block (it stays in L2): rows of tiles, so C is written row by row, in
          // the order the hardware prefetcher follows (these shapes are bound by C's traffic).
          // The partial last panel of an in-place B is packed once, up front.
          const int64_t full_cols = direct_b ? nc / NR * NR : nc;
          const PanelB<T> last = full_cols < nc ? panel_b(full_cols, nc - full_cols) : PanelB<T>{};
          for (int64_t ir = 0; ir < mc; ir += MR)
            for (int64_t jr = 0; jr < nc; jr += NR) {
              const int64_t nr = std::min(NR, nc - jr);
              tile(ir, jr, nr, jr < full_cols ? panel_b(jr, nr) : last);
            }
        } else {
          // Large B block: each B panel stays in L1 while a column of tiles uses it (BLIS).
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t nr = std::min(NR, nc - jr);
            const PanelB<T> bp = panel_b(jr, nr);
            for (int64_t ir = 0; ir < mc; ir += MR) tile(ir, jr, nr, bp);
          }
        }
      }
    }
  }
}

// The kernel table's entry: C overwritten.
template <class Tile, typename T>
void gemm_entry(const Gemm& g, const T* a, const T* b, T* c, const T* row_bias, const T* col_bias) {
  gemm_blocked<Tile, T>(g, a, b, c, row_bias, col_bias);
}

// Writes one tile from a buffer of NRP-wide rows: the edge path of every Tile::micro.
template <typename T>
void store_tile(const T* tile, int64_t nrp, T* c, int64_t ldc, int64_t mr, int64_t nr,
                const Epilogue<T>& e) {
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      const T v = tile[i * nrp + j];
      T& out = c[i * ldc + j];
      out = e.accumulate
                ? out + v
                : v + (e.row_bias ? e.row_bias[i] : T(0)) + (e.col_bias ? e.col_bias[j] : T(0));
      if (e.act) out = activate(out, *e.act);
    }
}

// ---------------------------------------------------------------------------- forward

// The forward's weight is packed once per call (pack_pointwise_weight) into the panels the
// register tile reads, and every unit of every thread reads that one copy: in NCHW it is the A
// operand (panels of MR output channels), in NHWC the B operand (panels of NR output channels,
// the last one NR_NARROW wide where that is enough). Each panel holds the full depth, so the
// depth block at p0 of a panel starts p0 * width floats in.
template <class Tile>
int64_t pointwise_packed_weight_size(const PointwiseParams& p, bool nhwc) {
  const int64_t tile = nhwc ? Tile::NR : Tile::MR;
  return (p.out_channels + tile - 1) / tile * tile * p.in_channels;
}

// weight(o, c) = w[o * rs + c * cs]: the (Cout, Cin) weight in any strides (the input gradient
// passes the transposed weight as a view).
template <class Tile, typename T>
void pack_pointwise_weight(const PointwiseParams& p, bool nhwc, const T* w, int64_t rs, int64_t cs,
                           T* dst) {
  const int64_t cout = p.out_channels, cin = p.in_channels;
  if (!nhwc) {
    for (int64_t o0 = 0; o0 < cout; o0 += Tile::MR, dst += Tile::MR * cin)
      for (int64_t c = 0; c < cin; ++c)
        for (int64_t i = 0; i < Tile::MR; ++i)
          dst[c * Tile::MR + i] = o0 + i < cout ? w[(o0 + i) * rs + c * cs] : T(0);
    return;
  }
  for (int64_t j0 = 0; j0 < cout; j0 += Tile::NR) {
    const int64_t width = panel_width<Tile>(cout - j0);
    T* d = dst + j0 * cin;
    if (cs == 1 && j0 + Tile::NR <= cout) {  // a full panel of weight rows
      Tile::transpose_panel(w + j0 * rs, rs, cin, d);
      continue;
    }
    for (int64_t c = 0; c < cin; ++c)
      for (int64_t j = 0; j < width; ++j)
        d[c * width + j] = j0 + j < cout ? w[(j0 + j) * rs + c * cs] : T(0);
  }
}

// Units (image, block of pointwise_pixel_block(p) pixels, block of kPointwiseRowBlock output
// channels): Y_n[o0.., p0..] = W[o0..] X_n[:, p0..]. The unit's kc x pixels block of X is
// packed (<= 256 KiB, it stays in L2) and the tiles run in rows, so each tile row reads one
// weight panel from L1 and Y is written row by row, in the order the prefetcher follows. X is
// not read in place: its rows lie H*W floats apart, which maps a 56x56 or 112x112 plane's rows
// onto a few L1 sets.
template <class Tile, typename T>
void pointwise_forward_nchw(const PointwiseParams& p, const T* input, const T* weight_packed,
                            const T* bias, T* output, int64_t begin, int64_t end) {
  constexpr int64_t MR = Tile::MR, NR = Tile::NR;
  static_assert(kPointwiseRowBlock % MR == 0, "row blocks start at a weight panel");
  const int64_t cin = p.in_channels, P = p.pixels;
  const int64_t pixel_block = pointwise_pixel_block(p);
  const int64_t pixel_blocks = (P + pixel_block - 1) / pixel_block;
  const int64_t row_blocks = (p.out_channels + kPointwiseRowBlock - 1) / kPointwiseRowBlock;
  thread_local std::vector<T> x_pack;
  x_pack.resize(std::max<size_t>(x_pack.size(), std::min(kGemmKc, cin) * (pixel_block + NR)));
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t o0 = unit % row_blocks * kPointwiseRowBlock;
    const int64_t p0 = unit / row_blocks % pixel_blocks * pixel_block;
    const int64_t n = unit / (row_blocks * pixel_blocks);
    const int64_t mc = std::min(kPointwiseRowBlock, p.out_channels - o0);
    const int64_t nc = std::min(pixel_block, P - p0);
    const Gemm g = Gemm::row_major(0, nc, cin, 0, P, 0);
    T* y = output + (n * p.out_channels + o0) * P + p0;
    for (int64_t pc = 0; pc < cin; pc += kGemmKc) {
      const int64_t kc = std::min(kGemmKc, cin - pc);
      pack_b<Tile>(g, input + n * cin * P + p0, pc, kc, 0, nc, x_pack.data());
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const PanelA<T> a{weight_packed + (o0 + ir) * cin + pc * MR, 1, MR};
        const Epilogue<T> e{pc > 0, pc == 0 && bias ? bias + o0 + ir : nullptr, nullptr,
                            last_block_activation(p.activation, pc, kc, cin)};
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t nr = std::min(NR, nc - jr);
          const PanelB<T> b{x_pack.data() + jr * kc, panel_width<Tile>(nr)};
          run_tile<Tile>(b.rs, kc, a, b, y + ir * P + jr, P, std::min(MR, mc - ir), nr, e);
        }
      }
    }
  }
}

// Rows [begin, end) of Y (N*P x cols, rows ldc apart) = X (N*P x Cin) W^T, for `cols` output
// channels whose weight panels are weight_packed (pack_pointwise_weight of those channels).
// X is read in place (each tile reads MR rows, sequentially along the depth); only a last tile
// of fewer than MR rows is copied, so that the tile never reads past the input. Narrow weights
// (the kc x cols block stays in L2) run the tiles in rows, so Y is written row by row; wide ones
// in columns, so each weight panel stays in L1 while a column of tiles uses it.
template <class Tile, typename T>
void pointwise_forward_nhwc_block(int64_t cin, int64_t cout, int64_t ldc, const T* input,
                                  const T* weight_packed, const T* bias, const Activation& act,
                                  T* output, int64_t begin, int64_t end) {
  constexpr int64_t MR = Tile::MR, NR = Tile::NR;
  alignas(64) T rows[MR * kGemmKc];
  for (int64_t ic = begin; ic < end; ic += kGemmMc) {
    const int64_t mc = std::min(kGemmMc, end - ic);
    for (int64_t pc = 0; pc < cin; pc += kGemmKc) {
      const int64_t kc = std::min(kGemmKc, cin - pc);
      const int64_t full = mc / MR * MR;
      if (full < mc) {
        const Gemm g = Gemm::row_major(mc - full, 0, cin, cin, 0, 0);
        pack_a<MR>(g, input + (ic + full) * cin, 0, mc - full, pc, kc, rows);
      }
      const auto tile = [&](int64_t ir, int64_t jr) {
        const int64_t nr = std::min(NR, cout - jr), width = panel_width<Tile>(nr);
        const PanelA<T> a =
            ir < full ? PanelA<T>{input + (ic + ir) * cin + pc, cin, 1} : PanelA<T>{rows, 1, MR};
        const PanelB<T> b{weight_packed + jr * cin + pc * width, width};
        const Epilogue<T> e{pc > 0, nullptr, pc == 0 && bias ? bias + jr : nullptr,
                            last_block_activation(act, pc, kc, cin)};
        run_tile<Tile>(width, kc, a, b, output + (ic + ir) * ldc + jr, ldc, std::min(MR, mc - ir),
                       nr, e);
      };
      if (kc * cout * int64_t(sizeof(T)) <= kGemmRowOrderBytes) {
        for (int64_t ir = 0; ir < mc; ir += MR)
          for (int64_t jr = 0; jr < cout; jr += NR) tile(ir, jr);
      } else {
        for (int64_t jr = 0; jr < cout; jr += NR)
          for (int64_t ir = 0; ir < mc; ir += MR) tile(ir, jr);
      }
    }
  }
}

// Units: pixels [begin, end) of the NHWC forward, on the whole weight packed once per call.
template <class Tile, typename T>
void pointwise_forward_nhwc(const PointwiseParams& p, const T* input, const T* weight_packed,
                            const T* bias, T* output, int64_t begin, int64_t end) {
  pointwise_forward_nhwc_block<Tile>(p.in_channels, p.out_channels, p.out_channels, input,
                                     weight_packed, bias, p.activation, output, begin, end);
}

// Units: blocks of kPointwiseColumnBlock output channels of the NHWC forward, every pixel.
// Each unit packs its own channels' weight panels into its thread's buffer (weight(o, c) =
// w[o * rs + c * cs]): for few pixels the once-per-call packing of the whole weight was a
// serial step as long as the multiply-adds, and the other thread then read the packed copy from
// the first one's cache. The same tiles over the same depth blocks as the pixel split: the
// result is bitwise the same.
template <class Tile, typename T>
void pointwise_forward_nhwc_columns(const PointwiseParams& p, const T* input, const T* w,
                                    int64_t rs, int64_t cs, const T* bias, T* output, int64_t begin,
                                    int64_t end) {
  static_assert(kPointwiseColumnBlock % Tile::NR == 0, "a block holds whole weight panels");
  thread_local std::vector<T> packed;
  const int64_t cout = p.out_channels;
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t j0 = unit * kPointwiseColumnBlock;
    PointwiseParams q = p;
    q.out_channels = std::min(kPointwiseColumnBlock, cout - j0);
    packed.resize(std::max<size_t>(packed.size(), pointwise_packed_weight_size<Tile>(q, true)));
    pack_pointwise_weight<Tile, T>(q, true, w + j0 * rs, rs, cs, packed.data());
    pointwise_forward_nhwc_block<Tile>(p.in_channels, q.out_channels, cout, input, packed.data(),
                                       bias ? bias + j0 : nullptr, p.activation, output + j0, 0,
                                       p.batch * p.pixels);
  }
}

// Units: output channels [begin, end) of Y (m x Cout) = X (m x Cin) W^T with few rows
// (m = N*P <= kPointwiseDotRows: squeeze-excitation's 1x1 planes): each weight row is read once,
// in place, and dotted with every input row, which stay in L1. Packing the weight for the
// register tile would cost more than the multiply-adds (measured: 3x the GEMM at m = 1 and
// 1.5x at m = 8 for a 960 x 240 weight).
template <class Tile, typename T>
void pointwise_forward_dot(const PointwiseParams& p, const T* input, const T* weight, const T* bias,
                           T* output, int64_t begin, int64_t end) {
  const int64_t m = p.batch * p.pixels, cin = p.in_channels;
  for (int64_t o = begin; o < end; ++o)
    Tile::dot_rows(cin, input, m, weight + o * cin, bias ? bias[o] : T(0), p.activation, output + o,
                   p.out_channels);
}

// ---------------------------------------------------------------------------- weight gradient

// Units [begin, end) of the split s (pointwise.h): unit u is image group u / s.blocks and output
// channels [o0, o1) of block u % s.blocks; it writes that group's float dW rows [o0, o1) into
// parts + group * Cout * Cin. Within a group the depth is its images' pixels: one plain range in
// NHWC (image n + 1 follows image n in both operands, so the operand with unit column stride is
// read in place), segments of one image in NCHW.
template <class Tile, typename T>
void pointwise_backward_weight(const PointwiseParams& p, const PointwiseWeightGradSplit& s,
                               bool nhwc, const T* grad_output, const T* input, T* parts,
                               int64_t begin, int64_t end) {
  const int64_t cin = p.in_channels, cout = p.out_channels, P = p.pixels;
  const bool transposed = pointwise_backward_weight_transposed(p);
  thread_local std::vector<T> dw_t;  // dW^T (Cin x block), per thread and kept between calls
  for (int64_t u = begin; u < end; ++u) {
    const int64_t group = u / s.blocks, o0 = u % s.blocks * s.block_channels;
    const int64_t cols = std::min(cout, o0 + s.block_channels) - o0;
    const int64_t n0 = group * s.group_images, images = std::min(s.group_images, p.batch - n0);
    if (cols <= 0) continue;  // (images == 0, an empty batch: the GEMM of depth 0 writes zeros)
    const T* gy = grad_output + n0 * P * cout;
    const T* x = input + n0 * P * cin;
    T* dw = parts + group * cout * cin + o0 * cin;
    // Element (o, q) of dY^T and (c, q) of X^T, q = pixel of the group, image-segmented in NCHW
    const int64_t gy_cs = nhwc ? cout : 1, gy_rs = nhwc ? 1 : P;
    const int64_t x_cs = nhwc ? cin : 1, x_rs = nhwc ? 1 : P;
    Gemm g = transposed ? Gemm{cin, cols, images * P, x_rs, x_cs, gy_cs, gy_rs, cols}
                        // X^T (dY^T)^T
                        : Gemm{cols, cin, images * P, gy_rs, gy_cs, x_cs, x_rs, cin};  // dY^T X
    if (!nhwc) {
      g.k_seg = P;
      g.a_seg = transposed ? cin * P : cout * P;
      g.b_seg = transposed ? cout * P : cin * P;
    }
    if (!transposed) {
      gemm_blocked<Tile, T>(g, gy + o0 * gy_rs, x, dw, nullptr, nullptr);
      continue;
    }
    dw_t.resize(cin * cols);
    gemm_blocked<Tile, T>(g, x, gy + o0 * gy_rs, dw_t.data(), nullptr, nullptr);
    for (int64_t o = 0; o < cols; ++o)
      for (int64_t c = 0; c < cin; ++c) dw[o * cin + c] = dw_t[c * cols + o];
  }
}

// The kernel table of one Tile.
template <class Tile, typename T>
const PointwiseKernels<T>& pointwise_kernels_of() {
  static const PointwiseKernels<T> kernels = {gemm_entry<Tile, T>,
                                              pointwise_packed_weight_size<Tile>,
                                              pack_pointwise_weight<Tile, T>,
                                              pointwise_forward_nchw<Tile, T>,
                                              pointwise_forward_nhwc<Tile, T>,
                                              pointwise_forward_nhwc_columns<Tile, T>,
                                              pointwise_forward_dot<Tile, T>,
                                              pointwise_backward_weight<Tile, T>};
  return kernels;
}

}  // namespace cpu
}  // namespace sepconv
