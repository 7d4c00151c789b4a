"""Operator-library integration: opcheck, meta, torch.compile, torch.export, TorchScript."""

import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import sepconv_ext as sc

import reference as R
from conftest import subprocess_env

ops = torch.ops.sepconv
F32, F64 = torch.float32, torch.float64


def _cl(t):
    return t.contiguous(memory_format=torch.channels_last)


def _rg(ts, on):
    return [t.requires_grad_(on) if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in ts]


# --------------------------------------------------------------------------- opcheck samples
def dw_samples():
    s = []
    for rg in (False, True):
        s.append(
            _rg([torch.randn(2, 3, 6, 5), torch.randn(3, 1, 3, 3), torch.randn(3), [1, 1], [1, 1, 1, 1], [1, 1]], rg)
        )
        s.append(_rg([_cl(torch.randn(2, 4, 7, 6)), torch.randn(8, 1, 3, 2), None, [2, 1], [0, 2, 1, 0], [1, 2]], rg))
    s.append(
        _rg(
            [
                torch.randn(1, 5, 9, 9, dtype=F64),
                torch.randn(15, 1, 5, 5, dtype=F64),
                torch.randn(15, dtype=F64),
                [3, 3],
                [2, 2, 2, 2],
                [1, 1],
            ],
            True,
        )
    )
    s.append(
        _rg(
            [_cl(torch.randn(2, 16, 5, 5)), torch.randn(16, 1, 1, 1), torch.randn(16), [1, 1], [0, 0, 0, 0], [1, 1]],
            True,
        )
    )
    return s


def dw_bwd_input_samples():
    s = []
    for rg in (False, True):
        s.append(
            _rg([torch.randn(2, 3, 6, 5), torch.randn(3, 1, 3, 3), [2, 3, 6, 5], [1, 1], [1, 1, 1, 1], [1, 1]], rg)
        )
        # stride 2 over an odd size: last input row/col not covered
        s.append(
            _rg([_cl(torch.randn(2, 8, 4, 5)), torch.randn(8, 1, 3, 2), [2, 4, 7, 9], [2, 2], [1, 1, 0, 1], [1, 1]], rg)
        )
    s.append(
        _rg(
            [
                torch.randn(1, 6, 2, 2, dtype=F64),
                torch.randn(6, 1, 3, 3, dtype=F64),
                [1, 2, 7, 7],
                [2, 2],
                [0, 0, 0, 0],
                [2, 2],
            ],
            True,
        )
    )
    return s


def dw_bwd_weight_samples():
    s = []
    for rg in (False, True):
        s.append(_rg([torch.randn(2, 3, 6, 5), torch.randn(2, 3, 6, 5), [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]], rg))
        s.append(
            _rg([_cl(torch.randn(2, 8, 4, 5)), _cl(torch.randn(2, 4, 7, 9)), [3, 2], [2, 2], [1, 1, 0, 1], [1, 1]], rg)
        )
    s.append(
        _rg(
            [
                torch.randn(1, 6, 2, 2, dtype=F64),
                torch.randn(1, 2, 7, 7, dtype=F64),
                [3, 3],
                [2, 2],
                [0, 0, 0, 0],
                [2, 2],
            ],
            True,
        )
    )
    return s


def pw_samples():
    s = []
    for rg in (False, True):
        s.append(_rg([torch.randn(2, 3, 4, 5), torch.randn(6, 3, 1, 1), torch.randn(6)], rg))
        s.append(_rg([_cl(torch.randn(2, 17, 3, 3)), torch.randn(9, 17), None], rg))
    s.append(_rg([torch.randn(1, 8, 2, 7, dtype=F64), torch.randn(33, 8, 1, 1, dtype=F64), None], True))
    return s


def pw_bwd_samples():
    s = []
    for rg in (False, True):
        s.append(_rg([torch.randn(2, 6, 4, 5), torch.randn(2, 3, 4, 5)], rg))
        s.append(_rg([_cl(torch.randn(2, 9, 3, 3)), _cl(torch.randn(2, 17, 3, 3))], rg))
    s.append(_rg([torch.randn(1, 4, 2, 2, dtype=F64), torch.randn(1, 8, 2, 2, dtype=F64)], True))
    return s


