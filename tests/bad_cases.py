"""The bad-input battery, shared by test_bad_inputs.py (in-process) and a child interpreter
(`python bad_cases.py [--skip id ...]`), so that a crash fails a test instead of killing pytest.

Each case calls the API with one bad argument and must raise RuntimeError / ValueError / TypeError
whose message matches `match` (i.e. names the offending argument). Every case runs twice: with
requires_grad off and on (the Autograd kernel is in the path in the second run).
"""

import dataclasses
import re
import sys
from typing import Callable, Tuple

import torch

import sepconv_ext as sc

ops = torch.ops.sepconv
F32, F64 = torch.float32, torch.float64
ERRORS = (RuntimeError, ValueError, TypeError)


@dataclasses.dataclass
class Case:
    id: str
    fn: Callable  # fn(rg: bool) -> anything; must raise
    match: str
    exc: Tuple = ERRORS


def T(*shape, dtype=F32, device="cpu", rg=False):
    if dtype.is_complex or dtype.is_floating_point:
        t = torch.randn(shape, dtype=dtype, device=device)
    else:
        t = torch.randint(0, 2, shape, dtype=dtype, device=device)
    if rg and (dtype.is_floating_point or dtype.is_complex):
        t.requires_grad_()
    return t


def dw(x, w, b=None, stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1)):
    return ops.depthwise_conv2d(x, w, b, list(stride), list(padding), list(dilation))


def sep(x, dww, pww, dwb=None, pwb=None, stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1)):
    return ops.separable_conv2d(x, dww, pww, dwb, pwb, list(stride), list(padding), list(dilation))


CASES = []


def case(id, match, exc=ERRORS):
    def deco(fn):
        CASES.append(Case(id, fn, match, exc))
        return fn

    return deco


def add(id, match, fn, exc=ERRORS):
    CASES.append(Case(id, fn, match, exc))


I = r"(?i)\binput\b"
W = r"(?i)\bweight\b"
B = r"(?i)\bbias\b"
IW = r"(?i)\b(input|weight)\b"
KERNEL_TOO_BIG = r"(?i)(kernel|\bweight\b|\binput\b|padding)"

