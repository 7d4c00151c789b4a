"""Whole networks: sc.convert() of the built-in MobileNets (and of torchvision's networks where
torchvision imports) computes what the original does, in eval and in train mode: outputs,
every parameter's gradient and the BatchNorm running statistics after a training step. The
built-in networks equal torchvision's for the same weights."""

import copy

import pytest
import torch

import sepconv_ext as sc
from sepconv_ext.models import MODELS

try:
    import torchvision
except Exception:  # not installed, or built for another torch (CI's CPU torch)
    torchvision = None

needs_torchvision = pytest.mark.skipif(torchvision is None, reason="torchvision does not import")

FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
TV_ONLY = ["efficientnet_b0", "mnasnet1_0", "convnext_tiny"]


def _input(fmt, dtype, size=64, batch=2):
    return torch.randn(batch, 3, size, size, dtype=dtype).to(memory_format=FORMATS[fmt])


def _assert_converted_matches(original, x, atol, rtol):
    """Eval outputs; then one training step on each side from the same state and RNG:
    outputs, parameter gradients and BatchNorm buffers after the step."""
    converted = sc.convert(original)
    n_conv = sum(type(m) is torch.nn.Conv2d for m in original.modules())
    n_left = sum(type(m) is torch.nn.Conv2d for m in converted.modules())
    assert n_left < n_conv, "convert() replaced no layer"

    for model in (original, converted):
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(converted(x), original(x), atol=atol, rtol=rtol)

    results = []
    for model in (original, converted):
        model.train()
        torch.manual_seed(1)  # the same dropout masks on both sides
        y = model(x)
        y.square().mean().backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        buffers = {n: b.clone() for n, b in model.named_buffers()}
        results.append((y.detach(), grads, buffers))
    (y0, g0, b0), (y1, g1, b1) = results
    torch.testing.assert_close(y1, y0, atol=atol, rtol=rtol)
    assert g0.keys() == g1.keys() and all(g is not None for g in g0.values())
    # Gradients near zero (a BatchNorm bias before another BatchNorm) are rounding noise: the
    # tolerance scales with the largest gradient of the network.
    scale = max(g.abs().max().item() for g in g0.values())
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], atol=atol * scale, rtol=rtol, msg=name)
    assert b0.keys() == b1.keys()
    for name in b0:
        torch.testing.assert_close(b1[name], b0[name], atol=atol, rtol=rtol, msg=name)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", list(MODELS))
def test_builtin_converted_matches_float64(name, fmt):
    torch.manual_seed(0)
    model = MODELS[name]().double().to(memory_format=FORMATS[fmt])
    _assert_converted_matches(model, _input(fmt, torch.float64), atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("name", list(MODELS))
def test_builtin_converted_matches_float32(name):
    torch.manual_seed(0)
    model = MODELS[name]().to(memory_format=torch.channels_last)
    _assert_converted_matches(model, _input("channels_last", torch.float32, 96), atol=2e-4, rtol=1e-3)


def test_builtin_models_shapes_and_parameter_counts():
    # The papers' counts (torchvision reports the same): 3.50M and 5.48M parameters.
    counts = {"mobilenet_v2": 3_504_872, "mobilenet_v3_large": 5_483_032}
    for name, build in MODELS.items():
        model = build().eval()
        assert sum(p.numel() for p in model.parameters()) == counts[name], name
        with torch.no_grad():
            assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


@needs_torchvision
@pytest.mark.parametrize("name", list(MODELS))
def test_builtin_equals_torchvision(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None).eval()
    ours = MODELS[name]().eval()
    ours.load_state_dict(reference.state_dict())  # strict: the same names and shapes
    reference.load_state_dict(copy.deepcopy(ours.state_dict()))
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=0, rtol=0)


@needs_torchvision
@pytest.mark.parametrize("name", TV_ONLY + list(MODELS))
def test_torchvision_converted_matches(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).double()
    _assert_converted_matches(model, _input("nchw", torch.float64), atol=1e-9, rtol=1e-7)
