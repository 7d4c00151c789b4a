// Torch-free test of the fused separable forward and backward (separable.h): for every ISA this
// build has and this CPU runs, both layouts and several band heights (one row, a few rows, the
// default, the whole image), the fused result must match the unfused composition of the portable
// depthwise and pointwise kernels. Shapes vary channels around the vector widths, borders,
// strides, dilations, asymmetric padding and the depth multiplier.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../dispatch.h"
#include "../separable.h"
#include "test_util.h"

using namespace sepconv::cpu;

namespace {

sepconv::test::Rng rng(0xD1B54A32D192ED03ull);
int failures = 0;

struct Problem {
  DepthwiseParams p;
  int64_t out_channels;
};

Problem random_problem() {
  DepthwiseParams p{};
  p.batch = rng.integer(1, 2);
  p.channels = std::vector<int64_t>{1, 3, 4, 8, 9, 16, 17}[rng.integer(0, 6)];
  p.multiplier = rng.integer(1, 2);
  p.kernel_h = rng.integer(1, 5), p.kernel_w = rng.integer(1, 5);
  p.stride_h = rng.integer(1, 3), p.stride_w = rng.integer(1, 3);
  p.dilation_h = rng.integer(1, 2), p.dilation_w = rng.integer(1, 2);
  p.pad_top = rng.integer(0, 3), p.pad_left = rng.integer(0, 3);
  const int64_t pad_bottom = rng.integer(0, 3), pad_right = rng.integer(0, 3);
  const int64_t span_h = (p.kernel_h - 1) * p.dilation_h + 1,
                span_w = (p.kernel_w - 1) * p.dilation_w + 1;
  p.in_h = std::max<int64_t>(rng.integer(1, 24), span_h - p.pad_top - pad_bottom);
  p.in_w = std::max<int64_t>(rng.integer(1, 24), span_w - p.pad_left - pad_right);
  p.out_h = (p.in_h + p.pad_top + pad_bottom - span_h) / p.stride_h + 1;
  p.out_w = (p.in_w + p.pad_left + pad_right - span_w) / p.stride_w + 1;
  return {p, std::vector<int64_t>{1, 5, 8, 16, 17, 33}[rng.integer(0, 5)]};
}

template <typename T>
void check(const char* isa, const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
           const Problem& pr) {
  const DepthwiseParams& p = pr.p;
  const int64_t mid = p.out_channels(), cout = pr.out_channels, taps = p.kernel_h * p.kernel_w;
  const int64_t in_px = p.in_h * p.in_w, out_px = p.out_h * p.out_w;
  const auto x = rng.vector<T>(p.batch * p.channels * in_px);
  const auto w_dw = rng.vector<T>(mid * taps), b_dw = rng.vector<T>(mid);
  const auto w_pw = rng.vector<T>(cout * mid), b_pw = rng.vector<T>(cout);

  // Reference: the portable kernels, unfused, NCHW.
  const auto& dw_ref = depthwise_scalar_kernels<T>();
  const auto& pw_ref = pointwise_scalar_kernels<T>();
  std::vector<T> inter(p.batch * mid * out_px), want(p.batch * cout * out_px);
  const auto dw_ref_packed =
      sepconv::test::packed_depthwise_forward(dw_ref, p, false, w_dw.data(), b_dw.data());
  dw_ref.forward_nchw(p, x.data(), dw_ref_packed.data(), inter.data(), 0, p.batch * mid);
  const PointwiseParams pp{p.batch, mid, cout, out_px};
  const auto w_pw_packed =
      sepconv::test::packed_pointwise_weight(pw_ref, pp, false, w_pw.data(), mid, 1);
  pw_ref.forward_nchw(pp, inter.data(), w_pw_packed.data(), b_pw.data(), want.data(), 0,
                      pointwise_nchw_units(pp));
  const auto want_nhwc = sepconv::test::to_nhwc(want, p.batch, cout, out_px);

  // NHWC operands: input, transposed pointwise weight.
  const auto x_nhwc = sepconv::test::to_nhwc(x, p.batch, p.channels, in_px);
  const auto w_pw_t = sepconv::test::to_nhwc(w_pw, 1, cout, mid);
  // The fused kernels' depthwise weights, as the op packs them: once per call, for every band.
  const auto dw_nchw =
      sepconv::test::packed_depthwise_forward(dw, p, false, w_dw.data(), b_dw.data());
  const auto dw_nhwc =
      sepconv::test::packed_depthwise_forward(dw, p, true, w_dw.data(), b_dw.data());
  const SeparableWeights<T> nchw_w{dw_nchw.data(), nullptr, w_pw.data(), b_pw.data()};
  const SeparableWeights<T> nhwc_w{dw_nhwc.data(), nullptr, w_pw_t.data(), b_pw.data()};

  const double tol = 1e-5 * double(taps + mid) + 1e-6;  // float sums of ~taps + mid terms
  const auto compare = [&](const char* layout, int64_t band_rows, const std::vector<T>& got,
                           const std::vector<T>& expected) {
    for (size_t i = 0; i < expected.size(); ++i) {
      if (std::fabs(double(got[i]) - double(expected[i])) <= tol) continue;
      std::printf(
          "FAIL %s %s band_rows=%ld at %zu: got %.7g want %.7g | N=%ld C=%ld M=%ld "
          "Cout=%ld in=%ldx%ld out=%ldx%ld k=%ldx%ld s=%ld,%ld d=%ld,%ld pad=%ld,%ld\n",
          isa, layout, (long)band_rows, i, double(got[i]), double(expected[i]), (long)p.batch,
          (long)p.channels, (long)p.multiplier, (long)cout, (long)p.in_h, (long)p.in_w,
          (long)p.out_h, (long)p.out_w, (long)p.kernel_h, (long)p.kernel_w, (long)p.stride_h,
          (long)p.stride_w, (long)p.dilation_h, (long)p.dilation_w, (long)p.pad_top,
          (long)p.pad_left);
      ++failures;
      return;
    }
  };
  const SeparableParams chosen = separable_params(p, cout);
  for (int64_t band_rows : {int64_t{1}, int64_t{2}, int64_t{3}, p.out_h, chosen.band_rows}) {
    const SeparableParams s{p, cout, std::min(band_rows, p.out_h)};
    const int64_t units = separable_units(s), split = units / 2;  // two calls, as two threads
    std::vector<T> got(want.size()), got_nhwc(want.size());
    separable_forward_nchw(dw, pw, s, x.data(), nchw_w, got.data(), 0, split);
    separable_forward_nchw(dw, pw, s, x.data(), nchw_w, got.data(), split, units);
    separable_forward_nhwc(dw, pw, s, x_nhwc.data(), nhwc_w, got_nhwc.data(), 0, split);
    separable_forward_nhwc(dw, pw, s, x_nhwc.data(), nhwc_w, got_nhwc.data(), split, units);
    compare("nchw", s.band_rows, got, want);
    compare("nhwc", s.band_rows, got_nhwc, want_nhwc);
  }
}

// The fused backward against the unfused composition of the portable kernels (NCHW): every
// gradient, the weight sums of two "threads" (unit ranges) added as the ATen kernel does.
template <typename T>
void check_backward(const char* isa, const DepthwiseKernels<T>& dw, const PointwiseKernels<T>& pw,
                    const Problem& pr) {
  const DepthwiseParams& p = pr.p;
  const int64_t C = p.channels, mid = p.out_channels(), cout = pr.out_channels;
  const int64_t taps = p.kernel_h * p.kernel_w, in_px = p.in_h * p.in_w, out_px = p.out_h * p.out_w;
  const auto x = rng.vector<T>(p.batch * C * in_px), gy = rng.vector<T>(p.batch * cout * out_px);
  const auto w_dw = rng.vector<T>(mid * taps), b_dw = rng.vector<T>(mid);
  const auto w_pw = rng.vector<T>(cout * mid);
  const auto w_pw_t = sepconv::test::to_nhwc(w_pw, 1, cout, mid);  // (mid, Cout)

  const auto& dw_ref = depthwise_scalar_kernels<T>();
  const auto& pw_ref = pointwise_scalar_kernels<T>();
  std::vector<T> inter(p.batch * mid * out_px), gmid(p.batch * mid * out_px);
  std::vector<T> want_gx(x.size()), want_gdw(mid * taps), want_gdb(mid, T(0));
  const auto dw_ref_packed =
      sepconv::test::packed_depthwise_forward(dw_ref, p, false, w_dw.data(), b_dw.data());
  dw_ref.forward_nchw(p, x.data(), dw_ref_packed.data(), inter.data(), 0, p.batch * mid);
  const PointwiseParams pp{p.batch, mid, cout, out_px}, pp_t{p.batch, cout, mid, out_px};
  const auto want_gpw =
      sepconv::test::pointwise_weight_grad(pw_ref, pp, false, gy.data(), inter.data(), 1);
  const auto w_pw_t_packed =
      sepconv::test::packed_pointwise_weight(pw_ref, pp_t, false, w_pw_t.data(), cout, 1);
  pw_ref.forward_nchw(pp_t, gy.data(), w_pw_t_packed.data(), nullptr, gmid.data(), 0,
                      pointwise_nchw_units(pp_t));
  const auto dw_ref_backward =
      sepconv::test::packed_depthwise_backward_input(dw_ref, p, false, w_dw.data());
  dw_ref.backward_input_nchw(p, gmid.data(), dw_ref_backward.data(), want_gx.data(), 0,
                             p.batch * C);
  dw_ref.backward_weight_nchw(p, gmid.data(), x.data(), want_gdw.data(), 0, mid);
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t oc = 0; oc < mid; ++oc)
      for (int64_t i = 0; i < out_px; ++i) want_gdb[oc] += gmid[(n * mid + oc) * out_px + i];

