"""Inference: the fused ops (torch.ops.sepconv.fused_*_conv2d: conv + bias + activation in the
kernels' epilogue) against torch's conv and activation, on every ISA, and
sc.optimize_for_inference against the eval model it rewrites (BatchNorm folded, activations
fused): outputs, what it replaced, what it left, TorchScript, torch.compile, torch.export."""

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sepconv_ext as sc
from sepconv_ext.inference import FusedDepthwiseConv2d, FusedPointwiseConv2d
from sepconv_ext.models import MODELS

try:
    import torchvision
except Exception:  # not installed, or built for another torch (CI's CPU torch)
    torchvision = None

ops = torch.ops.sepconv
CL = torch.channels_last

# (activation, min_val, max_val) and torch's own version of each.
ACTIVATIONS = {
    "none": (lambda y: y, 0.0, 0.0),
    "relu": (F.relu, 0.0, 0.0),
    "hardtanh": (lambda y: F.hardtanh(y, -0.25, 0.5), -0.25, 0.5),
    "relu6": (F.relu6, 0.0, 6.0),
    "hardswish": (F.hardswish, 0.0, 0.0),
    "hardsigmoid": (F.hardsigmoid, 0.0, 0.0),
    "sigmoid": (torch.sigmoid, 0.0, 0.0),
    "silu": (F.silu, 0.0, 0.0),
    "gelu": (F.gelu, 0.0, 0.0),
}


def _op_activation(name):
    return "hardtanh" if name == "relu6" else name


def _depthwise_reference(x, w, b, stride, pads, dilation):
    top, bottom, left, right = pads
    return F.conv2d(F.pad(x, [left, right, top, bottom]), w, b, stride, 0, dilation, groups=x.shape[1])


# (N, C, M, H, W, k, stride, pads, dilation): channels below, at and above the vector widths,
# borders, strides, dilation, a multiplier, N=0.
DEPTHWISE_CASES = [
    (2, 3, 1, 9, 8, 3, [1, 1], [1, 1, 1, 1], [1, 1]),
    (1, 16, 1, 14, 14, 5, [2, 2], [2, 2, 2, 2], [1, 1]),
    (2, 17, 2, 7, 11, 3, [1, 2], [0, 1, 2, 0], [2, 1]),
    (1, 40, 1, 12, 12, 7, [1, 1], [3, 3, 3, 3], [1, 1]),
    (0, 8, 1, 5, 5, 3, [1, 1], [1, 1, 1, 1], [1, 1]),
]
# (N, Cin, Cout, H, W): 1x1 planes (squeeze-excitation), few pixels (the dot path), wide layers.
POINTWISE_CASES = [(2, 3, 5, 4, 4), (1, 96, 24, 1, 1), (3, 17, 40, 7, 9), (1, 320, 1280, 7, 7), (0, 4, 6, 3, 3)]


def _isas():
    return sc.backend_info()["cpu_isas"]


@pytest.mark.parametrize("isa", _isas())
@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_depthwise_matches_torch(isa, act, dtype):
    sc.set_cpu_isa(isa)
    fn, lo, hi = ACTIVATIONS[act]
    tol = {"atol": 2e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-10}
    for n, c, m, h, w, k, stride, pads, dilation in DEPTHWISE_CASES:
        x = torch.randn(n, c, h, w, dtype=dtype) * 2
        weight = torch.randn(c * m, 1, k, k, dtype=dtype)
        for bias in (torch.randn(c * m, dtype=dtype), None):
            want = fn(_depthwise_reference(x, weight, bias, stride, pads, dilation))
            for fmt in (torch.contiguous_format, CL):
                xin = x.contiguous(memory_format=fmt)
                got = ops.fused_depthwise_conv2d(xin, weight, bias, stride, pads, dilation, _op_activation(act), lo, hi)
                torch.testing.assert_close(got, want, **tol)
                assert n == 0 or got.is_contiguous(memory_format=fmt)  # empty: any layout


