"""CUDA kernels: vs torch native (F.conv2d in float64 on the GPU), every dtype x layout, forward
and backward; gradcheck/gradgradcheck; CPU vs CUDA; opcheck; TorchScript; torch.compile;
deterministic mode. Everything but the registration test needs a GPU and is skipped without one.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

import sepconv_ext as sc

import reference as R

ops = torch.ops.sepconv
HAS_GPU = torch.cuda.is_available()
requires_cuda = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
DEV = "cuda"
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
OP_NAMES = (
    "depthwise_conv2d",
    "_depthwise_conv2d_backward_input",
    "_depthwise_conv2d_backward_weight",
    "pointwise_conv2d",
    "_pointwise_conv2d_backward_weight",
    "separable_conv2d",
)


def dt_id(dt):
    return {torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16"}[dt]


# Error bound relative to max(1, max |reference|). Half and bfloat16 accumulate in float32, so
# their error is the rounding of inputs-to-output (already rounded inputs are fed to the
# reference too), a few units in the last place of the 16-bit result.
TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}


def check(got, ref, dtype, what, reduction=1):
    assert got.shape == ref.shape, f"{what}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    assert got.device.type == "cuda", what
    if ref.numel() == 0:
        return
    g, r = got.detach().double(), ref.detach().double()
    assert torch.isfinite(g).all(), f"{what}: non-finite values"
    tol = TOL[dtype] * (max(1.0, (reduction / 64.0) ** 0.5) if dtype in (torch.float32, torch.float64) else 1.0)
    scale = max(1.0, r.abs().max().item())
    err = (g - r).abs().max().item()
    assert err <= tol * scale, f"{what}: max err {err:.3e} > {tol:.1e} x scale {scale:.3g}"


def to_layout(t, layout):
    if layout == "cl":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "slice":  # a non-contiguous view with the same values
        big = torch.zeros(t.shape[0], t.shape[1], t.shape[2], 2 * t.shape[3], dtype=t.dtype, device=t.device)
        big[..., ::2] = t
        return big[..., ::2]
    return t.contiguous()


def expected_format(layout):
    return torch.channels_last if layout == "cl" else torch.contiguous_format


def reload_cuda_path_overrides():
    """The CUDA ops read the SEPCONV_CUDA_* path overrides once per process; read them again."""
    sc._C._reload_cuda_path_overrides()


def force_cuda_path(monkeypatch, name, value):
    """Set a SEPCONV_CUDA_* override for the rest of the test (monkeypatch restores it; the
    autouse fixture below then reads the restored environment)."""
    monkeypatch.setenv(name, value)
    reload_cuda_path_overrides()


@pytest.fixture(autouse=True)
def _cuda_path_overrides():
    """Every test starts and ends with the overrides of the (restored) environment. Requests no
    monkeypatch, so its teardown runs after monkeypatch has undone a test's setenv."""
    if HAS_GPU:
        reload_cuda_path_overrides()
    yield
    if HAS_GPU:
        reload_cuda_path_overrides()


# --------------------------------------------------------------------------- registration (runs everywhere)
def test_every_op_has_a_cuda_kernel_when_compiled_with_cuda():
    if not sc.backend_info()["cuda_archs"]:
        pytest.skip("this build has no CUDA kernels (CPU-only torch, no toolkit, or SEPCONV_FORCE_CPU=1)")
    missing = [n for n in OP_NAMES if not torch._C._dispatch_has_kernel_for_dispatch_key(f"sepconv::{n}", "CUDA")]
    # The separable backward's CUDA kernel is its composition of the ops above.
    if not torch._C._dispatch_has_computed_kernel_for_dispatch_key("sepconv::_separable_conv2d_backward", "CUDA"):
        missing.append("_separable_conv2d_backward")
    # So do the inference ops' (the op, then ATen's activation).
    for op in ("fused_depthwise_conv2d", "fused_pointwise_conv2d"):
        if not torch._C._dispatch_has_computed_kernel_for_dispatch_key(f"sepconv::{op}", "CUDA"):
            missing.append(op)
    assert not missing, f"no CUDA kernel registered for {missing}"


def test_backend_info_cuda_flag():
    info = sc.backend_info()
    assert info["cuda"] == (bool(info["cuda_archs"]) and torch.cuda.is_available())


