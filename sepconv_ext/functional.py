"""Functional API: depthwise, pointwise and separable 2-D convolution.

Arguments follow ``torch.nn.functional.conv2d``. This layer only turns the friendly forms
(ints, pairs, ``'same'``, unbatched input) into what the ``torch.ops.sepconv`` operators take;
dtype, device, channel and weight-shape checks are the operators' own.

Everything here is TorchScript-compatible (so the modules script too): hence the ``Union``
annotations and the f-strings without ``!r``.
"""

from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = ["depthwise_conv2d", "pointwise_conv2d", "separable_conv2d"]

IntOrPair = Union[int, Tuple[int, int], List[int]]
PaddingArg = Union[int, Tuple[int, int], List[int], str]


def _int_list(value: IntOrPair) -> List[int]:
    """``value`` as a list: [v, v] for an int, the items of a tuple or list, else []."""
    # A separate function with a return per branch: TorchScript cannot reload its own saved
    # code when an isinstance-refined argument is read after the branches.
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, list):
        return list(value)
    if isinstance(value, tuple):
        return list(value)
    return []


def _pair(value: IntOrPair, name: str, minimum: int) -> List[int]:
    """Return ``value`` as an [h, w] list of ints, each >= ``minimum``."""
    pair = _int_list(value)
    # The type tests matter to eager callers only, who can pass anything (1.5, True, (1, 2, 3)).
    if len(pair) != 2 or not all([isinstance(v, int) and not isinstance(v, bool) for v in pair]) or min(pair) < minimum:
        raise ValueError(f"{name}: expected an int or a pair of ints >= {minimum}, got {value}")
    return pair


def _check_padding_str(padding: str) -> str:
    """Return ``padding`` if it is 'same' or 'valid'."""
    if padding != "same" and padding != "valid":
        raise ValueError(f"padding: expected 'same', 'valid', or an int or a pair of ints >= 0, got '{padding}'")
    return padding


def _same_padding(input_size: List[int], kernel_size: List[int], stride: List[int], dilation: List[int]) -> List[int]:
    """(top, bottom, left, right) that keep ``ceil(in / stride)`` outputs, as TensorFlow's SAME.

    For stride 1 this is exactly torch's ``padding='same'``, which also puts the odd extra
    row/column at the bottom/right.
    """
    pads: List[int] = []
    for size, k, s, d in zip(input_size, kernel_size, stride, dilation):
        out = (size + s - 1) // s
        total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return pads


def _conv_args(
    input_size: List[int],
    kernel_size: List[int],
    stride: IntOrPair,
    padding: PaddingArg,
    dilation: IntOrPair,
) -> Tuple[List[int], List[int], List[int]]:
    """Normalise stride, padding and dilation to the operators' form.

    Returns ``(stride, padding, dilation)``: stride and dilation as [h, w], padding as
    [top, bottom, left, right]. ``input_size`` (H, W) is read only for 'same'.
    """
    stride_hw = _pair(stride, "stride", 1)
    dilation_hw = _pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if _check_padding_str(padding) == "same":
            pads = _same_padding(input_size, kernel_size, stride_hw, dilation_hw)
        else:
            pads = [0, 0, 0, 0]
    else:
        pad_h, pad_w = _pair(padding, "padding", 0)
        pads = [pad_h, pad_h, pad_w, pad_w]
    return stride_hw, pads, dilation_hw


def _check_input(input: Tensor) -> None:
    """Raise unless ``input`` is a batched (N, C, H, W) or unbatched (C, H, W) tensor."""
    if not isinstance(input, Tensor):
        raise TypeError(f"input: expected a torch.Tensor, got {type(input).__name__}")
    if input.dim() != 3 and input.dim() != 4:
        raise ValueError(
            "input: expected a 4-D (N, C, H, W) or 3-D (C, H, W) tensor, "
            f"got a {input.dim()}-D tensor of shape {list(input.shape)}"
        )


def _kernel_size(weight: Tensor) -> List[int]:
    """[kH, kW] of a depthwise weight, for 'same' padding."""
    if isinstance(weight, Tensor) and weight.dim() == 4:
        return weight.shape[2:]
    # A malformed weight gets some padding here and a precise error from the operator.
    return [1, 1]


def depthwise_conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
) -> Tensor:
    """Depthwise convolution, ``F.conv2d(input, weight, bias, stride, padding, dilation, groups=C)``.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W).
        weight: (C * M, 1, kH, kW), M the depth multiplier.
        bias: (C * M,) or None.
        stride, dilation: int or (h, w) pair, >= 1.
        padding: int or (h, w) pair >= 0, 'valid', or 'same' (stride > 1: TensorFlow SAME,
            ``ceil(H / stride)`` outputs, extra padding at the bottom/right).

    Returns:
        (N, C * M, Ho, Wo), or (C * M, Ho, Wo) for unbatched input; same dtype, device and
        memory format as ``input``.
    """
    _check_input(input)
    stride, pads, dilation = _conv_args(input.shape[-2:], _kernel_size(weight), stride, padding, dilation)
    batched = input.unsqueeze(0) if input.dim() == 3 else input
    output = torch.ops.sepconv.depthwise_conv2d(batched, weight, bias, stride, pads, dilation)
    return output.squeeze(0) if input.dim() == 3 else output


def pointwise_conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """1x1 convolution, ``F.conv2d(input, weight, bias)``.

    Args:
        input: (N, Cin, H, W) or unbatched (Cin, H, W).
        weight: (Cout, Cin, 1, 1) or (Cout, Cin).
        bias: (Cout,) or None.

    Returns:
        (N, Cout, H, W), or (Cout, H, W) for unbatched input; same dtype, device and memory
        format as ``input``.
    """
    _check_input(input)
    batched = input.unsqueeze(0) if input.dim() == 3 else input
    output = torch.ops.sepconv.pointwise_conv2d(batched, weight, bias)
    return output.squeeze(0) if input.dim() == 3 else output


def separable_conv2d(
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    depthwise_bias: Optional[Tensor] = None,
    pointwise_bias: Optional[Tensor] = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
) -> Tensor:
    """Depthwise then pointwise convolution, fused where the operator can.

    Equal to ``pointwise_conv2d(depthwise_conv2d(input, depthwise_weight, depthwise_bias,
    stride, padding, dilation), pointwise_weight, pointwise_bias)``; the arguments are as in
    those two functions.
    """
    _check_input(input)
    stride, pads, dilation = _conv_args(input.shape[-2:], _kernel_size(depthwise_weight), stride, padding, dilation)
    batched = input.unsqueeze(0) if input.dim() == 3 else input
    output = torch.ops.sepconv.separable_conv2d(
        batched,
        depthwise_weight,
        pointwise_weight,
        depthwise_bias,
        pointwise_bias,
        stride,
        pads,
        dilation,
    )
    return output.squeeze(0) if input.dim() == 3 else output
