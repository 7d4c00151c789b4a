"""The CPU output cache (csrc/ops/cpu/output_memory.cpp): outputs and input gradients of 256 KiB
or more reuse the blocks of earlier outputs. A reused block holds the old tensor's values, so
every kernel must write every element: checked here with blocks poisoned by NaN, which fresh
(zeroed) pages never show."""

import io
import subprocess
import sys
import tempfile
import textwrap

import pytest
import torch
import torch.nn.functional as F

import sepconv_ext as sc

from conftest import subprocess_env

CL = torch.channels_last


def info():
    return sc.cpu_cache_info()


# The cache is off where SEPCONV_CPU_CACHE_MB=0 and, by default, in ASan builds
# (tools/run_sanitized_tests.sh); the child-process tests set the limit themselves.
needs_cache = pytest.mark.skipif(info()["limit_bytes"] == 0, reason="CPU output cache off here")


# (op, input shape, weight shapes, kwargs, memory format); every output and input gradient is
# at least 256 KiB in float32, so all of them come from the cache.
# fmt: off
CASES = [
    ("pointwise", (2, 24, 48, 48), [(40, 24, 1, 1)], {}, torch.contiguous_format),
    ("pointwise", (2, 24, 48, 48), [(40, 24, 1, 1)], {}, CL),
    ("pointwise", (3, 17, 37, 41), [(33, 17, 1, 1)], {}, CL),
    ("depthwise", (2, 24, 48, 48), [(24, 1, 3, 3)], dict(padding=1), torch.contiguous_format),
    ("depthwise", (2, 24, 48, 48), [(24, 1, 3, 3)], dict(padding=1), CL),
    ("depthwise", (2, 19, 61, 53), [(38, 1, 5, 3)], dict(stride=(2, 1), padding=2, dilation=(1, 2)), CL),
    ("depthwise", (2, 19, 61, 53), [(38, 1, 5, 3)], dict(stride=(2, 1), padding=2, dilation=(1, 2)),
     torch.contiguous_format),
    ("separable", (2, 24, 48, 48), [(24, 1, 3, 3), (40, 24)], dict(padding=1), torch.contiguous_format),
    ("separable", (2, 24, 48, 48), [(24, 1, 3, 3), (40, 24)], dict(padding=1), CL),
]
# fmt: on


def run(op, x, ws, kw):
    if op == "pointwise":
        return sc.pointwise_conv2d(x, ws[0])
    if op == "depthwise":
        return sc.depthwise_conv2d(x, ws[0], **kw)
    return sc.separable_conv2d(x, ws[0], ws[1], **kw)


def reference(op, x, ws, kw):
    if op == "pointwise":
        return F.conv2d(x, ws[0])
    if op == "depthwise":
        return F.conv2d(x, ws[0], groups=x.shape[1], **kw)
    y = F.conv2d(x, ws[0], groups=x.shape[1], **kw)
    return F.conv2d(y, ws[1][:, :, None, None])


def poison_cache():
    """Fill the cache with NaN blocks of every size the cases use (their outputs and gradients)."""
    held = []
    for op, shape, wshapes, kw, fmt in CASES:
        x = torch.randn(shape).to(memory_format=fmt).requires_grad_()
        ws = [torch.randn(s) for s in wshapes]
        y = run(op, x, ws, kw)
        (gx,) = torch.autograd.grad(y, x, torch.randn_like(y))
        held += [y.detach(), gx]
    for t in held:
        t.fill_(float("nan"))
    del held, y, gx  # back into the cache, NaN-filled


@needs_cache
@pytest.mark.parametrize("isa", sc.backend_info()["cpu_isas"])
def test_reused_blocks_are_fully_overwritten(isa):
    sc.set_cpu_isa(isa)
    for op, shape, wshapes, kw, fmt in CASES:
        poison_cache()
        hits = info()["hits"]
        x = torch.randn(shape, dtype=torch.float64).float().to(memory_format=fmt).requires_grad_()
        ws = [torch.randn(s) for s in wshapes]
        y = run(op, x, ws, kw)
        gy = torch.randn_like(y)
        (gx,) = torch.autograd.grad(y, x, gy)
        assert info()["hits"] >= hits + 2, "the outputs did not come from the cache"
        x64 = x.detach().double().requires_grad_()
        ws64 = [w.double() for w in ws]
        y64 = reference(op, x64, ws64, kw)
        (gx64,) = torch.autograd.grad(y64, x64, gy.double())
        for got, want in ((y, y64), (gx, gx64)):
            assert torch.isfinite(got).all(), f"{op} {shape} {fmt}: a stale value survived"
            torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


@needs_cache
def test_same_size_outputs_reuse_the_freed_block():
    x = torch.randn(8, 32, 28, 28).to(memory_format=CL)
    w = torch.randn(48, 32, 1, 1)
    y = sc.pointwise_conv2d(x, w)
    ptr = y.data_ptr()
    del y
    before = info()
    y = sc.pointwise_conv2d(x, w)
    after = info()
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]
    assert y.data_ptr() == ptr
    torch.testing.assert_close(y, F.conv2d(x, w), rtol=1e-5, atol=1e-4)