def sep_samples():
    s = []
    for rg in (False, True):
        s.append(
            _rg(
                [
                    torch.randn(2, 3, 6, 5),
                    torch.randn(3, 1, 3, 3),
                    torch.randn(4, 3, 1, 1),
                    None,
                    torch.randn(4),
                    [1, 1],
                    [1, 1, 1, 1],
                    [1, 1],
                ],
                rg,
            )
        )
        s.append(
            _rg(
                [
                    _cl(torch.randn(2, 4, 7, 6)),
                    torch.randn(8, 1, 3, 3),
                    torch.randn(5, 8),
                    torch.randn(8),
                    None,
                    [2, 2],
                    [1, 0, 1, 2],
                    [1, 1],
                ],
                rg,
            )
        )
    s.append(
        _rg(
            [
                torch.randn(1, 5, 9, 8, dtype=F64),
                torch.randn(10, 1, 2, 3, dtype=F64),
                torch.randn(3, 10, 1, 1, dtype=F64),
                torch.randn(10, dtype=F64),
                torch.randn(3, dtype=F64),
                [1, 2],
                [0, 1, 2, 1],
                [2, 1],
            ],
            True,
        )
    )
    return s


def sep_bwd_samples():
    # Not differentiable (the autograd kernel of separable_conv2d calls it only where no graph is
    # recorded), so no requires_grad samples. Output masks: all, input only, weights only.
    s = []
    for mask in ([True, True, True], [True, False, False], [False, True, True]):
        s.append(
            [
                torch.randn(2, 4, 6, 5),
                torch.randn(2, 3, 6, 5),
                torch.randn(3, 1, 3, 3),
                torch.randn(4, 3, 1, 1),
                None,
                [1, 1],
                [1, 1, 1, 1],
                [1, 1],
                mask,
            ]
        )
        s.append(
            [
                _cl(torch.randn(2, 5, 3, 4)),
                _cl(torch.randn(2, 4, 7, 6)),
                torch.randn(8, 1, 3, 3),
                torch.randn(5, 8),
                torch.randn(8),
                [2, 2],
                [1, 0, 1, 2],
                [1, 1],
                mask,
            ]
        )
    s.append(
        [
            torch.randn(1, 3, 8, 5, dtype=F64),
            torch.randn(1, 5, 9, 8, dtype=F64),
            torch.randn(10, 1, 2, 3, dtype=F64),
            torch.randn(3, 10, 1, 1, dtype=F64),
            torch.randn(10, dtype=F64),
            [1, 2],
            [0, 1, 2, 1],
            [2, 1],
            [True, True, False],
        ]
    )
    return s


# fmt: off
OPCHECK = [
    ("depthwise_conv2d", dw_samples),
    ("_depthwise_conv2d_backward_input", dw_bwd_input_samples),
    ("_depthwise_conv2d_backward_weight", dw_bwd_weight_samples),
    ("pointwise_conv2d", pw_samples),
    ("_pointwise_conv2d_backward_weight", pw_bwd_samples),
    ("separable_conv2d", sep_samples),
    ("_separable_conv2d_backward", sep_bwd_samples),
]
# fmt: on


@pytest.mark.parametrize("name,samples", OPCHECK, ids=[o[0] for o in OPCHECK])
def test_opcheck(name, samples):
    op = getattr(ops, name).default
    for i, args in enumerate(samples()):
        try:
            torch.library.opcheck(op, tuple(args))
        except Exception as e:  # name the sample in the failure
            raise AssertionError(f"opcheck {name} sample {i} failed: {e}") from e


def test_all_ops_registered():
    for name, _ in OPCHECK:
        assert hasattr(ops, name), name


# --------------------------------------------------------------------------- meta device
def test_meta_shapes():
    m = "meta"
    x = torch.empty(2, 4, 9, 8, device=m)
    out = ops.depthwise_conv2d(x, torch.empty(8, 1, 3, 2, device=m), None, [2, 1], [1, 0, 2, 1], [1, 2])
    assert out.device.type == "meta" and tuple(out.shape) == (2, 8, 4, 9)
    xc = x.contiguous(memory_format=torch.channels_last)
    out = ops.depthwise_conv2d(
        xc, torch.empty(8, 1, 3, 3, device=m), torch.empty(8, device=m), [1, 1], [1, 1, 1, 1], [1, 1]
    )
    assert tuple(out.shape) == (2, 8, 9, 8) and out.is_contiguous(memory_format=torch.channels_last)
    out = ops.pointwise_conv2d(xc, torch.empty(6, 4, device=m), None)
    assert tuple(out.shape) == (2, 6, 9, 8) and out.is_contiguous(memory_format=torch.channels_last)
    out = ops.separable_conv2d(
        x,
        torch.empty(4, 1, 3, 3, device=m),
        torch.empty(5, 4, 1, 1, device=m),
        None,
        None,
        [2, 2],
        [0, 0, 0, 0],
        [1, 1],
    )
    assert tuple(out.shape) == (2, 5, 4, 3)
    gi = ops._depthwise_conv2d_backward_input(
        torch.empty(2, 8, 4, 9, device=m), torch.empty(8, 1, 3, 2, device=m), [2, 4, 9, 8], [2, 1], [1, 0, 2, 1], [1, 2]
    )
    assert tuple(gi.shape) == (2, 4, 9, 8)
    gw = ops._depthwise_conv2d_backward_weight(
        torch.empty(2, 8, 4, 9, device=m), x, [3, 2], [2, 1], [1, 0, 2, 1], [1, 2]
    )
    assert tuple(gw.shape) == (8, 1, 3, 2)
    gp = ops._pointwise_conv2d_backward_weight(torch.empty(2, 6, 9, 8, device=m), x)
    assert tuple(gp.shape) == (6, 4)