# =========================================================================== op: depthwise_conv2d
add("op_dw/input_2d", I, lambda rg: dw(T(3, 5, rg=rg), T(3, 1, 3, 3, rg=rg)))
add("op_dw/input_3d", I, lambda rg: dw(T(3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg)))
add("op_dw/input_5d", I, lambda rg: dw(T(1, 3, 5, 5, 2, rg=rg), T(3, 1, 3, 3, rg=rg)))
add("op_dw/weight_not_multiple_of_C", W, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(4, 1, 3, 3, rg=rg)))
add("op_dw/weight_fewer_than_C", W, lambda rg: dw(T(1, 4, 5, 5, rg=rg), T(2, 1, 3, 3, rg=rg)))
add("op_dw/weight_dim1_not_1", W, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 2, 3, 3, rg=rg)))
add("op_dw/weight_3d", W, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 3, 3, rg=rg)))
add("op_dw/weight_5d", W, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, 1, rg=rg)))
add("op_dw/weight_zero_kernel", r"(?i)(\bweight\b|kernel)", lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 0, 3, rg=rg)))
add("op_dw/bias_wrong_length", B, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(6, 1, 3, 3, rg=rg), T(3, rg=rg)))
add("op_dw/bias_2d", B, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(3, 1, rg=rg)))
add("op_dw/bias_0d", B, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(rg=rg)))
add("op_dw/bias_dtype", B, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(3, dtype=F64, rg=rg)))
add("op_dw/bias_int", B, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(3, dtype=torch.int64)))
add("op_dw/bias_meta", B, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(3, device="meta", rg=rg)))
add("op_dw/input_int64", I, lambda rg: dw(T(1, 3, 5, 5, dtype=torch.int64), T(3, 1, 3, 3, dtype=torch.int64)))
add("op_dw/input_int32_weight_f32", IW, lambda rg: dw(T(1, 3, 5, 5, dtype=torch.int32), T(3, 1, 3, 3, rg=rg)))
add("op_dw/input_uint8", I, lambda rg: dw(T(1, 3, 5, 5, dtype=torch.uint8), T(3, 1, 3, 3, dtype=torch.uint8)))
add("op_dw/input_bool", I, lambda rg: dw(T(1, 3, 5, 5, dtype=torch.bool), T(3, 1, 3, 3, dtype=torch.bool)))
add(
    "op_dw/input_complex",
    I,
    lambda rg: dw(T(1, 3, 5, 5, dtype=torch.complex64, rg=rg), T(3, 1, 3, 3, dtype=torch.complex64, rg=rg)),
)
add("op_dw/mixed_f32_input_f64_weight", W, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, dtype=F64, rg=rg)))
add("op_dw/mixed_f64_input_f32_weight", W, lambda rg: dw(T(1, 3, 5, 5, dtype=F64, rg=rg), T(3, 1, 3, 3, rg=rg)))
add("op_dw/weight_int", W, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, dtype=torch.int64)))
add("op_dw/weight_meta", W, lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, device="meta", rg=rg)))
add("op_dw/input_meta_weight_cpu", IW, lambda rg: dw(T(1, 3, 5, 5, device="meta", rg=rg), T(3, 1, 3, 3, rg=rg)))
add("op_dw/stride_0", r"(?i)stride", lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), stride=(0, 1)))
add("op_dw/stride_negative", r"(?i)stride", lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), stride=(1, -2)))
add("op_dw/stride_len3", r"(?i)stride", lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), stride=(1, 1, 1)))
add("op_dw/dilation_0", r"(?i)dilation", lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), dilation=(0, 0)))
add(
    "op_dw/dilation_negative",
    r"(?i)dilation",
    lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), dilation=(1, -1)),
)
add(
    "op_dw/padding_negative",
    r"(?i)padding",
    lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding=(1, 1, -1, 1)),
)
add(
    "op_dw/padding_negative_big",
    r"(?i)padding",
    lambda rg: dw(T(1, 3, 9, 9, rg=rg), T(3, 1, 1, 1, rg=rg), padding=(-3, 0, 0, 0)),
)
add("op_dw/padding_len3", r"(?i)padding", lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding=(1, 1, 1)))
add(
    "op_dw/padding_len5",
    r"(?i)padding",
    lambda rg: dw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding=(1, 1, 1, 1, 1)),
)
add(
    "op_dw/padding_string",
    r"(?i)padding",
    lambda rg: ops.depthwise_conv2d(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), None, [1, 1], "same", [1, 1]),
)
add(
    "op_dw/kernel_larger_than_input",
    KERNEL_TOO_BIG,
    lambda rg: dw(T(1, 3, 4, 4, rg=rg), T(3, 1, 7, 7, rg=rg), padding=(1, 1, 1, 1)),
)
add(
    "op_dw/kernel_larger_one_side",
    KERNEL_TOO_BIG,
    lambda rg: dw(T(1, 3, 8, 4, rg=rg), T(3, 1, 3, 7, rg=rg), padding=(0, 0, 1, 0)),
)
add(
    "op_dw/dilated_kernel_larger",
    KERNEL_TOO_BIG,
    lambda rg: dw(T(2, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding=(0, 0, 0, 0), dilation=(3, 3)),
)
add(
    "op_dw/kernel_larger_empty_batch",
    KERNEL_TOO_BIG,
    lambda rg: dw(T(0, 3, 2, 2, rg=rg), T(3, 1, 5, 5, rg=rg), padding=(0, 0, 0, 0)),
)

# =========================================================================== op: pointwise_conv2d
pw = ops.pointwise_conv2d
add("op_pw/input_2d", I, lambda rg: pw(T(3, 5, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("op_pw/input_3d", I, lambda rg: pw(T(3, 5, 5, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("op_pw/input_5d", I, lambda rg: pw(T(1, 3, 5, 5, 1, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("op_pw/cin_mismatch", IW, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 5, 1, 1, rg=rg)))
add("op_pw/cin_mismatch_2d_weight", IW, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 2, rg=rg)))
add("op_pw/weight_not_1x1", W, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 3, 3, rg=rg)))
add("op_pw/weight_1x3", W, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, 3, rg=rg)))
add("op_pw/weight_3d", W, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, rg=rg)))
add("op_pw/weight_1d", W, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(3, rg=rg)))
add("op_pw/bias_wrong_length", B, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, 1, rg=rg), T(3, rg=rg)))
add("op_pw/bias_2d", B, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, 1, rg=rg), T(4, 1, rg=rg)))
add("op_pw/bias_dtype", B, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, 1, rg=rg), T(4, dtype=F64, rg=rg)))
add("op_pw/bias_meta", B, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, 1, rg=rg), T(4, device="meta", rg=rg)))
add("op_pw/input_int", I, lambda rg: pw(T(1, 3, 5, 5, dtype=torch.int64), T(4, 3, 1, 1, dtype=torch.int64)))
add(
    "op_pw/input_complex",
    I,
    lambda rg: pw(T(1, 3, 5, 5, dtype=torch.complex128, rg=rg), T(4, 3, 1, 1, dtype=torch.complex128, rg=rg)),
)
add("op_pw/mixed_dtype", W, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, 1, dtype=F64, rg=rg)))
add("op_pw/weight_meta", W, lambda rg: pw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, 1, device="meta", rg=rg)))
add("op_pw/input_meta", IW, lambda rg: pw(T(1, 3, 5, 5, device="meta", rg=rg), T(4, 3, 1, 1, rg=rg)))

