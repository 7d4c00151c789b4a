"""nn.Module facade: state_dict compatibility with nn.Conv2d, padding modes, 'same'/'valid',
convert(), backend_info(), set_cpu_isa()."""

import copy
import importlib
import re
import subprocess
import sys
import types

import pytest
import torch
import torch.nn as nn

import sepconv_ext as sc

import reference as R
from conftest import subprocess_env

F32, F64 = torch.float32, torch.float64
MODES = ["zeros", "reflect", "replicate", "circular"]


def close(a, b, dtype=F32, reduction=64, what=""):
    R.assert_close(a, b.to(a.dtype) if b.dtype != a.dtype else b, dtype, reduction, what)


# --------------------------------------------------------------------------- parameters & state_dict
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("M", [1, 2, 3], ids=lambda m: f"M{m}")
def test_depthwise_state_dict_round_trip(M, bias):
    C, k = 4, (3, 5)
    d = sc.DepthwiseConv2d(C, k, stride=(2, 1), padding=(1, 2), dilation=(1, 2), depth_multiplier=M, bias=bias)
    ref = nn.Conv2d(C, C * M, k, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=C, bias=bias)
    assert tuple(d.weight.shape) == (C * M, 1, 3, 5)
    assert list(d.state_dict().keys()) == list(ref.state_dict().keys())
    x = torch.randn(2, C, 9, 11)
    ref.load_state_dict(d.state_dict())  # ours -> torch
    close(d(x), ref(x), reduction=15)
    ref2 = nn.Conv2d(C, C * M, k, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=C, bias=bias)
    d.load_state_dict(ref2.state_dict())  # torch -> ours
    close(d(x), ref2(x), reduction=15)
    assert torch.equal(d.weight, ref2.weight)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_pointwise_state_dict_round_trip(bias):
    p = sc.PointwiseConv2d(5, 7, bias=bias)
    ref = nn.Conv2d(5, 7, 1, bias=bias)
    assert tuple(p.weight.shape) == (7, 5, 1, 1)
    assert list(p.state_dict().keys()) == list(ref.state_dict().keys())
    x = torch.randn(2, 5, 4, 6)
    ref.load_state_dict(p.state_dict())
    close(p(x), ref(x))
    ref2 = nn.Conv2d(5, 7, 1, bias=bias)
    p.load_state_dict(ref2.state_dict())
    close(p(x), ref2(x))


