// Torch-free test of the depthwise microkernels: every ISA this build has and this CPU runs is
// compared with the portable kernels, for all six kernels, over shapes chosen around the vector
// widths (4, 8, 16 floats), odd widths, every border case, strides, dilations, multipliers and
// kernel sizes up to 31. Built natively and for aarch64 (run under qemu) by
// tests/test_cpu_kernels.py.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../dispatch.h"
#include "test_util.h"

using sepconv::cpu::DepthwiseKernels;
using sepconv::cpu::DepthwiseParams;

namespace {

sepconv::test::Rng rng(0x9E3779B97F4A7C15ull);
std::vector<float> random_vector(int64_t n) { return rng.vector(n); }

struct Case {
  int64_t n, c, m, h, w, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr;
};

DepthwiseParams params_of(const Case& k) {
  DepthwiseParams p;
  p.batch = k.n, p.channels = k.c, p.multiplier = k.m, p.in_h = k.h, p.in_w = k.w;
  p.kernel_h = k.kh, p.kernel_w = k.kw, p.stride_h = k.sh, p.stride_w = k.sw;
  p.dilation_h = k.dh, p.dilation_w = k.dw, p.pad_top = k.pt, p.pad_left = k.pl;
  p.out_h = (k.h + k.pt + k.pb - k.dh * (k.kh - 1) - 1) / k.sh + 1;
  p.out_w = (k.w + k.pl + k.pr - k.dw * (k.kw - 1) - 1) / k.sw + 1;
  return p;
}

bool valid(const Case& k) {
  return k.h + k.pt + k.pb >= k.dh * (k.kh - 1) + 1 && k.w + k.pl + k.pr >= k.dw * (k.kw - 1) + 1;
}

int failures = 0;

// Float sums in another order: allow a few ulps of the sum of |terms|.
void expect_close(const char* isa, const char* kernel, const Case& k, const std::vector<float>& got,
                  const std::vector<float>& want, double scale) {
  for (size_t i = 0; i < want.size(); ++i) {
    const double tol = 1e-5 * scale + 1e-6;
    if (!(std::fabs(double(got[i]) - double(want[i])) <= tol)) {
      std::printf(
          "FAIL %s %s at %zu: got %.7g want %.7g | N=%ld C=%ld M=%ld H=%ld W=%ld k=%ldx%ld "
          "s=%ld,%ld d=%ld,%ld pad=%ld,%ld,%ld,%ld\n",
          isa, kernel, i, got[i], want[i], (long)k.n, (long)k.c, (long)k.m, (long)k.h, (long)k.w,
          (long)k.kh, (long)k.kw, (long)k.sh, (long)k.sw, (long)k.dh, (long)k.dw, (long)k.pt,
          (long)k.pb, (long)k.pl, (long)k.pr);
      ++failures;
      return;
    }
  }
}

// Runs every kernel of `test` and of the portable reference on one case. Work units are split
// in two ranges to check that kernels honour [begin, end).
void check_case(const char* isa, const DepthwiseKernels<float>& test, const Case& k,
                int64_t index) {
  const auto& ref = sepconv::cpu::depthwise_scalar_kernels<float>();
  const DepthwiseParams p = params_of(k);
  // The forward also with the case's activation (the inference ops' epilogue).
  DepthwiseParams p_act = p;
  p_act.activation = sepconv::test::activation_for(index);
  const int64_t cout = k.c * k.m, taps = k.kh * k.kw;
  const int64_t in_size = k.n * k.c * k.h * k.w, out_size = k.n * cout * p.out_h * p.out_w;
  const auto x = random_vector(in_size), w = random_vector(cout * taps), b = random_vector(cout);
  const auto gy = random_vector(out_size);
  const double window = double(taps) * k.m, plane = double(k.n) * p.out_h * p.out_w;

  auto run = [&](auto kernel, int64_t units, std::vector<float>& out, auto... args) {
    const int64_t mid = units / 3;
    kernel(p, args..., out.data(), 0, mid);
    kernel(p, args..., out.data(), mid, units);
  };
  // Same buffers, both layouts: the data are random, so layout only changes the indexing.
  for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
    std::vector<float> got(out_size), want(out_size);
    // Each table's own packing of the same weight and bias, per layout.
    const auto packed = [&](const DepthwiseKernels<float>& kernels, bool nhwc) {
      return sepconv::test::packed_depthwise_forward(kernels, p, nhwc, w.data(), bias);
    };
    run(test.forward_nchw, k.n * cout, got, x.data(), packed(test, false).data());
    run(ref.forward_nchw, k.n * cout, want, x.data(), packed(ref, false).data());
    expect_close(isa, "forward_nchw", k, got, want, window);
    run(test.forward_nhwc, k.n * p.out_h, got, x.data(), packed(test, true).data());
    run(ref.forward_nhwc, k.n * p.out_h, want, x.data(), packed(ref, true).data());
    expect_close(isa, "forward_nhwc", k, got, want, window);
    const auto run_act = [&](auto kernel, int64_t units, std::vector<float>& out, const float* w) {
      kernel(p_act, x.data(), w, out.data(), 0, units / 3);
      kernel(p_act, x.data(), w, out.data(), units / 3, units);
    };
    run_act(test.forward_nchw, k.n * cout, got, packed(test, false).data());
    run_act(ref.forward_nchw, k.n * cout, want, packed(ref, false).data());
    expect_close(isa, "forward_nchw + activation", k, got, want, window);
    run_act(test.forward_nhwc, k.n * p.out_h, got, packed(test, true).data());
    run_act(ref.forward_nhwc, k.n * p.out_h, want, packed(ref, true).data());
    expect_close(isa, "forward_nhwc + activation", k, got, want, window);
  }
  std::vector<float> got(in_size), want(in_size);
  const auto packed = [&](const DepthwiseKernels<float>& kernels, bool nhwc) {
    return sepconv::test::packed_depthwise_backward_input(kernels, p, nhwc, w.data());
  };
  run(test.backward_input_nchw, k.n * k.c, got, gy.data(), packed(test, false).data());
  run(ref.backward_input_nchw, k.n * k.c, want, gy.data(), packed(ref, false).data());
  expect_close(isa, "backward_input_nchw", k, got, want, window);
  run(test.backward_input_nhwc, k.n * k.h, got, gy.data(), packed(test, true).data());
  run(ref.backward_input_nhwc, k.n * k.h, want, gy.data(), packed(ref, true).data());
  expect_close(isa, "backward_input_nhwc", k, got, want, window);
  std::vector<float> gw(cout * taps), gw_ref(cout * taps);
  run(test.backward_weight_nchw, cout, gw, gy.data(), x.data());
  run(ref.backward_weight_nchw, cout, gw_ref, gy.data(), x.data());
  expect_close(isa, "backward_weight_nchw", k, gw, gw_ref, plane);
  run(test.backward_weight_nhwc, k.c, gw, gy.data(), x.data());
  run(ref.backward_weight_nhwc, k.c, gw_ref, gy.data(), x.data());
  expect_close(isa, "backward_weight_nhwc", k, gw, gw_ref, plane);
}