# =========================================================================== op: separable_conv2d
DWW = r"(?i)depthwise_weight"
PWW = r"(?i)pointwise_weight"
add("op_sep/input_3d", I, lambda rg: sep(T(3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("op_sep/input_5d", I, lambda rg: sep(T(1, 3, 5, 5, 1, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg)))
add(
    "op_sep/dw_weight_not_multiple",
    DWW,
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(4, 1, 3, 3, rg=rg), T(4, 4, 1, 1, rg=rg)),
)
add("op_sep/dw_weight_dim1", DWW, lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 3, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("op_sep/dw_weight_3d", DWW, lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("op_sep/pw_cin_mismatch", PWW, lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(6, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("op_sep/pw_not_1x1", PWW, lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 3, 3, rg=rg)))
add("op_sep/pw_3d", PWW, lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, rg=rg)))
add(
    "op_sep/dw_bias_len",
    r"(?i)depthwise_bias",
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(6, 1, 3, 3, rg=rg), T(4, 6, 1, 1, rg=rg), T(3, rg=rg), None),
)
add(
    "op_sep/pw_bias_len",
    r"(?i)pointwise_bias",
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg), None, T(3, rg=rg)),
)
add(
    "op_sep/pw_bias_2d",
    r"(?i)pointwise_bias",
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg), None, T(4, 1, rg=rg)),
)
add(
    "op_sep/dw_bias_dtype",
    r"(?i)depthwise_bias",
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg), T(3, dtype=F64, rg=rg), None),
)
add(
    "op_sep/pw_bias_meta",
    r"(?i)pointwise_bias",
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg), None, T(4, device="meta")),
)
add(
    "op_sep/input_int",
    I,
    lambda rg: sep(
        T(1, 3, 5, 5, dtype=torch.int32), T(3, 1, 3, 3, dtype=torch.int32), T(4, 3, 1, 1, dtype=torch.int32)
    ),
)
add("op_sep/pw_dtype", PWW, lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, dtype=F64, rg=rg)))
add("op_sep/dw_dtype", DWW, lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, dtype=F64, rg=rg), T(4, 3, 1, 1, rg=rg)))
add(
    "op_sep/pw_meta",
    PWW,
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, device="meta", rg=rg)),
)
add(
    "op_sep/stride_0",
    r"(?i)stride",
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg), stride=(0, 1)),
)
add(
    "op_sep/dilation_0",
    r"(?i)dilation",
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg), dilation=(1, 0)),
)
add(
    "op_sep/padding_negative",
    r"(?i)padding",
    lambda rg: sep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 1, 1, rg=rg), padding=(0, -1, 0, 0)),
)
add(
    "op_sep/kernel_too_big",
    KERNEL_TOO_BIG,
    lambda rg: sep(T(1, 3, 3, 3, rg=rg), T(3, 1, 5, 5, rg=rg), T(4, 3, 1, 1, rg=rg), padding=(0, 0, 0, 0)),
)

