"""Reference implementations (torch's own F.conv2d), random case generators, and the checker that
runs an op forward and backward against a reference (run_check).

Everything here is independent of sepconv_ext: the tests compare the extension against these.

Padding conventions:
  * op level (torch.ops.sepconv.*): four ints (top, bottom, left, right);
  * functional level: int, pair (ph, pw), 'valid', or 'same' (stride 1: torch's 'same', which puts
    the odd extra pixel at the bottom/right; stride > 1: TensorFlow SAME, output ceil(H / s)).
F.pad takes (left, right, top, bottom), so the 4-tuple is reordered before padding.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F

Pad = Union[int, Sequence[int], str]


# --------------------------------------------------------------------------- argument helpers
def pair(v) -> Tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return (v[0], v[0])
    assert len(v) == 2, v
    return v


def pad4(padding) -> Tuple[int, int, int, int]:
    """int / pair / 4-tuple -> (top, bottom, left, right)."""
    if isinstance(padding, int):
        return (padding,) * 4
    p = tuple(int(i) for i in padding)
    if len(p) == 1:
        return p * 4
    if len(p) == 2:
        return (p[0], p[0], p[1], p[1])
    assert len(p) == 4, p
    return p


def same_pad4(H, W, kernel_size, stride, dilation) -> Tuple[int, int, int, int]:
    """TensorFlow SAME (== torch 'same' when stride is 1): output ceil(n / s), extra at the end."""
    kH, kW = pair(kernel_size)
    sH, sW = pair(stride)
    dH, dW = pair(dilation)

    def one(n, k, s, d):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        return total // 2, total - total // 2

    t, b = one(H, kH, sH, dH)
    l, r = one(W, kW, sW, dW)
    return (t, b, l, r)


def resolve_padding(padding: Pad, H, W, kernel_size, stride, dilation):
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            return same_pad4(H, W, kernel_size, stride, dilation)
        raise ValueError(padding)
    return pad4(padding)


def out_size(n, k, s, d, p_lo, p_hi):
    return (n + p_lo + p_hi - d * (k - 1) - 1) // s + 1


# --------------------------------------------------------------------------- reference ops
def ref_depthwise_conv2d(x, w, b=None, stride=1, padding: Pad = 0, dilation=1, padding_mode="zeros"):
    unbatched = x.dim() == 3
    if unbatched:
        x = x.unsqueeze(0)
    C = x.shape[1]
    kH, kW = w.shape[-2:]
    t, bo, l, r = resolve_padding(padding, x.shape[2], x.shape[3], (kH, kW), stride, dilation)
    if any((t, bo, l, r)):
        if padding_mode == "zeros":
            x = F.pad(x, (l, r, t, bo))
        else:
            x = F.pad(x, (l, r, t, bo), mode=padding_mode)
    y = F.conv2d(x, w, b, stride=pair(stride), padding=0, dilation=pair(dilation), groups=C)
    return y.squeeze(0) if unbatched else y


def ref_pointwise_conv2d(x, w, b=None):
    if w.dim() == 2:
        w = w.reshape(w.shape[0], w.shape[1], 1, 1)
    return F.conv2d(x, w, b)


def ref_separable_conv2d(
    x, dw_w, pw_w, dw_b=None, pw_b=None, stride=1, padding: Pad = 0, dilation=1, padding_mode="zeros"
):
    y = ref_depthwise_conv2d(x, dw_w, dw_b, stride, padding, dilation, padding_mode)
    return ref_pointwise_conv2d(y, pw_w, pw_b)


# --------------------------------------------------------------------------- comparison
def tol_for(dtype, reduction: int = 1) -> float:
    """Relative tolerance (w.r.t. the largest reference magnitude), grown with the reduction length."""
    base = 1e-10 if dtype == torch.float64 else 1e-4
    return base * max(1.0, math.sqrt(reduction / 64.0))


def assert_close(got, ref, dtype=None, reduction: int = 1, what: str = ""):
    """got (any float dtype) vs ref (usually float64): |got - ref| <= tol * (1 + |ref|) elementwise,
    where tol is relative to max(1, max|ref|)."""
    dtype = dtype or got.dtype
    assert got.shape == ref.shape, f"{what}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    if ref.numel() == 0:
        return
    ref64 = ref.detach().double()
    got64 = got.detach().double()
    assert torch.isfinite(got64).all(), f"{what}: non-finite values"
    tol = tol_for(dtype, reduction)
    scale = max(1.0, ref64.abs().max().item())
    err = (got64 - ref64).abs()
    bound = tol * scale + tol * ref64.abs()
    bad = err > bound
    if bad.any():
        idx = bad.nonzero()[0].tolist()
        raise AssertionError(
            f"{what}: {int(bad.sum())}/{err.numel()} elements off; max err {err.max().item():.3e}, "
            f"tol {tol:.1e} x scale {scale:.3g}; first bad index {idx}: got {got64[tuple(idx)].item()!r} "
            f"expected {ref64[tuple(idx)].item()!r}"
        )


# --------------------------------------------------------------------------- tensor factories
LAYOUTS = ("nchw", "cl", "slice", "transpose")


def make_input(shape, dtype=torch.float32, layout="nchw", gen=None):
    """4-D tensor of `shape` in one of LAYOUTS: contiguous, channels_last, a strided slice of a
    bigger tensor, or a transposed view (H and W swapped in storage)."""
    N, C, H, W = shape
    if layout == "nchw":
        return torch.randn(N, C, H, W, dtype=dtype, generator=gen)
    if layout == "cl":
        return torch.randn(N, C, H, W, dtype=dtype, generator=gen).contiguous(memory_format=torch.channels_last)
    if layout == "slice":
        big = torch.randn(N, 2 * C, H + 1, 2 * W, dtype=dtype, generator=gen)
        return big[:, ::2, 1:, ::2]
    if layout == "transpose":
        return torch.randn(N, C, W, H, dtype=dtype, generator=gen).transpose(2, 3)
    raise ValueError(layout)


def make_weight(shape, dtype=torch.float32, layout="contig", gen=None):
    if layout == "contig":
        return torch.randn(*shape, dtype=dtype, generator=gen)
    if layout == "slice":
        big = torch.randn(2 * shape[0], *shape[1:], dtype=dtype, generator=gen)
        return big[::2]
    if layout == "transpose":
        assert len(shape) == 4
        s = (shape[0], shape[1], shape[3], shape[2])
        return torch.randn(*s, dtype=dtype, generator=gen).transpose(2, 3)
    if layout == "cl":
        assert len(shape) == 4
        return torch.randn(*shape, dtype=dtype, generator=gen).contiguous(memory_format=torch.channels_last)
    raise ValueError(layout)


GRAD_KINDS = ("contig", "cl", "noncontig", "sum")


def make_grad(out_shape, dtype, kind, gen=None):
    """grad_output in a given layout; 'sum' means: backprop out.sum() (stride-0 expanded ones)."""
    if kind == "sum":
        return None
    N, C, H, W = out_shape
    if kind == "contig":
        return torch.randn(N, C, H, W, dtype=dtype, generator=gen)
    if kind == "cl":
        return torch.randn(N, C, H, W, dtype=dtype, generator=gen).contiguous(memory_format=torch.channels_last)
    if kind == "noncontig":
        big = torch.randn(N, C, H + 2, 2 * W, dtype=dtype, generator=gen)
        return big[:, :, 1 : H + 1, ::2]
    raise ValueError(kind)


# --------------------------------------------------------------------------- random cases
CHANNELS = (1, 3, 8, 15, 16, 17, 33)


@dataclasses.dataclass
class DWCase:
    N: int
    C: int
    H: int
    W: int
    M: int
    kH: int
    kW: int
    stride: Tuple[int, int]
    padding: Tuple[int, int, int, int]  # top, bottom, left, right
    dilation: Tuple[int, int]
    bias: bool
    dtype: torch.dtype
    layout: str = "nchw"
    wlayout: str = "contig"
    grad: str = "contig"
    seed: int = 0

    @property
    def id(self):
        dt = "f64" if self.dtype == torch.float64 else "f32"
        s = (
            f"n{self.N}c{self.C}m{self.M}_{self.H}x{self.W}_k{self.kH}x{self.kW}"
            f"_s{self.stride[0]}{self.stride[1]}_d{self.dilation[0]}{self.dilation[1]}"
            f"_p{''.join(map(str, self.padding))}_{dt}_{self.layout}"
        )
        if self.wlayout != "contig":
            s += f"_w{self.wlayout}"
        if self.bias:
            s += "_b"
        return s + f"_g{self.grad}"

    @property
    def out_hw(self):
        t, b, l, r = self.padding
        return (
            out_size(self.H, self.kH, self.stride[0], self.dilation[0], t, b),
            out_size(self.W, self.kW, self.stride[1], self.dilation[1], l, r),
        )


def random_dw_case(rng: random.Random, seed: int, *, dtype=None, big_kernel=False) -> DWCase:
    if big_kernel:
        kH = rng.choice([9, 11, 15])
        kW = kH if rng.random() < 0.7 else rng.choice([1, 3, 5, 9])
    else:
        kH = rng.randint(1, 7)
        kW = kH if rng.random() < 0.6 else rng.randint(1, 7)
    sH = rng.randint(1, 3)
    sW = sH if rng.random() < 0.6 else rng.randint(1, 3)
    dH = rng.choice([1, 1, 2, 3]) if not big_kernel else 1
    dW = dH if rng.random() < 0.7 else rng.choice([1, 2, 3])
    if big_kernel:
        dW = 1
    effH, effW = dH * (kH - 1) + 1, dW * (kW - 1) + 1
    kind = rng.random()
    if kind < 0.25:
        pad = (0, 0, 0, 0)
    elif kind < 0.6:  # symmetric
        ph, pw = rng.randint(0, effH // 2 + 1), rng.randint(0, effW // 2 + 1)
        pad = (ph, ph, pw, pw)
    else:  # asymmetric
        pad = tuple(rng.randint(0, max(1, eff // 2 + 1)) for eff in (effH, effH, effW, effW))
    C = rng.choice(CHANNELS)
    M = rng.choice([1, 1, 2, 3])
    N = rng.choice([1, 2, 3])
    H = rng.randint(max(1, effH - pad[0] - pad[1]), max(1, effH - pad[0] - pad[1]) + rng.choice([0, 2, 5, 9]))
    W = rng.randint(max(1, effW - pad[2] - pad[3]), max(1, effW - pad[2] - pad[3]) + rng.choice([0, 2, 5, 9]))
    if C * M > 40:  # keep tensors small
        H, W = min(H, max(effH, 12)), min(W, max(effW, 12))
        H = max(H, effH - pad[0] - pad[1], 1)
        W = max(W, effW - pad[2] - pad[3], 1)
    if dtype is None:
        dtype = rng.choice([torch.float32, torch.float64])
    return DWCase(
        N=N,
        C=C,
        H=H,
        W=W,
        M=M,
        kH=kH,
        kW=kW,
        stride=(sH, sW),
        padding=pad,
        dilation=(dH, dW),
        bias=rng.random() < 0.6,
        dtype=dtype,
        layout=rng.choice(LAYOUTS),
        wlayout=rng.choice(["contig", "contig", "slice", "transpose"]),
        grad=rng.choice(GRAD_KINDS),
        seed=seed,
    )


def random_dw_cases(n: int, seed: int, **kw):
    rng = random.Random(seed)
    return [random_dw_case(rng, seed * 100003 + i, **kw) for i in range(n)]


@dataclasses.dataclass
class PWCase:
    N: int
    Cin: int
    Cout: int
    H: int
    W: int
    bias: bool
    dtype: torch.dtype
    layout: str = "nchw"
    weight_2d: bool = False
    wlayout: str = "contig"
    grad: str = "contig"
    seed: int = 0

    @property
    def id(self):
        dt = "f64" if self.dtype == torch.float64 else "f32"
        s = f"n{self.N}_{self.Cin}to{self.Cout}_{self.H}x{self.W}_{dt}_{self.layout}"
        if self.weight_2d:
            s += "_w2d"
        if self.wlayout != "contig":
            s += f"_w{self.wlayout}"
        if self.bias:
            s += "_b"
        return s + f"_g{self.grad}"


def random_pw_cases(n: int, seed: int):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            PWCase(
                N=rng.choice([1, 2, 3]),
                Cin=rng.choice(CHANNELS),
                Cout=rng.choice(CHANNELS + (64,)),
                H=rng.randint(1, 9),
                W=rng.randint(1, 9),
                bias=rng.random() < 0.6,
                dtype=rng.choice([torch.float32, torch.float64]),
                layout=rng.choice(LAYOUTS),
                weight_2d=rng.random() < 0.3,
                wlayout=rng.choice(["contig", "contig", "slice"]),
                grad=rng.choice(GRAD_KINDS),
                seed=seed * 100003 + i,
            )
        )
    return out


# --------------------------------------------------------------------------- generic checker
def run_check(
    fn,
    ref_fn,
    inputs,
    *,
    dtype,
    grad_kind="contig",
    red_out=1,
    red_grads=None,
    names=None,
    layout=None,
    gen=None,
    backward=True,
):
    """fn(*inputs) vs ref_fn(*float64 copies) forward and backward.

    inputs: list of tensors or None (absent bias). layout: 'cl' -> the output must be channels_last,
    'nchw' -> contiguous, None -> not checked. grad_kind: see reference.GRAD_KINDS.
    Returns the output.
    """
    names = names or [f"arg{i}" for i in range(len(inputs))]
    red_grads = red_grads or [1] * len(inputs)
    gen = gen or torch.Generator().manual_seed(1234)
    originals = [None if t is None else t.clone() for t in inputs]
    leaves = [None if t is None else t.detach().requires_grad_(backward) for t in inputs]
    ref_leaves = [None if t is None else t.detach().double().requires_grad_(backward) for t in inputs]

    out = fn(*leaves)
    ref = ref_fn(*ref_leaves)
    assert_close(out, ref, dtype, red_out, what="output")
    if layout == "cl":
        assert out.is_contiguous(memory_format=torch.channels_last), (
            f"channels_last input gave output with strides {out.stride()}"
        )
    elif layout == "nchw":
        assert out.is_contiguous(), f"NCHW input gave output with strides {out.stride()}"
    for t, o, n in zip(leaves, originals, names):
        if t is not None:
            assert torch.equal(t.detach(), o), f"forward modified {n}"

    if not backward:
        return out
    idx = [i for i, t in enumerate(leaves) if t is not None]
    if grad_kind == "sum":
        grads = torch.autograd.grad(out.sum(), [leaves[i] for i in idx])
        ref_grads = torch.autograd.grad(ref.sum(), [ref_leaves[i] for i in idx])
        go = None
    else:
        go = make_grad(tuple(out.shape) if out.dim() == 4 else (1,) + tuple(out.shape), dtype, grad_kind, gen)
        if out.dim() == 3:
            go = go[0]
        go_orig = go.clone()
        grads = torch.autograd.grad(out, [leaves[i] for i in idx], go)
        ref_grads = torch.autograd.grad(ref, [ref_leaves[i] for i in idx], go.double())
        assert torch.equal(go, go_orig), "backward modified grad_output"
    for i, g, rg in zip(idx, grads, ref_grads):
        assert g is not None, f"no gradient for {names[i]}"
        assert_close(g, rg, dtype, red_grads[i], what=f"grad {names[i]}")
    for t, o, n in zip(leaves, originals, names):
        if t is not None:
            assert torch.equal(t.detach(), o), f"backward modified {n}"
    return out


def layout_expect(layout, C, H, W, N=1):
    """The output layout run_check should demand for an input in `layout`: None where the input's
    format is ambiguous (one channel or one pixel; an empty batch, for which torch's own convs
    return either format)."""
    if N == 0:
        return None
    if layout == "cl":
        return "cl" if (C > 1 and H * W > 1) else None
    if layout == "nchw":
        return "nchw"
    return None
