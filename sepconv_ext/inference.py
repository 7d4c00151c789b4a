"""Inference-only rewrite of a model: BatchNorm folded into the convs, activations fused.

``optimize_for_inference`` walks the model's ``nn.Sequential`` containers (torchvision's and
timm's ``Conv2dNormActivation``-style blocks are ``nn.Sequential`` subclasses) and rewrites each
run of

    conv -> eval BatchNorm2d (optional) -> activation (optional)

where the conv is a depthwise or 1x1 convolution into one ``FusedDepthwiseConv2d`` /
``FusedPointwiseConv2d``: the BatchNorm's scale and shift folded into the conv's weight and
bias (in float64, then back to the conv's dtype), the activation applied by the kernel to its
output before it is written (``torch.ops.sepconv.fused_*_conv2d``). The BatchNorm and the
activation are replaced by ``nn.Identity`` so the container keeps its indices (and the state_dict
its keys for the conv). A BatchNorm after any other ``nn.Conv2d`` is folded into that conv,
which stays a ``nn.Conv2d``. Everything else is left as it was.
"""

import copy
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from sepconv_ext.modules import DepthwiseConv2d, PointwiseConv2d

__all__ = ["FusedDepthwiseConv2d", "FusedPointwiseConv2d", "optimize_for_inference"]


