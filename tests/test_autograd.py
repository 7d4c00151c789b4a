"""gradcheck / gradgradcheck (float64, tiny tensors) for the three ops and the private backward ops."""

import pytest
import torch
from torch.autograd import gradcheck as _gradcheck
from torch.autograd import gradgradcheck as _gradgradcheck

import sepconv_ext as sc

import reference as R

ops = torch.ops.sepconv
F64 = torch.float64


def gradcheck(fn, inputs, fast_mode=False):
    return _gradcheck(fn, inputs, fast_mode=fast_mode)


def gradgradcheck(fn, inputs, fast_mode=True):
    # fast mode (random projections): the full second-order Jacobian costs minutes here
    return _gradgradcheck(fn, inputs, fast_mode=fast_mode)


# (name, C, M, H, W, k, stride, padding(t,b,l,r), dilation, channels_last)
# fmt: off
DW_CONFIGS = [
    ("basic", 3, 1, 5, 5, 3, (1, 1), (1, 1, 1, 1), (1, 1), False),
    ("channels_last", 3, 1, 5, 5, 3, (1, 1), (1, 1, 1, 1), (1, 1), True),
    ("mult2", 2, 2, 5, 4, 3, (1, 1), (1, 1, 1, 1), (1, 1), False),
    ("mult3_cl", 2, 3, 4, 5, (2, 3), (1, 1), (0, 1, 1, 1), (1, 1), True),
    ("stride2", 3, 1, 5, 6, 3, (2, 2), (1, 1, 1, 1), (1, 1), False),
    ("stride21_asym", 2, 2, 6, 5, 3, (2, 1), (0, 2, 1, 0), (1, 1), True),
    ("dilation2", 3, 1, 6, 6, 3, (1, 1), (2, 2, 2, 2), (2, 2), False),
    ("dil2_stride2_cl", 2, 2, 7, 6, 2, (2, 2), (1, 0, 0, 1), (2, 1), True),
]
# fmt: on
DW_IDS = [c[0] for c in DW_CONFIGS]


def _dw_tensors(C, M, H, W, k, cl, bias, N=2):
    kH, kW = R.pair(k)
    x = torch.randn(N, C, H, W, dtype=F64)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(C * M, 1, kH, kW, dtype=F64)
    b = torch.randn(C * M, dtype=F64) if bias else None
    return [t.requires_grad_() if t is not None else None for t in (x, w, b)]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cfg", DW_CONFIGS, ids=DW_IDS)
def test_depthwise_gradcheck(cfg, bias):
    _, C, M, H, W, k, st, pad, dil, cl = cfg
    x, w, b = _dw_tensors(C, M, H, W, k, cl, bias)
    fn = lambda x, w, b: ops.depthwise_conv2d(x, w, b, list(st), list(pad), list(dil))  # noqa: E731
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "cl"])
def test_pointwise_gradcheck(cl, bias):
    x = torch.randn(2, 3, 4, 5, dtype=F64)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(4, 3, 1, 1, dtype=F64, requires_grad=True)
    b = torch.randn(4, dtype=F64, requires_grad=True) if bias else None
    assert gradcheck(ops.pointwise_conv2d, (x, w, b))
    assert gradgradcheck(ops.pointwise_conv2d, (x, w, b))
    w2 = torch.randn(4, 3, dtype=F64, requires_grad=True)  # 2-D weight form
    assert gradcheck(ops.pointwise_conv2d, (x, w2, b))
    assert gradgradcheck(ops.pointwise_conv2d, (x, w2, b))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize(
    "cfg", [DW_CONFIGS[i] for i in (0, 1, 3, 5, 6, 7)], ids=[DW_IDS[i] for i in (0, 1, 3, 5, 6, 7)]
)
def test_separable_gradcheck(cfg, bias):
    _, C, M, H, W, k, st, pad, dil, cl = cfg
    x, dw, db = _dw_tensors(C, M, H, W, k, cl, bias, N=1)
    pw = torch.randn(3, C * M, 1, 1, dtype=F64, requires_grad=True)
    pb = torch.randn(3, dtype=F64, requires_grad=True) if bias else None
    fn = lambda x, dw, pw, db, pb: ops.separable_conv2d(x, dw, pw, db, pb, list(st), list(pad), list(dil))  # noqa
    assert gradcheck(fn, (x, dw, pw, db, pb))
    assert gradgradcheck(fn, (x, dw, pw, db, pb))


def test_functional_gradcheck_same_stride2_unbatched():
    x = torch.randn(3, 5, 6, dtype=F64, requires_grad=True)
    w = torch.randn(6, 1, 2, 3, dtype=F64, requires_grad=True)
    b = torch.randn(6, dtype=F64, requires_grad=True)
    pw = torch.randn(2, 6, dtype=F64, requires_grad=True)
    fn = lambda x, w, b, pw: sc.separable_conv2d(x, w, pw, b, None, stride=2, padding="same")  # noqa: E731
    assert gradcheck(fn, (x, w, b, pw))
    assert gradgradcheck(fn, (x, w, b, pw))
    fn2 = lambda x, w, b: sc.depthwise_conv2d(x, w, b, padding="same", dilation=2)  # noqa: E731
    assert gradcheck(fn2, (x, w, b))
    assert gradgradcheck(fn2, (x, w, b))


# --------------------------------------------------------------------------- private backward ops
BWD_CONFIGS = [c for c in DW_CONFIGS if c[0] in ("basic", "mult3_cl", "stride21_asym", "dil2_stride2_cl")]
BWD_IDS = [c[0] for c in BWD_CONFIGS]