@pytest.mark.parametrize("isa", _isas())
@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_pointwise_matches_torch(isa, act, dtype):
    sc.set_cpu_isa(isa)
    fn, lo, hi = ACTIVATIONS[act]
    for n, cin, cout, h, w in POINTWISE_CASES:
        x = torch.randn(n, cin, h, w, dtype=dtype)
        weight = torch.randn(cout, cin, 1, 1, dtype=dtype) / cin**0.5
        tol = {"atol": 2e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-10}
        for bias in (torch.randn(cout, dtype=dtype), None):
            want = fn(F.conv2d(x, weight, bias))
            for fmt in (torch.contiguous_format, CL):
                got = ops.fused_pointwise_conv2d(
                    x.contiguous(memory_format=fmt), weight, bias, _op_activation(act), lo, hi
                )
                torch.testing.assert_close(got, want, **tol)


def test_fused_ops_nan_propagates():
    x = torch.full((1, 8, 3, 3), float("nan"))
    for act, (_, lo, hi) in ACTIVATIONS.items():
        y = ops.fused_depthwise_conv2d(
            x, torch.ones(8, 1, 1, 1), None, [1, 1], [0, 0, 0, 0], [1, 1], _op_activation(act), lo, hi
        )
        assert torch.isnan(y).all(), act
        y = ops.fused_pointwise_conv2d(x, torch.ones(4, 8, 1, 1), None, _op_activation(act), lo, hi)
        assert torch.isnan(y).all(), act


def test_fused_ops_bad_arguments():
    x, w = torch.randn(1, 4, 5, 5), torch.randn(4, 1, 3, 3)
    with pytest.raises(ValueError, match="fused_depthwise_conv2d: expected activation .* got 'tanh'"):
        ops.fused_depthwise_conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], "tanh", 0.0, 0.0)
    with pytest.raises(ValueError, match="fused_pointwise_conv2d: expected hardtanh bounds"):
        ops.fused_pointwise_conv2d(x, torch.randn(3, 4, 1, 1), None, "hardtanh", 1.0, 0.0)
    with pytest.raises(ValueError, match="hardtanh bounds"):
        ops.fused_pointwise_conv2d(x, torch.randn(3, 4, 1, 1), None, "hardtanh", float("nan"), 1.0)
    # The shape checks name the fused op.
    with pytest.raises((ValueError, RuntimeError), match="sepconv::fused_pointwise_conv2d"):
        ops.fused_pointwise_conv2d(x, torch.randn(3, 5, 1, 1), None, "relu", 0.0, 0.0)
    with pytest.raises((ValueError, RuntimeError), match="sepconv::fused_depthwise_conv2d"):
        ops.fused_depthwise_conv2d(x, torch.randn(5, 1, 3, 3), None, [1, 1], [1, 1, 1, 1], [1, 1], "relu", 0.0, 0.0)
    # The same errors from the meta kernels (torch.compile / export trace them).
    m = torch.empty(1, 4, 5, 5, device="meta")
    with pytest.raises(ValueError, match="got 'tanh'"):
        ops.fused_depthwise_conv2d(m, w.to("meta"), None, [1, 1], [1, 1, 1, 1], [1, 1], "tanh", 0.0, 0.0)
    with pytest.raises(ValueError, match="hardtanh bounds"):
        ops.fused_pointwise_conv2d(m, torch.empty(3, 4, 1, 1, device="meta"), None, "hardtanh", 2.0, 1.0)


def test_fused_ops_refuse_inputs_that_require_grad():
    x, w, b = torch.randn(1, 4, 5, 5), torch.randn(4, 1, 3, 3), torch.randn(4)
    for grad_arg in range(3):
        args = [x.clone(), w.clone(), b.clone()]
        args[grad_arg].requires_grad_()
        with pytest.raises(RuntimeError, match="inference only .* requires grad"):
            ops.fused_depthwise_conv2d(*args, [1, 1], [1, 1, 1, 1], [1, 1], "relu", 0.0, 0.0)
        with torch.no_grad():  # no graph is built: fine
            ops.fused_depthwise_conv2d(*args, [1, 1], [1, 1, 1, 1], [1, 1], "relu", 0.0, 0.0)
    with pytest.raises(RuntimeError, match="fused_pointwise_conv2d is for inference only"):
        ops.fused_pointwise_conv2d(x.requires_grad_(), torch.randn(3, 4, 1, 1), None, "none", 0.0, 0.0)
    with torch.inference_mode():
        ops.fused_pointwise_conv2d(torch.randn(1, 4, 5, 5), torch.randn(3, 4, 1, 1), None, "none", 0.0, 0.0)


