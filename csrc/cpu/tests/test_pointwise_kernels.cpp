// Torch-free test of the pointwise kernels: every ISA this build has and this CPU runs
// (scalar included) is compared with naive double-precision loops, both layouts, forward and
// weight gradient, over channel and pixel counts below, at and above the register tile and the
// cache blocks of every ISA (edge tiles, several depth blocks).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../dispatch.h"
#include "test_util.h"

using sepconv::cpu::activate;
using sepconv::cpu::PointwiseKernels;
using sepconv::cpu::PointwiseParams;

namespace {

sepconv::test::Rng rng(0x2545F4914F6CDD1Dull);

int failures = 0;

void expect_close(const char* isa, const char* kernel, const PointwiseParams& p,
                  const std::vector<float>& got, const std::vector<float>& want, double terms) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (!(std::fabs(double(got[i]) - double(want[i])) <= 1e-5 * terms + 1e-6)) {
      std::printf("FAIL %s %s at %zu: got %.7g want %.7g | N=%ld Cin=%ld Cout=%ld P=%ld\n", isa,
                  kernel, i, got[i], want[i], (long)p.batch, (long)p.in_channels,
                  (long)p.out_channels, (long)p.pixels);
      ++failures;
      return;
    }
  }
}

// Naive double-precision references, NCHW: y[n][o][q] = act(b[o] + sum_c w[o][c] x[n][c][q]) and
// gw[o][c] = sum_{n,q} gy[n][o][q] x[n][c][q]; NHWC tensors are converted to and from NCHW.
std::vector<float> naive_forward(const PointwiseParams& p, const std::vector<float>& x,
                                 const std::vector<float>& w, const float* bias) {
  std::vector<float> y(p.batch * p.out_channels * p.pixels);
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t o = 0; o < p.out_channels; ++o)
      for (int64_t q = 0; q < p.pixels; ++q) {
        double s = bias ? bias[o] : 0.0;
        for (int64_t c = 0; c < p.in_channels; ++c)
          s += double(w[o * p.in_channels + c]) * x[(n * p.in_channels + c) * p.pixels + q];
        y[(n * p.out_channels + o) * p.pixels + q] = float(activate(s, p.activation));
      }
  return y;
}

std::vector<float> naive_weight_grad(const PointwiseParams& p, const std::vector<float>& gy,
                                     const std::vector<float>& x) {
  std::vector<float> gw(p.out_channels * p.in_channels);
  for (int64_t o = 0; o < p.out_channels; ++o)
    for (int64_t c = 0; c < p.in_channels; ++c) {
      double s = 0;
      for (int64_t n = 0; n < p.batch; ++n)
        for (int64_t q = 0; q < p.pixels; ++q)
          s += double(gy[(n * p.out_channels + o) * p.pixels + q]) *
               x[(n * p.in_channels + c) * p.pixels + q];
      gw[o * p.in_channels + c] = float(s);
    }
  return gw;
}