  const auto x_nhwc = sepconv::test::to_nhwc(x, p.batch, C, in_px);
  const auto gy_nhwc = sepconv::test::to_nhwc(gy, p.batch, cout, out_px);
  // The depthwise weights as the op packs them: once per call, for every band.
  const auto dw_nchw =
      sepconv::test::packed_depthwise_forward(dw, p, false, w_dw.data(), b_dw.data());
  const auto dw_nhwc =
      sepconv::test::packed_depthwise_forward(dw, p, true, w_dw.data(), b_dw.data());
  const auto dw_nchw_backward =
      sepconv::test::packed_depthwise_backward_input(dw, p, false, w_dw.data());
  const auto dw_nhwc_backward =
      sepconv::test::packed_depthwise_backward_input(dw, p, true, w_dw.data());
  const SeparableWeights<T> nchw_w{dw_nchw.data(), dw_nchw_backward.data(), w_pw_t.data(), nullptr};
  const SeparableWeights<T> nhwc_w{dw_nhwc.data(), dw_nhwc_backward.data(), w_pw.data(), nullptr};
  const std::vector<T> want_gx_nhwc = sepconv::test::to_nhwc(want_gx, p.batch, C, in_px);
  const std::vector<T> want_gdw_packed = sepconv::test::to_nhwc(want_gdw, 1, mid, taps);

