"""``nn.Module`` front ends, drop-in replacements for the matching ``nn.Conv2d`` layers.

Parameter names, shapes and initialisation are those of ``nn.Conv2d``, so state_dicts load
both ways: ``DepthwiseConv2d(C, k, depth_multiplier=M)`` <-> ``nn.Conv2d(C, C * M, k,
groups=C)`` and ``PointwiseConv2d(Cin, Cout)`` <-> ``nn.Conv2d(Cin, Cout, 1)``.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepconv_ext import functional
from sepconv_ext.functional import IntOrPair, PaddingArg

__all__ = ["DepthwiseConv2d", "PointwiseConv2d", "SeparableConv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _positive_int(value: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return value


def _padding_attribute(padding: PaddingArg) -> Union[str, Tuple[int, int]]:
    """``padding`` validated and stored as nn.Conv2d does: 'same', 'valid' or an (h, w) tuple."""
    if isinstance(padding, str):
        return functional._check_padding_str(padding)
    return tuple(functional._pair(padding, "padding", 0))


def _reset_conv_parameters(weight: Tensor, bias: Optional[Tensor]) -> None:
    """Initialise exactly as ``nn.Conv2d.reset_parameters`` (same draws, same order)."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight[0].numel()  # in_channels / groups * kH * kW
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(bias, -bound, bound)


class DepthwiseConv2d(nn.Module):
    """Depthwise 2-D convolution: ``nn.Conv2d(C, C * M, kernel_size, groups=C)``.

    Args:
        in_channels: C, >= 1.
        kernel_size: int or (kH, kW), >= 1.
        stride, dilation: int or pair, >= 1.
        padding: int or pair >= 0, 'valid', or 'same' (stride > 1: TensorFlow SAME).
        depth_multiplier: M, output channels per input channel, >= 1.
        bias: whether to add a learnable (C * M,) bias.
        padding_mode: 'zeros', 'reflect', 'replicate' or 'circular', as ``nn.Conv2d``.

    Parameters ``weight`` (C * M, 1, kH, kW) and ``bias`` (C * M,) or None.
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: PaddingArg = 0,
        dilation: IntOrPair = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier")
        self.out_channels = in_channels * depth_multiplier
        # Tuples, like nn.Conv2d's attributes.
        self.kernel_size = tuple(functional._pair(kernel_size, "kernel_size", 1))
        self.stride = tuple(functional._pair(stride, "stride", 1))
        self.dilation = tuple(functional._pair(dilation, "dilation", 1))
        self.padding = _padding_attribute(padding)
        self.padding_mode = padding_mode

        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(self.out_channels, 1, *self.kernel_size, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_conv_parameters(self.weight, self.bias)

    def _pad(self, input: Tensor) -> Tensor:
        """``input`` padded by ``padding_mode``, to convolve unpadded.

        The operators only pad with zeros; other modes pad a copy, as ``nn.Conv2d`` does.
        """
        functional._check_input(input)
        _, pads, _ = functional._conv_args(
            input.shape[-2:], list(self.kernel_size), self.stride, self.padding, self.dilation
        )
        top, bottom, left, right = pads
        padded = F.pad(input, [left, right, top, bottom], mode=self.padding_mode)
        # 'circular' returns NCHW even for channels_last input; keep the caller's layout.
        if (
            input.dim() == 4
            and input.is_contiguous(memory_format=torch.channels_last)
            and not padded.is_contiguous(memory_format=torch.channels_last)
        ):
            padded = padded.contiguous(memory_format=torch.channels_last)
        return padded

    def forward(self, input: Tensor) -> Tensor:
        # Two calls rather than one with a Union-typed padding: TorchScript cannot reload
        # its saved code for the latter.
        if self.padding_mode == "zeros":
            return functional.depthwise_conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation)
        return functional.depthwise_conv2d(self._pad(input), self.weight, self.bias, self.stride, 0, self.dilation)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.depth_multiplier != 1:
            s += f", depth_multiplier={self.depth_multiplier}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s


class PointwiseConv2d(nn.Module):
    """1x1 convolution: ``nn.Conv2d(in_channels, out_channels, 1)``.

    Parameters ``weight`` (out_channels, in_channels, 1, 1) and ``bias`` (out_channels,) or None.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")

        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1, 1, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_conv_parameters(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return functional.pointwise_conv2d(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}" + (", bias=False" if self.bias is None else "")


class SeparableConv2d(nn.Module):
    """Depthwise then pointwise convolution, as Keras ``SeparableConv2D``.

    Submodules ``depthwise`` (``DepthwiseConv2d``, no bias) and ``pointwise``
    (``PointwiseConv2d`` with ``bias``); the forward pass runs both as one fused operator.
    Arguments are those of ``DepthwiseConv2d`` plus ``out_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: PaddingArg = 0,
        dilation: IntOrPair = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.depthwise = DepthwiseConv2d(
            in_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            depth_multiplier,
            bias=False,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self.pointwise = PointwiseConv2d(
            self.depthwise.out_channels, out_channels, bias=bias, device=device, dtype=dtype
        )
        self.in_channels = self.depthwise.in_channels
        self.out_channels = self.pointwise.out_channels

    def forward(self, input: Tensor) -> Tensor:
        dw, pw = self.depthwise, self.pointwise
        if dw.padding_mode == "zeros":
            return functional.separable_conv2d(
                input, dw.weight, pw.weight, dw.bias, pw.bias, dw.stride, dw.padding, dw.dilation
            )
        return functional.separable_conv2d(
            dw._pad(input), dw.weight, pw.weight, dw.bias, pw.bias, dw.stride, 0, dw.dilation
        )