# --------------------------------------------------------------------------- torch.compile
@pytest.fixture
def dynamo_reset():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _ops_fn(x, w, b, pw, pb, w2, pw2):
    y = ops.depthwise_conv2d(x, w, b, [2, 2], [1, 1, 1, 1], [1, 1])
    y = torch.relu(y)
    z = ops.pointwise_conv2d(y, pw, pb)
    return ops.separable_conv2d(z, w2, pw2, None, None, [1, 1], [1, 2, 0, 1], [2, 1])


def _ops_inputs(cl, dtype=F32):
    x = torch.randn(2, 4, 9, 8, dtype=dtype)
    if cl:
        x = _cl(x)
    ts = [
        x,
        torch.randn(8, 1, 3, 3, dtype=dtype),
        torch.randn(8, dtype=dtype),
        torch.randn(6, 8, 1, 1, dtype=dtype),
        torch.randn(6, dtype=dtype),
        torch.randn(12, 1, 3, 2, dtype=dtype),
        torch.randn(5, 12, dtype=dtype),
    ]
    return [t.requires_grad_() for t in ts]


def _compare_fwd_bwd(f_eager, f_comp, inputs, tol=1e-5):
    out_e = f_eager(*inputs)
    g_e = torch.autograd.grad(out_e.pow(2).sum(), inputs)
    out_c = f_comp(*inputs)
    g_c = torch.autograd.grad(out_c.pow(2).sum(), inputs)
    torch.testing.assert_close(out_c, out_e, rtol=tol, atol=tol)
    for a, b in zip(g_c, g_e):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * max(1.0, b.abs().max().item()))
    return out_e, out_c


@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "cl"])
def test_compile_aot_eager_ops(cl, dynamo_reset):
    f = torch.compile(_ops_fn, fullgraph=True, backend="aot_eager")
    _compare_fwd_bwd(_ops_fn, f, _ops_inputs(cl))


def _functional_fn(x, w, b, pw, pb, w2, pw2):
    y = sc.depthwise_conv2d(x, w, b, stride=2, padding="same")
    y = torch.relu(y)
    z = sc.pointwise_conv2d(y, pw, pb)
    return sc.separable_conv2d(z, w2, pw2, padding="same", dilation=(2, 1))


def test_compile_aot_eager_functional_dynamic(dynamo_reset):
    f = torch.compile(_functional_fn, fullgraph=True, backend="aot_eager", dynamic=True)
    _compare_fwd_bwd(_functional_fn, f, _ops_inputs(False, F64), tol=1e-10)
    ins = _ops_inputs(True, F64)
    ins[0] = torch.randn(3, 4, 11, 7, dtype=F64, requires_grad=True)  # another shape, same graph
    _compare_fwd_bwd(_functional_fn, f, ins, tol=1e-10)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = sc.DepthwiseConv2d(4, 3, padding=1, depth_multiplier=2)
        self.pw = sc.PointwiseConv2d(8, 6)
        self.sep = sc.SeparableConv2d(6, 5, 3, stride=2, padding=1)
        self.dw2 = sc.DepthwiseConv2d(5, (3, 2), padding="same", padding_mode="reflect", bias=False)

    def forward(self, x):
        return self.dw2(self.sep(torch.relu(self.pw(self.dw(x)))))


def test_compile_aot_eager_modules(dynamo_reset):
    m = TinyNet()
    x = torch.randn(2, 4, 9, 10, requires_grad=True)
    cm = torch.compile(m, fullgraph=True, backend="aot_eager")
    out_e = m(x)
    gx_e, *gp_e = torch.autograd.grad(out_e.sum(), [x] + list(m.parameters()))
    out_c = cm(x)
    gx_c, *gp_c = torch.autograd.grad(out_c.sum(), [x] + list(m.parameters()))
    torch.testing.assert_close(out_c, out_e)
    torch.testing.assert_close(gx_c, gx_e)
    for a, b in zip(gp_c, gp_e):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_compile_inductor(dynamo_reset):
    f = torch.compile(_ops_fn, fullgraph=True)
    _compare_fwd_bwd(_ops_fn, f, _ops_inputs(True), tol=1e-4)