std::vector<Case> cases() {
  std::vector<Case> all;
  // Channel counts below, at, above and multiples of every vector width, plain 3x3.
  for (int64_t c : {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 64})
    all.push_back({2, c, 1, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1});
  // Row widths around the vector widths and the 4-vector block, stride 1 and 2.
  for (int64_t w : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 66, 129})
    for (int64_t s : {1, 2}) all.push_back({1, 3, 1, 5, w, 3, 3, s, s, 1, 1, 1, 1, 1, 1});
  // Named shapes: 5x5, 7x7, 31x31, even and non-square kernels, large padding.
  all.push_back({1, 4, 1, 20, 37, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2});
  all.push_back({1, 5, 1, 23, 70, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3});
  all.push_back({1, 3, 1, 40, 40, 31, 31, 1, 1, 1, 1, 15, 15, 15, 15});
  all.push_back({1, 2, 1, 12, 19, 2, 4, 1, 1, 1, 1, 0, 1, 1, 2});
  all.push_back({1, 2, 1, 6, 6, 3, 3, 1, 1, 1, 1, 4, 5, 3, 6});
  // The NHWC forward's unrolled kernels (3x3, 5x5, 7x7 at stride 1 and 2): output widths around
  // its 8-pixel groups (every remainder), channel tails, and a depth multiplier.
  for (int64_t k : {3, 5, 7})
    for (int64_t s : {1, 2})
      for (int64_t ow : {1, 2, 3, 7, 8, 9, 15, 16, 17, 23}) {
        const int64_t w = (ow - 1) * s + 1;  // with padding k / 2 on both sides
        all.push_back({1, ow % 3 == 0 ? 17 : 8, ow % 5 == 0 ? 2 : 1, 2 * k - 1, w, k, k, s, s, 1, 1,
                       k / 2, k / 2, k / 2, k / 2});
      }
  // The NHWC forward's in-place path (multiplier 1, channels a multiple of the vector width:
  // 16 and 32 are whole vectors on every ISA): every kernel, stride and remainder of the
  // 8-pixel groups, border pixels, and dilation, asymmetric and large padding, rows with no
  // interior.
  for (int64_t k : {3, 5, 7})
    for (int64_t s : {1, 2})
      for (int64_t ow : {1, 2, 3, 8, 9, 16, 17, 18, 19, 20, 21, 22, 23})
        all.push_back({1, ow % 2 ? 16 : 32, 1, k + 2, (ow - 1) * s + 1, k, k, s, s, 1, 1, k / 2,
                       k / 2, k / 2, k / 2});
  all.push_back({2, 16, 1, 9, 21, 3, 5, 1, 2, 2, 2, 2, 0, 1, 3});
  all.push_back({1, 48, 1, 7, 10, 3, 3, 1, 1, 1, 1, 4, 5, 6, 3});
  all.push_back({1, 16, 1, 5, 6, 3, 11, 1, 1, 1, 1, 1, 1, 10, 10});
  // The NCHW kernels work on W planes at once, transposed W x W: narrow planes (a row shorter
  // than a vector, partial vectors stored across rows), channel counts around two vectors, and
  // multipliers (the input gradient sums M passes).
  for (int64_t c : {8, 16, 17, 33})
    for (int64_t hw : {2, 7, 14})
      for (int64_t s : {1, 2})
        all.push_back({2, c, c == 17 ? 2 : 1, hw, hw + 1, 3, 3, s, s, 1, 1, 1, 1, 1, 1});
  // Large kernels run in passes of kernel rows: row counts that are not a multiple of the pass,
  // dilation, and windows clipped at the top and bottom.
  all.push_back({1, 9, 1, 21, 30, 11, 9, 1, 1, 2, 2, 10, 10, 8, 8});
  all.push_back({2, 5, 2, 17, 19, 17, 3, 2, 1, 1, 1, 8, 8, 1, 1});
  // A multiplier with a kernel wider than the weight gradient's 7-column chunks.
  all.push_back({1, 6, 3, 12, 20, 5, 9, 1, 2, 1, 1, 2, 2, 4, 4});
  // An output over 8 MB: the NHWC forward streams its rows out (odd channels: unaligned rows);
  // NCHW: a plane too large for a whole-plane image (the Ring path).
  all.push_back({1, 65, 1, 180, 180, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1});
  // NCHW strided: grad_output planes too large for one image (the input gradient's Ring path
  // on AVX2 and AVX-512; phases on NEON).
  all.push_back({1, 3, 1, 260, 260, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1});
  // Dilation 2 at stride 2: the odd phases of the input gradient have no taps (zero).
  all.push_back({1, 9, 1, 14, 15, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2});
  // NCHW planes that fit an image run as one long row: dilated, in two passes of kernel rows,
  // and at strides (2, 1), (1, 2), 3 (a sub-image per row phase, pitch a multiple of the stride).
  all.push_back({1, 9, 1, 20, 24, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2});
  all.push_back({2, 5, 1, 16, 30, 11, 3, 1, 1, 1, 1, 5, 5, 1, 1});
  all.push_back({1, 9, 1, 16, 21, 3, 5, 2, 1, 1, 2, 1, 1, 2, 2});
  all.push_back({1, 9, 1, 15, 22, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1});
  all.push_back({1, 5, 1, 19, 19, 5, 5, 3, 3, 1, 1, 2, 2, 2, 2});
  // Seeded random sweep of everything at once.
  while (all.size() < 540) {
    Case k{rng.integer(1, 2),  rng.integer(1, 20), rng.integer(1, 3), rng.integer(1, 24),
           rng.integer(1, 40), rng.integer(1, 7),  rng.integer(1, 7), rng.integer(1, 3),
           rng.integer(1, 3),  rng.integer(1, 3),  rng.integer(1, 3), rng.integer(0, 3),
           rng.integer(0, 3),  rng.integer(0, 3),  rng.integer(0, 3)};
    if (valid(k)) all.push_back(k);
  }
  return all;
}

}  // namespace