@needs_cache
def test_the_last_released_block_of_a_size_is_reused_first():
    x = torch.randn(8, 32, 28, 28)
    w = torch.randn(48, 32, 1, 1)
    a, b = sc.pointwise_conv2d(x, w), sc.pointwise_conv2d(x, w)
    last = b.data_ptr()
    del a, b  # b is released last: the likeliest still in cache
    assert sc.pointwise_conv2d(x, w).data_ptr() == last


def test_small_outputs_bypass_the_cache():
    before = info()
    y = sc.depthwise_conv2d(torch.randn(1, 8, 16, 16), torch.randn(8, 1, 3, 3), padding=1)
    del y
    after = info()
    assert (after["hits"], after["misses"]) == (before["hits"], before["misses"])


def test_cached_outputs_are_ordinary_tensors(tmp_path):
    x = torch.randn(4, 32, 32, 32)
    w = torch.randn(64, 32, 1, 1)
    y = sc.pointwise_conv2d(x, w)
    want = F.conv2d(x, w)
    # resizable storage (it reallocates from the cache and keeps the data)
    flat = y.clone().view(-1)
    y.resize_(y.numel() * 2)
    torch.testing.assert_close(y[: flat.numel()], flat)
    y = sc.pointwise_conv2d(x, w)
    buf = io.BytesIO()
    torch.save(y, buf)
    buf.seek(0)
    torch.testing.assert_close(torch.load(buf), want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(y.numpy().copy()), want, rtol=1e-5, atol=1e-4)
    y.share_memory_()
    assert y.is_shared()
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-4)


@needs_cache
def test_empty_cpu_cache_frees_the_held_blocks():
    y = sc.pointwise_conv2d(torch.randn(4, 32, 32, 32), torch.randn(64, 32, 1, 1))
    del y
    assert info()["cached_bytes"] > 0
    sc.empty_cpu_cache()
    assert info()["cached_bytes"] == 0


def run_child(code, env_value):
    env = subprocess_env()
    env["SEPCONV_CPU_CACHE_MB"] = env_value
    # Not from the repository root: `python -c` puts the working directory first on sys.path,
    # where the source tree (without _C when the package is installed) would shadow the package.
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_limit_evicts_the_longest_held_blocks():
    # 4 MiB limit; outputs of 3 MiB (A), 1.5 MiB (B) and 6 MiB (C, above the limit).
    r = run_child(
        """
        import torch, sepconv_ext as sc
        w = torch.randn(64, 32, 1, 1)
        out = lambda hw: sc.pointwise_conv2d(torch.randn(1, 32, hw, hw), w)
        a = out(111); a_bytes = a.numel() * 4; del a   # 3.0 MiB
        i = sc.cpu_cache_info(); assert i["limit_bytes"] == 4 << 20, i
        assert a_bytes <= i["cached_bytes"] < a_bytes + 4096, i
        b = out(78); b_bytes = b.numel() * 4; del b     # 1.5 MiB: A + B > limit, A evicted
        i = sc.cpu_cache_info()
        assert b_bytes <= i["cached_bytes"] < b_bytes + 4096, i
        c = out(157); del c                             # 6 MiB > limit: freed, B kept
        i = sc.cpu_cache_info()
        assert b_bytes <= i["cached_bytes"] < b_bytes + 4096, i
        b = out(78); assert sc.cpu_cache_info()["hits"] == i["hits"] + 1
        print("ok")
    """,
        "4",
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_zero_turns_the_cache_off():
    r = run_child(
        """
        import torch, sepconv_ext as sc
        for _ in range(3):
            y = sc.pointwise_conv2d(torch.randn(4, 32, 32, 32), torch.randn(64, 32, 1, 1)); del y
        i = sc.cpu_cache_info()
        assert i["limit_bytes"] == 0 and i["cached_bytes"] == 0 and i["hits"] == 0, i
        print("ok")
    """,
        "0",
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_a_bad_setting_is_an_error_naming_it():
    r = run_child(
        """
        import torch, sepconv_ext as sc
        sc.pointwise_conv2d(torch.randn(1, 4, 4, 4), torch.randn(4, 4, 1, 1))  # small: no cache
        try:
            sc.pointwise_conv2d(torch.randn(4, 32, 32, 32), torch.randn(64, 32, 1, 1))
        except RuntimeError as e:
            print(e)
    """,
        "lots",
    )
    assert r.returncode == 0, r.stderr
    assert "SEPCONV_CPU_CACHE_MB=lots" in r.stdout and "whole number of MiB" in r.stdout, r.stdout


@needs_cache
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts minor page faults")
def test_a_network_step_does_not_fault_on_its_outputs():
    """The point of the cache: once warm, our outputs touch no fresh page (minor faults of the
    whole process are bounded well below one per output page)."""
    import resource

    x = torch.randn(8, 32, 56, 56).to(memory_format=CL)
    w = torch.randn(96, 32, 1, 1)
    for _ in range(2):
        y = sc.pointwise_conv2d(x, w)
        del y
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        y = sc.pointwise_conv2d(x, w)
        del y
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    pages = 8 * 96 * 56 * 56 * 4 // 4096  # 2352 per output
    assert faults < pages // 4, f"{faults} faults for 5 outputs of {pages} pages"
