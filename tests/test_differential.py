"""Seeded differential tests: torch.ops.sepconv.* and the functional API vs F.conv2d (reference.py).

Every check runs forward and backward (input, weight, bias grads), compares against a float64
reference computed with torch autograd through F.pad + F.conv2d, checks the output layout follows
the input layout, and checks that no input (nor grad_output) was modified.
"""

import dataclasses
import random

import pytest
import torch

import sepconv_ext as sc

import reference as R
from reference import layout_expect, run_check

ops = torch.ops.sepconv
F32, F64 = torch.float32, torch.float64


def _dt(dtype):
    return "f64" if dtype == F64 else "f32"


# --------------------------------------------------------------------------- depthwise
def dw_tensors(case: R.DWCase):
    g = torch.Generator().manual_seed(case.seed)
    x = R.make_input((case.N, case.C, case.H, case.W), case.dtype, case.layout, g)
    w = R.make_weight((case.C * case.M, 1, case.kH, case.kW), case.dtype, case.wlayout, g)
    b = torch.randn(case.C * case.M, dtype=case.dtype, generator=g) if case.bias else None
    return x, w, b, g


def check_dw_op(case: R.DWCase):
    x, w, b, g = dw_tensors(case)
    Ho, Wo = case.out_hw
    st, pad, dil = list(case.stride), list(case.padding), list(case.dilation)
    out = run_check(
        lambda x, w, b: ops.depthwise_conv2d(x, w, b, st, pad, dil),
        lambda x, w, b: R.ref_depthwise_conv2d(x, w, b, st, pad, dil),
        [x, w, b],
        dtype=case.dtype,
        grad_kind=case.grad,
        red_out=case.kH * case.kW,
        red_grads=[case.kH * case.kW * case.M, case.N * Ho * Wo, case.N * Ho * Wo],
        names=["input", "weight", "bias"],
        layout=layout_expect(case.layout, case.C, case.H, case.W),
        gen=g,
    )
    assert tuple(out.shape) == (case.N, case.C * case.M, Ho, Wo)


DW_RANDOM = R.random_dw_cases(90, seed=1)


@pytest.mark.parametrize("case", DW_RANDOM, ids=lambda c: c.id)
def test_depthwise_op_random(case):
    check_dw_op(case)


DW_RANDOM_BIGK = R.random_dw_cases(8, seed=2, big_kernel=True)


@pytest.mark.parametrize("case", DW_RANDOM_BIGK, ids=lambda c: c.id)
def test_depthwise_op_random_big_kernel(case):
    check_dw_op(case)