int main() {
  const auto isas = sepconv::cpu::usable_isas();
  const auto all = cases();
  int tested = 0;
  for (const std::string& isa : isas) {
    sepconv::cpu::set_active_isa(isa);
    const auto& kernels = sepconv::cpu::depthwise_kernels<float>();
    // NCHW: every case through the whole-plane images wherever they fit, then through the Ring
    // (the portable kernels have neither).
    const bool simd = isa != "scalar";
    const std::vector<int64_t> settings =
        simd ? std::vector<int64_t>{0, INT64_MAX} : std::vector<int64_t>{0};
    for (const int64_t min_groups : settings) {
      const int before = failures;  // each line reports its own cases
      sepconv::cpu::depthwise_image_min_groups() = min_groups;
      for (size_t i = 0; i < all.size(); ++i)
        if (valid(all[i])) check_case(isa.c_str(), kernels, all[i], int64_t(i));
      std::printf("%-7s %zu cases x 6 kernels (+ forward activations)%s: %s\n", isa.c_str(),
                  all.size(),
                  !simd        ? ""
                  : min_groups ? " (NCHW rows through the Ring)"
                               : " (NCHW whole-plane images)",
                  failures > before ? "FAILURES" : "ok");
    }
    ++tested;
  }
  std::printf("%d ISA(s) tested against scalar, %d failure(s)\n", tested, failures);
  return failures == 0 && tested > 0 ? 0 : 1;
}