def _opcheck_samples():
    x = torch.randn(2, 5, 7, 6)
    yield (
        ops.fused_depthwise_conv2d,
        (x, torch.randn(10, 1, 3, 3), torch.randn(10), [1, 2], [1, 1, 0, 1], [1, 1], "silu", 0.0, 0.0),
    )
    yield (
        ops.fused_depthwise_conv2d,
        (
            x.contiguous(memory_format=CL),
            torch.randn(5, 1, 3, 3),
            None,
            [1, 1],
            [1, 1, 1, 1],
            [2, 1],
            "hardtanh",
            0.0,
            6.0,
        ),
    )
    yield ops.fused_pointwise_conv2d, (x, torch.randn(9, 5, 1, 1), torch.randn(9), "hardswish", 0.0, 0.0)
    yield ops.fused_pointwise_conv2d, (x.contiguous(memory_format=CL), torch.randn(9, 5), None, "gelu", 0.0, 0.0)
    yield ops.fused_pointwise_conv2d, (x.double(), torch.randn(9, 5, 1, 1, dtype=torch.float64), None, "relu", 0.0, 0.0)


def test_opcheck_fused_ops():
    for i, (op, args) in enumerate(_opcheck_samples()):
        try:
            torch.library.opcheck(op.default, args)
        except Exception as e:  # name the sample in the failure
            raise AssertionError(f"opcheck sample {i} ({op}) failed: {e}") from e