def test_cuda_path_override_reload_exists_in_every_build(monkeypatch):
    # The private hook force_cuda_path and benchmarks/cuda_path_probes.py call, in CPU-only builds
    # too. Reading an invalid value is no error: the op that consults it fails (see
    # test_forced_cuda_path_must_be_a_known_kernel).
    monkeypatch.setenv("SEPCONV_CUDA_POINTWISE", "cublas")
    reload_cuda_path_overrides()
    monkeypatch.delenv("SEPCONV_CUDA_POINTWISE")
    reload_cuda_path_overrides()


# --------------------------------------------------------------------------- depthwise vs torch native
DW_GRID = list(itertools.product(DTYPES, ("nchw", "cl"), (3, 5, 7, 31), (1, 2), (1, 2), ((8, 1), (5, 1), (3, 2))))


def dw_id(case):
    dt, layout, k, s, d, (c, m) = case
    return f"{dt_id(dt)}-{layout}-k{k}-s{s}-d{d}-c{c}m{m}"


def run_depthwise(
    dtype, layout, N, C, M, H, W, kh, kw, stride, padding, dilation, bias=True, grad_layout="same", seed=0
):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x64 = torch.randn(N, C, H, W, generator=g, dtype=torch.float64)
    w64 = torch.randn(C * M, 1, kh, kw, generator=g, dtype=torch.float64) / (kh * kw) ** 0.5
    b64 = torch.randn(C * M, generator=g, dtype=torch.float64) if bias else None
    # The 16-bit inputs are rounded once; the reference sees the same rounded values.
    x = to_layout(x64.to(DEV, dtype), layout).requires_grad_()
    w = w64.to(DEV, dtype).requires_grad_()
    b = b64.to(DEV, dtype).requires_grad_() if bias else None
    xr = x.detach().double().requires_grad_()
    wr = w.detach().double().requires_grad_()
    br = b.detach().double().requires_grad_() if bias else None
    y = ops.depthwise_conv2d(x, w, b, list(stride), list(padding), list(dilation))
    yr = R.ref_depthwise_conv2d(xr, wr, br, stride, padding, dilation)
    check(y, yr, dtype, "forward", reduction=kh * kw)
    assert y.is_contiguous(memory_format=expected_format(layout)), "output layout must follow the input"
    gy64 = torch.randn(yr.shape, generator=g, dtype=torch.float64)
    gy = gy64.to(DEV, dtype)
    if grad_layout == "cl":
        gy = gy.contiguous(memory_format=torch.channels_last)
    elif grad_layout == "slice":
        gy = to_layout(gy, "slice")
    grads = torch.autograd.grad(y, [x, w] + ([b] if bias else []), gy)
    grads_r = torch.autograd.grad(yr, [xr, wr] + ([br] if bias else []), gy.double())
    ho, wo = yr.shape[2:]
    check(grads[0], grads_r[0], dtype, "grad_input", reduction=kh * kw * M)
    check(grads[1], grads_r[1], dtype, "grad_weight", reduction=N * ho * wo)
    assert grads[1].is_contiguous(), "weight gradient must be contiguous"
    if bias:
        check(grads[2], grads_r[2], dtype, "grad_bias", reduction=N * ho * wo)


@requires_cuda
@pytest.mark.parametrize("case", DW_GRID, ids=dw_id)
def test_depthwise_vs_torch(case):
    dtype, layout, k, s, d, (C, M) = case
    span = d * (k - 1) + 1
    pad = d * (k // 2)
    H = W = max(12, span - 2 * pad + 5)
    run_depthwise(dtype, layout, 2, C, M, H, W, k, k, (s, s), (pad, pad, pad, pad), (d, d))


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl", "slice"))
@pytest.mark.parametrize(
    "geom",
    [
        # (H, W, kh, kw, stride, padding (t, b, l, r), dilation)
        (9, 13, 3, 5, (1, 2), (0, 2, 1, 0), (2, 1)),  # asymmetric everything
        (7, 7, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1)),  # 1x1 kernel
        (5, 40, 3, 3, (3, 3), (1, 1, 1, 1), (1, 1)),  # stride 3, wide rows (several W tiles)
        (37, 70, 4, 2, (2, 3), (1, 2, 0, 1), (1, 3)),  # even kernel, several H and W tiles
        (6, 6, 3, 3, (2, 2), (0, 0, 0, 0), (1, 1)),  # stride leaves the last row/col unread
    ],
)
@pytest.mark.parametrize("grad_layout", ("same", "cl", "slice"))
def test_depthwise_geometries(dtype, layout, geom, grad_layout):
    H, W, kh, kw, stride, padding, dilation = geom
    run_depthwise(dtype, layout, 3, 8, 1, H, W, kh, kw, stride, padding, dilation, grad_layout=grad_layout)
    run_depthwise(dtype, layout, 1, 3, 3, H, W, kh, kw, stride, padding, dilation, bias=False, grad_layout=grad_layout)