# =========================================================================== private backward ops
GO = r"(?i)(grad_output|grad)"
add(
    "op_bwd_input/grad_output_channels",
    r"(?i)(grad_output|\bweight\b)",
    lambda rg: ops._depthwise_conv2d_backward_input(
        T(1, 5, 5, 5, rg=rg), T(6, 1, 3, 3, rg=rg), [1, 3, 5, 5], [1, 1], [1, 1, 1, 1], [1, 1]
    ),
)
add(
    "op_bwd_input/grad_output_spatial",
    r"(?i)(grad_output|input_size)",
    lambda rg: ops._depthwise_conv2d_backward_input(
        T(1, 3, 9, 9, rg=rg), T(3, 1, 3, 3, rg=rg), [1, 3, 5, 5], [1, 1], [1, 1, 1, 1], [1, 1]
    ),
)
add(
    "op_bwd_input/grad_output_batch",
    r"(?i)(grad_output|input_size)",
    lambda rg: ops._depthwise_conv2d_backward_input(
        T(2, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), [1, 3, 5, 5], [1, 1], [1, 1, 1, 1], [1, 1]
    ),
)
add(
    "op_bwd_input/input_size_len",
    r"(?i)input_size",
    lambda rg: ops._depthwise_conv2d_backward_input(
        T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), [3, 5, 5], [1, 1], [1, 1, 1, 1], [1, 1]
    ),
)
add(
    "op_bwd_weight/grad_output_spatial",
    r"(?i)(grad_output|\binput\b)",
    lambda rg: ops._depthwise_conv2d_backward_weight(
        T(1, 3, 2, 2, rg=rg), T(1, 3, 5, 5, rg=rg), [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]
    ),
)
add(
    "op_bwd_weight/grad_output_channels",
    r"(?i)(grad_output|\binput\b)",
    lambda rg: ops._depthwise_conv2d_backward_weight(
        T(1, 4, 5, 5, rg=rg), T(1, 3, 5, 5, rg=rg), [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]
    ),
)
add(
    "op_bwd_weight/dtype",
    r"(?i)(grad_output|\binput\b)",
    lambda rg: ops._depthwise_conv2d_backward_weight(
        T(1, 3, 5, 5, dtype=F64, rg=rg), T(1, 3, 5, 5, rg=rg), [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]
    ),
)
add(
    "op_bwd_pw/shape_mismatch",
    r"(?i)(grad_output|\binput\b)",
    lambda rg: ops._pointwise_conv2d_backward_weight(T(1, 4, 5, 5, rg=rg), T(1, 3, 4, 5, rg=rg)),
)
add(
    "op_bwd_pw/batch_mismatch",
    r"(?i)(grad_output|\binput\b)",
    lambda rg: ops._pointwise_conv2d_backward_weight(T(2, 4, 5, 5, rg=rg), T(1, 3, 5, 5, rg=rg)),
)

# =========================================================================== functional
fdw, fpw, fsep = sc.depthwise_conv2d, sc.pointwise_conv2d, sc.separable_conv2d
add("fn_dw/input_2d", I, lambda rg: fdw(T(3, 5, rg=rg), T(3, 1, 3, 3, rg=rg)))
add("fn_dw/input_1d", I, lambda rg: fdw(T(5, rg=rg), T(3, 1, 3, 3, rg=rg)))
add("fn_dw/input_5d", I, lambda rg: fdw(T(1, 3, 5, 5, 2, rg=rg), T(3, 1, 3, 3, rg=rg)))
add("fn_dw/unbatched_channel_mismatch", W, lambda rg: fdw(T(3, 5, 5, rg=rg), T(4, 1, 3, 3, rg=rg)))
add("fn_dw/weight_not_multiple", W, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(5, 1, 3, 3, rg=rg)))
add("fn_dw/weight_dim1", W, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 3, 3, 3, rg=rg)))
add("fn_dw/weight_3d", W, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 3, 3, rg=rg)))
add("fn_dw/bias_len", B, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, rg=rg)))
add("fn_dw/bias_2d", B, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(1, 3, rg=rg)))
add("fn_dw/bias_dtype", B, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(3, dtype=F64, rg=rg)))
add("fn_dw/bias_meta", B, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(3, device="meta")))
add("fn_dw/input_int", I, lambda rg: fdw(T(1, 3, 5, 5, dtype=torch.int64), T(3, 1, 3, 3, dtype=torch.int64)))
add(
    "fn_dw/input_complex", I, lambda rg: fdw(T(1, 3, 5, 5, dtype=torch.complex64), T(3, 1, 3, 3, dtype=torch.complex64))
)
add("fn_dw/mixed_dtype", W, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, dtype=F64, rg=rg)))
add("fn_dw/mixed_dtype_unbatched", W, lambda rg: fdw(T(3, 5, 5, dtype=F64, rg=rg), T(3, 1, 3, 3, rg=rg)))
add("fn_dw/weight_meta", W, lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, device="meta")))
add("fn_dw/stride_0", r"(?i)stride", lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), stride=0))
add(
    "fn_dw/stride_pair_negative",
    r"(?i)stride",
    lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), stride=(1, -1)),
)
add("fn_dw/stride_len3", r"(?i)stride", lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), stride=(1, 1, 1)))
add("fn_dw/dilation_0", r"(?i)dilation", lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), dilation=0))
add(
    "fn_dw/dilation_pair_0",
    r"(?i)dilation",
    lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), dilation=(2, 0)),
)
add("fn_dw/padding_negative", r"(?i)padding", lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding=-1))
add(
    "fn_dw/padding_pair_negative",
    r"(?i)padding",
    lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding=(1, -2)),
)
add("fn_dw/padding_len3", r"(?i)padding", lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding=(1, 1, 1)))
add(
    "fn_dw/padding_unknown_string",
    r"(?i)padding",
    lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding="full"),
)
add(
    "fn_dw/padding_SAME_uppercase",
    r"(?i)padding",
    lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), padding="SAME"),
)
add("fn_dw/kernel_too_big", KERNEL_TOO_BIG, lambda rg: fdw(T(1, 3, 4, 4, rg=rg), T(3, 1, 7, 7, rg=rg), padding=1))
add(
    "fn_dw/kernel_too_big_valid",
    KERNEL_TOO_BIG,
    lambda rg: fdw(T(3, 4, 4, rg=rg), T(3, 1, 5, 5, rg=rg), padding="valid"),
)
add(
    "fn_dw/dilated_kernel_too_big",
    KERNEL_TOO_BIG,
    lambda rg: fdw(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), dilation=3),
)

