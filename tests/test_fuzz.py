"""Property-based search of the argument space (hypothesis): the three functional ops against
F.conv2d in float64, forward and every gradient, on every CPU ISA this machine runs.

Each example draws one configuration: N, C, depth multiplier, H and W (1..64, non-square),
kernel sizes (1..11, even and non-square), stride, padding (int, pair, 'same', 'valid'),
dilation, biases, float32/float64, the input's memory format or non-contiguous view, the
weight's view, grad_output's layout, and the ISA. A work budget bounds each example's size, so
the run's time is bounded by max_examples. The search is derandomized (the same examples every
run, no example database) and every tensor comes from the case's seed, so a failure is
reproduced by the one line it prints. SEPCONV_FUZZ_SCALE multiplies the example counts (e.g. 10
for a long local search; CI runs 1: 10,000 configurations in all).
"""

import dataclasses
import math
import os
from typing import Tuple, Union

import pytest
import torch

import sepconv_ext as sc

import reference as R
from reference import layout_expect, run_check

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (pip install hypothesis)")
st = hypothesis.strategies

ISAS = sc.backend_info()["cpu_isas"]
SCALE = float(os.environ.get("SEPCONV_FUZZ_SCALE", "1"))
# Multiply-accumulates of one forward (N * C*M * Ho*Wo * kH*kW, plus the pointwise GEMM): keeps
# every example around a millisecond or two, so the counts below are a few minutes of CI.
WORK_BUDGET = 1_000_000
EXAMPLES = {"depthwise": 4000, "pointwise": 2500, "separable": 3500}

IntOrPair = Union[int, Tuple[int, int]]
Padding = Union[int, Tuple[int, int], str]


@dataclasses.dataclass(frozen=True)
class FuzzCase:
    """One configuration; its repr is the constructor call that rebuilds it (for the repro line)."""

    op: str  # 'depthwise', 'pointwise', 'separable'
    isa: str
    N: int
    C: int  # input channels
    H: int
    W: int
    dtype: torch.dtype
    layout: str  # reference.LAYOUTS
    grad: str  # reference.GRAD_KINDS
    seed: int
    M: int = 1  # depth multiplier (depthwise, separable)
    kernel: Tuple[int, int] = (1, 1)
    stride: IntOrPair = 1
    padding: Padding = 0
    dilation: IntOrPair = 1
    Cout: int = 1  # pointwise output channels (pointwise, separable)
    wlayout: str = "contig"
    weight_2d: bool = False  # pointwise weight given as (Cout, Cin)
    dw_bias: bool = False
    pw_bias: bool = False

    def out_hw(self) -> Tuple[int, int]:
        if self.op == "pointwise":
            return self.H, self.W
        t, b, l, r = R.resolve_padding(self.padding, self.H, self.W, self.kernel, self.stride, self.dilation)
        (kH, kW), (sH, sW), (dH, dW) = self.kernel, R.pair(self.stride), R.pair(self.dilation)
        return R.out_size(self.H, kH, sH, dH, t, b), R.out_size(self.W, kW, sW, dW, l, r)

    def call(self) -> str:
        """The call under test, in words."""
        x = f"x{(self.N, self.C, self.H, self.W)} {str(self.dtype)[6:]} {self.layout}"
        geometry = f"stride={self.stride!r}, padding={self.padding!r}, dilation={self.dilation!r}"
        dw = f"dw_weight{(self.C * self.M, 1, *self.kernel)} {self.wlayout}"
        pw = f"pw_weight{(self.Cout, self.C * self.M) + (() if self.weight_2d else (1, 1))}"
        if self.op == "depthwise":
            args = f"{x}, {dw}, bias={self.dw_bias}, {geometry}"
        elif self.op == "pointwise":
            args = f"{x}, {pw} {self.wlayout}, bias={self.pw_bias}"
        else:
            args = f"{x}, {dw}, {pw}, dw_bias={self.dw_bias}, pw_bias={self.pw_bias}, {geometry}"
        return f"sc.{self.op}_conv2d({args}) on {self.isa}, grad_output {self.grad}"


# --------------------------------------------------------------------------- strategies
def _pair_or_int(draw, values):
    """An int, or (h, w) drawn from values; h == w given as a pair sometimes too."""
    h = draw(values)
    if draw(st.booleans()):
        return h
    return (h, draw(values))