@requires_cuda
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64), ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl"))
@pytest.mark.parametrize("k", (3, 5, 7))
def test_depthwise_stride2_every_padding_phase(dtype, layout, k):
    # The NCHW stride-2 input-gradient kernel is specialised on (k - 1 - pad_top) mod 2, and its
    # row groups of 8 must line up for odd and even heights alike: every padding, both parities.
    for pad in range(k):
        for H, W in ((17, 10), (16, 9)):
            run_depthwise(dtype, layout, 2, 4, 1, H, W, k, k, (2, 2), (pad, (pad + 1) % k, pad, pad), (1, 1), seed=pad)


@requires_cuda
@pytest.mark.parametrize("dtype", (torch.float32, torch.float16), ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl"))
@pytest.mark.parametrize("k,dilation", [(3, 1), (5, 1), (3, 2), (4, 1)], ids=lambda v: str(v))
def test_depthwise_input_gradient_uneven_and_negative_flipped_padding(dtype, layout, k, dilation):
    # The stride-1 input gradient runs the forward on grad_output with flipped taps and padding
    # (k - 1) * dilation - pad: negative where pad exceeds (k - 1) * dilation, and uneven.
    span = (k - 1) * dilation
    for pads in ((span + 1, span + 2, span + 1, span), (0, 1, 2, 0), (span, 0, 1, span + 2)):
        run_depthwise(dtype, layout, 2, 8, 1, 11, 13, k, k, (1, 1), pads, (dilation, dilation))


@requires_cuda
@pytest.mark.parametrize("dtype", (torch.float32, torch.float16), ids=dt_id)
def test_depthwise_cl_weight_gradient_chunks_and_channel_blocks(dtype):
    # The in-place channels_last weight gradient with several pixel chunks (summed by
    # sum_chunks_nhwc_kernel), and with more than 64 channel groups (two channel blocks, the last
    # partly empty).
    run_depthwise(dtype, "cl", 2, 8, 1, 64, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1))
    run_depthwise(dtype, "cl", 1, 528, 1, 12, 12, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1))


def misaligned_cl(t):
    """The same values, channels_last, one element past a 16-byte boundary."""
    n, c, h, w = t.shape
    base = torch.empty(n * h * w * c + 1, dtype=t.dtype, device=t.device)
    view = base[1:].view(n, h, w, c).permute(0, 3, 1, 2)
    view.copy_(t)
    assert view.is_contiguous(memory_format=torch.channels_last) and view.data_ptr() % 16 != 0
    return view


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
def test_misaligned_channels_last_pointers_take_scalar_paths(dtype):
    g = torch.Generator().manual_seed(3)
    x64 = torch.randn(2, 16, 10, 9, generator=g, dtype=torch.float64)
    dw64 = torch.randn(16, 1, 3, 3, generator=g, dtype=torch.float64) / 3
    pw64 = torch.randn(200, 16, 1, 1, generator=g, dtype=torch.float64) / 4
    b64 = torch.randn(17, generator=g, dtype=torch.float64)
    x = misaligned_cl(x64.to(DEV, dtype))
    dw, pw = dw64.to(DEV, dtype), pw64.to(DEV, dtype)
    bias = b64.to(DEV, dtype)[1:]  # misaligned bias
    xr, dwr, pwr, br = x.double(), dw.double(), pw.double(), bias.double()
    check(
        sc.depthwise_conv2d(x, dw, bias, padding=1),
        R.ref_depthwise_conv2d(xr, dwr, br, padding=1),
        dtype,
        "depthwise forward",
        reduction=9,
    )
    check(sc.pointwise_conv2d(x, pw), R.ref_pointwise_conv2d(xr, pwr), dtype, "pointwise", reduction=16)
    check(
        sc.separable_conv2d(x, dw, pw, bias, None, padding=1),
        R.ref_separable_conv2d(xr, dwr, pwr, br, None, padding=1),
        dtype,
        "separable",
        reduction=144,
    )
    gy = misaligned_cl(torch.randn(2, 16, 10, 9, generator=g, dtype=torch.float64).to(DEV, dtype))
    gw = ops._depthwise_conv2d_backward_weight(gy, x, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1])
    xr_ = xr.detach().requires_grad_()
    wr_ = dwr.detach().requires_grad_()
    R.ref_depthwise_conv2d(xr_, wr_, None, padding=1).backward(gy.double())
    check(gw, wr_.grad, dtype, "weight gradient", reduction=180)


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl"))
@pytest.mark.parametrize("cout", (24, 48))
def test_pointwise_and_fused_wide_channel_tiles(dtype, layout, cout, monkeypatch):
    # The rows kernel and the fused separable path, forced. Enough pixels (4 x 96 x 96) that the
    # rows kernel's output-channel tile stays 32 (Cout 24: one tile; 48: two, the second partly
    # empty): smaller problems halve it to 16.
    force_cuda_path(monkeypatch, "SEPCONV_CUDA_POINTWISE", "rows")
    force_cuda_path(monkeypatch, "SEPCONV_CUDA_SEPARABLE", "fused")
    g = torch.Generator().manual_seed(4)
    x = to_layout(torch.randn(4, 32, 96, 96, generator=g, dtype=torch.float64).to(DEV, dtype), layout)
    pw = (torch.randn(cout, 32, 1, 1, generator=g, dtype=torch.float64) / 32**0.5).to(DEV, dtype)
    dw = (torch.randn(32, 1, 3, 3, generator=g, dtype=torch.float64) / 3).to(DEV, dtype)
    pb = torch.randn(cout, generator=g, dtype=torch.float64).to(DEV, dtype)
    xr, pwr, dwr, pbr = x.double(), pw.double(), dw.double(), pb.double()
    check(sc.pointwise_conv2d(x, pw, pb), R.ref_pointwise_conv2d(xr, pwr, pbr), dtype, "pointwise", reduction=32)
    check(
        sc.separable_conv2d(x, dw, pw, None, pb, padding=1),
        R.ref_separable_conv2d(xr, dwr, pwr, None, pbr, padding=1),
        dtype,
        "separable",
        reduction=288,
    )
    check(
        sc.separable_conv2d(x, dw, pw, None, None, padding=1),  # both biases absent
        R.ref_separable_conv2d(xr, dwr, pwr, None, None, padding=1),
        dtype,
        "separable, no biases",
        reduction=288,
    )