add("fn_pw/input_2d", I, lambda rg: fpw(T(3, 5, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("fn_pw/input_5d", I, lambda rg: fpw(T(1, 3, 5, 5, 1, rg=rg), T(4, 3, 1, 1, rg=rg)))
add("fn_pw/cin_mismatch", IW, lambda rg: fpw(T(1, 3, 5, 5, rg=rg), T(4, 5, 1, 1, rg=rg)))
add("fn_pw/cin_mismatch_unbatched", IW, lambda rg: fpw(T(3, 5, 5, rg=rg), T(4, 5, rg=rg)))
add("fn_pw/weight_not_1x1", W, lambda rg: fpw(T(1, 3, 5, 5, rg=rg), T(4, 3, 3, 3, rg=rg)))
add("fn_pw/weight_3d", W, lambda rg: fpw(T(1, 3, 5, 5, rg=rg), T(4, 3, 1, rg=rg)))
add("fn_pw/bias_len", B, lambda rg: fpw(T(1, 3, 5, 5, rg=rg), T(4, 3, rg=rg), T(5, rg=rg)))
add("fn_pw/bias_dtype", B, lambda rg: fpw(T(1, 3, 5, 5, rg=rg), T(4, 3, rg=rg), T(4, dtype=F64, rg=rg)))
add("fn_pw/mixed_dtype", W, lambda rg: fpw(T(1, 3, 5, 5, dtype=F64, rg=rg), T(4, 3, rg=rg)))
add("fn_pw/input_int", I, lambda rg: fpw(T(1, 3, 5, 5, dtype=torch.int16), T(4, 3, dtype=torch.int16)))
add("fn_pw/weight_meta", W, lambda rg: fpw(T(1, 3, 5, 5, rg=rg), T(4, 3, device="meta")))

add("fn_sep/input_2d", I, lambda rg: fsep(T(3, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, rg=rg)))
add(
    "fn_sep/dw_weight_not_multiple",
    DWW,
    lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(4, 1, 3, 3, rg=rg), T(4, 4, rg=rg), padding=1),
)
add(
    "fn_sep/pw_cin_mismatch",
    PWW,
    lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(6, 1, 3, 3, rg=rg), T(4, 3, rg=rg), padding=1),
)
add(
    "fn_sep/pw_not_1x1",
    PWW,
    lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, 3, 3, rg=rg), padding=1),
)
add(
    "fn_sep/pw_bias_len",
    r"(?i)pointwise_bias",
    lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, rg=rg), None, T(2, rg=rg)),
)
add(
    "fn_sep/dw_bias_len",
    r"(?i)depthwise_bias",
    lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, rg=rg), T(2, rg=rg), None),
)
add("fn_sep/pw_dtype", PWW, lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, dtype=F64, rg=rg)))
add(
    "fn_sep/padding_unknown",
    r"(?i)padding",
    lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, rg=rg), padding="full"),
)
add(
    "fn_sep/stride_0",
    r"(?i)stride",
    lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, rg=rg), stride=0),
)
add(
    "fn_sep/dilation_negative",
    r"(?i)dilation",
    lambda rg: fsep(T(1, 3, 5, 5, rg=rg), T(3, 1, 3, 3, rg=rg), T(4, 3, rg=rg), dilation=-1),
)
add(
    "fn_sep/kernel_too_big", KERNEL_TOO_BIG, lambda rg: fsep(T(1, 3, 3, 3, rg=rg), T(3, 1, 5, 5, rg=rg), T(4, 3, rg=rg))
)

