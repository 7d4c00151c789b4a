"""Outputs of more than 2**31 elements: any index or offset computed in 32 bits would wrap and
write or read the wrong place, so each test checks the far end of the output (and, where that is
cheap, all of it) against F.conv2d.

Each output is 8.6 GB of float32; the tests run one at a time and only where at least 16 GiB are
available (CI's machine has 24 GiB). `pytest -m big_tensor` runs just these.
"""

import pytest
import torch
import torch.nn.functional as F

import sepconv_ext as sc

NEED_BYTES = 16 << 30


def available_bytes():
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 0


pytestmark = [
    pytest.mark.big_tensor,
    pytest.mark.skipif(available_bytes() < NEED_BYTES, reason=f"needs {NEED_BYTES >> 30} GiB of available memory"),
]

PLANES = 2**31 // (64 * 64) + 1  # 524,289 planes of 64 x 64: 2**31 + 4096 output elements


def sample_channels(count, g):
    """The first and last channels, the ones around 2**31 / 4096 (where the output offset crosses
    2**31), and random ones."""
    cross = 2**31 // (64 * 64)
    fixed = [0, 1, cross - 1, cross, count - 2, count - 1]
    return torch.cat([torch.tensor(fixed), torch.randint(0, count, (26,), generator=g)]).unique()


def check_channels(out, want_fn, count, g):
    """out's sampled channels (all their pixels) equal want_fn(indices)."""
    idx = sample_channels(count, g)
    torch.testing.assert_close(out[:, idx], want_fn(idx), rtol=1e-5, atol=1e-5)


def test_depthwise_many_planes():
    # One input channel, depth multiplier 524,289: output (1, 524289, 64, 64).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 64, 64, generator=g)
    w, b = torch.randn(PLANES, 1, 3, 3, generator=g), torch.randn(PLANES, generator=g)
    out = sc.depthwise_conv2d(x, w, b, padding=1)
    assert out.shape == (1, PLANES, 64, 64) and out.numel() > 2**31
    check_channels(out, lambda i: F.conv2d(x, w[i], b[i], padding=1), PLANES, g)


def test_depthwise_huge_padding():
    # A 1x1 input padded by 23,170 on every side: one plane of 46,341 x 46,341 pixels. Every
    # output but the centre one sees only padding, so the whole output is checked.
    x, w, b = torch.full((1, 1, 1, 1), 3.0), torch.full((1, 1, 1, 1), 2.0), torch.full((1,), 0.5)
    pad = 23170
    out = sc.depthwise_conv2d(x, w, b, padding=pad)
    side = 2 * pad + 1
    assert out.shape == (1, 1, side, side) and out.numel() > 2**31
    assert out[0, 0, pad, pad].item() == 6.5
    out[0, 0, pad, pad] = 0.5
    assert bool((out == 0.5).all()), "an output beyond the centre is not bias alone"


def test_pointwise_many_output_channels():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 64, 64, generator=g)
    w, b = torch.randn(PLANES, 3, generator=g), torch.randn(PLANES, generator=g)
    out = sc.pointwise_conv2d(x, w, b)
    assert out.shape == (1, PLANES, 64, 64)
    check_channels(out, lambda i: F.conv2d(x, w[i, :, None, None], b[i]), PLANES, g)


def test_separable_many_output_channels():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 64, 64, generator=g)
    dw, db = torch.randn(2, 1, 3, 3, generator=g), torch.randn(2, generator=g)
    pw, pb = torch.randn(PLANES, 2, generator=g), torch.randn(PLANES, generator=g)
    out = sc.separable_conv2d(x, dw, pw, db, pb, padding=1)
    assert out.shape == (1, PLANES, 64, 64)
    mid = F.conv2d(x, dw, db, padding=1, groups=2)
    check_channels(out, lambda i: F.conv2d(mid, pw[i, :, None, None], pb[i]), PLANES, g)
