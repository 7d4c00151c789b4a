"""Separable conv2d (depthwise 3x3, padding 1, then pointwise 1x1), CPU float32:
sepconv_ext.separable_conv2d vs the same two ops of ours kept apart vs torch's two F.conv2d.

Implementations, each timed in NCHW and in channels_last:
- ours:      sepconv_ext.separable_conv2d(x, dw_w, pw_w, dw_b, pw_b, stride, 1), one op, fused
             forward and fused backward (band by band; the backward recomputes the depthwise
             output instead of saving it, and never holds it or its gradient whole).
- ours-keep: sepconv_ext.pointwise_conv2d(sepconv_ext.depthwise_conv2d(x, dw_w, dw_b, stride, 1),
             pw_w, pw_b), two ops; autograd keeps the intermediate for the backward.
             ours-keep / ours is the "recompute vs keep" measurement.
- torch:     F.conv2d(F.conv2d(x, dw_w, dw_b, stride, 1, 1, Cin), pw_w, pw_b).
One process; per (shape, direction) all six (implementation, format) pairs are timed
interleaved (several rounds, the order flipping each round), torch.utils.benchmark medians;
forward and forward+backward (grads of x, both weights, both biases); 1 and 2 threads. The
targets of issue 4 put our faster format against torch's faster format, per shape. Writes
benchmarks/results/separable-<cpu>-<isa>.md (+ .png chart, + .json raw numbers).

    python benchmarks/bench_separable.py                 # full run
    python benchmarks/bench_separable.py --quick         # smoke run
    python benchmarks/bench_separable.py --threads 1 --shapes 32,16,112,1 960,320,7,1
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bench_common as bc  # noqa: E402
import roofline  # noqa: E402
from bench_common import DIR_NAME, FMT_NAME, geomean, shape_str  # noqa: E402

Shape = Tuple[int, int, int, int]  # (Cin, Cout, H=W, stride)

# fmt: off
SHAPES: List[Shape] = [
    (32, 16, 112, 1), (144, 24, 56, 1), (192, 64, 28, 2), (384, 96, 14, 1), (960, 320, 7, 1),
]
# fmt: on
BATCH = 8
IMPLS = ("ours", "ours-keep", "torch")
DIRS = ("fwd", "fwdbwd")


def key(impl: str, fmt: str) -> str:
    """The name of one timed (implementation, format) pair, e.g. 'ours-keep/cl'."""
    return f"{impl}/{fmt}"


# ----------------------------------------------------------------------------- work model


def out_size(h: int, s: int) -> int:
    return (h + 2 - 3) // s + 1


def work(shape: Shape, direction: str) -> Tuple[float, float]:
    """(flop, compulsory bytes) of one call.

    flop: 2 * MACs. Forward MACs = depthwise N*Cin*Ho*Wo*9 + pointwise N*Cin*Cout*Ho*Wo;
    forward+backward = 3x that (each op's grad_input and grad_weight do as many MACs as its
    forward; ours' recomputed depthwise forward is not counted); biases not counted.
    bytes (float32): forward = x + y + all weights and biases (the intermediate is not counted:
    a fused op need not write it); forward+backward adds the backward's gy + x + gx + weights +
    their grads.
    """
    cin, cout, h, s = shape
    ho = out_size(h, s)
    x, y, p = BATCH * cin * h * h, BATCH * cout * ho * ho, cin * 9 + cin + cout * cin + cout
    macs = BATCH * cin * ho * ho * (9 + cout)
    if direction == "fwd":
        return 2.0 * macs, 4.0 * (x + y + p)
    return 6.0 * macs, 4.0 * ((x + y + p) + (y + x + x + p + p))


# ----------------------------------------------------------------------------- cases


def tensors(shape: Shape, batch: int, seed: int):
    """x, params (dw_w, pw_w, dw_b, pw_b) and gy, seeded."""
    cin, cout, h, s = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, h, h, generator=g)
    dw_w = torch.randn(cin, 1, 3, 3, generator=g) / 3
    pw_w = torch.randn(cout, cin, 1, 1, generator=g) / cin**0.5
    dw_b = torch.randn(cin, generator=g)
    pw_b = torch.randn(cout, generator=g)
    ho = out_size(h, s)
    gy = torch.randn(batch, cout, ho, ho, generator=g)
    return x, (dw_w, pw_w, dw_b, pw_b), gy


def impls(sc, shape: Shape) -> Dict:
    """{impl: f(x, dw_w, pw_w, dw_b, pw_b)}."""
    cin, s = shape[0], shape[3]
    return {
        "ours": lambda x, dw_w, pw_w, dw_b, pw_b: sc.separable_conv2d(x, dw_w, pw_w, dw_b, pw_b, s, 1),
        "ours-keep": lambda x, dw_w, pw_w, dw_b, pw_b: sc.pointwise_conv2d(
            sc.depthwise_conv2d(x, dw_w, dw_b, s, 1), pw_w, pw_b
        ),
        "torch": lambda x, dw_w, pw_w, dw_b, pw_b: F.conv2d(F.conv2d(x, dw_w, dw_b, s, 1, 1, cin), pw_w, pw_b),
    }


def make_case(sc, shape: Shape, direction: str) -> Dict:
    """{key(impl, fmt): fn}; fn() runs one forward or forward+backward."""
    x, params, gy = tensors(shape, BATCH, seed=0)
    xs = {"nchw": x, "cl": x.contiguous(memory_format=torch.channels_last)}
    gys = {"nchw": gy, "cl": gy.contiguous(memory_format=torch.channels_last)}
    fns = {}
    if direction == "fwd":
        for impl, f in impls(sc, shape).items():
            for fmt in FMT_NAME:
                fns[key(impl, fmt)] = lambda f=f, x=xs[fmt]: f(x, *params)
        return fns
    for t in (*xs.values(), *params):
        t.requires_grad_(True)
    for impl, f in impls(sc, shape).items():
        for fmt in FMT_NAME:
            fns[key(impl, fmt)] = lambda f=f, x=xs[fmt], gy=gys[fmt]: torch.autograd.grad(
                f(x, *params), (x, *params), gy
            )
    return fns


def check_case(sc, shape: Shape, fmt: str) -> Tuple[float, bool]:
    """ours and ours-keep vs torch channels_last on one image: output and the five grads.
    Returns the worse error of the two and whether both outputs have the input's layout."""
    x, params, gy = tensors(shape, 1, seed=1)
    f = impls(sc, shape)
    e1, l1 = bc.compare_with_reference(f["ours"], f["torch"], x, params, gy, fmt)
    e2, l2 = bc.compare_with_reference(f["ours-keep"], f["torch"], x, params, gy, fmt)
    return max(e1, e2), l1 and l2


def best(d: Dict, impl: str) -> Tuple[str, float]:
    """(format, median seconds) of impl's faster format in one case."""
    fmt = min(FMT_NAME, key=lambda f: d[key(impl, f)]["median_s"])
    return fmt, d[key(impl, fmt)]["median_s"]


def add_ratios(d: Dict) -> None:
    """ratio: torch's best format / ours' best format (the targets' ratio); per format,
    torch/ours and keep/ours (ours-keep / ours, recompute vs keep: > 1, recomputing is faster)."""
    d["ratio"] = best(d, "torch")[1] / best(d, "ours")[1]
    for fmt in FMT_NAME:
        ours = d[key("ours", fmt)]["median_s"]
        d[f"torch/ours {fmt}"] = d[key("torch", fmt)]["median_s"] / ours
        d[f"keep/ours {fmt}"] = d[key("ours-keep", fmt)]["median_s"] / ours


# ----------------------------------------------------------------------------- summaries


def evaluate_targets(res: Dict, shapes: List[Shape], threads: List[int]) -> List[Dict]:
    """Issue 4's separable targets; ratio = torch's faster format / our faster format, 1 thread."""
    if 1 not in threads:
        return []
    return [
        bc.ratio_target(
            f"separable {DIR_NAME[direction]} vs torch's two convs (each side's faster format per shape)",
            {sh: res[1][sh][direction]["ratio"] for sh in shapes},
            gm,
        )
        for direction, gm in (("fwd", 1.5), ("fwdbwd", 2.0))
    ]


def keep_lines(res: Dict, shapes: List[Shape], t: int) -> List[str]:
    """Recompute vs keep at t threads: ours-keep / ours per shape, forward+backward."""
    lines = []
    for fmt in FMT_NAME:
        r = [res[t][sh]["fwdbwd"][f"keep/ours {fmt}"] for sh in shapes]
        lines.append(
            f"{FMT_NAME[fmt]}: "
            + ", ".join(f"{shape_str(sh)} {v:.2f}x" for sh, v in zip(shapes, r))
            + f"; geomean {geomean(r):.2f}x"
        )
    return lines


# ----------------------------------------------------------------------------- output


def markdown(
    meta: Dict,
    rf: Dict,
    res: Dict,
    shapes: List[Shape],
    threads: List[int],
    targets: List[Dict],
    chart_name: Optional[str],
) -> str:
    L = bc.header_lines(
        meta,
        "Separable conv2d (depthwise 3x3 + pointwise): sepconv_ext vs torch native (CPU, float32)",
        "two F.conv2d: groups=Cin 3x3, then 1x1",
        f"N={BATCH}, depthwise 3x3 padding 1",
        "ours/ours-keep/torch x NCHW/channels_last",
    )
    L += bc.roofline_lines(rf)
    L.append(
        "Counting: flop = 2 x MACs (fwd: depthwise N*Cin*Ho*Wo*9 + pointwise N*Cin*Cout*Ho*Wo MACs; "
        "fwd+bwd: 3x that, ours' recomputed depthwise not counted; biases not counted). Bytes "
        "(compulsory, float32): fwd = x + y + weights + biases (no intermediate); fwd+bwd = fwd + gy + "
        "x + gx + weights + their grads.\n"
    )
    L.append(
        "Implementations: **ours** = `separable_conv2d` (one op: fused forward, fused backward that "
        "recomputes the depthwise output band by band); **ours-keep** = `pointwise_conv2d(depthwise_conv2d(...))` (two ops, the intermediate "
        "kept for backward); **torch** = two `F.conv2d`. Each is timed in NCHW and channels_last; "
        "'best' = the faster format of each side per shape.\n"
    )
    L += bc.targets_lines(targets, "Targets (issue 4; 1 thread, ratio = torch's best time / our best time)")
    if 1 in threads:
        L.append(
            "## Recompute vs keep (1 thread, forward+backward, ours-keep time / ours time; > 1: "
            "recomputing is faster)\n"
        )
        L += [f"- {line}" for line in keep_lines(res, shapes, 1)] + [""]
    if chart_name:
        L.append(f"![ratios]({chart_name})\n")

    for t in threads:
        for direction in DIRS:
            L.append(f"## {DIR_NAME[direction]}, {t} thread{'s' if t > 1 else ''}\n")
            L.append(
                "| (Cin, Cout, H=W, s) | format | ours ms | ours-keep ms | torch ms | torch/ours | "
                "ours-keep/ours | ours GFLOP/s | ours GB/s | ours % roof | ours % L3 roof | torch GFLOP/s | "
                "bound GFLOP/s | flop/B | timing (ours; ours-keep; torch) | others' CPU | check |"
            )
            L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for sh in shapes:
                d = res[t][sh][direction]
                for fmt in FMT_NAME:
                    o, k, tt = (d[key(i, fmt)] for i in IMPLS)
                    L.append(
                        f"| {shape_str(sh)} | {FMT_NAME[fmt]} | {bc.fmt_ms(o['median_s'])} | "
                        f"{bc.fmt_ms(k['median_s'])} | {bc.fmt_ms(tt['median_s'])} | {d[f'torch/ours {fmt}']:.2f}x | "
                        f"{d[f'keep/ours {fmt}']:.2f}x | {o['gflops']:.1f} | {o['gbs']:.1f} | {o['pct_roof']:.0f}% | "
                        f"{o['pct_roof_l3']:.0f}% | {tt['gflops']:.1f} | {d['bound_gflops']:.1f} | "
                        f"{d['flop_per_byte']:.2f} | "
                        + "; ".join(f"{m['mode']}, ±{m['spread'] * 50:.0f}%" for m in (o, k, tt))
                        + f" | {d['load']['others']:.2f} | {d.get('check ' + fmt, '-')} |"
                    )
            L.append("\nBest format per shape (the targets' ratio):\n")
            L.append("| (Cin, Cout, H=W, s) | ours best | torch best | torch best / ours best |")
            L.append("|---|---|---|---|")
            for sh in shapes:
                d = res[t][sh][direction]
                (of, os_), (tf, ts) = best(d, "ours"), best(d, "torch")
                L.append(
                    f"| {shape_str(sh)} | {bc.fmt_ms(os_)} ms ({FMT_NAME[of]}) | "
                    f"{bc.fmt_ms(ts)} ms ({FMT_NAME[tf]}) | {d['ratio']:.2f}x |"
                )
            rs = [res[t][sh][direction]["ratio"] for sh in shapes]
            L.append(f"\ngeomean torch best / ours best {geomean(rs):.2f}x, min {min(rs):.2f}x, max {max(rs):.2f}x\n")
    L.append(bc.timing_footnote("the worse of ours and ours-keep"))
    return "\n".join(L).replace("±nan%", "single sample")


def chart_panels(res: Dict, shapes: List[Shape], threads: List[int]) -> bc.Panels:
    panels = []
    for t in threads:
        series = {f"{DIR_NAME[d]}: torch best / ours best": [res[t][sh][d]["ratio"] for sh in shapes] for d in DIRS}
        for fmt in FMT_NAME:
            series[f"forward+backward: ours-keep / ours, {FMT_NAME[fmt]}"] = [
                res[t][sh]["fwdbwd"][f"keep/ours {fmt}"] for sh in shapes
            ]
        panels.append((f"{t} thread{'s' if t > 1 else ''}  (> 1: ours faster)", series))
    return panels


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = bc.parse_args(argv, __doc__, "separable", "Cin,Cout,H,stride", 5)

    sc, meta, rf = bc.start_run(args)
    shapes = args.shapes or SHAPES
    threads = meta["threads"]
    checks = {} if args.no_check else bc.run_checks(shapes, lambda sh, fmt: check_case(sc, sh, fmt), max(threads))

    res: Dict[int, Dict] = {}
    for t in threads:
        res[t] = {}
        print(
            f"\n=== {t} thread(s): peak {rf['peak_gflops'].get(t, float('nan')):.1f} GFLOP/s, "
            f"DRAM {rf['bw_gbs'].get(t, float('nan')):.1f} GB/s"
        )
        print(
            f"{'shape':<18} {'case':<11} {'ours ms':>9} {'keep ms':>9} {'torch ms':>9} {'t/o':>7} "
            f"{'keep/o':>7} {'ours GF/s':>9} {'%roof':>6}"
        )
        for sh in shapes:
            res[t][sh] = {}
            for direction in DIRS:
                tm = bc.time_interleaved(make_case(sc, sh, direction), t, meta, f"{shape_str(sh)} {direction}")
                d = bc.case_record(tm, *work(sh, direction), rf, t)
                add_ratios(d)
                for fmt in FMT_NAME:
                    if (sh, fmt) in checks:
                        d["check " + fmt] = checks[(sh, fmt)]
                res[t][sh][direction] = d
                for fmt in FMT_NAME:
                    o, k, tt = (d[key(i, fmt)] for i in IMPLS)
                    print(
                        f"{shape_str(sh):<18} {direction + ' ' + fmt:<11} {o['median_s'] * 1e3:9.2f} "
                        f"{k['median_s'] * 1e3:9.2f} {tt['median_s'] * 1e3:9.2f} {d[f'torch/ours {fmt}']:6.2f}x "
                        f"{d[f'keep/ours {fmt}']:6.2f}x {o['gflops']:9.1f} {o['pct_roof']:5.0f}%"
                    )
                (of, os_), (tf, ts) = best(d, "ours"), best(d, "torch")
                flag = bc.slow_flag(d)
                print(
                    f"{shape_str(sh):<18} {direction + ' best':<11} ours {os_ * 1e3:.2f} ms ({of}), torch "
                    f"{ts * 1e3:.2f} ms ({tf}): torch best / ours best {d['ratio']:.2f}x{flag}",
                    flush=True,
                )
        torch.set_num_threads(max(threads))
        bc.others_cores(meta, t, [res[t][sh][d]["load"] for sh in shapes for d in DIRS])

    targets = evaluate_targets(res, shapes, threads)
    bc.finish_run(meta)
    bc.print_targets(targets, "targets (1 thread, torch best / ours best)", bool(args.shapes))
    for t in threads:
        print(f"recompute vs keep, {t} thread(s), forward+backward, ours-keep / ours (> 1: recomputing is faster):")
        for line in keep_lines(res, shapes, t):
            print(f"  {line}")

    md_path = bc.results_path(args.out, "separable", meta)
    bc.write_results(
        md_path,
        lambda chart_name: markdown(meta, rf, res, shapes, threads, targets, chart_name),
        {
            "meta": meta,
            "roofline": roofline.to_jsonable(rf),
            "targets": targets,
            "results": [
                {"threads": t, "shape": list(sh), "direction": d, **res[t][sh][d]}
                for t in threads
                for sh in shapes
                for d in DIRS
            ],
        },
        chart_panels(res, shapes, threads),
        [shape_str(sh) for sh in shapes],
        bc.chart_title(meta, BATCH),
        meta["elapsed_s"],
        ylabel="other time / our time (log)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