def _bwd_setup(cfg, N=2):
    _, C, M, H, W, k, st, pad, dil, cl = cfg
    x, w, _ = _dw_tensors(C, M, H, W, k, cl, False, N=N)
    kH, kW = R.pair(k)
    Ho = R.out_size(H, kH, st[0], dil[0], pad[0], pad[1])
    Wo = R.out_size(W, kW, st[1], dil[1], pad[2], pad[3])
    go = torch.randn(N, C * M, Ho, Wo, dtype=F64)
    if cl:
        go = go.contiguous(memory_format=torch.channels_last)
    go.requires_grad_()
    return x, w, go, (kH, kW), list(st), list(pad), list(dil)


@pytest.mark.parametrize("cfg", BWD_CONFIGS, ids=BWD_IDS)
def test_backward_input_op_values_and_gradcheck(cfg):
    x, w, go, ks, st, pad, dil = _bwd_setup(cfg)
    size = list(x.shape)
    gi = ops._depthwise_conv2d_backward_input(go, w, size, st, pad, dil)
    # value: the input gradient of the reference conv
    xr = x.detach().clone().requires_grad_()
    (exp,) = torch.autograd.grad(R.ref_depthwise_conv2d(xr, w.detach(), None, st, pad, dil), xr, go.detach())
    R.assert_close(gi, exp, F64, what="backward_input")
    fn = lambda go, w: ops._depthwise_conv2d_backward_input(go, w, size, st, pad, dil)  # noqa: E731
    assert gradcheck(fn, (go, w))
    assert gradgradcheck(fn, (go, w))


@pytest.mark.parametrize("cfg", BWD_CONFIGS, ids=BWD_IDS)
def test_backward_weight_op_values_and_gradcheck(cfg):
    x, w, go, ks, st, pad, dil = _bwd_setup(cfg)
    gw = ops._depthwise_conv2d_backward_weight(go, x, list(ks), st, pad, dil)
    wr = w.detach().clone().requires_grad_()
    (exp,) = torch.autograd.grad(R.ref_depthwise_conv2d(x.detach(), wr, None, st, pad, dil), wr, go.detach())
    R.assert_close(gw, exp, F64, what="backward_weight")
    fn = lambda go, x: ops._depthwise_conv2d_backward_weight(go, x, list(ks), st, pad, dil)  # noqa: E731
    assert gradcheck(fn, (go, x))
    assert gradgradcheck(fn, (go, x))


@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "cl"])
def test_pointwise_backward_weight_op_values_and_gradcheck(cl):
    x = torch.randn(2, 3, 4, 3, dtype=F64)
    go = torch.randn(2, 5, 4, 3, dtype=F64)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
        go = go.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    go.requires_grad_()
    gw = ops._pointwise_conv2d_backward_weight(go, x)
    assert tuple(gw.shape) == (5, 3)
    exp = torch.einsum("nohw,nihw->oi", go.detach(), x.detach())
    R.assert_close(gw, exp, F64, what="pointwise backward_weight")
    assert gradcheck(ops._pointwise_conv2d_backward_weight, (go, x))
    assert gradgradcheck(ops._pointwise_conv2d_backward_weight, (go, x))


def test_double_backward_matches_reference():
    """Hessian-vector product through depthwise+pointwise vs the same through F.conv2d."""
    x, w, b = _dw_tensors(3, 2, 6, 5, 3, True, True)
    pw = torch.randn(4, 6, 1, 1, dtype=F64, requires_grad=True)
    out = ops.separable_conv2d(x, w, pw, b, None, [2, 1], [1, 0, 1, 1], [1, 1])
    ref = R.ref_separable_conv2d(x, w, pw, b, None, (2, 1), (1, 0, 1, 1), 1)
    v = torch.randn_like(ref)
    for o, name in ((out, "ext"), (ref, "ref")):
        g = torch.autograd.grad((o * v).sum() ** 2, (x, w, pw, b), create_graph=True)
        s = sum((gi**2).sum() for gi in g)
        hv = torch.autograd.grad(s, (x, w, pw, b))
        if name == "ext":
            got = hv
        else:
            exp = hv
    for g_, e_, n in zip(got, exp, ("input", "weight", "pointwise_weight", "bias")):
        R.assert_close(g_, e_, F64, reduction=1000, what=f"double backward {n}")


@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "cl"])
def test_full_gradgradcheck_all_ops(cl):
    """The full (not fast-mode) second-order check, on tensors small enough to afford it."""
    fmt = torch.channels_last if cl else torch.contiguous_format

    def leaf(*shape):
        return torch.randn(*shape, dtype=F64).requires_grad_()

    x = torch.randn(1, 2, 4, 4, dtype=F64).contiguous(memory_format=fmt).requires_grad_()
    dw, db, pw, pb = leaf(4, 1, 3, 3), leaf(4), leaf(3, 4, 1, 1), leaf(3)
    dw_fn = lambda x, w, b: ops.depthwise_conv2d(x, w, b, [2, 1], [1, 0, 1, 1], [1, 1])  # noqa: E731
    sep_fn = lambda x, w, p, b, q: ops.separable_conv2d(x, w, p, b, q, [1, 1], [1, 1, 1, 1], [1, 1])  # noqa: E731
    assert gradgradcheck(dw_fn, (x, dw, db), fast_mode=False)
    assert gradgradcheck(ops.pointwise_conv2d, (x, leaf(3, 2, 1, 1), pb), fast_mode=False)
    assert gradgradcheck(sep_fn, (x, dw, pw, db, pb), fast_mode=False)