# --------------------------------------------------------------------------- optimize_for_inference
def _randomize_batch_norms(model):
    """BatchNorm statistics and affine parameters away from the identity, so folding matters."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                if m.running_mean is not None:
                    m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                    m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=g) * 0.2)
    return model


def _count(model, kind):
    return sum(type(m) is kind for m in model.modules())


@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
@pytest.mark.parametrize("name", list(MODELS))
def test_optimized_builtin_matches_eval_float64(name, fmt):
    model = _randomize_batch_norms(MODELS[name]()).double().eval()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    if fmt == "channels_last":
        model, x = model.to(memory_format=CL), x.contiguous(memory_format=CL)
    before = copy.deepcopy(model.state_dict())
    optimized = sc.optimize_for_inference(model)
    assert not optimized.training and all(not m.training for m in optimized.modules())
    # Every BatchNorm of these networks follows a conv: all folded; every depthwise and 1x1 conv
    # fused (the stem's 3x3 conv stays an nn.Conv2d, its BatchNorm folded into it).
    assert _count(optimized, nn.BatchNorm2d) == 0
    assert _count(optimized, nn.Conv2d) == 1
    n_dw = sum(type(m) is nn.Conv2d and m.groups == m.in_channels > 1 for m in model.modules())
    assert _count(optimized, FusedDepthwiseConv2d) == n_dw > 0
    assert _count(optimized, FusedPointwiseConv2d) == _count(model, nn.Conv2d) - n_dw - 1
    with torch.no_grad():
        torch.testing.assert_close(optimized(x), model(x), atol=1e-10, rtol=1e-9)
    # The original is untouched.
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", list(MODELS))
def test_optimized_builtin_matches_eval_float32(name):
    model = _randomize_batch_norms(MODELS[name]()).eval().to(memory_format=CL)
    x = torch.randn(2, 3, 96, 96).contiguous(memory_format=CL)
    optimized = sc.optimize_for_inference(model)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(optimized(x), want, atol=2e-4 * want.abs().max().item(), rtol=1e-3)


def test_optimize_inplace_and_single_modules():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6())
    _randomize_batch_norms(model).eval()
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        want = model(x)
        same = sc.optimize_for_inference(model, inplace=True)
        assert same is model and type(model[0]) is FusedDepthwiseConv2d
        assert type(model[1]) is nn.Identity and type(model[2]) is nn.Identity
        assert (model[0].activation, model[0].min_val, model[0].max_val) == ("hardtanh", 0.0, 6.0)
        torch.testing.assert_close(model(x), want, atol=1e-5, rtol=1e-5)
        # A lone conv (or the converted modules) becomes a fused op without activation; unbatched
        # input works as with nn.Conv2d.
        conv = nn.Conv2d(8, 16, 1).eval()
        fused = sc.optimize_for_inference(conv)
        assert type(fused) is FusedPointwiseConv2d and fused.activation == "none"
        torch.testing.assert_close(fused(x[0]), conv(x[0]), atol=1e-5, rtol=1e-5)
        dw = sc.DepthwiseConv2d(8, 3, padding="same", depth_multiplier=2).eval()
        torch.testing.assert_close(sc.optimize_for_inference(dw)(x), dw(x), atol=1e-5, rtol=1e-5)


def test_optimize_leaves_what_it_does_not_recognise():
    class Gate(nn.Module):  # a custom module: kept, and its own convs still fused
        def __init__(self):
            super().__init__()
            self.fc = nn.Conv2d(8, 8, 1)

        def forward(self, x):
            return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))

    model = nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect", groups=8),  # not zero padding: kept
        nn.BatchNorm2d(8),
        nn.Tanh(),  # not an activation the ops fuse: kept after the folded conv
        Gate(),
        nn.Conv2d(8, 4, 3, padding=1),  # a regular conv: its BatchNorm folded
        nn.BatchNorm2d(4, affine=False),
        nn.GELU(approximate="tanh"),  # only the exact GELU is fused
        nn.BatchNorm2d(4, track_running_stats=False),  # batch statistics even in eval: kept
    )
    _randomize_batch_norms(model).eval()
    optimized = sc.optimize_for_inference(model)
    kinds = [type(m) for m in optimized]
    assert kinds == [nn.Conv2d, nn.Identity, nn.Tanh, Gate, nn.Conv2d, nn.Identity, nn.GELU, nn.BatchNorm2d]
    assert type(optimized[3].fc) is FusedPointwiseConv2d
    x = torch.randn(3, 8, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(optimized(x), model(x), atol=1e-5, rtol=1e-5)


def _small_block():
    block = nn.Sequential(
        nn.Conv2d(8, 24, 1, bias=False), nn.BatchNorm2d(24), nn.Hardswish(),
        nn.Conv2d(24, 24, 3, 2, 1, groups=24, bias=False), nn.BatchNorm2d(24), nn.SiLU(),
        nn.Conv2d(24, 8, 1), nn.BatchNorm2d(8),
    )  # fmt: skip
    return sc.optimize_for_inference(_randomize_batch_norms(block))


def test_optimized_scripts_saves_and_loads():
    optimized = sc.optimize_for_inference(_randomize_batch_norms(MODELS["mobilenet_v3_large"]()))
    x = torch.randn(1, 3, 64, 64)
    scripted = torch.jit.script(optimized)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.no_grad():
        want = optimized(x)
        torch.testing.assert_close(scripted(x), want, atol=0, rtol=0)
        torch.testing.assert_close(loaded(x), want, atol=0, rtol=0)


def test_optimized_compiles_and_exports():
    torch._dynamo.reset()
    block = _small_block()
    x = torch.randn(2, 8, 12, 12).contiguous(memory_format=CL)
    with torch.no_grad():
        want = block(x)
        compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(x), want, atol=1e-6, rtol=1e-6)
        ep = torch.export.export(block, (x,))
        graph = str(ep.graph)
        assert "sepconv.fused_pointwise_conv2d" in graph and "sepconv.fused_depthwise_conv2d" in graph
        torch.testing.assert_close(ep.module()(x), want, atol=1e-6, rtol=1e-6)
    torch._dynamo.reset()


@pytest.mark.skipif(torchvision is None, reason="torchvision does not import")
@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "mnasnet1_0"])
def test_optimized_torchvision_matches_eval(name):
    model = _randomize_batch_norms(getattr(torchvision.models, name)(weights=None)).double().eval()
    optimized = sc.optimize_for_inference(model)
    assert _count(optimized, nn.BatchNorm2d) == 0
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(optimized(x), model(x), atol=1e-10, rtol=1e-9)
