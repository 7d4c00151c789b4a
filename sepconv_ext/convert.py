"""Swap a model's depthwise and pointwise ``nn.Conv2d`` layers for this package's modules."""

from __future__ import annotations

import copy
from typing import Dict, Optional

from torch import nn

from sepconv_ext.modules import DepthwiseConv2d, PointwiseConv2d

__all__ = ["convert"]


def _replacement(module: nn.Module) -> Optional[nn.Module]:
    """The module that computes what ``module`` does, or None to keep it.

    Only exact ``nn.Conv2d`` instances qualify: a subclass may override ``forward``.
    The replacement takes over ``module``'s Parameter objects, so device, dtype,
    requires_grad and any weight tying carry over unchanged.
    """
    if type(module) is not nn.Conv2d:
        return None
    conv: nn.Conv2d = module
    has_bias = conv.bias is not None
    if conv.groups == conv.in_channels:
        # Built on 'meta' so the throwaway initial weights cost no memory or time.
        new: nn.Module = DepthwiseConv2d(
            conv.in_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            depth_multiplier=conv.out_channels // conv.in_channels,
            bias=has_bias,
            padding_mode=conv.padding_mode,
            device="meta",
        )
    elif (
        conv.groups == 1
        and conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        # A 1x1 kernel pads nothing under 'same' either.
        and conv.padding in ((0, 0), "valid", "same")
    ):
        new = PointwiseConv2d(conv.in_channels, conv.out_channels, bias=has_bias, device="meta")
    else:
        return None
    new.weight = conv.weight
    new.bias = conv.bias
    new.train(conv.training)
    return new


def _convert(module: nn.Module, memo: Dict[int, nn.Module]) -> nn.Module:
    # The memo keeps a layer used in several places a single (shared) layer after conversion.
    if id(module) in memo:
        return memo[id(module)]
    new = _replacement(module)
    if new is None:
        new = module
        # Not named_children(): it yields a module registered under two names only once.
        for name, child in list(module._modules.items()):
            if child is None:
                continue
            converted = _convert(child, memo)
            if converted is not child:
                setattr(module, name, converted)
    memo[id(module)] = new
    return new


def convert(module: nn.Module, inplace: bool = False) -> nn.Module:
    """Replace depthwise and pointwise ``nn.Conv2d`` layers, keeping their weights.

    Every exact ``nn.Conv2d`` with ``groups == in_channels`` (any depth multiplier) becomes a
    ``DepthwiseConv2d``; every other one with a 1x1 kernel, stride 1, no padding and
    ``groups == 1`` becomes a ``PointwiseConv2d``. Parameter names, and so state_dict keys,
    stay the same, as do device, dtype, padding mode, requires_grad and training mode.

    Args:
        module: the model, or a single ``nn.Conv2d``.
        inplace: modify ``module`` itself; otherwise convert a deep copy that shares no
            storage with ``module``.

    Returns:
        The converted module (a new module when ``module`` itself is replaced).
    """
    if not inplace:
        module = copy.deepcopy(module)
    return _convert(module, {})