@st.composite
def spatial_cases(draw, op: str) -> FuzzCase:
    """A depthwise or separable configuration whose output is not empty."""
    kH = draw(st.integers(1, 11))
    kW = draw(st.one_of(st.just(kH), st.integers(1, 11)))
    stride = _pair_or_int(draw, st.integers(1, 3))
    dilation = _pair_or_int(draw, st.sampled_from([1, 1, 2, 3]))
    (sH, sW), (dH, dW) = R.pair(stride), R.pair(dilation)
    effH, effW = dH * (kH - 1) + 1, dW * (kW - 1) + 1
    padding = draw(
        st.one_of(  # 'same' with stride > 1: TensorFlow SAME (functional.py)
            st.sampled_from(["same", "valid"]),
            st.integers(0, min(max(effH, effW) // 2 + 1, 6)),
            st.tuples(st.integers(0, effH // 2 + 1), st.integers(0, effW // 2 + 1)),
        )
    )
    t, b, l, r = (0, 0, 0, 0) if isinstance(padding, str) else R.pad4(R.pair(padding))
    min_h = 1 if padding == "same" else max(1, effH - t - b)
    min_w = 1 if padding == "same" else max(1, effW - l - r)
    hypothesis.assume(min_h <= 64 and min_w <= 64)
    H = draw(st.integers(min_h, 64))
    W = draw(st.integers(min_w, 64))
    N = draw(st.sampled_from([1, 2, 3, 1, 2, 0]))
    M = draw(st.sampled_from([1, 1, 2, 3]))
    pixels = max(1, N) * max(1, -(-(H + t + b) // sH)) * max(1, -(-(W + l + r) // sW)) * kH * kW * M
    c_max = max(1, min(40, WORK_BUDGET // pixels))
    C = draw(st.integers(1, c_max))
    Cout = draw(st.integers(1, max(1, min(40, WORK_BUDGET // max(1, N * H * W * C * M))))) if op == "separable" else 1
    return FuzzCase(
        op=op,
        isa=draw(st.sampled_from(ISAS)),
        N=N,
        C=C,
        H=H,
        W=W,
        M=M,
        kernel=(kH, kW),
        stride=stride,
        padding=padding,
        dilation=dilation,
        Cout=Cout,
        dtype=draw(st.sampled_from([torch.float64, torch.float32])),
        layout=draw(st.sampled_from(R.LAYOUTS)),
        wlayout=draw(st.sampled_from(["contig", "slice", "transpose"])),
        grad=draw(st.sampled_from(R.GRAD_KINDS)),
        weight_2d=op == "separable" and draw(st.booleans()),
        dw_bias=draw(st.booleans()),
        pw_bias=op == "separable" and draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@st.composite
def pointwise_cases(draw) -> FuzzCase:
    H, W = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    N = draw(st.sampled_from([1, 2, 3, 1, 2, 0]))
    pixels = max(1, N) * H * W
    Cin = draw(st.integers(1, max(1, min(80, WORK_BUDGET // pixels))))
    Cout = draw(st.integers(1, max(1, min(80, WORK_BUDGET // (pixels * Cin)))))
    return FuzzCase(
        op="pointwise",
        isa=draw(st.sampled_from(ISAS)),
        N=N,
        C=Cin,
        H=H,
        W=W,
        Cout=Cout,
        dtype=draw(st.sampled_from([torch.float64, torch.float32])),
        layout=draw(st.sampled_from(R.LAYOUTS)),
        wlayout=draw(st.sampled_from(["contig", "slice"])),
        grad=draw(st.sampled_from(R.GRAD_KINDS)),
        weight_2d=draw(st.booleans()),
        pw_bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


# --------------------------------------------------------------------------- the check
def check(case: FuzzCase) -> None:
    """case's op vs the F.conv2d reference, forward and backward, on case.isa."""
    g = torch.Generator().manual_seed(case.seed)
    x = R.make_input((case.N, case.C, case.H, case.W), case.dtype, case.layout, g)
    CM = case.C * case.M
    dw = R.make_weight((CM, 1, *case.kernel), case.dtype, case.wlayout, g)
    pw_shape = (case.Cout, CM) if case.weight_2d else (case.Cout, CM, 1, 1)
    pw = R.make_weight(pw_shape, case.dtype, case.wlayout if case.op == "pointwise" else "contig", g)
    db = torch.randn(CM, dtype=case.dtype, generator=g) if case.dw_bias else None
    pb = torch.randn(case.Cout, dtype=case.dtype, generator=g) if case.pw_bias else None
    geometry = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    Ho, Wo = case.out_hw()
    kk, red = case.kernel[0] * case.kernel[1], case.N * Ho * Wo
    if case.op == "depthwise":
        fn = lambda x, w, b: sc.depthwise_conv2d(x, w, b, **geometry)  # noqa: E731
        ref = lambda x, w, b: R.ref_depthwise_conv2d(x, w, b, **geometry)  # noqa: E731
        inputs, red_out, red_grads = [x, dw, db], kk, [kk * case.M, red, red]
    elif case.op == "pointwise":
        fn, ref = sc.pointwise_conv2d, R.ref_pointwise_conv2d
        inputs, red_out, red_grads = [x, pw, pb], case.C, [case.Cout, red, red]
    else:
        fn = lambda x, dw, pw, db, pb: sc.separable_conv2d(x, dw, pw, db, pb, **geometry)  # noqa: E731
        ref = lambda x, dw, pw, db, pb: R.ref_separable_conv2d(x, dw, pw, db, pb, **geometry)  # noqa: E731
        inputs, red_out = [x, dw, pw, db, pb], kk * CM
        red_grads = [kk * case.M * case.Cout, red * case.Cout, red, red * case.Cout, red]
    prev = sc.set_cpu_isa(case.isa)
    try:
        out = run_check(
            fn,
            ref,
            inputs,
            dtype=case.dtype,
            grad_kind=case.grad,
            red_out=red_out,
            red_grads=red_grads,
            layout=layout_expect(case.layout, case.C, case.H, case.W, case.N),
            gen=g,
        )
    except Exception as e:
        raise AssertionError(
            f"{case.call()}: {e}\nreproduce: cd tests && python -c "
            f'"import torch; from test_fuzz import *; check({case!r})"'
        ) from e
    finally:
        sc.set_cpu_isa(prev)
    Cout = {"depthwise": CM, "pointwise": case.Cout, "separable": case.Cout}[case.op]
    assert tuple(out.shape) == (case.N, Cout, Ho, Wo), case.call()


def _settings(op):
    return hypothesis.settings(
        max_examples=max(1, math.ceil(EXAMPLES[op] * SCALE)),
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much],
    )


@_settings("depthwise")
@hypothesis.given(spatial_cases("depthwise"))
def test_fuzz_depthwise(case):
    check(case)


@_settings("pointwise")
@hypothesis.given(pointwise_cases())
def test_fuzz_pointwise(case):
    check(case)


@_settings("separable")
@hypothesis.given(spatial_cases("separable"))
def test_fuzz_separable(case):
    check(case)