def _activation_of(module: nn.Module) -> Optional[Tuple[str, float, float]]:
    """The fused ops' (activation, min_val, max_val) that computes ``module``, or None."""
    kind = type(module)
    if kind is nn.ReLU:
        return ("relu", 0.0, 0.0)
    if kind is nn.ReLU6:
        return ("hardtanh", 0.0, 6.0)
    if kind is nn.Hardtanh:
        return ("hardtanh", float(module.min_val), float(module.max_val))
    if kind is nn.GELU:
        return ("gelu", 0.0, 0.0) if module.approximate == "none" else None
    names = {nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid", nn.SiLU: "silu"}
    return (names[kind], 0.0, 0.0) if kind in names else None


def _foldable_batch_norm(module: nn.Module, channels: int) -> bool:
    """An ``nn.BatchNorm2d`` that normalises with its running statistics in eval mode."""
    return (
        type(module) is nn.BatchNorm2d
        and module.num_features == channels
        and module.running_mean is not None
        and module.running_var is not None
    )


def _folded(weight: Tensor, bias: Optional[Tensor], bn: Optional[nn.BatchNorm2d]) -> Tuple[Tensor, Tensor]:
    """The conv's (weight, bias) with ``bn`` (eval mode) folded in: bn(conv(x)) = conv'(x)."""
    out_channels = weight.shape[0]
    w = weight.detach().double()
    b = bias.detach().double() if bias is not None else torch.zeros(out_channels, dtype=torch.float64, device=w.device)
    if bn is not None:
        scale = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.detach().double()
        b = (b - bn.running_mean.double()) * scale
        if bn.bias is not None:
            b = b + bn.bias.detach().double()
        w = w * scale.reshape(-1, *([1] * (w.dim() - 1)))
    return w.to(weight.dtype), b.to(weight.dtype)


def _stride_1_same_padding(kernel_size: Tuple[int, int], dilation: Tuple[int, int]) -> List[int]:
    """(top, bottom, left, right) of 'same' at stride 1: the extra pixel of an even kernel at the end."""
    pads: List[int] = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return pads


class FusedDepthwiseConv2d(nn.Module):
    """Inference: a depthwise conv with its BatchNorm folded in and its activation fused.

    Buffers ``weight`` (C * M, 1, kH, kW) and ``bias`` (C * M); no parameters, no backward.
    """

    stride: List[int]
    padding: List[int]
    dilation: List[int]
    activation: str
    min_val: float
    max_val: float

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor,
        stride: List[int],
        padding: List[int],
        dilation: List[int],
        activation: str = "none",
        min_val: float = 0.0,
        max_val: float = 0.0,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride, self.padding, self.dilation = list(stride), list(padding), list(dilation)
        self.activation, self.min_val, self.max_val = activation, min_val, max_val

    def forward(self, input: Tensor) -> Tensor:
        batched = input.unsqueeze(0) if input.dim() == 3 else input
        output = torch.ops.sepconv.fused_depthwise_conv2d(
            batched,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.activation,
            self.min_val,
            self.max_val,
        )
        return output.squeeze(0) if input.dim() == 3 else output

    def extra_repr(self) -> str:
        return (
            f"{self.weight.shape[0]}, kernel_size={tuple(self.weight.shape[2:])}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, activation={_describe(self)}"
        )


class FusedPointwiseConv2d(nn.Module):
    """Inference: a 1x1 conv with its BatchNorm folded in and its activation fused.

    Buffers ``weight`` (Cout, Cin, 1, 1) and ``bias`` (Cout); no parameters, no backward.
    """

    activation: str
    min_val: float
    max_val: float

    def __init__(
        self, weight: Tensor, bias: Tensor, activation: str = "none", min_val: float = 0.0, max_val: float = 0.0
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.activation, self.min_val, self.max_val = activation, min_val, max_val

    def forward(self, input: Tensor) -> Tensor:
        batched = input.unsqueeze(0) if input.dim() == 3 else input
        output = torch.ops.sepconv.fused_pointwise_conv2d(
            batched, self.weight, self.bias, self.activation, self.min_val, self.max_val
        )
        return output.squeeze(0) if input.dim() == 3 else output

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, activation={_describe(self)}"


def _describe(module: nn.Module) -> str:
    if module.activation == "hardtanh":
        return f"hardtanh({module.min_val}, {module.max_val})"
    return module.activation


def _conv_geometry(conv: nn.Module) -> Optional[Tuple[List[int], List[int], List[int]]]:
    """(stride, (top, bottom, left, right), dilation) of a zero-padded conv, or None."""
    if conv.padding_mode != "zeros":
        return None
    stride, dilation = list(conv.stride), list(conv.dilation)
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return stride, [0, 0, 0, 0], dilation
        if stride != [1, 1]:  # TensorFlow SAME at stride > 1 depends on the input size
            return None
        return stride, _stride_1_same_padding(tuple(conv.kernel_size), tuple(conv.dilation)), dilation
    pad_h, pad_w = conv.padding
    return stride, [pad_h, pad_h, pad_w, pad_w], dilation


def _fused_conv(
    conv: nn.Module, bn: Optional[nn.BatchNorm2d], activation: Optional[Tuple[str, float, float]]
) -> Optional[nn.Module]:
    """The fused module computing activation(bn(conv(x))), or None when conv is neither a depthwise
    nor a 1x1 conv these ops compute."""
    act = activation or ("none", 0.0, 0.0)
    if type(conv) is nn.Conv2d:
        depthwise = conv.groups == conv.in_channels and conv.out_channels % conv.in_channels == 0
        pointwise = conv.groups == 1 and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
    elif type(conv) is DepthwiseConv2d:
        depthwise, pointwise = True, False
    elif type(conv) is PointwiseConv2d:
        depthwise, pointwise = False, True
    else:
        return None
    if depthwise:
        geometry = _conv_geometry(conv)
        if geometry is None:
            return None
        weight, bias = _folded(conv.weight, conv.bias, bn)
        return FusedDepthwiseConv2d(weight, bias, *geometry, *act)
    if pointwise and (type(conv) is PointwiseConv2d or _conv_geometry(conv) == ([1, 1], [0, 0, 0, 0], [1, 1])):
        weight, bias = _folded(conv.weight, conv.bias, bn)
        return FusedPointwiseConv2d(weight.reshape(weight.shape[0], weight.shape[1], 1, 1), bias, *act)
    return None


def _folded_conv2d(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``conv`` (any nn.Conv2d) with ``bn`` folded into a new weight and bias."""
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device="meta",  # replaced below: no throwaway initialisation
    )
    weight, bias = _folded(conv.weight, conv.bias, bn)
    folded.weight = nn.Parameter(weight, requires_grad=False)
    folded.bias = nn.Parameter(bias, requires_grad=False)
    return folded.eval()


def _is_conv(module: nn.Module) -> bool:
    return type(module) in (nn.Conv2d, DepthwiseConv2d, PointwiseConv2d)


def _fuse_sequential(seq: nn.Sequential) -> None:
    names = list(seq._modules)
    i = 0
    while i < len(names):
        conv = seq._modules[names[i]]
        if conv is None or not _is_conv(conv):
            i += 1
            continue
        used = 1
        bn = None
        if i + used < len(names) and _foldable_batch_norm(seq._modules[names[i + used]], conv.out_channels):
            bn = seq._modules[names[i + used]]
            used += 1
        activation = None
        if i + used < len(names) and seq._modules[names[i + used]] is not None:
            activation = _activation_of(seq._modules[names[i + used]])
            if activation is not None:
                used += 1
        fused = _fused_conv(conv, bn, activation)
        if fused is None:  # a regular conv: fold the BatchNorm only
            if bn is not None and type(conv) is nn.Conv2d:
                seq._modules[names[i]] = _folded_conv2d(conv, bn)
                seq._modules[names[i + 1]] = nn.Identity()
            i += 1 + (bn is not None)
            continue
        seq._modules[names[i]] = fused
        for j in range(1, used):
            seq._modules[names[i + j]] = nn.Identity()
        i += used


def _optimize(module: nn.Module, seen: set) -> nn.Module:
    if id(module) in seen:
        return module
    seen.add(id(module))
    if isinstance(module, nn.Sequential):
        _fuse_sequential(module)
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        if _is_conv(child) and not isinstance(module, nn.Sequential):
            fused = _fused_conv(child, None, None)  # a conv on its own (e.g. squeeze-excitation's)
            if fused is not None:
                module._modules[name] = fused
                continue
        _optimize(child, seen)
    return module


def optimize_for_inference(module: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold BatchNorm into the convs and fuse the activations that follow them, for inference.

    Depthwise and 1x1 convs (``nn.Conv2d`` or this package's modules) followed, inside an
    ``nn.Sequential``, by an eval ``BatchNorm2d`` and/or an activation (ReLU, ReLU6, Hardtanh,
    Hardswish, Hardsigmoid, Sigmoid, SiLU, GELU) become one fused op each; a BatchNorm after any
    other ``nn.Conv2d`` is folded into it. Modules it does not recognise stay as they are, so the
    result computes what ``module.eval()`` computes (to float rounding).

    The result is in eval mode and for inference only: its fused layers hold their weights as
    buffers and have no backward (an input that requires grad, with grad mode on, is an error).
    It scripts, compiles and exports like the other ops.

    Args:
        module: the model (its BatchNorm statistics are read as they are now).
        inplace: rewrite ``module`` itself; otherwise a deep copy, and ``module`` is untouched.

    Returns:
        The optimized module, in eval mode.
    """
    if not inplace:
        module = copy.deepcopy(module)
    if _is_conv(module):
        module = _fused_conv(module, None, None) or module
    else:
        _optimize(module, set())
    return module.eval()  # the new modules too