class TwoConv(nn.Module):
    """The torch equivalent of SeparableConv2d, with the same state_dict keys."""

    def __init__(self, cin, cout, k, stride=1, padding=0, dilation=1, M=1, bias=True, padding_mode="zeros"):
        super().__init__()
        self.depthwise = nn.Conv2d(
            cin, cin * M, k, stride, padding, dilation, groups=cin, bias=False, padding_mode=padding_mode
        )
        self.pointwise = nn.Conv2d(cin * M, cout, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("M", [1, 2], ids=lambda m: f"M{m}")
def test_separable_state_dict_round_trip(M, bias):
    s = sc.SeparableConv2d(3, 5, 3, stride=2, padding=1, dilation=1, depth_multiplier=M, bias=bias)
    assert isinstance(s.depthwise, nn.Module) and isinstance(s.pointwise, nn.Module)
    assert s.depthwise.bias is None if hasattr(s.depthwise, "bias") else True
    ref = TwoConv(3, 5, 3, 2, 1, 1, M, bias)
    assert set(s.state_dict().keys()) == set(ref.state_dict().keys())
    assert "depthwise.weight" in s.state_dict() and "pointwise.weight" in s.state_dict()
    assert ("pointwise.bias" in s.state_dict()) == bias
    x = torch.randn(2, 3, 8, 7)
    ref.load_state_dict(s.state_dict())
    close(s(x), ref(x), reduction=9 * 3 * M)
    ref2 = TwoConv(3, 5, 3, 2, 1, 1, M, bias)
    s.load_state_dict(ref2.state_dict())
    close(s(x), ref2(x), reduction=9 * 3 * M)


def test_init_matches_conv2d_bounds():
    # nn.Conv2d init: kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in)), same for bias
    torch.manual_seed(0)
    d = sc.DepthwiseConv2d(64, 3, depth_multiplier=2)
    bound = 1 / 3.0  # fan_in = 1 * 3 * 3
    for t in (d.weight, d.bias):
        m = t.detach().abs().max().item()
        assert bound * 0.5 < m <= bound + 1e-7, (t.shape, m, bound)
    p = sc.PointwiseConv2d(100, 50)
    bound = 0.1  # fan_in = 100
    for t in (p.weight, p.bias):
        m = t.detach().abs().max().item()
        assert bound * 0.5 < m <= bound + 1e-7, (t.shape, m, bound)
    s = sc.SeparableConv2d(16, 64, 5)
    assert s.depthwise.weight.detach().abs().max().item() <= 0.2 + 1e-7
    assert s.pointwise.weight.detach().abs().max().item() <= 0.25 + 1e-7
    assert s.pointwise.weight.detach().abs().max().item() > 0.25 * 0.9


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_factory_kwargs(dtype):
    for m in (
        sc.DepthwiseConv2d(3, 3, dtype=dtype, device="cpu"),
        sc.PointwiseConv2d(3, 4, dtype=dtype),
        sc.SeparableConv2d(3, 4, 3, dtype=dtype),
    ):
        for p in m.parameters():
            assert p.dtype == dtype and p.device.type == "cpu"
        y = m(torch.randn(1, 3, 6, 6, dtype=dtype))
        assert y.dtype == dtype
    meta = sc.DepthwiseConv2d(3, 3, device="meta")
    assert meta.weight.device.type == "meta"


# --------------------------------------------------------------------------- padding modes / same / valid
@pytest.mark.parametrize("padding", [1, (2, 1), "same", "valid"], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("mode", MODES)
def test_depthwise_padding_modes_vs_conv2d(mode, padding):
    C, M = 3, 2
    d = sc.DepthwiseConv2d(C, 3, padding=padding, depth_multiplier=M, padding_mode=mode)
    ref = nn.Conv2d(C, C * M, 3, padding=padding, groups=C, padding_mode=mode)
    ref.load_state_dict(d.state_dict())
    for x in (
        torch.randn(2, C, 7, 8),
        torch.randn(2, C, 7, 8).contiguous(memory_format=torch.channels_last),
        torch.randn(C, 6, 5),
    ):
        y = d(x)
        close(y, ref(x), reduction=9, what=f"{mode} {padding}")
        if x.dim() == 4 and x.is_contiguous():
            assert y.is_contiguous(), f"NCHW in, strides {y.stride()} out"
        elif x.dim() == 4:
            assert y.is_contiguous(memory_format=torch.channels_last), f"channels_last in, strides {y.stride()} out"


@pytest.mark.parametrize("mode", MODES)
def test_depthwise_padding_modes_even_kernel_same(mode):
    d = sc.DepthwiseConv2d(4, (4, 2), padding="same", dilation=(1, 2), padding_mode=mode)
    ref = nn.Conv2d(4, 4, (4, 2), padding="same", dilation=(1, 2), groups=4, padding_mode=mode)
    ref.load_state_dict(d.state_dict())
    x = torch.randn(2, 4, 8, 9, dtype=F32)
    y = d(x)
    assert y.shape == x.shape
    close(y, ref(x), reduction=8, what=mode)


@pytest.mark.parametrize("mode", MODES)
def test_separable_padding_modes_vs_conv2d(mode):
    s = sc.SeparableConv2d(3, 5, 3, stride=2, padding=1, depth_multiplier=2, padding_mode=mode)
    ref = TwoConv(3, 5, 3, 2, 1, 1, 2, True, padding_mode=mode)
    ref.load_state_dict(s.state_dict())
    x = torch.randn(2, 3, 7, 9)
    close(s(x), ref(x), reduction=54, what=mode)
    xc = x.contiguous(memory_format=torch.channels_last)
    y = s(xc)
    close(y, ref(x), reduction=54, what=mode)
    assert y.is_contiguous(memory_format=torch.channels_last), f"channels_last in, strides {y.stride()} out"


@pytest.mark.parametrize("k", [2, 3, 4, (2, 5)], ids=lambda k: f"k{k}")
def test_same_stride1_equals_torch(k):
    d = sc.DepthwiseConv2d(5, k, padding="same", dtype=F64)
    ref = nn.Conv2d(5, 5, k, padding="same", groups=5, dtype=F64)
    ref.load_state_dict(d.state_dict())
    x = torch.randn(2, 5, 9, 8, dtype=F64)
    y = d(x)
    assert y.shape == x.shape
    close(y, ref(x), F64)
    s = sc.SeparableConv2d(5, 3, k, padding="same", dtype=F64)
    ref_s = TwoConv(5, 3, k, padding="same").double()
    ref_s.load_state_dict(s.state_dict())
    close(s(x), ref_s(x), F64)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize("k,H,W", [(3, 9, 8), (4, 10, 7), (5, 7, 7), (2, 5, 6)], ids=lambda v: str(v))
def test_same_stride2_tf_style(k, H, W, mode):
    d = sc.DepthwiseConv2d(3, k, stride=2, padding="same", depth_multiplier=2, padding_mode=mode, dtype=F64)
    x = torch.randn(2, 3, H, W, dtype=F64)
    y = d(x)
    assert tuple(y.shape) == (2, 6, -(-H // 2), -(-W // 2))
    exp = R.ref_depthwise_conv2d(x, d.weight, d.bias, 2, "same", 1, padding_mode=mode)
    close(y, exp, F64, what="TF SAME")
    s = sc.SeparableConv2d(3, 4, k, stride=2, padding="same", padding_mode=mode, dtype=F64)
    exp = R.ref_separable_conv2d(
        x, s.depthwise.weight, s.pointwise.weight, None, s.pointwise.bias, 2, "same", padding_mode=mode
    )
    close(s(x), exp, F64)


def test_valid():
    d = sc.DepthwiseConv2d(3, 3, padding="valid")
    ref = nn.Conv2d(3, 3, 3, padding="valid", groups=3)
    ref.load_state_dict(d.state_dict())
    x = torch.randn(1, 3, 6, 7)
    assert tuple(d(x).shape) == (1, 3, 4, 5)
    close(d(x), ref(x))


def test_module_backward_matches_conv2d():
    d = sc.SeparableConv2d(4, 6, 3, stride=2, padding=1, depth_multiplier=2, padding_mode="replicate", dtype=F64)
    ref = TwoConv(4, 6, 3, 2, 1, 1, 2, True, "replicate").double()
    ref.load_state_dict(d.state_dict())
    x = torch.randn(2, 4, 7, 6, dtype=F64, requires_grad=True)
    g1 = torch.autograd.grad(d(x).pow(2).sum(), [x] + list(d.parameters()))
    g2 = torch.autograd.grad(ref(x).pow(2).sum(), [x] + list(ref.parameters()))
    for a, b in zip(g1, g2):
        close(a, b, F64, reduction=1000)


# --------------------------------------------------------------------------- convert()
class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand):
        super().__init__()
        hidden = inp * expand
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and inp == oup

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MiniMobileNetV2(nn.Module):
    N_DEPTHWISE = 5  # 4 block depthwise + 1 multiplier-2 dilated reflect depthwise
    N_POINTWISE = 8  # block 1: project; blocks 2-4: expand + project; head
    KEPT = ["stem.0", "down"]  # groups=1 3x3 stem; 1x1 stride-2 shortcut (not eligible)

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(inplace=True))
        self.blocks = nn.Sequential(
            InvertedResidual(8, 8, 1, 1),
            InvertedResidual(8, 12, 2, 4),
            InvertedResidual(12, 12, 1, 4),
            InvertedResidual(12, 16, 2, 4),
        )
        self.dw_mult = nn.Conv2d(16, 32, 3, padding=2, dilation=2, groups=16, padding_mode="reflect")
        self.down = nn.Conv2d(32, 32, 1, stride=2)
        self.head = nn.Conv2d(32, 40, 1)
        self.act = nn.ReLU6()
        self.fc = nn.Linear(40, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = self.act(self.dw_mult(x))
        x = self.act(self.head(self.down(x)))
        return self.fc(x.mean((2, 3)))


def make_mobilenet(dtype=F32):
    torch.manual_seed(1)
    m = MiniMobileNetV2().to(dtype)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    return m.eval()


def count(model):
    dw = sum(isinstance(m, sc.DepthwiseConv2d) for m in model.modules())
    pw = sum(isinstance(m, sc.PointwiseConv2d) for m in model.modules())
    plain = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and not isinstance(m, (sc.DepthwiseConv2d, sc.PointwiseConv2d))
    ]
    return dw, pw, plain


def storages(model):
    return {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers()) if t.numel()}


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_convert_mobilenet(dtype):
    m = make_mobilenet(dtype)
    snapshot = copy.deepcopy(m.state_dict())
    x = torch.randn(2, 3, 32, 32, dtype=dtype)
    with torch.no_grad():
        y = m(x)
    c = sc.convert(m, inplace=False)
    assert c is not m

    dw, pw, plain = count(c)
    assert dw == MiniMobileNetV2.N_DEPTHWISE, f"{dw} depthwise convs converted"
    assert pw == MiniMobileNetV2.N_POINTWISE, f"{pw} pointwise convs converted"
    assert sorted(plain) == sorted(MiniMobileNetV2.KEPT), plain
    assert type(c.stem[0]) is nn.Conv2d

    with torch.no_grad():
        yc = c(x)
        yc_cl = c(x.contiguous(memory_format=torch.channels_last))
    close(yc, y, dtype, reduction=1000, what="converted output")
    close(yc_cl, y, dtype, reduction=1000, what="converted output (channels_last input)")

    # state_dict keys unchanged, values equal, dtype and device kept
    sd = c.state_dict()
    assert list(sd.keys()) == list(snapshot.keys())
    for k, v in snapshot.items():
        assert sd[k].dtype == v.dtype and sd[k].device == v.device, k
        assert torch.equal(sd[k], v), k

    # the original is untouched and shares no storage with the copy
    dw0, pw0, plain0 = count(m)
    assert dw0 == 0 and pw0 == 0 and len(plain0) == 15
    for k, v in m.state_dict().items():
        assert torch.equal(v, snapshot[k]), k
    assert not (storages(m) & storages(c)), "convert(inplace=False) shares storage with the original"
    with torch.no_grad():
        for p in c.parameters():
            p.add_(1.0)
    for k, v in m.state_dict().items():
        assert torch.equal(v, snapshot[k]), f"mutating the converted copy changed original {k}"


def test_convert_inplace():
    m = make_mobilenet()
    x = torch.randn(1, 3, 24, 24)
    with torch.no_grad():
        y = m(x)
    keys = list(m.state_dict().keys())
    out = sc.convert(m, inplace=True)
    dw, pw, plain = count(m)  # the original object itself was converted
    assert (dw, pw) == (MiniMobileNetV2.N_DEPTHWISE, MiniMobileNetV2.N_POINTWISE)
    assert sorted(plain) == sorted(MiniMobileNetV2.KEPT)
    assert list(out.state_dict().keys()) == keys
    with torch.no_grad():
        close(out(x), y, reduction=1000)


def test_convert_train_mode_gradients():
    m = make_mobilenet(F64).train()
    c = sc.convert(m)
    x = torch.randn(2, 3, 32, 32, dtype=F64, requires_grad=True)
    g1 = torch.autograd.grad(m(x).pow(2).sum(), [x] + list(m.parameters()))
    g2 = torch.autograd.grad(c(x).pow(2).sum(), [x] + list(c.parameters()))
    names = ["input"] + [n for n, _ in m.named_parameters()]
    for a, b, n in zip(g2, g1, names):
        close(a, b, F64, reduction=10000, what=n)


def test_convert_shared_layer_stays_shared():
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    seq = nn.Sequential(conv, nn.ReLU(), conv)
    c = sc.convert(seq)
    assert isinstance(c[0], sc.DepthwiseConv2d) and c[0] is c[2]
    x = torch.randn(1, 4, 6, 6)
    close(c(x), seq(x), reduction=20)
    assert list(c.state_dict().keys()) == list(seq.state_dict().keys())


def test_convert_single_layers():
    dwc = nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), groups=4, bias=True)
    c = sc.convert(dwc)
    assert isinstance(c, sc.DepthwiseConv2d)
    x = torch.randn(2, 4, 9, 9)
    close(c(x), dwc(x), reduction=15)
    pwc = nn.Conv2d(6, 3, 1, bias=False)
    c = sc.convert(pwc)
    assert isinstance(c, sc.PointwiseConv2d)
    x = torch.randn(2, 6, 5, 5)
    close(c(x), pwc(x))
    seq = nn.Sequential(nn.Conv2d(3, 3, 3, padding="same", groups=3, padding_mode="circular"))
    c = sc.convert(seq)
    assert isinstance(c[0], sc.DepthwiseConv2d)
    x = torch.randn(1, 3, 6, 7)
    close(c(x), seq(x), reduction=9)


