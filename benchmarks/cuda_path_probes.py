"""Where the CUDA ops choose between two implementations, time both on the benchmark shapes:
1. depthwise weight gradient of channels_last tensors: read in place (the NHWC kernel) vs
   converted to NCHW first (two transposes, then the NCHW register-window kernel);
2. pointwise forward: the rows kernel (a pixel per thread) vs the tiled GEMM
   (SEPCONV_CUDA_POINTWISE=rows|gemm);
3. pointwise weight gradient: the 64x64 FMA tiles kernel vs the forward's GEMM on GY^T
   (SEPCONV_CUDA_POINTWISE_WGRAD=tiles|gemm);
4. separable forward: the fused GEMM (depthwise values computed into its B tiles) vs the
   composition depthwise then pointwise, intermediate in global memory
   (SEPCONV_CUDA_SEPARABLE=fused|composed).
Same timing method as bench_cuda.py (interleaved, L2 flushed, device time). Prints markdown
tables; they decide which path each dispatcher should prefer.

    python benchmarks/cuda_path_probes.py [--reps 10]
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cuda import DW_SHAPES, PW_SHAPES, SEP_SHAPES, N, Timer  # noqa: E402

import sepconv_ext as sc  # noqa: E402

ops = torch.ops.sepconv


def weight_grad_layouts(timer, reps):
    print(f"# {torch.cuda.get_device_name(0)}: channels_last depthwise weight gradient, N={N}, ms")
    print("| dtype | shape | in place (NHWC kernel) | via NCHW (transposes + NCHW kernel) | NCHW / in place |")
    print("|---|---|---|---|---|")
    for dtype in (torch.float16, torch.float32):
        for C, HW, k, s in DW_SHAPES:
            Ho = (HW + 2 * (k // 2) - k) // s + 1
            if k != 3 or Ho * Ho < 100:
                continue  # the op reads in place only here: elsewhere both sides are the NCHW path
            x = torch.randn(N, C, HW, HW, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
            gy = torch.randn(N, C, Ho, Ho, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
            geo = ([k, k], [s, s], [k // 2] * 4, [1, 1])

            def in_place():
                ops._depthwise_conv2d_backward_weight(gy, x, *geo)

            def via_nchw():
                ops._depthwise_conv2d_backward_weight(gy.contiguous(), x.contiguous(), *geo)

            a = ops._depthwise_conv2d_backward_weight(gy, x, *geo).double()
            b = ops._depthwise_conv2d_backward_weight(gy.contiguous(), x.contiguous(), *geo).double()
            err = ((a - b).norm() / b.norm()).item()
            t_in, t_nchw = timer.interleaved([in_place, via_nchw], reps)
            print(
                f"| {str(dtype)[6:]} | C{C} {HW}x{HW} k{k} s{s} | {t_in:.3f} | {t_nchw:.3f} | "
                f"{t_nchw / t_in:.2f} (rel diff {err:.1e}) |",
                flush=True,
            )


def forced(var, value, fn):
    """fn run with the environment variable `var` set to value (the ops read it once per process:
    _reload_cuda_path_overrides makes them read it again)."""

    def run():
        os.environ[var] = value
        sc._C._reload_cuda_path_overrides()
        try:
            fn()
        finally:
            del os.environ[var]
            sc._C._reload_cuda_path_overrides()

    return run


def both_paths(timer, reps, var, a, b, fn):
    """Interleaved device times of fn forced down path a and down path b, and the relative
    difference of their results."""
    with torch.no_grad():
        outs = {}
        for v in (a, b):
            forced(var, v, lambda v=v: outs.__setitem__(v, fn()))()
        ra, rb = outs[a].double(), outs[b].double()
        err = ((ra - rb).norm() / rb.norm()).item()
        ta, tb = timer.interleaved([forced(var, a, fn), forced(var, b, fn)], reps)
    return ta, tb, err


LAYOUTS = ((torch.float32, torch.contiguous_format), (torch.float16, torch.channels_last))


def pointwise_paths(timer, reps, title, var, a, b, labels, make_fn):
    """One table over the pointwise shapes: make_fn(x, Cout, fmt) -> the call timed down paths a, b."""
    print(f"\n# {title}, N={N}, ms")
    print(f"| dtype | layout | shape | {labels[0]} | {labels[1]} | {a} / {b} |")
    print("|---|---|---|---|---|---|")
    for dtype, fmt in LAYOUTS:
        for Cin, Cout, HW in PW_SHAPES:
            x = torch.randn(N, Cin, HW, HW, device="cuda", dtype=dtype).contiguous(memory_format=fmt)
            ta, tb, err = both_paths(timer, reps, var, a, b, make_fn(x, Cout, fmt))
            layout = "cl" if fmt == torch.channels_last else "nchw"
            print(
                f"| {str(dtype)[6:]} | {layout} | {Cin}->{Cout} {HW}x{HW} | {ta:.3f} | {tb:.3f} | "
                f"{ta / tb:.2f} (rel diff {err:.1e}) |",
                flush=True,
            )


def pointwise_forward_call(x, cout, fmt):
    w = torch.randn(cout, x.shape[1], 1, 1, device="cuda", dtype=x.dtype) / x.shape[1] ** 0.5
    b = torch.randn(cout, device="cuda", dtype=x.dtype)
    return lambda: ops.pointwise_conv2d(x, w, b)


def pointwise_weight_gradient_call(x, cout, fmt):
    gy = torch.randn(x.shape[0], cout, *x.shape[2:], device="cuda", dtype=x.dtype).contiguous(memory_format=fmt)
    return lambda: ops._pointwise_conv2d_backward_weight(gy, x)


def separable_fused_vs_composition(timer, reps):
    print(f"\n# separable forward (3x3), N={N}, ms")
    print("| dtype | layout | shape | fused GEMM | depthwise then pointwise | composition / fused |")
    print("|---|---|---|---|---|---|")
    for dtype, fmt in LAYOUTS:
        for Cin, Cout, HW, s in SEP_SHAPES:
            x = torch.randn(N, Cin, HW, HW, device="cuda", dtype=dtype).contiguous(memory_format=fmt)
            dw = torch.randn(Cin, 1, 3, 3, device="cuda", dtype=dtype) / 3
            pw = torch.randn(Cout, Cin, 1, 1, device="cuda", dtype=dtype) / Cin**0.5
            pb = torch.randn(Cout, device="cuda", dtype=dtype)
            t_fused, t_comp, err = both_paths(
                timer,
                reps,
                "SEPCONV_CUDA_SEPARABLE",
                "fused",
                "composed",
                lambda: sc.separable_conv2d(x, dw, pw, None, pb, stride=s, padding=1),
            )
            layout = "cl" if fmt == torch.channels_last else "nchw"
            print(
                f"| {str(dtype)[6:]} | {layout} | {Cin}->{Cout} {HW}x{HW} s{s} | {t_fused:.3f} | {t_comp:.3f} | "
                f"{t_comp / t_fused:.2f} (rel diff {err:.1e}) |",
                flush=True,
            )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    timer = Timer()
    weight_grad_layouts(timer, args.reps)
    pointwise_paths(
        timer,
        args.reps,
        "pointwise forward",
        "SEPCONV_CUDA_POINTWISE",
        "rows",
        "gemm",
        ("rows kernel", "tiled GEMM"),
        pointwise_forward_call,
    )
    pointwise_paths(
        timer,
        args.reps,
        "pointwise weight gradient",
        "SEPCONV_CUDA_POINTWISE_WGRAD",
        "tiles",
        "gemm",
        ("FMA tiles", "GEMM on GY^T"),
        pointwise_weight_gradient_call,
    )
    separable_fused_vs_composition(timer, args.reps)


if __name__ == "__main__":
    main()