void check_case(const char* isa, const PointwiseKernels<float>& test, const PointwiseParams& p) {
  const int64_t m = p.batch * p.pixels;
  const auto x = rng.vector(m * p.in_channels), w = rng.vector(p.out_channels * p.in_channels);
  const auto b = rng.vector(p.out_channels), gy = rng.vector(m * p.out_channels);
  const auto x_nhwc = sepconv::test::to_nhwc(x, p.batch, p.in_channels, p.pixels);
  const auto gy_nhwc = sepconv::test::to_nhwc(gy, p.batch, p.out_channels, p.pixels);
  const auto wt = sepconv::test::to_nhwc(w, 1, p.out_channels, p.in_channels);  // (Cin, Cout)
  const int64_t nchw_units = sepconv::cpu::pointwise_nchw_units(p);
  // The weight packed from its own layout (the forward) and from a transposed copy (as the
  // input gradient passes it): both strides of pack_weight, for both layouts.
  const auto w_nchw =
      sepconv::test::packed_pointwise_weight(test, p, false, w.data(), p.in_channels, 1);
  const auto w_nchw_t =
      sepconv::test::packed_pointwise_weight(test, p, false, wt.data(), 1, p.out_channels);
  const auto w_nhwc =
      sepconv::test::packed_pointwise_weight(test, p, true, w.data(), p.in_channels, 1);
  const auto w_nhwc_t =
      sepconv::test::packed_pointwise_weight(test, p, true, wt.data(), 1, p.out_channels);
  if (w_nchw != w_nchw_t || w_nhwc != w_nhwc_t) {
    std::printf(
        "FAIL %s pack_weight: the packed weight depends on the source strides | Cin=%ld Cout=%ld\n",
        isa, (long)p.in_channels, (long)p.out_channels);
    ++failures;
  }
  for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
    const auto want = naive_forward(p, x, w, bias);
    std::vector<float> got(m * p.out_channels);
    test.forward_nchw(p, x.data(), w_nchw.data(), bias, got.data(), 0, nchw_units / 2);
    test.forward_nchw(p, x.data(), w_nchw.data(), bias, got.data(), nchw_units / 2, nchw_units);
    expect_close(isa, "forward_nchw", p, got, want, double(p.in_channels));
    test.forward_nhwc(p, x_nhwc.data(), w_nhwc.data(), bias, got.data(), 0, m / 3);
    test.forward_nhwc(p, x_nhwc.data(), w_nhwc.data(), bias, got.data(), m / 3, m);
    expect_close(isa, "forward_nhwc", p, got,
                 sepconv::test::to_nhwc(want, p.batch, p.out_channels, p.pixels),
                 double(p.in_channels));
    // forward_nhwc_columns runs for few pixels, but is correct for any number: every case, from
    // the weight and from its transposed copy (the input gradient's view), and bitwise the
    // pixel split's result (the same tiles over the same depth blocks).
    const auto nhwc_rows = got;
    const int64_t blocks = (p.out_channels + sepconv::cpu::kPointwiseColumnBlock - 1) /
                           sepconv::cpu::kPointwiseColumnBlock;
    for (const bool transposed : {false, true}) {
      std::fill(got.begin(), got.end(), std::nanf(""));
      const float* src = transposed ? wt.data() : w.data();
      const int64_t rs = transposed ? 1 : p.in_channels, cs = transposed ? p.out_channels : 1;
      test.forward_nhwc_columns(p, x_nhwc.data(), src, rs, cs, bias, got.data(), 0, blocks / 2);
      test.forward_nhwc_columns(p, x_nhwc.data(), src, rs, cs, bias, got.data(), blocks / 2,
                                blocks);
      if (got != nhwc_rows) {
        std::printf(
            "FAIL %s forward_nhwc_columns%s differs from forward_nhwc | Cin=%ld Cout=%ld N=%ld "
            "P=%ld\n",
            isa, transposed ? " (transposed weight)" : "", (long)p.in_channels,
            (long)p.out_channels, (long)p.batch, (long)p.pixels);
        ++failures;
      }
    }
    // forward_dot runs for few pixels, but is correct for any number: tested on every case.
    test.forward_dot(p, x_nhwc.data(), w.data(), bias, got.data(), 0, p.out_channels / 2);
    test.forward_dot(p, x_nhwc.data(), w.data(), bias, got.data(), p.out_channels / 2,
                     p.out_channels);
    expect_close(isa, "forward_dot", p, got,
                 sepconv::test::to_nhwc(want, p.batch, p.out_channels, p.pixels),
                 double(p.in_channels));
  }
  const auto gw_ref = naive_weight_grad(p, gy, x);
  for (const bool nhwc : {false, true}) {
    const char* name = nhwc ? "backward_weight_nhwc" : "backward_weight_nchw";
    std::vector<float> first;  // the 1-thread result: every split must give it bit for bit
    for (const int64_t threads : {1, 2, 3}) {
      const auto gw =
          sepconv::test::pointwise_weight_grad(test, p, nhwc, nhwc ? gy_nhwc.data() : gy.data(),
                                               nhwc ? x_nhwc.data() : x.data(), threads);
      expect_close(isa, name, p, gw, gw_ref, double(m));
      if (threads == 1) {
        first = gw;
      } else if (gw != first) {
        std::printf(
            "FAIL %s %s: %ld threads' split differs from 1 thread's | Cin=%ld Cout=%ld N=%ld "
            "P=%ld\n",
            isa, name, (long)threads, (long)p.in_channels, (long)p.out_channels, (long)p.batch,
            (long)p.pixels);
        ++failures;
      }
    }
  }
}

}  // namespace

int main() {
  std::vector<PointwiseParams> cases;
  for (int64_t cin : {1, 3, 8, 17, 64})
    for (int64_t cout : {1, 4, 7, 8, 15, 16, 17, 32, 33, 40})
      for (int64_t pixels : {1, 5, 16, 31, 33, 130}) cases.push_back({2, cin, cout, pixels});
  cases.push_back({1, 96, 24, 56 * 56});
  cases.push_back({1, 320, 1280, 49});  // several depth blocks (kGemmKc = 256)
  cases.push_back({3, 24, 144, 300});   // several pixel blocks (kPointwisePixelBlock = 256)
  cases.push_back({5, 40, 200, 1});     // 1x1 planes (squeeze-excitation), rows > tile rows
  cases.push_back({2, 600, 100, 37});   // depth not a multiple of the block, rows > kGemmMc
  cases.push_back({2, 64, 130, 33});    // channel blocks of the column split: 64 + 64 + 2
  cases.push_back({1, 3, 5, 2100});     // columns beyond kGemmNc (NHWC: rows)
  // weight gradients folded over image groups (kFloatTerms), computed as dW^T (Cin < Cout) and dW
  cases.push_back({3, 16, 40, 1500});
  cases.push_back({3, 40, 16, 1500});
  cases.push_back({0, 8, 24, 10});  // an empty batch: dW = 0
  // Every case's forward with one of the activations (the inference ops' epilogue), cycling.
  for (size_t i = 0; i < cases.size(); ++i) cases[i].activation = sepconv::test::activation_for(i);
  int tested = 0;
  for (const std::string& isa : sepconv::cpu::usable_isas()) {
    sepconv::cpu::set_active_isa(isa);
    const int before = failures;  // each line reports its own ISA's cases
    for (const auto& p : cases)
      check_case(isa.c_str(), sepconv::cpu::pointwise_kernels<float>(), p);
    ++tested;
    std::printf("%-7s %zu cases x 6 kernels: %s\n", isa.c_str(), cases.size(),
                failures > before ? "FAILURES" : "ok");
  }
  std::printf("%d ISA(s) tested against the naive loops, %d failure(s)\n", tested, failures);
  return failures == 0 && tested > 0 ? 0 : 1;
}