@requires_cuda
@pytest.mark.parametrize("layout", ("nchw", "cl"))
def test_depthwise_huge_dilated_kernel_global_memory_path(layout):
    # The staged windows would exceed 48 KiB of shared memory: the kernels read global memory.
    run_depthwise(torch.float32, layout, 1, 4, 1, 40, 44, 31, 31, (1, 1), (60, 60, 60, 60), (4, 4))


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
def test_depthwise_sum_backward_expanded_grad(dtype):
    x = torch.randn(2, 8, 10, 10, device=DEV, dtype=dtype).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(8, 1, 3, 3, device=DEV, dtype=dtype, requires_grad=True)
    sc.depthwise_conv2d(x, w, padding=1).sum().backward()  # grad_output is a stride-0 expand
    xr, wr = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    R.ref_depthwise_conv2d(xr, wr, padding=1).sum().backward()
    check(x.grad, xr.grad, dtype, "grad_input", 9)
    check(w.grad, wr.grad, dtype, "grad_weight", 200)


# --------------------------------------------------------------------------- pointwise / separable vs torch
@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl", "slice"))
@pytest.mark.parametrize(
    "shape",
    [(2, 3, 5, 7, 4), (3, 64, 9, 9, 96), (1, 17, 65, 3, 130), (2, 130, 1, 1, 7)],
    ids=lambda s: "n{}c{}_{}x{}_o{}".format(*s),
)
@pytest.mark.parametrize("weight_2d", (False, True))
@pytest.mark.parametrize("kernel", ("auto", "rows", "gemm"))
def test_pointwise_vs_torch(dtype, layout, shape, weight_2d, kernel, monkeypatch):
    if kernel != "auto":  # both forward kernels (the input gradient runs the forward too) and
        # both weight-gradient kernels
        force_cuda_path(monkeypatch, "SEPCONV_CUDA_POINTWISE", kernel)
        force_cuda_path(monkeypatch, "SEPCONV_CUDA_POINTWISE_WGRAD", "tiles" if kernel == "rows" else "gemm")
    N, Cin, H, W, Cout = shape
    x = to_layout(torch.randn(N, Cin, H, W, dtype=torch.float64).to(DEV, dtype), layout).requires_grad_()
    wshape = (Cout, Cin) if weight_2d else (Cout, Cin, 1, 1)
    w = (torch.randn(wshape, dtype=torch.float64) / Cin**0.5).to(DEV, dtype).requires_grad_()
    b = torch.randn(Cout, dtype=torch.float64).to(DEV, dtype).requires_grad_()
    xr, wr, br = (t.detach().double().requires_grad_() for t in (x, w, b))
    y = sc.pointwise_conv2d(x, w, b)
    yr = R.ref_pointwise_conv2d(xr, wr, br)
    check(y, yr, dtype, "forward", reduction=Cin)
    assert y.is_contiguous(memory_format=expected_format(layout))
    gy = torch.randn(yr.shape, dtype=torch.float64).to(DEV, dtype)
    g = torch.autograd.grad(y, [x, w, b], gy)
    gr = torch.autograd.grad(yr, [xr, wr, br], gy.double())
    check(g[0], gr[0], dtype, "grad_input", reduction=Cout)
    check(g[1], gr[1], dtype, "grad_weight", reduction=N * H * W)
    assert g[1].shape == w.shape
    check(g[2], gr[2], dtype, "grad_bias", reduction=N * H * W)


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl"))
@pytest.mark.parametrize("k,stride,dilation,M", [(3, 1, 1, 1), (5, 2, 1, 2), (7, 1, 2, 1), (31, 1, 1, 1)])
def test_separable_vs_torch(dtype, layout, k, stride, dilation, M):
    C, Cout = 16, 24
    x = to_layout(torch.randn(2, C, 20, 18, dtype=torch.float64).to(DEV, dtype), layout).requires_grad_()
    dw = (torch.randn(C * M, 1, k, k, dtype=torch.float64) / k).to(DEV, dtype).requires_grad_()
    pw = (torch.randn(Cout, C * M, 1, 1, dtype=torch.float64) / (C * M) ** 0.5).to(DEV, dtype).requires_grad_()
    db = torch.randn(C * M, dtype=torch.float64).to(DEV, dtype).requires_grad_()
    pb = torch.randn(Cout, dtype=torch.float64).to(DEV, dtype).requires_grad_()
    pad = dilation * (k // 2)
    args = dict(stride=stride, padding=pad, dilation=dilation)
    y = sc.separable_conv2d(x, dw, pw, db, pb, **args)
    ins = [x, dw, pw, db, pb]
    ref_ins = [t.detach().double().requires_grad_() for t in ins]
    yr = R.ref_separable_conv2d(*ref_ins, **args)
    # Half/bfloat16: the intermediate is rounded to 16 bits between the two convs, as in torch.
    check(y, yr, dtype, "forward", reduction=k * k * C * M)
    assert y.is_contiguous(memory_format=expected_format(layout))
    gy = torch.randn(yr.shape, dtype=torch.float64).to(DEV, dtype)
    g = torch.autograd.grad(y, ins, gy)
    gr = torch.autograd.grad(yr, ref_ins, gy.double())
    for name, a, e in zip(("x", "dw", "pw", "db", "pb"), g, gr):
        check(a, e, dtype, f"grad {name}", reduction=2 * 20 * 18 * k)


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl"))
@pytest.mark.parametrize(
    "geom",
    [
        # (C, M, Cout, kh, kw, stride, padding, dilation), forced down each path: K of 16 to 40
        # (partial K steps), 1 to 4 output-channel tiles, multipliers, dilation, strides, no padding.
        (16, 1, 200, 3, 3, 1, 1, 1),
        (16, 1, 64, 3, 3, 2, 1, 1),
        (8, 2, 40, 3, 3, 1, 2, 2),
        (24, 1, 136, 3, 5, (1, 2), (1, 2), 1),
        (5, 1, 96, 3, 3, 1, 0, 1),
        (4, 1, 8, 7, 7, 2, 3, 1),
    ],
    ids=lambda g: "c{}m{}o{}_{}x{}".format(*g[:5]),
)
@pytest.mark.parametrize("path", ("fused", "composed"))
def test_separable_fused_forward(dtype, layout, geom, path, monkeypatch):
    force_cuda_path(monkeypatch, "SEPCONV_CUDA_SEPARABLE", path)
    C, M, Cout, kh, kw, stride, padding, dilation = geom
    x = to_layout(torch.randn(2, C, 20, 18, dtype=torch.float64).to(DEV, dtype), layout)
    dw = (torch.randn(C * M, 1, kh, kw, dtype=torch.float64) / (kh * kw) ** 0.5).to(DEV, dtype)
    pw = (torch.randn(Cout, C * M, 1, 1, dtype=torch.float64) / (C * M) ** 0.5).to(DEV, dtype)
    db = torch.randn(C * M, dtype=torch.float64).to(DEV, dtype)
    pb = torch.randn(Cout, dtype=torch.float64).to(DEV, dtype)
    args = dict(stride=stride, padding=padding, dilation=dilation)
    y = sc.separable_conv2d(x, dw, pw, db, pb, **args)
    assert y.is_contiguous(memory_format=expected_format(layout))
    ref = R.ref_separable_conv2d(*(t.double() for t in (x, dw, pw, db, pb)), **args)
    check(y, ref, dtype, "fused vs float64", reduction=kh * kw * C * M)
    # The intermediate is rounded to dtype as the composition stores it: the two agree to the
    # rounding of the output.
    composed = sc.pointwise_conv2d(sc.depthwise_conv2d(x, dw, db, **args), pw, pb)
    check(y, composed.double(), dtype, "fused vs composition", reduction=C * M)


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl"))
@pytest.mark.parametrize(
    "shape",
    [
        # (N, Cin, H, W, Cout): split K (2 tiles, 30 K steps -> 7 slices, a partial last one),
        # 128-pixel tiles straddling images (plane 143), a partial third row tile, K of one partial step.
        # (2, 200, ...): 16-byte vector loads (channels_last) with a partial last K step.
        (2, 960, 7, 7, 100),
        (3, 70, 13, 11, 130),
        (5, 9, 6, 5, 65),
        (2, 200, 5, 5, 70),
    ],
    ids=lambda s: "n{}c{}_{}x{}_o{}".format(*s),
)
@pytest.mark.parametrize("bias", (True, False))
def test_pointwise_gemm_tiles_and_split_k(dtype, layout, shape, bias, monkeypatch):
    force_cuda_path(monkeypatch, "SEPCONV_CUDA_POINTWISE", "gemm")
    N, Cin, H, W, Cout = shape
    g = torch.Generator().manual_seed(5)
    x = to_layout(torch.randn(N, Cin, H, W, generator=g, dtype=torch.float64).to(DEV, dtype), layout)
    w = (torch.randn(Cout, Cin, 1, 1, generator=g, dtype=torch.float64) / Cin**0.5).to(DEV, dtype)
    b = torch.randn(Cout, generator=g, dtype=torch.float64).to(DEV, dtype) if bias else None
    y = sc.pointwise_conv2d(x, w, b)
    assert y.is_contiguous(memory_format=expected_format(layout))
    ref = R.ref_pointwise_conv2d(x.double(), w.double(), None if b is None else b.double())
    check(y, ref, dtype, "gemm forward", reduction=Cin)
    assert torch.equal(y, sc.pointwise_conv2d(x, w, b)), "split-K sums must be repeatable"
    if layout == "cl":  # misaligned input: element loads instead of vectors, the same sums
        assert torch.equal(y, sc.pointwise_conv2d(misaligned_cl(x), w, b))
    # The weight gradient on the same GEMM (K = N*H*W, split when the dW tiles are few).
    force_cuda_path(monkeypatch, "SEPCONV_CUDA_POINTWISE_WGRAD", "gemm")
    gy = to_layout(torch.randn(ref.shape, generator=g, dtype=torch.float64).to(DEV, dtype), layout)
    gw = torch.ops.sepconv._pointwise_conv2d_backward_weight(gy, x)
    gw_ref = torch.einsum("nohw,nihw->oi", gy.double(), x.double())
    check(gw, gw_ref, dtype, "gemm weight gradient", reduction=N * H * W)
    assert torch.equal(gw, torch.ops.sepconv._pointwise_conv2d_backward_weight(gy, x))


@requires_cuda
def test_forced_cuda_path_must_be_a_known_kernel(monkeypatch):
    force_cuda_path(monkeypatch, "SEPCONV_CUDA_POINTWISE", "cublas")
    x = torch.randn(1, 4, 3, 3, device=DEV)
    with pytest.raises(RuntimeError, match="SEPCONV_CUDA_POINTWISE must be 'rows' or 'gemm'"):
        sc.pointwise_conv2d(x, torch.randn(5, 4, 1, 1, device=DEV))


# --------------------------------------------------------------------------- gradcheck (float64)
@requires_cuda
@pytest.mark.parametrize("layout", ("nchw", "cl"))
def test_gradcheck_gradgradcheck(layout):
    def mk(*shape):
        return torch.randn(*shape, device=DEV, dtype=torch.float64, requires_grad=True)

    x = to_layout(torch.randn(2, 3, 7, 6, device=DEV, dtype=torch.float64), layout).requires_grad_()
    w, b = mk(6, 1, 3, 2), mk(6)
    f = lambda x, w, b: sc.depthwise_conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2))  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))
    pw, pb = mk(5, 3, 1, 1), mk(5)
    g = lambda x, w, b: sc.pointwise_conv2d(x, w, b)  # noqa: E731
    assert torch.autograd.gradcheck(g, (x, pw, pb))
    assert torch.autograd.gradgradcheck(g, (x, pw, pb))
    dw, pw2 = mk(3, 1, 3, 3), mk(4, 3, 1, 1)
    h = lambda x, dw, pw: sc.separable_conv2d(x, dw, pw, stride=1, padding=1)  # noqa: E731
    assert torch.autograd.gradcheck(h, (x, dw, pw2))
    assert torch.autograd.gradgradcheck(h, (x, dw, pw2))