  // float sums: dmid over Cout terms, then dX over taps * M, dW over N * Ho * Wo
  const double terms = double(cout + taps * p.multiplier) * double(p.batch * out_px + 1);
  const double tol = 2e-7 * terms + 1e-5;
  const auto compare = [&](const char* what, int64_t band_rows, const auto& got, const auto& want) {
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::fabs(double(got[i]) - double(want[i])) <= tol * (1 + std::fabs(double(want[i]))))
        continue;
      std::printf(
          "FAIL backward %s %s band_rows=%ld at %zu: got %.7g want %.7g | N=%ld C=%ld "
          "M=%ld Cout=%ld in=%ldx%ld out=%ldx%ld k=%ldx%ld s=%ld,%ld d=%ld,%ld pad=%ld,%ld\n",
          isa, what, (long)band_rows, i, double(got[i]), double(want[i]), (long)p.batch, (long)C,
          (long)p.multiplier, (long)cout, (long)p.in_h, (long)p.in_w, (long)p.out_h, (long)p.out_w,
          (long)p.kernel_h, (long)p.kernel_w, (long)p.stride_h, (long)p.stride_w,
          (long)p.dilation_h, (long)p.dilation_w, (long)p.pad_top, (long)p.pad_left);
      ++failures;
      return;
    }
  };
  const SeparableParams chosen = separable_backward_params(p, cout);
  for (int64_t band_rows : {int64_t{1}, int64_t{2}, int64_t{3}, p.out_h, chosen.band_rows}) {
    const SeparableParams s{p, cout, std::min(band_rows, p.out_h)};
    const int64_t units = separable_units(s), split = units / 2;
    for (const bool nhwc : {false, true}) {
      std::vector<T> gx(x.size(), T(7));  // every element must be written
      std::vector<double> gpw(cout * mid, 0.0), gdw(mid * taps, 0.0), gdb(mid, 0.0);
      std::vector<double> gpw2 = gpw, gdw2 = gdw, gdb2 = gdb;
      const SeparableGradSums first{gpw.data(), gdw.data(), gdb.data()};
      const SeparableGradSums second{gpw2.data(), gdw2.data(), gdb2.data()};
      const auto run = nhwc ? separable_backward_nhwc<T> : separable_backward_nchw<T>;
      const T* xin = nhwc ? x_nhwc.data() : x.data();
      const T* gyin = nhwc ? gy_nhwc.data() : gy.data();
      const SeparableWeights<T>& wts = nhwc ? nhwc_w : nchw_w;
      run(dw, pw, s, xin, gyin, wts, gx.data(), first, 0, split);
      run(dw, pw, s, xin, gyin, wts, gx.data(), second, split, units);
      for (size_t i = 0; i < gpw.size(); ++i) gpw[i] += gpw2[i];
      for (size_t i = 0; i < gdw.size(); ++i) gdw[i] += gdw2[i];
      for (size_t i = 0; i < gdb.size(); ++i) gdb[i] += gdb2[i];
      const std::string tag = std::string(nhwc ? "nhwc " : "nchw ");
      compare((tag + "grad_input").c_str(), s.band_rows, gx, nhwc ? want_gx_nhwc : want_gx);
      compare((tag + "grad_depthwise").c_str(), s.band_rows, gdw,
              nhwc ? want_gdw_packed : want_gdw);
      compare((tag + "grad_depthwise_bias").c_str(), s.band_rows, gdb, want_gdb);
      compare((tag + "grad_pointwise").c_str(), s.band_rows, gpw, want_gpw);
    }
  }
}

}  // namespace

