"""Depthwise, pointwise and separable 2-D convolution for PyTorch: SIMD CPU and CUDA kernels.

Importing the package registers the operators ``torch.ops.sepconv.*``.
"""

import torch  # noqa: F401  (first: _C links against libtorch's shared libraries)

import sepconv_ext._extension  # noqa: F401  (loads _C, which registers the operators, or says why not)
from sepconv_ext._backend import backend_info, cpu_cache_info, empty_cpu_cache, set_cpu_isa
from sepconv_ext.convert import convert
from sepconv_ext.functional import depthwise_conv2d, pointwise_conv2d, separable_conv2d
from sepconv_ext.inference import optimize_for_inference
from sepconv_ext.modules import DepthwiseConv2d, PointwiseConv2d, SeparableConv2d

__version__ = "0.1.0"

__all__ = [
    "DepthwiseConv2d",
    "PointwiseConv2d",
    "SeparableConv2d",
    "backend_info",
    "convert",
    "cpu_cache_info",
    "depthwise_conv2d",
    "empty_cpu_cache",
    "optimize_for_inference",
    "pointwise_conv2d",
    "separable_conv2d",
    "set_cpu_isa",
]