# --------------------------------------------------------------------------- CPU vs CUDA
@requires_cuda
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64), ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl"))
def test_cpu_and_cuda_agree(dtype, layout):
    torch.manual_seed(1)
    x = to_layout(torch.randn(2, 8, 15, 13, dtype=dtype), layout)
    dw, pw = torch.randn(16, 1, 5, 5, dtype=dtype), torch.randn(12, 16, 1, 1, dtype=dtype)
    db, pb = torch.randn(16, dtype=dtype), torch.randn(12, dtype=dtype)
    results = {}
    for dev in ("cpu", DEV):
        ins = [t.to(dev).requires_grad_() for t in (x, dw, pw, db, pb)]
        y = sc.separable_conv2d(*ins, stride=2, padding=2, dilation=1)
        grads = torch.autograd.grad(y, ins, torch.ones_like(y))
        results[dev] = [y] + list(grads)
    for name, c, g in zip(("y", "x", "dw", "pw", "db", "pb"), results["cpu"], results[DEV]):
        check(g, c.to(DEV), dtype, f"cpu vs cuda {name}", reduction=2 * 8 * 8 * 25)


# --------------------------------------------------------------------------- opcheck on CUDA tensors
def _cuda_samples():
    import test_library as L  # the CPU samples, moved to the GPU (and some in half precision)

    def move(sample, dtype=None):
        out = []
        for a in sample:
            if isinstance(a, torch.Tensor):
                t = a.detach().to(DEV, dtype or a.dtype)
                if a.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous():
                    t = t.contiguous(memory_format=torch.channels_last)
                out.append(t.requires_grad_(a.requires_grad))
            else:
                out.append(a)
        return out

    groups = {
        "depthwise_conv2d": L.dw_samples(),
        "_depthwise_conv2d_backward_input": L.dw_bwd_input_samples(),
        "_depthwise_conv2d_backward_weight": L.dw_bwd_weight_samples(),
        "pointwise_conv2d": L.pw_samples(),
        "_pointwise_conv2d_backward_weight": L.pw_bwd_samples(),
        "_separable_conv2d_backward": L.sep_bwd_samples(),  # the composite kernel on CUDA
    }
    cases = []
    for name, samples in groups.items():
        for i, s in enumerate(samples):
            cases.append(pytest.param(name, move(s), id=f"{name}-{i}"))
            if i == 0:
                cases.append(pytest.param(name, move(s, torch.float16), id=f"{name}-{i}-f16"))
    return cases