# --------------------------------------------------------------------------- torch.export
class RawOpsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 1, 3, 3))
        self.b = nn.Parameter(torch.randn(8))
        self.pw = nn.Parameter(torch.randn(6, 8, 1, 1))
        self.w2 = nn.Parameter(torch.randn(12, 1, 3, 3))
        self.pw2 = nn.Parameter(torch.randn(5, 12, 1, 1))

    def forward(self, x):
        return _ops_fn(x, self.w, self.b, self.pw, None, self.w2, self.pw2)


def _targets(ep):
    return {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}


def test_export_raw_ops():
    m = RawOpsNet()
    x = torch.randn(2, 4, 9, 8)
    ep = torch.export.export(m, (x,))
    t = " ".join(_targets(ep))
    for op in ("sepconv.depthwise_conv2d", "sepconv.pointwise_conv2d", "sepconv.separable_conv2d"):
        assert op in t, f"{op} not in exported graph: {t}"
    torch.testing.assert_close(ep.module()(x), m(x))


def test_export_modules_dynamic_batch():
    m = TinyNet().eval()
    x = torch.randn(2, 4, 9, 10)
    ep = torch.export.export(m, (x,), dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=64)}})
    t = " ".join(_targets(ep))
    assert "sepconv." in t, t
    assert "aten.convolution" not in t and "aten.conv2d" not in t, t
    torch.testing.assert_close(ep.module()(x), m(x))
    x5 = torch.randn(5, 4, 9, 10)
    torch.testing.assert_close(ep.module()(x5), m(x5))


# --------------------------------------------------------------------------- TorchScript
class ScriptNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = sc.DepthwiseConv2d(4, 3, stride=1, padding=1, depth_multiplier=2)
        self.pw = sc.PointwiseConv2d(8, 6)
        self.sep = sc.SeparableConv2d(6, 5, 3, stride=2, padding="same", depth_multiplier=2)
        self.dw_reflect = sc.DepthwiseConv2d(5, 3, padding=1, padding_mode="reflect", bias=False)

    def forward(self, x):
        y = torch.relu(self.pw(self.dw(x)))
        return self.dw_reflect(self.sep(y))


CHILD = r"""
import sys
import torch
import sepconv_ext
m = torch.jit.load(sys.argv[1])
d = torch.load(sys.argv[2])
y = m(d["x"])
torch.testing.assert_close(y, d["y"], rtol=1e-6, atol=1e-6)
x = d["x"].clone().requires_grad_()
m(x).sum().backward()
torch.testing.assert_close(x.grad, d["gx"], rtol=1e-5, atol=1e-5)
print("OK")
"""


def test_torchscript_save_load_fresh_process(tmp_path):
    torch.manual_seed(3)
    m = ScriptNet()
    s = torch.jit.script(m)
    graph = str(s.inlined_graph)
    assert "sepconv::" in graph, "scripted graph does not call the sepconv ops"
    x = torch.randn(2, 4, 9, 10)
    y = m(x)
    ys = s(x)
    torch.testing.assert_close(ys, y)

    # backward through the scripted model matches eager
    xe = x.clone().requires_grad_()
    ge = torch.autograd.grad(m(xe).sum(), [xe] + list(m.parameters()))
    xs = x.clone().requires_grad_()
    gs = torch.autograd.grad(s(xs).sum(), [xs] + list(s.parameters()))
    for a, b in zip(gs, ge):
        torch.testing.assert_close(a, b)

    path = tmp_path / "model.pt"
    io = tmp_path / "io.pt"
    s.save(str(path))
    torch.save({"x": x, "y": ys.detach(), "gx": gs[0]}, str(io))
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(io)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=str(tmp_path),
        env=subprocess_env(),
    )
    assert p.returncode == 0 and p.stdout.strip().endswith("OK"), f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"


def test_torchscript_script_functional():
    @torch.jit.script
    def f(x: torch.Tensor, w: torch.Tensor, pw: torch.Tensor) -> torch.Tensor:
        y = torch.ops.sepconv.depthwise_conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1])
        return torch.ops.sepconv.pointwise_conv2d(y, pw, None)

    x, w, pw = torch.randn(1, 3, 5, 5), torch.randn(3, 1, 3, 3), torch.randn(2, 3)
    torch.testing.assert_close(f(x, w, pw), R.ref_pointwise_conv2d(R.ref_depthwise_conv2d(x, w, None, 1, 1), pw))