# --------------------------------------------------------------------------- backend
def test_backend_info():
    info = sc.backend_info()
    for key, typ in (("version", str), ("cpu_isa", str), ("cpu_isas", list), ("cuda", bool), ("cuda_archs", list)):
        assert key in info, key
        assert isinstance(info[key], typ), (key, type(info[key]))
    assert info["version"]
    assert info["cpu_isas"] and all(isinstance(s, str) for s in info["cpu_isas"])
    assert set(info["cpu_isas"]) <= {"avx512", "avx2", "neon", "scalar"}, info["cpu_isas"]
    assert "scalar" in info["cpu_isas"]
    assert info["cpu_isa"] in info["cpu_isas"]
    assert all(isinstance(s, str) for s in info["cuda_archs"])
    # Built by setup.py against the torch running now (the import check enforces the release).
    assert info["torch_built"] is not None
    assert info["torch_built"].split("+")[0] == torch.__version__.split("+")[0]
    assert set(info["isa_verified_on"]) == {"avx512", "avx2", "neon", "scalar"}


def _fake_build_info(version, cuda=None, with_cuda=False):
    return types.SimpleNamespace(TORCH_VERSION=version, TORCH_CUDA=cuda, WITH_CUDA=with_cuda)


def test_import_refuses_another_torch_release():
    """A torch upgrade after install: a clear ImportError before the library is loaded, not an
    undefined-symbol traceback (issue 16)."""
    from sepconv_ext import _extension

    release = torch.__version__.split("+")[0]
    _extension.check_torch(_fake_build_info(release + "+some_label"))  # same release: loads
    _extension.check_torch(None)  # no record (an old in-place build): nothing to compare
    major, minor = (int(v) for v in release.split(".")[:2])
    other = f"{major}.{minor + 1}.0"
    with pytest.raises(
        ImportError,
        match=rf"built against torch {other}, but torch {re.escape(torch.__version__)} is running: reinstall",
    ):
        _extension.check_torch(_fake_build_info(other))
    if torch.version.cuda is None:
        with pytest.raises(ImportError, match="built with CUDA kernels.*has no CUDA"):
            _extension.check_torch(_fake_build_info(torch.__version__, "13.0", True))