@requires_cuda
def test_opcheck_cuda():
    from torch.library import opcheck

    for p in _cuda_samples():
        name, args = p.values
        # Autograd-registration check needs inputs that require grad; the rest always run.
        opcheck(getattr(ops, name).default, tuple(args))
    x = torch.randn(2, 4, 9, 9, device=DEV, requires_grad=True)
    opcheck(
        ops.separable_conv2d.default,
        (
            x,
            torch.randn(8, 1, 3, 3, device=DEV, requires_grad=True),
            torch.randn(5, 8, 1, 1, device=DEV, requires_grad=True),
            None,
            None,
            [1, 1],
            [1, 1, 1, 1],
            [1, 1],
        ),
    )


# --------------------------------------------------------------------------- TorchScript, torch.compile
@requires_cuda
def test_torchscript_cuda():
    m = sc.SeparableConv2d(8, 12, 3, padding=1).to(DEV)
    scripted = torch.jit.script(m)
    x = torch.randn(2, 8, 11, 11, device=DEV)
    torch.testing.assert_close(scripted(x), m(x))

    @torch.jit.script
    def f(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.ops.sepconv.depthwise_conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1])

    w = torch.randn(8, 1, 3, 3, device=DEV)
    torch.testing.assert_close(f(x, w), ops.depthwise_conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1]))


