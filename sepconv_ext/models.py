"""Reference networks built from plain ``nn.Conv2d`` / ``nn.BatchNorm2d``: MobileNetV2 and
MobileNetV3-Large, from the papers' architecture tables.

They exist so that the model benchmark, the main job and the tests can run whole networks
without torchvision (CI's CPU torch cannot import it). Module names, parameter shapes,
initialisation and forward arithmetic follow torchvision's ``mobilenet_v2`` and
``mobilenet_v3_large``, so a state_dict loads both ways and the outputs are equal
(``tests/test_models.py`` checks this where torchvision imports).

- MobileNetV2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
  CVPR 2018, Table 2.
- MobileNetV3-Large: Howard et al., "Searching for MobileNetV3", ICCV 2019, Table 1.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

__all__ = ["MobileNetV2", "MobileNetV3Large", "mobilenet_v2", "mobilenet_v3_large", "MODELS"]


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never down by more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvNormActivation(nn.Sequential):
    """conv -> BatchNorm -> activation (torchvision's ``Conv2dNormActivation``: children 0, 1, 2).

    The conv has no bias (the BatchNorm supplies it) and 'same'-style padding for odd kernels.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        activation_layer: Optional[Callable[..., nn.Module]] = nn.ReLU,
    ) -> None:
        layers: List[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False
            ),
            norm_layer(out_channels),
        ]
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


def _init_weights(model: nn.Module) -> None:
    """torchvision's MobileNet initialisation."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------- MobileNetV2


class InvertedResidualV2(nn.Module):
    """1x1 expand -> BN -> ReLU6 -> 3x3 depthwise -> BN -> ReLU6 -> 1x1 project -> BN (+ x)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: List[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormActivation(in_channels, hidden, 1, activation_layer=nn.ReLU6))
        layers += [
            ConvNormActivation(hidden, hidden, 3, stride, groups=hidden, activation_layer=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # Table 2: expansion t, output channels c, repeats n, first stride s.
    # fmt: off
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    # fmt: on

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        channels, last_channels = 32, 1280
        features: List[nn.Module] = [ConvNormActivation(3, channels, 3, 2, activation_layer=nn.ReLU6)]
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                features.append(InvertedResidualV2(channels, c, s if i == 0 else 1, t))
                channels = c
        features.append(ConvNormActivation(channels, last_channels, 1, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last_channels, num_classes))
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ------------------------------------------------------------------------- MobileNetV3-Large


class SqueezeExcitation(nn.Module):
    """x * hardsigmoid(fc2(relu(fc1(avgpool(x))))), fc1/fc2 1x1 convs with bias."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class InvertedResidualV3(nn.Module):
    """1x1 expand -> depthwise k x k -> (squeeze-excitation) -> 1x1 project (+ x); BN after
    each conv, ReLU or Hardswish after the first two."""

    def __init__(
        self,
        in_channels: int,
        kernel: int,
        expanded: int,
        out_channels: int,
        use_se: bool,
        use_hs: bool,
        stride: int,
        norm_layer: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and in_channels == out_channels
        act = nn.Hardswish if use_hs else nn.ReLU
        layers: List[nn.Module] = []
        if expanded != in_channels:
            layers.append(ConvNormActivation(in_channels, expanded, 1, norm_layer=norm_layer, activation_layer=act))
        layers.append(
            ConvNormActivation(
                expanded, expanded, kernel, stride, groups=expanded, norm_layer=norm_layer, activation_layer=act
            )
        )
        if use_se:
            layers.append(SqueezeExcitation(expanded, _make_divisible(expanded // 4)))
        layers.append(ConvNormActivation(expanded, out_channels, 1, norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result += x
        return result


def _batch_norm_v3(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=0.001, momentum=0.01)


class MobileNetV3Large(nn.Module):
    # Table 1: input channels, kernel, expanded channels, output channels, SE, Hardswish, stride.
    # fmt: off
    SETTINGS = [
        (16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2),
        (24, 3, 72, 24, False, False, 1), (24, 5, 72, 40, True, False, 2),
        (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
        (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1),
        (80, 3, 184, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
        (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
        (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1),
        (160, 5, 960, 160, True, True, 1),
    ]
    # fmt: on

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        layers: List[nn.Module] = [
            ConvNormActivation(3, 16, 3, 2, norm_layer=_batch_norm_v3, activation_layer=nn.Hardswish)
        ]
        for cfg in self.SETTINGS:
            layers.append(InvertedResidualV3(*cfg, norm_layer=_batch_norm_v3))
        last_in, last_out, hidden = 160, 960, 1280
        layers.append(
            ConvNormActivation(last_in, last_out, 1, norm_layer=_batch_norm_v3, activation_layer=nn.Hardswish)
        )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_out, hidden),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(hidden, num_classes),
        )
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(num_classes: int = 1000) -> MobileNetV2:
    return MobileNetV2(num_classes)


def mobilenet_v3_large(num_classes: int = 1000) -> MobileNetV3Large:
    return MobileNetV3Large(num_classes)


# The built-in networks by the names torchvision gives them.
MODELS: Dict[str, Callable[[], nn.Module]] = {
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large": mobilenet_v3_large,
}