def _case(
    C=3,
    H=8,
    W=8,
    k=3,
    M=1,
    N=2,
    stride=1,
    pad=None,
    dil=1,
    bias=True,
    dtype=F32,
    layout="nchw",
    wlayout="contig",
    grad="contig",
    seed=0,
):
    kH, kW = R.pair(k)
    if pad is None:
        pad = (kH // 2, kH // 2, kW // 2, kW // 2)
    return R.DWCase(
        N=N,
        C=C,
        H=H,
        W=W,
        M=M,
        kH=kH,
        kW=kW,
        stride=R.pair(stride),
        padding=R.pad4(pad),
        dilation=R.pair(dil),
        bias=bias,
        dtype=dtype,
        layout=layout,
        wlayout=wlayout,
        grad=grad,
        seed=seed,
    )


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("C", R.CHANNELS, ids=lambda c: f"C{c}")
def test_depthwise_channels_kernels_f32(C, k, layout):
    # channel counts below / at / above the SIMD widths, every kernel size 1..7 incl. even ones
    check_dw_op(
        _case(C=C, H=9, W=10, k=k, pad=(k // 2, (k - 1) // 2, k // 2, (k - 1) // 2), layout=layout, seed=C * 10 + k)
    )


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("k", [1, 3, 4, 7], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("C", [1, 8, 17, 33], ids=lambda c: f"C{c}")
def test_depthwise_channels_kernels_f64(C, k, layout):
    check_dw_op(_case(C=C, H=8, W=7, k=k, dtype=F64, layout=layout, seed=C * 10 + k))


@pytest.mark.parametrize("dtype", [F32, F64], ids=_dt)
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("k", [11, 15, 31], ids=lambda k: f"k{k}")
def test_depthwise_large_kernels(k, layout, dtype):
    C = 17 if k < 31 else 5
    check_dw_op(_case(C=C, N=2, H=k + 4, W=k + 2, k=k, layout=layout, dtype=dtype, seed=k))


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize(
    "k,stride,dil,pad",
    [
        ((1, 7), (1, 2), 1, (0, 0, 3, 3)),
        ((7, 1), (2, 1), 1, (3, 3, 0, 0)),
        ((2, 4), (1, 1), (2, 1), (1, 0, 2, 1)),
        ((3, 5), (3, 1), (1, 2), (0, 2, 4, 1)),
        ((5, 3), (2, 3), (3, 1), (2, 2, 1, 1)),
        ((4, 4), (2, 2), 1, (1, 2, 1, 2)),
        ((6, 2), (1, 3), (1, 3), (3, 2, 0, 3)),
    ],
    ids=lambda v: "x".join(map(str, R.pair(v) if not isinstance(v, tuple) or len(v) != 4 else v)),
)
def test_depthwise_nonsquare(k, stride, dil, pad, layout):
    check_dw_op(
        _case(C=15, H=11, W=13, k=k, stride=stride, dil=dil, pad=pad, layout=layout, M=2, seed=hash((k, stride)) % 1000)
    )


@pytest.mark.parametrize("dil", [1, 2, 3], ids=lambda d: f"d{d}")
@pytest.mark.parametrize("stride", [1, 2, 3], ids=lambda s: f"s{s}")
@pytest.mark.parametrize("M", [1, 2, 3], ids=lambda m: f"M{m}")
def test_depthwise_multiplier_stride_dilation(M, stride, dil):
    dtype = F64 if (M + stride + dil) % 2 else F32
    layout = "cl" if (M * stride * dil) % 2 else "nchw"
    check_dw_op(
        _case(
            C=8,
            H=12,
            W=11,
            k=3,
            M=M,
            stride=stride,
            dil=dil,
            pad=(dil, dil, dil, dil),
            dtype=dtype,
            layout=layout,
            seed=M * 100 + stride * 10 + dil,
        )
    )


@pytest.mark.parametrize("grad", R.GRAD_KINDS)
@pytest.mark.parametrize("layout", R.LAYOUTS)
@pytest.mark.parametrize("dtype", [F32, F64], ids=_dt)
def test_depthwise_layouts_and_grad_layouts(dtype, layout, grad):
    check_dw_op(
        _case(
            C=17,
            H=7,
            W=9,
            k=3,
            M=2,
            stride=(1, 2),
            pad=(1, 0, 2, 1),
            layout=layout,
            grad=grad,
            wlayout="transpose" if layout == "slice" else "contig",
            dtype=dtype,
        )
    )


@pytest.mark.parametrize("wlayout", ["slice", "transpose", "cl"])
def test_depthwise_noncontiguous_weight(wlayout):
    check_dw_op(_case(C=16, H=8, W=8, k=(3, 5), M=2, layout="cl", wlayout=wlayout, seed=7))


@pytest.mark.parametrize("C,H,W", [(1, 6, 6), (5, 1, 1), (1, 1, 1), (4, 1, 6)], ids=lambda v: str(v))
def test_depthwise_degenerate_channels_last(C, H, W):
    # layout is ambiguous here; only values are checked
    check_dw_op(_case(C=C, H=H, W=W, k=1 if H == 1 else 3, pad=0, layout="cl", M=2))


def test_depthwise_padding_larger_than_kernel():
    check_dw_op(_case(C=3, H=4, W=5, k=3, pad=(4, 0, 1, 5), M=1))


# --------------------------------------------------------------------------- N = 0
@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_empty_batch_depthwise(layout):
    x = R.make_input((0, 4, 6, 7), F32, layout).requires_grad_()
    w = torch.randn(8, 1, 3, 3, requires_grad=True)
    b = torch.randn(8, requires_grad=True)
    out = ops.depthwise_conv2d(x, w, b, [2, 1], [1, 1, 0, 2], [1, 1])
    assert tuple(out.shape) == (0, 8, 3, 7)
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert torch.equal(w.grad, torch.zeros_like(w))
    assert torch.equal(b.grad, torch.zeros_like(b))
    out2 = sc.depthwise_conv2d(x, w, b, stride=1, padding="same")
    assert tuple(out2.shape) == (0, 8, 6, 7)


@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_empty_batch_pointwise_and_separable(layout):
    x = R.make_input((0, 4, 5, 5), F64, layout).requires_grad_()
    pw = torch.randn(6, 4, 1, 1, dtype=F64, requires_grad=True)
    pb = torch.randn(6, dtype=F64, requires_grad=True)
    out = ops.pointwise_conv2d(x, pw, pb)
    assert tuple(out.shape) == (0, 6, 5, 5)
    out.sum().backward()
    assert torch.equal(pw.grad, torch.zeros_like(pw)) and torch.equal(pb.grad, torch.zeros_like(pb))

    dw = torch.randn(8, 1, 3, 3, dtype=F64, requires_grad=True)
    pw2 = torch.randn(3, 8, 1, 1, dtype=F64, requires_grad=True)
    out = ops.separable_conv2d(x, dw, pw2, None, None, [2, 2], [1, 1, 1, 1], [1, 1])
    assert tuple(out.shape) == (0, 3, 3, 3)
    out.sum().backward()
    assert torch.equal(dw.grad, torch.zeros_like(dw)) and torch.equal(pw2.grad, torch.zeros_like(pw2))
    out = sc.separable_conv2d(x, dw, pw2, padding=1)
    assert tuple(out.shape) == (0, 3, 5, 5)


# --------------------------------------------------------------------------- functional API
def _functional_padding(rng, case):
    """Pick a functional padding spec (int, pair, 'same', 'valid') and grow H/W so it is valid."""
    effH = case.dilation[0] * (case.kH - 1) + 1
    effW = case.dilation[1] * (case.kW - 1) + 1
    kind = rng.choice(["int", "pair", "same", "valid"])
    if kind == "int":
        p = rng.randint(0, 3)
        pads = (p, p)
    elif kind == "pair":
        p = (rng.randint(0, 3), rng.randint(0, 3))
        pads = p
    else:
        p = kind
        pads = (0, 0)
    H = max(case.H, effH - 2 * pads[0], 1)
    W = max(case.W, effW - 2 * pads[1], 1)
    return p, H, W


def _fn_arg(v):
    return v[0] if v[0] == v[1] else tuple(v)


FN_RANDOM = R.random_dw_cases(40, seed=3)


@pytest.mark.parametrize("case", FN_RANDOM, ids=lambda c: c.id)
def test_depthwise_functional_random(case):
    rng = random.Random(case.seed)
    padding, H, W = _functional_padding(rng, case)
    case = dataclasses.replace(case, H=H, W=W)
    x, w, b, g = dw_tensors(case)
    stride, dil = _fn_arg(case.stride), _fn_arg(case.dilation)
    t, bo, l, r = R.resolve_padding(padding, case.H, case.W, (case.kH, case.kW), case.stride, case.dilation)
    Ho = R.out_size(case.H, case.kH, case.stride[0], case.dilation[0], t, bo)
    Wo = R.out_size(case.W, case.kW, case.stride[1], case.dilation[1], l, r)
    out = run_check(
        lambda x, w, b: sc.depthwise_conv2d(x, w, b, stride=stride, padding=padding, dilation=dil),
        lambda x, w, b: R.ref_depthwise_conv2d(x, w, b, stride, padding, dil),
        [x, w, b],
        dtype=case.dtype,
        grad_kind=case.grad,
        red_out=case.kH * case.kW,
        red_grads=[case.kH * case.kW * case.M, case.N * Ho * Wo, case.N * Ho * Wo],
        names=["input", "weight", "bias"],
        layout=layout_expect(case.layout, case.C, case.H, case.W),
        gen=g,
    )
    assert tuple(out.shape) == (case.N, case.C * case.M, Ho, Wo)
    if padding == "same" and case.stride == (1, 1):
        assert out.shape[-2:] == x.shape[-2:]


@pytest.mark.parametrize("stride", [1, 2, 3, (2, 1)], ids=lambda s: f"s{s}")
@pytest.mark.parametrize("k", [2, 3, 4, 5, (2, 3)], ids=lambda k: f"k{k}")
def test_functional_same_padding(k, stride):
    # stride 1: torch's own 'same'; stride > 1: TF SAME (ceil(H/s), extra pad bottom/right)
    x = torch.randn(2, 5, 9, 10, dtype=F64)
    kH, kW = R.pair(k)
    w = torch.randn(10, 1, kH, kW, dtype=F64)
    out = sc.depthwise_conv2d(x, w, None, stride=stride, padding="same")
    sH, sW = R.pair(stride)
    assert tuple(out.shape) == (2, 10, -(-9 // sH), -(-10 // sW))
    if (sH, sW) == (1, 1):
        exp = torch.nn.functional.conv2d(x, w, None, padding="same", groups=5)
    else:
        exp = R.ref_depthwise_conv2d(x, w, None, stride, "same")
    R.assert_close(out, exp, F64, kH * kW)


@pytest.mark.parametrize("dtype", [F32, F64], ids=_dt)
def test_functional_unbatched(dtype):
    x = torch.randn(6, 9, 8, dtype=dtype)
    w = torch.randn(12, 1, 3, 3, dtype=dtype)
    b = torch.randn(12, dtype=dtype)
    for padding in (1, "same", "valid", (0, 2)):
        out = run_check(
            lambda x, w, b: sc.depthwise_conv2d(x, w, b, stride=(2, 1), padding=padding),
            lambda x, w, b: R.ref_depthwise_conv2d(x, w, b, (2, 1), padding),
            [x, w, b],
            dtype=dtype,
            red_out=9,
            red_grads=[18, 100, 100],
        )
        assert out.dim() == 3
    pw = torch.randn(5, 6, dtype=dtype)
    out = run_check(
        lambda x, w, b: sc.pointwise_conv2d(x, w, b),
        lambda x, w, b: R.ref_pointwise_conv2d(x.unsqueeze(0), w, b).squeeze(0),
        [x, pw, torch.randn(5, dtype=dtype)],
        dtype=dtype,
        red_out=6,
        red_grads=[5, 100, 100],
    )
    assert tuple(out.shape) == (5, 9, 8)
    pw2 = torch.randn(4, 12, 1, 1, dtype=dtype)
    out = run_check(
        lambda x, dw, pw, db, pb: sc.separable_conv2d(x, dw, pw, db, pb, stride=2, padding=1),
        lambda x, dw, pw, db, pb: R.ref_separable_conv2d(x.unsqueeze(0), dw, pw, db, pb, 2, 1).squeeze(0),
        [x, w, pw2, b, torch.randn(4, dtype=dtype)],
        dtype=dtype,
        red_out=9 * 12,
        red_grads=[9 * 8, 100, 100, 100, 100],
    )
    assert tuple(out.shape) == (4, 5, 4)


@pytest.mark.parametrize("layout", R.LAYOUTS)
def test_functional_layouts(layout):
    x = R.make_input((2, 16, 7, 6), F32, layout)
    w = torch.randn(32, 1, 3, 3)
    out = sc.depthwise_conv2d(x, w, None, padding=1)
    R.assert_close(out, R.ref_depthwise_conv2d(x.double(), w.double(), None, 1, 1), F32, 9)
    if layout == "cl":
        assert out.is_contiguous(memory_format=torch.channels_last)
    if layout == "nchw":
        assert out.is_contiguous()


# --------------------------------------------------------------------------- pointwise
def check_pw(case: R.PWCase, api="op"):
    g = torch.Generator().manual_seed(case.seed)
    x = R.make_input((case.N, case.Cin, case.H, case.W), case.dtype, case.layout, g)
    wshape = (case.Cout, case.Cin) if case.weight_2d else (case.Cout, case.Cin, 1, 1)
    w = R.make_weight(wshape, case.dtype, case.wlayout, g)
    b = torch.randn(case.Cout, dtype=case.dtype, generator=g) if case.bias else None
    fn = ops.pointwise_conv2d if api == "op" else sc.pointwise_conv2d
    out = run_check(
        fn,
        R.ref_pointwise_conv2d,
        [x, w, b],
        dtype=case.dtype,
        grad_kind=case.grad,
        red_out=case.Cin,
        red_grads=[case.Cout, case.N * case.H * case.W, case.N * case.H * case.W],
        names=["input", "weight", "bias"],
        layout=layout_expect(case.layout, case.Cin, case.H, case.W),
        gen=g,
    )
    assert tuple(out.shape) == (case.N, case.Cout, case.H, case.W)


PW_RANDOM = R.random_pw_cases(40, seed=4)


@pytest.mark.parametrize("case", PW_RANDOM, ids=lambda c: c.id)
def test_pointwise_op_random(case):
    check_pw(case, "op")


@pytest.mark.parametrize("case", R.random_pw_cases(15, seed=5), ids=lambda c: c.id)
def test_pointwise_functional_random(case):
    check_pw(case, "functional")


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("Cout", R.CHANNELS, ids=lambda c: f"out{c}")
@pytest.mark.parametrize("Cin", R.CHANNELS, ids=lambda c: f"in{c}")
def test_pointwise_channel_grid(Cin, Cout, layout):
    check_pw(
        R.PWCase(
            N=2,
            Cin=Cin,
            Cout=Cout,
            H=5,
            W=3,
            bias=(Cin + Cout) % 2 == 0,
            dtype=F32,
            layout=layout,
            weight_2d=Cin % 2 == 0,
            seed=Cin * 100 + Cout,
        )
    )


@pytest.mark.parametrize("grad", R.GRAD_KINDS)
@pytest.mark.parametrize("layout", R.LAYOUTS)
def test_pointwise_layouts_and_grad_layouts(layout, grad):
    check_pw(R.PWCase(N=2, Cin=17, Cout=9, H=4, W=6, bias=True, dtype=F64, layout=layout, grad=grad, wlayout="slice"))


# --------------------------------------------------------------------------- separable
def check_sep(case: R.DWCase, api="op", padding=None):
    rng = random.Random(case.seed)
    Cout = rng.choice(R.CHANNELS)
    pw_2d = rng.random() < 0.3
    dw_bias = rng.random() < 0.4
    x, w, b, g = dw_tensors(case)
    pw = torch.randn((Cout, case.C * case.M) if pw_2d else (Cout, case.C * case.M, 1, 1), dtype=case.dtype, generator=g)
    pb = torch.randn(Cout, dtype=case.dtype, generator=g) if case.bias else None
    db = torch.randn(case.C * case.M, dtype=case.dtype, generator=g) if dw_bias else None
    st, dil = list(case.stride), list(case.dilation)
    if api == "op":
        pad = list(case.padding)
        fn = lambda x, dw, pw, db, pb: ops.separable_conv2d(x, dw, pw, db, pb, st, pad, dil)  # noqa: E731
    else:
        pad = padding
        fn = lambda x, dw, pw, db, pb: sc.separable_conv2d(  # noqa: E731
            x, dw, pw, db, pb, stride=_fn_arg(st), padding=pad, dilation=_fn_arg(dil)
        )
    t, bo, l, r = R.resolve_padding(pad, case.H, case.W, (case.kH, case.kW), st, dil)
    Ho = R.out_size(case.H, case.kH, st[0], dil[0], t, bo)
    Wo = R.out_size(case.W, case.kW, st[1], dil[1], l, r)
    red = case.N * Ho * Wo
    out = run_check(
        fn,
        lambda x, dw, pw, db, pb: R.ref_separable_conv2d(x, dw, pw, db, pb, st, pad, dil),
        [x, w, pw, db, pb],
        dtype=case.dtype,
        grad_kind=case.grad,
        red_out=case.kH * case.kW * case.C * case.M,
        red_grads=[case.kH * case.kW * case.M * Cout, red * Cout, red, red * Cout, red],
        names=["input", "depthwise_weight", "pointwise_weight", "depthwise_bias", "pointwise_bias"],
        layout=layout_expect(case.layout, case.C, case.H, case.W),
        gen=g,
    )
    assert tuple(out.shape) == (case.N, Cout, Ho, Wo)


SEP_RANDOM = R.random_dw_cases(40, seed=6)


@pytest.mark.parametrize("case", SEP_RANDOM, ids=lambda c: c.id)
def test_separable_op_random(case):
    check_sep(case, "op")


@pytest.mark.parametrize("case", R.random_dw_cases(20, seed=7), ids=lambda c: c.id)
def test_separable_functional_random(case):
    padding, H, W = _functional_padding(random.Random(case.seed + 1), case)
    check_sep(dataclasses.replace(case, H=H, W=W), "functional", padding)


@pytest.mark.parametrize("grad", R.GRAD_KINDS)
@pytest.mark.parametrize("layout", R.LAYOUTS)
def test_separable_layouts_and_grad_layouts(layout, grad):
    check_sep(_case(C=16, H=7, W=8, k=3, M=2, stride=2, pad=(1, 1, 0, 2), layout=layout, grad=grad, dtype=F64, seed=11))


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("k", [7, 11], ids=lambda k: f"k{k}")
def test_separable_big_kernel(k, layout):
    check_sep(_case(C=17, H=k + 3, W=k + 1, k=k, M=1, layout=layout, seed=k))


# --------------------------------------------------------------------------- every usable ISA
ISAS = sc.backend_info()["cpu_isas"]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", R.random_dw_cases(12, seed=8), ids=lambda c: c.id)
def test_every_isa_depthwise(isa, case):
    prev = sc.set_cpu_isa(isa)
    try:
        assert sc.backend_info()["cpu_isa"] == isa
        check_dw_op(case)
    finally:
        sc.set_cpu_isa(prev)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("Cin", [1, 8, 17, 33], ids=lambda c: f"in{c}")
def test_every_isa_pointwise_separable(isa, Cin):
    prev = sc.set_cpu_isa(isa)
    try:
        check_pw(R.PWCase(N=2, Cin=Cin, Cout=15, H=5, W=7, bias=True, dtype=F32, layout="cl", seed=Cin))
        check_pw(R.PWCase(N=1, Cin=Cin, Cout=33, H=3, W=2, bias=False, dtype=F64, layout="nchw", seed=Cin))
        check_sep(_case(C=Cin, H=9, W=6, k=5, M=2, stride=2, layout="cl", seed=Cin))
    finally:
        sc.set_cpu_isa(prev)


# --------------------------------------------------------------------------- vector tails, odd views
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("stride", [1, 2], ids=lambda s: f"s{s}")
@pytest.mark.parametrize("W", [1, 7, 8, 9, 15, 16, 17, 31, 32, 33], ids=lambda w: f"W{w}")
def test_depthwise_width_tails(W, stride, layout):
    # widths below / at / above SIMD tiles, for kernels that vectorise along W (NCHW)
    k = 3 if W % 2 else 5
    check_dw_op(
        _case(
            C=9,
            N=1,
            H=6,
            W=W,
            k=k,
            stride=stride,
            pad=(k // 2, k // 2, k // 2, k // 2),
            M=2,
            layout=layout,
            dtype=F32 if W % 3 else F64,
            seed=W * 10 + stride,
        )
    )


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("Cin,Cout", [(64, 65), (65, 64), (96, 24), (24, 144), (130, 3)], ids=lambda v: str(v))
def test_pointwise_wide(Cin, Cout, layout):
    check_pw(R.PWCase(N=2, Cin=Cin, Cout=Cout, H=7, W=9, bias=True, dtype=F32, layout=layout, seed=Cin + Cout))


@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_pointwise_large_output(layout):
    # 2 x 144 x 96 x 97 float32 = 10.7 MB (several NCHW pixel blocks, an odd width).
    check_pw(R.PWCase(N=2, Cin=24, Cout=144, H=96, W=97, bias=True, dtype=F32, layout=layout, seed=9))


@pytest.mark.parametrize("dtype", [F32, F64], ids=_dt)
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize(
    "N,H,W", [(1, 1, 1), (8, 1, 1), (16, 1, 1), (17, 1, 1), (3, 2, 2), (5, 2, 2)], ids=lambda v: str(v)
)
def test_pointwise_few_pixels(N, H, W, layout, dtype):
    # N*H*W <= 16 in channels_last or on 1x1 planes (squeeze-excitation): the forward dots weight
    # rows in place, the input gradient reads the transposed weight in place; 17 pixels and
    # NCHW 2x2 planes take the packed GEMM.
    check_pw(R.PWCase(N=N, Cin=37, Cout=70, H=H, W=W, bias=N % 2 == 1, dtype=dtype, layout=layout, seed=N * 10 + H))


@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_separable_wide(layout):
    check_sep(_case(C=40, H=13, W=17, k=3, M=2, stride=1, layout=layout, seed=5))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("stride", [1, 2], ids=lambda s: f"s{s}")
def test_separable_fused_bands(stride, layout, isa):
    # 144 intermediate channels: the fused CPU kernel cuts these images into several bands of
    # output rows (csrc/cpu/separable.cpp), so band seams, and the padding rows at the first and
    # last band, are compared with the reference on every ISA.
    prev = sc.set_cpu_isa(isa)
    try:
        check_sep(_case(C=72, H=30, W=29, k=3, M=2, stride=stride, layout=layout, seed=stride))
    finally:
        sc.set_cpu_isa(prev)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("shape", ["s2", "k5d2", "pad3"])
def test_separable_fused_backward_bands(shape, layout, isa):
    # The fused backward (csrc/cpu/separable_backward.cpp) cuts these images into bands of output
    # rows with halo rows of the intermediate's gradient and input rows owned per band; compared
    # with the reference (plain backward: the fused op) and with the differentiable composition
    # (create_graph=True takes it), on every ISA.
    # Sizes for 3 bands of the backward's 64K-element budget (csrc/cpu/separable.cpp); the CPU kernel
    # fuses from 2 bands (channels_last) or 3 (NCHW) and composes below that.
    case = {
        "s2": _case(C=72, N=2, H=125, W=29, k=3, M=2, stride=2, layout=layout, seed=1),
        "k5d2": _case(C=40, N=2, H=260, W=19, k=5, M=1, dil=2, pad=(3, 5, 4, 4), layout=layout, seed=2),
        "pad3": _case(C=24, N=1, H=700, W=9, k=(3, 1), M=3, stride=(3, 1), pad=(3, 3, 0, 0), layout=layout, seed=3),
    }[shape]
    prev = sc.set_cpu_isa(isa)
    try:
        check_sep(case)
        x, w, _, g = dw_tensors(case)
        pw = torch.randn(7, case.C * case.M, dtype=case.dtype, generator=g)
        db = torch.randn(case.C * case.M, dtype=case.dtype, generator=g)
        ins = [t.requires_grad_() for t in (x, w, pw, db)]
        args = (list(case.stride), list(case.padding), list(case.dilation))
        out = ops.separable_conv2d(ins[0], ins[1], ins[2], ins[3], None, *args)
        go = torch.randn(out.shape, dtype=out.dtype, generator=g)
        fused = torch.autograd.grad(out, ins, go, retain_graph=True)
        composed = torch.autograd.grad(out, ins, go, create_graph=True)
        for name, a, b in zip(["input", "depthwise_weight", "pointwise_weight", "depthwise_bias"], fused, composed):
            R.assert_close(
                a,
                b.detach().double(),
                case.dtype,
                reduction=case.N * out.shape[2] * out.shape[3],
                what=f"fused vs composed {name}",
            )
    finally:
        sc.set_cpu_isa(prev)


def test_expanded_stride0_inputs():
    # stride-0 (broadcast) views for input, weight and bias
    x = torch.randn(1, 5, 1, 7, dtype=F64).expand(3, 5, 6, 7)
    w = torch.randn(1, 1, 3, 3, dtype=F64).expand(10, 1, 3, 3)
    b = torch.randn(1, dtype=F64).expand(10)
    check = lambda fn, ref, ins, **kw: run_check(fn, ref, ins, dtype=F64, **kw)  # noqa: E731
    check(
        lambda x, w, b: ops.depthwise_conv2d(x, w, b, [1, 2], [1, 1, 0, 2], [1, 1]),
        lambda x, w, b: R.ref_depthwise_conv2d(x, w, b, (1, 2), (1, 1, 0, 2), 1),
        [x, w, b],
    )
    pw = torch.randn(4, 1, 1, 1, dtype=F64).expand(4, 5, 1, 1)
    check(ops.pointwise_conv2d, R.ref_pointwise_conv2d, [x, pw, None])


@pytest.mark.parametrize("needs", ["input", "weight", "bias", "input+bias", "weight+bias", "none"])
def test_partial_requires_grad(needs):
    x = torch.randn(2, 6, 7, 8, dtype=F64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(12, 1, 3, 3, dtype=F64)
    b = torch.randn(12, dtype=F64)
    pw = torch.randn(5, 12, dtype=F64)
    flags = {n: n in needs.split("+") for n in ("input", "weight", "bias")}
    for op_name in ("depthwise", "separable"):
        ts = [
            x.clone().requires_grad_(flags["input"]),
            w.clone().requires_grad_(flags["weight"]),
            b.clone().requires_grad_(flags["bias"]),
        ]
        rs = [t.detach().clone().requires_grad_(t.requires_grad) for t in ts]
        if op_name == "depthwise":
            out = ops.depthwise_conv2d(ts[0], ts[1], ts[2], [2, 1], [1, 1, 1, 1], [1, 1])
            ref = R.ref_depthwise_conv2d(rs[0], rs[1], rs[2], (2, 1), 1)
        else:
            out = ops.separable_conv2d(ts[0], ts[1], pw, ts[2], None, [2, 1], [1, 1, 1, 1], [1, 1])
            ref = R.ref_separable_conv2d(rs[0], rs[1], pw, rs[2], None, (2, 1), 1)
        R.assert_close(out, ref, F64, what=op_name)
        assert out.requires_grad == any(flags.values()), op_name
        if not any(flags.values()):
            continue
        go = torch.randn_like(ref)
        idx = [i for i, t in enumerate(ts) if t.requires_grad]
        got = torch.autograd.grad(out, [ts[i] for i in idx], go)
        exp = torch.autograd.grad(ref, [rs[i] for i in idx], go)
        for i, g, e in zip(idx, got, exp):
            R.assert_close(g, e, F64, reduction=100, what=f"{op_name} grad {i}")


def test_inference_mode_and_no_grad():
    x, w, b = torch.randn(2, 4, 6, 6), torch.randn(8, 1, 3, 3), torch.randn(8)
    exp = R.ref_depthwise_conv2d(x.double(), w.double(), b.double(), 1, 1)
    with torch.inference_mode():
        R.assert_close(ops.depthwise_conv2d(x, w, b, [1, 1], [1, 1, 1, 1], [1, 1]), exp, F32, 9)
        R.assert_close(
            sc.separable_conv2d(x, w, torch.eye(8), None, None, padding=1),
            R.ref_depthwise_conv2d(x.double(), w.double(), None, 1, 1),
            F32,
            9,
        )
    with torch.no_grad():
        y = ops.depthwise_conv2d(x.requires_grad_(), w, b, [1, 1], [1, 1, 1, 1], [1, 1])
        assert not y.requires_grad
        R.assert_close(y, exp, F32, 9)


@pytest.mark.parametrize("threads", [1, 2, 3], ids=lambda t: f"threads{t}")
@pytest.mark.parametrize("dtype", [F32, F64], ids=_dt)
@pytest.mark.parametrize(
    "N,Cin,Cout,H,layout",
    [(1, 160, 960, 7, "cl"), (2, 40, 200, 5, "cl"), (32, 60, 130, 1, "nchw"), (1, 50, 129, 22, "cl")],
    ids=lambda v: str(v),
)
def test_pointwise_column_split(N, Cin, Cout, H, layout, dtype, threads):
    # 17..512 pixels and >= 128 output channels in channels_last (or on 1x1 planes): the forward,
    # and the input gradient (the transposed weight), split the output channels over the threads,
    # each packing its own share of the weight; 22x22 (484 pixels) is just inside the limit.
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        check_pw(R.PWCase(N=N, Cin=Cin, Cout=Cout, H=H, W=H, bias=True, dtype=dtype, layout=layout, seed=Cout))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_separable_backward_bitwise_repeatable(layout):
    """The fused backward's weight sums are per thread chunk, folded in order: two runs with the
    same thread count give bitwise-equal gradients (a float atomic or an unordered fold would not)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = torch.Generator().manual_seed(4)
        x = R.make_input((3, 24, 150, 30), F32, layout, g)  # four bands per image: fused
        w, pw, db = (
            torch.randn(48, 1, 3, 3, generator=g),
            torch.randn(16, 48, generator=g),
            torch.randn(48, generator=g),
        )
        go = torch.randn(3, 16, 150, 30, generator=g)
        runs = []
        for _ in range(2):
            ins = [t.clone().requires_grad_() for t in (x, w, pw, db)]
            out = ops.separable_conv2d(ins[0], ins[1], ins[2], ins[3], None, [1, 1], [2, 2, 1, 1], [2, 1])
            runs.append(torch.autograd.grad(out, ins, go))
        for a, b in zip(*runs):
            assert torch.equal(a, b)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2, 3], ids=lambda t: f"threads{t}")
def test_thread_counts(threads):
    """Big enough that parallel_for splits the work (races in weight-grad reductions show up here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for layout in ("nchw", "cl"):
            check_dw_op(_case(C=16, N=6, H=24, W=20, k=3, M=2, stride=1, layout=layout, dtype=F32, seed=threads))
            check_pw(R.PWCase(N=6, Cin=24, Cout=40, H=12, W=10, bias=True, dtype=F32, layout=layout, seed=threads))
            check_sep(_case(C=16, N=4, H=16, W=18, k=5, M=1, stride=2, layout=layout, dtype=F32, seed=threads))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("k,M", [(3, 1), (3, 2), (9, 1)], ids=["k3", "k3-M2", "k9"])
def test_depthwise_results_independent_of_thread_count(layout, k, M):
    """Forward and all three gradients are bitwise equal for 1, 2 and 3 threads: every output
    element, and every weight-gradient tap, is summed in one fixed order whatever the split of
    the work (the kernels' documented contract; a split-dependent fold would differ in the last
    bits). 17 channels: split points fall inside vectors of channels. 48 channels: the NCHW
    kernels take whole-plane images for a call with enough planes and the ring for fewer, so a
    1-thread and a 3-thread run go through different paths (at stride 2 also for the phased
    input gradient)."""
    for C, stride in ((17, 1), (48, 1), (48, 2)):
        _check_thread_independence(layout, k, M, C, stride)


def _check_thread_independence(layout, k, M, C, stride):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, C, 23, 19, generator=g)
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(C * M, 1, k, k, generator=g)
    b = torch.randn(C * M, generator=g)
    pad = k // 2
    gy = torch.randn(3, C * M, (23 + 2 * pad - k) // stride + 1, (19 + 2 * pad - k) // stride + 1, generator=g)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
            y = sc.depthwise_conv2d(xr, wr, br, stride, pad)
            results.append((y.detach(),) + torch.autograd.grad(y, (xr, wr, br), gy))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, c in zip(results[0], other):
            assert torch.equal(a, c)