def _has_triton():
    try:
        import triton  # noqa: F401

        return True
    except ImportError:
        return False


@requires_cuda
@pytest.mark.parametrize("backend", ("aot_eager", "inductor"))
@pytest.mark.parametrize("layout", ("nchw", "cl"))
def test_torch_compile_cuda(backend, layout):
    if backend == "inductor" and not _has_triton():
        pytest.skip("inductor on CUDA needs triton, which is not installed")
    torch._dynamo.reset()
    m = torch.nn.Sequential(sc.DepthwiseConv2d(8, 5, padding=2, depth_multiplier=2), sc.PointwiseConv2d(16, 6)).to(DEV)
    x = to_layout(torch.randn(2, 8, 13, 13, device=DEV), layout).requires_grad_()
    compiled = torch.compile(m, backend=backend, fullgraph=True)
    y, yc = m(x), compiled(x)
    torch.testing.assert_close(yc, y)
    g = torch.autograd.grad(y.square().sum(), [x] + list(m.parameters()))
    gc = torch.autograd.grad(yc.square().sum(), [x] + list(m.parameters()))
    for a, b in zip(gc, g):
        torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- deterministic mode
@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=dt_id)
@pytest.mark.parametrize("layout", ("nchw", "cl"))
def test_deterministic_bitwise_repeats(dtype, layout):
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        x = to_layout(torch.randn(8, 32, 40, 40, device=DEV, dtype=dtype), layout)
        dw = torch.randn(64, 1, 7, 7, device=DEV, dtype=dtype)
        pw = torch.randn(48, 64, 1, 1, device=DEV, dtype=dtype)

        def run():
            ins = [t.clone().requires_grad_() for t in (x, dw, pw)]
            y = sc.separable_conv2d(*ins, stride=1, padding=3)
            return [y.detach()] + list(torch.autograd.grad(y, ins, torch.ones_like(y)))

        first = run()
        for _ in range(3):
            for a, b in zip(first, run()):
                assert torch.equal(a, b), "results differ between identical runs"
    finally:
        torch.use_deterministic_algorithms(before)


