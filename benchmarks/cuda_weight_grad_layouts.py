"""CUDA depthwise weight gradient of channels_last tensors: read in place (the NHWC kernel) vs
converted to NCHW first (two transposes, then the NCHW register-window kernel), the two paths
backward_weight can take. Same timing method as bench_cuda.py (interleaved, L2 flushed, device
time). Prints one table; decides which path the dispatcher should prefer.

    python benchmarks/cuda_weight_grad_layouts.py [--reps 10]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cuda import DW_SHAPES, N, Timer  # noqa: E402

import sepconv_ext  # noqa: E402,F401  (registers torch.ops.sepconv)

ops = torch.ops.sepconv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    timer = Timer()
    print(f"# {torch.cuda.get_device_name(0)}: channels_last depthwise weight gradient, N={N}, ms")
    print("| dtype | shape | in place (NHWC kernel) | via NCHW (transposes + NCHW kernel) | NCHW / in place |")
    print("|---|---|---|---|---|")
    for dtype in (torch.float16, torch.float32):
        for C, HW, k, s in DW_SHAPES:
            if k > 7:
                continue  # no NHWC kernel for these: both take the same path
            x = torch.randn(N, C, HW, HW, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
            Ho = (HW + 2 * (k // 2) - k) // s + 1
            gy = torch.randn(N, C, Ho, Ho, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
            geo = ([k, k], [s, s], [k // 2] * 4, [1, 1])

            def in_place():
                ops._depthwise_conv2d_backward_weight(gy, x, *geo)

            def via_nchw():
                ops._depthwise_conv2d_backward_weight(gy.contiguous(), x.contiguous(), *geo)

            a = ops._depthwise_conv2d_backward_weight(gy, x, *geo).double()
            b = ops._depthwise_conv2d_backward_weight(gy.contiguous(), x.contiguous(), *geo).double()
            err = ((a - b).norm() / b.norm()).item()
            t_in, t_nchw = timer.interleaved([in_place, via_nchw], args.reps)
            print(f"| {str(dtype)[6:]} | C{C} {HW}x{HW} k{k} s{s} | {t_in:.3f} | {t_nchw:.3f} | "
                  f"{t_nchw / t_in:.2f} (rel diff {err:.1e}) |", flush=True)


if __name__ == "__main__":
    main()