int main() {
  std::vector<Problem> problems;
  for (int i = 0; i < 150; ++i) problems.push_back(random_problem());
  // Bands of the real layers: the default band height splits these images.
  DepthwiseParams big{};
  big.batch = 1, big.channels = 144, big.multiplier = 1, big.in_h = big.in_w = 56;
  big.kernel_h = big.kernel_w = 3, big.stride_h = big.stride_w = 2;
  big.pad_top = big.pad_left = 1, big.dilation_h = big.dilation_w = 1;
  big.out_h = big.out_w = 28;
  problems.push_back({big, 24});
  big.stride_h = big.stride_w = 1, big.out_h = big.out_w = 56, big.channels = 32;
  problems.push_back({big, 16});

  int tested = 0;
  for (const std::string& isa : usable_isas()) {
    set_active_isa(isa);
    const int before = failures;  // each line reports its own ISA's problems
    for (const auto& pr : problems) {
      check<float>(isa.c_str(), depthwise_kernels<float>(), pointwise_kernels<float>(), pr);
      check_backward<float>(isa.c_str(), depthwise_kernels<float>(), pointwise_kernels<float>(),
                            pr);
    }
    ++tested;
    std::printf("%-7s %zu problems x 5 band heights x 2 layouts, forward and backward: %s\n",
                isa.c_str(), problems.size(), failures > before ? "FAILURES" : "ok");
  }
  const int before_f64 = failures;
  for (int i = 0; i < 30; ++i) {  // float64 runs the portable kernels through the same fusion
    check<double>("scalar-f64", depthwise_scalar_kernels<double>(),
                  pointwise_scalar_kernels<double>(), problems[i]);
    check_backward<double>("scalar-f64", depthwise_scalar_kernels<double>(),
                           pointwise_scalar_kernels<double>(), problems[i]);
  }
  std::printf("float64 fused vs unfused: %s\n", failures > before_f64 ? "FAILURES" : "ok");
  std::printf("%d ISA(s) tested against scalar, %d failure(s)\n", tested, failures);
  return failures == 0 && tested > 0 ? 0 : 1;
}