# =========================================================================== modules
PM = r"(?i)padding_mode"
add("mod/dw_padding_mode", PM, lambda rg: sc.DepthwiseConv2d(3, 3, padding=1, padding_mode="bogus"))
add("mod/dw_padding_mode_zero", PM, lambda rg: sc.DepthwiseConv2d(3, 3, padding=1, padding_mode="zero"))
add("mod/sep_padding_mode", PM, lambda rg: sc.SeparableConv2d(3, 4, 3, padding=1, padding_mode="mirror"))
add("mod/dw_padding_string", r"(?i)padding", lambda rg: sc.DepthwiseConv2d(3, 3, padding="full"))
add("mod/sep_padding_string", r"(?i)padding", lambda rg: sc.SeparableConv2d(3, 4, 3, padding="full"))
add("mod/dw_padding_negative", r"(?i)padding", lambda rg: sc.DepthwiseConv2d(3, 3, padding=-1))
add("mod/dw_stride_0", r"(?i)stride", lambda rg: sc.DepthwiseConv2d(3, 3, stride=0))
add("mod/dw_dilation_0", r"(?i)dilation", lambda rg: sc.DepthwiseConv2d(3, 3, dilation=0))
add(
    "mod/dw_multiplier_0", r"(?i)(depth_multiplier|multiplier)", lambda rg: sc.DepthwiseConv2d(3, 3, depth_multiplier=0)
)
add("mod/dw_forward_channel_mismatch", IW, lambda rg: sc.DepthwiseConv2d(3, 3, padding=1)(T(1, 4, 5, 5, rg=rg)))
add("mod/pw_forward_channel_mismatch", IW, lambda rg: sc.PointwiseConv2d(3, 4)(T(1, 5, 5, 5, rg=rg)))
add("mod/dw_forward_dtype", IW, lambda rg: sc.DepthwiseConv2d(3, 3, padding=1)(T(1, 3, 5, 5, dtype=F64, rg=rg)))
add("mod/sep_forward_input_2d", I, lambda rg: sc.SeparableConv2d(3, 4, 3, padding=1)(T(3, 5, rg=rg)))


# =========================================================================== runner
def check(c: Case, rg: bool):
    try:
        c.fn(rg)
    except c.exc as e:
        msg = str(e)
        if not re.search(c.match, msg):
            raise AssertionError(
                f"{c.id} (requires_grad={rg}): {type(e).__name__} message does not match {c.match!r}: {msg[:500]!r}"
            ) from None
        return
    except BaseException as e:  # wrong exception type
        raise AssertionError(
            f"{c.id} (requires_grad={rg}): raised {type(e).__name__} (expected one of "
            f"{[x.__name__ for x in c.exc]}): {str(e)[:500]!r}"
        ) from None
    raise AssertionError(f"{c.id} (requires_grad={rg}): no exception raised")


def main(argv):
    skip = set(argv[argv.index("--skip") + 1 :]) if "--skip" in argv else set()
    failures = 0
    for c in CASES:
        if c.id in skip:
            continue
        print(f"BEGIN {c.id}", flush=True)
        for rg in (False, True):
            try:
                check(c, rg)
            except AssertionError as e:
                failures += 1
                print(f"FAIL {c.id} {e}", flush=True)
        print(f"END {c.id}", flush=True)
    if failures:
        print(f"FAILED {failures}", flush=True)
        return 1
    print("OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