# --------------------------------------------------------------------------- errors
@requires_cuda
def test_mixed_devices_rejected():
    x = torch.randn(1, 2, 5, 5, device=DEV)
    with pytest.raises(RuntimeError, match="same device"):
        ops.depthwise_conv2d(x, torch.randn(2, 1, 3, 3), None, [1, 1], [0, 0, 0, 0], [1, 1])
    with pytest.raises(RuntimeError, match="same device"):
        ops.pointwise_conv2d(x, torch.randn(3, 2, 1, 1), None)


@requires_cuda
def test_runs_on_the_current_stream():
    # Work lands on the current stream: results are correct when read after syncing that stream.
    s = torch.cuda.Stream()
    x = torch.randn(2, 8, 16, 16, device=DEV)
    w = torch.randn(8, 1, 3, 3, device=DEV)
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        y = sc.depthwise_conv2d(x, w, padding=1)
    s.synchronize()
    ref = F.conv2d(x.double(), w.double(), padding=1, groups=8)  # float64: no TF32 in the reference
    check(y, ref, torch.float32, "on a side stream", reduction=9)


# --------------------------------------------------------------------------- inference ops
@requires_cuda
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("activation", ["none", "relu", "hardtanh", "hardswish", "silu", "gelu"])
def test_fused_inference_ops_match_cpu(layout, activation):
    # CUDA runs the composition (the op, then ATen's activation); CPU the fused kernels.
    fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
    lo, hi = (0.0, 6.0) if activation == "hardtanh" else (0.0, 0.0)
    x = torch.randn(2, 24, 15, 13, dtype=torch.float64).contiguous(memory_format=fmt)
    dw, db = torch.randn(48, 1, 3, 3, dtype=torch.float64), torch.randn(48, dtype=torch.float64)
    pw, pb = torch.randn(16, 48, 1, 1, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    geometry = ([2, 1], [1, 1, 0, 2], [1, 2])
    outputs = []
    for device in ("cpu", "cuda"):
        y = torch.ops.sepconv.fused_depthwise_conv2d(
            x.to(device), dw.to(device), db.to(device), *geometry, activation, lo, hi
        )
        outputs.append(torch.ops.sepconv.fused_pointwise_conv2d(y, pw.to(device), pb.to(device), activation, lo, hi))
    assert outputs[1].is_contiguous(memory_format=fmt)
    torch.testing.assert_close(outputs[1].cpu(), outputs[0], atol=1e-10, rtol=1e-9)