def test_import_from_source_tree_without_build_says_so(tmp_path, monkeypatch):
    """A package directory without its compiled _C (what `python` finds first from the root of a
    checkout installed with plain `pip install .`) fails with an error naming the cause."""
    from sepconv_ext import _extension

    real_import = importlib.import_module

    def import_module(name, *args):
        if name == "sepconv_ext._C":
            raise ModuleNotFoundError("No module named 'sepconv_ext._C'")
        return real_import(name, *args)

    monkeypatch.setattr(_extension.importlib, "import_module", import_module)
    monkeypatch.setattr(_extension, "PACKAGE_DIR", str(tmp_path))
    with pytest.raises(ImportError, match=r"has no compiled extension \(_C\)\. If that is its source tree"):
        _extension.load()
    (tmp_path / "_C.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")  # a build that fails to load
    with pytest.raises(ImportError, match="compiled extension failed to load .*: reinstall"):
        _extension.load()


def test_set_cpu_isa():
    before = sc.backend_info()["cpu_isa"]
    prev = sc.set_cpu_isa("scalar")
    assert prev == before
    assert sc.backend_info()["cpu_isa"] == "scalar"
    x, w = torch.randn(1, 3, 5, 5), torch.randn(3, 1, 3, 3)
    close(sc.depthwise_conv2d(x, w, padding=1), R.ref_depthwise_conv2d(x, w, None, 1, 1), reduction=9)
    assert sc.set_cpu_isa(before) == "scalar"
    assert sc.backend_info()["cpu_isa"] == before


def test_set_cpu_isa_invalid():
    before = sc.backend_info()["cpu_isa"]
    with pytest.raises(ValueError):
        sc.set_cpu_isa("bogus")
    unusable = {"avx512", "avx2", "neon"} - set(sc.backend_info()["cpu_isas"])
    for name in sorted(unusable):
        with pytest.raises(ValueError):
            sc.set_cpu_isa(name)
    assert sc.backend_info()["cpu_isa"] == before


def test_env_cpu_isa(tmp_path):
    env = subprocess_env()
    env["SEPCONV_CPU_ISA"] = "scalar"
    # cwd: not the checkout, whose source tree would shadow a non-editable install.
    p = subprocess.run(
        [sys.executable, "-c", "import sepconv_ext; print(sepconv_ext.backend_info()['cpu_isa'])"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "scalar"
