"""CUDA benchmark: sepconv_ext vs torch native (cuDNN/cuBLAS) in one process, on one GPU.

Method (see the issue): ours and torch are timed interleaved (one run of each, repeated), each run
bracketed by CUDA events, with the L2 cache flushed (a write over a buffer twice its size) before
every run; medians are reported. A spin kernel queued before each run hides the host's launch
overhead, so the times are device time (kernels and the gaps between them) for both. A large device-to-device copy is timed in the same run, so the
memory-bound depthwise forward can be put against the bandwidth measured here and now.

Shape sets (issues 3/4, at N=32): depthwise (C, H=W, k, stride) with padding k//2; pointwise
(Cin, Cout, H=W); separable 3x3 (Cin, Cout, H, stride). Each in float32 NCHW and in float16 and
bfloat16 channels_last; forward and forward+backward (grads of input, weight, bias).

    python benchmarks/bench_cuda.py --out DIR [--reps 15] [--budget-s 300] [--quick]
Writes DIR/bench_cuda.md (table) and DIR/bench_cuda.json (every number), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import sepconv_ext as sc  # noqa: E402

N = 32
# fmt: off
DW_SHAPES = [(32, 112, 3, 1), (96, 112, 3, 2), (144, 56, 3, 1), (144, 56, 3, 2), (192, 28, 3, 1),
             (384, 14, 3, 1), (576, 14, 3, 2), (960, 7, 3, 1), (96, 56, 7, 1), (384, 14, 7, 1),
             (128, 56, 31, 1)]
# fmt: on
# fmt: off
PW_SHAPES = [(32, 16, 112), (96, 24, 56), (144, 24, 56), (24, 144, 56), (192, 32, 28), (384, 64, 14),
             (576, 96, 14), (960, 160, 7), (320, 1280, 7)]
# fmt: on
SEP_SHAPES = [(32, 16, 112, 1), (144, 24, 56, 1), (192, 64, 28, 2), (384, 96, 14, 1), (960, 320, 7, 1)]
SPIN_CYCLES = 1_000_000
CONFIGS = [("f32", torch.float32, "nchw"), ("f16", torch.float16, "cl"), ("bf16", torch.bfloat16, "cl")]


class Timer:
    def __init__(self):
        l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20) or (50 << 20)
        self.flush_buf = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")

    def once(self, fn):
        self.flush_buf.zero_()  # evicts everything the previous run left in L2
        # Keep the GPU busy (~0.5 ms) while the host queues the run: the events then time the
        # kernels alone, not the Python/dispatcher/autograd overhead of launching them (which
        # is the same order as a small kernel and would otherwise decide small shapes).
        torch.cuda._sleep(SPIN_CYCLES)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)  # ms

    def interleaved(self, fns, reps, warmup=3):
        for fn in fns:
            for _ in range(warmup):
                fn()
        torch.cuda.synchronize()
        times = [[] for _ in fns]
        for _ in range(reps):
            for i, fn in enumerate(fns):
                times[i].append(self.once(fn))
        return [statistics.median(t) for t in times]


def copy_bandwidth(timer, reps):
    n = 1 << 28  # 1 GiB of float32 read, 1 GiB written
    src = torch.randn(n, device="cuda")
    dst = torch.empty_like(src)
    ms = timer.interleaved([lambda: dst.copy_(src)], reps)[0]
    src = dst = None  # free both before empty_cache()
    torch.cuda.empty_cache()
    return 2 * n * 4 / (ms * 1e-3) / 1e9  # GB/s


def layout(t, fmt):
    return t.contiguous(memory_format=torch.channels_last) if fmt == "cl" else t.contiguous()


def nograd(fn):
    def run():
        with torch.no_grad():
            fn()

    return run


def fwd_bwd(fn, params, gy_shape_like):
    def run():
        for p in params:
            p.grad = None
        y = fn()
        y.backward(gy_shape_like[0])

    return run


def bench_depthwise(timer, reps, dtype, fmt, shape):
    C, HW, k, s = shape
    x = layout(torch.randn(N, C, HW, HW, device="cuda", dtype=dtype), fmt).requires_grad_()
    w = (torch.randn(C, 1, k, k, device="cuda", dtype=dtype) / k).requires_grad_()
    b = torch.randn(C, device="cuda", dtype=dtype).requires_grad_()
    pad = k // 2
    ours = lambda: sc.depthwise_conv2d(x, w, b, stride=s, padding=pad)  # noqa: E731
    ref = lambda: F.conv2d(x, w, b, stride=s, padding=pad, groups=C)  # noqa: E731
    with torch.no_grad():
        y = ours()
        err = ((y.double() - ref().double()).norm() / ref().double().norm()).item()
    gy = [layout(torch.randn_like(y), fmt)]
    fwd = timer.interleaved([nograd(ours), nograd(ref)], reps)
    fb = timer.interleaved([fwd_bwd(ours, [x, w, b], gy), fwd_bwd(ref, [x, w, b], gy)], reps)
    Ho = y.shape[2]
    esize = torch.tensor([], dtype=dtype).element_size()
    bytes_fwd = (x.numel() + y.numel() + w.numel() + C) * esize
    flops_fwd = 2 * N * C * Ho * Ho * k * k
    return dict(
        op="depthwise",
        shape=f"C{C} {HW}x{HW} k{k} s{s}",
        rel_err=err,
        fwd_ours=fwd[0],
        fwd_torch=fwd[1],
        fb_ours=fb[0],
        fb_torch=fb[1],
        fwd_gbs=bytes_fwd / (fwd[0] * 1e-3) / 1e9,
        fwd_tflops=flops_fwd / (fwd[0] * 1e-3) / 1e12,
        k=k,
    )


def bench_pointwise(timer, reps, dtype, fmt, shape):
    Cin, Cout, HW = shape
    x = layout(torch.randn(N, Cin, HW, HW, device="cuda", dtype=dtype), fmt).requires_grad_()
    w = (torch.randn(Cout, Cin, 1, 1, device="cuda", dtype=dtype) / Cin**0.5).requires_grad_()
    b = torch.randn(Cout, device="cuda", dtype=dtype).requires_grad_()
    ours = lambda: sc.pointwise_conv2d(x, w, b)  # noqa: E731
    ref = lambda: F.conv2d(x, w, b)  # noqa: E731
    with torch.no_grad():
        y = ours()
        err = ((y.double() - ref().double()).norm() / ref().double().norm()).item()
    gy = [layout(torch.randn_like(y), fmt)]
    fwd = timer.interleaved([nograd(ours), nograd(ref)], reps)
    fb = timer.interleaved([fwd_bwd(ours, [x, w, b], gy), fwd_bwd(ref, [x, w, b], gy)], reps)
    flops = 2 * N * HW * HW * Cin * Cout
    return dict(
        op="pointwise",
        shape=f"{Cin}->{Cout} {HW}x{HW}",
        rel_err=err,
        fwd_ours=fwd[0],
        fwd_torch=fwd[1],
        fb_ours=fb[0],
        fb_torch=fb[1],
        fwd_tflops=flops / (fwd[0] * 1e-3) / 1e12,
    )


def bench_separable(timer, reps, dtype, fmt, shape):
    Cin, Cout, HW, s = shape
    x = layout(torch.randn(N, Cin, HW, HW, device="cuda", dtype=dtype), fmt).requires_grad_()
    dw = (torch.randn(Cin, 1, 3, 3, device="cuda", dtype=dtype) / 3).requires_grad_()
    pw = (torch.randn(Cout, Cin, 1, 1, device="cuda", dtype=dtype) / Cin**0.5).requires_grad_()
    pb = torch.randn(Cout, device="cuda", dtype=dtype).requires_grad_()
    ours = lambda: sc.separable_conv2d(x, dw, pw, None, pb, stride=s, padding=1)  # noqa: E731
    ref = lambda: F.conv2d(F.conv2d(x, dw, None, stride=s, padding=1, groups=Cin), pw, pb)  # noqa: E731
    with torch.no_grad():
        y = ours()
        err = ((y.double() - ref().double()).norm() / ref().double().norm()).item()
    gy = [layout(torch.randn_like(y), fmt)]
    fwd = timer.interleaved([nograd(ours), nograd(ref)], reps)
    fb = timer.interleaved([fwd_bwd(ours, [x, dw, pw, pb], gy), fwd_bwd(ref, [x, dw, pw, pb], gy)], reps)
    return dict(
        op="separable",
        shape=f"{Cin}->{Cout} {HW}x{HW} s{s}",
        rel_err=err,
        fwd_ours=fwd[0],
        fwd_torch=fwd[1],
        fb_ours=fb[0],
        fb_torch=fb[1],
    )


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument(
        "--budget-s",
        type=float,
        default=300.0,
        help="stop starting new shapes after this many seconds (results so far are kept)",
    )
    ap.add_argument("--quick", action="store_true", help="first shape of each set only")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs a GPU"
    assert sc.backend_info()["cuda"], f"sepconv_ext was built without CUDA kernels: {sc.backend_info()}"
    torch.backends.cudnn.benchmark = False
    t0 = time.time()
    timer = Timer()
    props = torch.cuda.get_device_properties(0)
    bw = copy_bandwidth(timer, max(5, args.reps // 2))
    meta = dict(
        gpu=props.name,
        sms=props.multi_processor_count,
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version(),
        host=platform.node(),
        N=N,
        reps=args.reps,
        copy_gbs=bw,
        sepconv=sc.backend_info(),
        tf32_conv=torch.backends.cudnn.allow_tf32,
    )
    print(f"# {props.name}, torch {torch.__version__}, CUDA {torch.version.cuda}; D2D copy {bw:.0f} GB/s", flush=True)
    rows, skipped = [], []
    sets = [(bench_depthwise, DW_SHAPES), (bench_pointwise, PW_SHAPES), (bench_separable, SEP_SHAPES)]
    for tag, dtype, fmt in CONFIGS:
        for fn, shapes in sets:
            for shape in shapes[:1] if args.quick else shapes:
                if time.time() - t0 > args.budget_s:
                    skipped.append((tag, fn.__name__, shape))
                    continue
                try:
                    r = fn(timer, args.reps, dtype, fmt, shape)
                except Exception as e:  # one failing shape must not lose the others' numbers
                    r = dict(op=fn.__name__.replace("bench_", ""), shape=str(shape), error=repr(e))
                r.update(dtype=tag, layout=fmt)
                rows.append(r)
                if "error" in r:
                    print(f"{tag} {fmt} {r['op']} {r['shape']}: ERROR {r['error']}", flush=True)
                else:
                    print(
                        f"{tag} {fmt} {r['op']:9s} {r['shape']:22s} fwd {r['fwd_ours']:.3f}/{r['fwd_torch']:.3f} ms "
                        f"(x{r['fwd_torch'] / r['fwd_ours']:.2f})  fwd+bwd {r['fb_ours']:.3f}/{r['fb_torch']:.3f} ms "
                        f"(x{r['fb_torch'] / r['fb_ours']:.2f})  err {r['rel_err']:.1e}",
                        flush=True,
                    )
                torch.cuda.empty_cache()

    lines = [
        f"# sepconv_ext CUDA benchmark — {props.name}",
        "",
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {meta['cudnn']}, N={N}, "
        f"median of {args.reps} interleaved runs, L2 flushed before each run, CUDA events around device "
        f"time only (a spin kernel hides host launch overhead). torch's float32 convolutions use TF32 "
        f"tensor cores here (cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}); ours are exact float32. "
        f"Device-to-device copy in the same run: **{bw:.0f} GB/s** (read + write).",
        "",
        "ratio = torch / ours (> 1: ours faster). Times in ms.",
        "",
        "| dtype | layout | op | shape | fwd ours | fwd torch | ratio | fwd+bwd ours | fwd+bwd torch | ratio | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['dtype']} | {r['layout']} | {r['op']} | {r['shape']} | error | | | | | | {r['error']} |"
            )
            continue
        note = f"rel err {r['rel_err']:.1e}"
        if r["op"] == "depthwise":
            note += f"; fwd {r['fwd_gbs']:.0f} GB/s = {100 * r['fwd_gbs'] / bw:.0f}% of copy"
        if "fwd_tflops" in r:
            note += f"; fwd {r['fwd_tflops']:.2f} TFLOP/s"
        lines.append(
            f"| {r['dtype']} | {r['layout']} | {r['op']} | {r['shape']} | {r['fwd_ours']:.3f} | "
            f"{r['fwd_torch']:.3f} | {r['fwd_torch'] / r['fwd_ours']:.2f} | {r['fb_ours']:.3f} | "
            f"{r['fb_torch']:.3f} | {r['fb_torch'] / r['fb_ours']:.2f} | {note} |"
        )
    lines += ["", "## Summary (geomean of torch/ours)", ""]
    ok = [r for r in rows if "error" not in r]
    for tag, _, fmt in CONFIGS:
        for op in ("depthwise", "pointwise", "separable"):
            sel = [r for r in ok if r["dtype"] == tag and r["op"] == op]
            if sel:
                lines.append(
                    f"- {tag} {fmt} {op}: fwd x{geomean([r['fwd_torch'] / r['fwd_ours'] for r in sel]):.2f}, "
                    f"fwd+bwd x{geomean([r['fb_torch'] / r['fb_ours'] for r in sel]):.2f}"
                )
    if skipped:
        lines += ["", f"Not run (time budget of {args.budget_s:.0f} s spent): {skipped}"]
    lines.append(f"\nTotal {time.time() - t0:.0f} s.")
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench_cuda.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "bench_cuda.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows, skipped=[list(map(str, s)) for s in skipped]), f, indent=1, default=str)
    print(text)


if __name__ == "__main__":
    main()
