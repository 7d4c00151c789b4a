"""Depthwise conv2d: sepconv_ext.depthwise_conv2d vs torch native F.conv2d(groups=C), CPU float32.

One process, interleaved (ours and torch alternate, several rounds, the order flipping each
round), torch.utils.benchmark medians; NCHW and channels_last, forward and forward+backward
(grads of input, weight and bias; each format against torch in the same format); 1 and 2
threads. Prints per shape the times, GFLOP/s, GB/s, % of this machine's roofline bound
(benchmarks/roofline.py) and torch/ours; checks the targets of issues 3 and 15; writes
benchmarks/results/depthwise-<cpu>-<isa>.md (+ .png chart, + .json raw numbers).

    python benchmarks/bench_depthwise.py                 # full run (~25 min on 2 cores)
    python benchmarks/bench_depthwise.py --quick         # smoke run (< 60 s; skips 31x31)
    python benchmarks/bench_depthwise.py --threads 1 --shapes 32,112,3,1,8 96,56,7,1,1 --isa scalar
"""

from __future__ import annotations

import os
import statistics
import sys
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bench_common as bc  # noqa: E402
import roofline  # noqa: E402
from bench_common import CAT_NAME, CATS, FMT_NAME, geomean, shape_str  # noqa: E402

Shape = Tuple[int, int, int, int, int]  # (C, H=W, k, stride, N)

# Issue 3's set at N=8 (MobileNetV2 3x3 layers, 7x7, 31x31), then the layers whole networks
# run that it lacks (issue 15): the 5x5 and stride-2 layers of MobileNetV3-Large,
# EfficientNet-B0 and MnasNet, ConvNeXt-T's 7x7 stages, and batch 1.
# fmt: off
SHAPES: List[Shape] = [
    (32, 112, 3, 1, 8), (96, 112, 3, 2, 8), (144, 56, 3, 1, 8), (144, 56, 3, 2, 8),
    (192, 28, 3, 1, 8), (384, 14, 3, 1, 8), (576, 14, 3, 2, 8), (960, 7, 3, 1, 8),
    (96, 56, 7, 1, 8), (384, 14, 7, 1, 8), (128, 56, 31, 1, 8),
    (72, 56, 5, 2, 8), (120, 28, 5, 1, 8), (240, 28, 3, 2, 8), (480, 14, 5, 1, 8),
    (672, 14, 5, 2, 8), (960, 7, 5, 1, 8), (1152, 7, 5, 1, 8), (192, 28, 7, 1, 8), (768, 7, 7, 1, 8),
    (32, 112, 3, 1, 1), (144, 56, 3, 2, 1), (240, 28, 5, 1, 1), (672, 14, 5, 1, 1),
    (960, 7, 3, 1, 1), (96, 56, 7, 1, 1),
]
# fmt: on
ISSUE3_SHAPES = SHAPES[:11]
NETWORK_SHAPES = [sh for sh in SHAPES if sh[2] != 31]
IMPLS = ("ours", "torch")


# ----------------------------------------------------------------------------- work model


def out_size(h: int, k: int, s: int) -> int:
    return (h + 2 * (k // 2) - k) // s + 1


def work(shape: Shape, direction: str) -> Tuple[float, float]:
    """(flop, compulsory bytes) of one call.

    flop: 2 * MACs. Forward MACs = N*C*Ho*Wo*k*k; forward+backward = 3x that (grad_input and
    grad_weight each do as many MACs as the forward); bias add/reduction not counted.
    bytes (float32): forward = x + y + w + b; forward+backward adds the backward's compulsory
    traffic gy + x + gx + w + gw + gb (x is read again: fwd and bwd are separate calls).
    """
    c, h, k, s, n = shape
    ho = out_size(h, k, s)
    x, y, w, b = n * c * h * h, n * c * ho * ho, c * k * k, c
    macs = n * c * ho * ho * k * k
    if direction == "fwd":
        return 2.0 * macs, 4.0 * (x + y + w + b)
    return 6.0 * macs, 4.0 * ((x + y + w + b) + (y + x + x + w + w + b))


# ----------------------------------------------------------------------------- cases


def make_case(sc, shape: Shape, direction: str, fmt: str, seed: int = 0):
    """Returns {impl: fn} plus the tensors; fn() runs one forward or forward+backward."""
    c, h, k, s, n = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, h, generator=g)
    w = torch.randn(c, 1, k, k, generator=g) / k
    b = torch.randn(c, generator=g)
    if fmt == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
    p = k // 2
    conv = {
        "ours": lambda xx, ww, bb: sc.depthwise_conv2d(xx, ww, bb, s, p),
        "torch": lambda xx, ww, bb: F.conv2d(xx, ww, bb, s, p, 1, c),
    }
    if direction == "fwd":
        fns = {name: (lambda f=f: f(x, w, b)) for name, f in conv.items()}
        return fns
    x.requires_grad_(True)
    w.requires_grad_(True)
    b.requires_grad_(True)
    ho = out_size(h, k, s)
    gy = torch.randn(n, c, ho, ho, generator=g)
    if fmt == "cl":
        gy = gy.contiguous(memory_format=torch.channels_last)
    fns = {name: (lambda f=f: torch.autograd.grad(f(x, w, b), (x, w, b), gy)) for name, f in conv.items()}
    return fns


def check_case(sc, shape: Shape, fmt: str) -> Tuple[float, bool]:
    """ours vs torch channels_last (its fast path) on one image: forward output and the three
    grads. Returns (worst error relative to the reference's max abs value, layout ok)."""
    c, h, k, s, _ = shape
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, c, h, h, generator=g)
    w0 = torch.randn(c, 1, k, k, generator=g) / k
    b0 = torch.randn(c, generator=g)
    ho = out_size(h, k, s)
    gy = torch.randn(1, c, ho, ho, generator=g)
    return bc.compare_with_reference(
        lambda a, bw, bb: sc.depthwise_conv2d(a, bw, bb, s, k // 2),
        lambda a, bw, bb: F.conv2d(a, bw, bb, s, k // 2, 1, c),
        x0,
        (w0, b0),
        gy,
        fmt,
    )


# ----------------------------------------------------------------------------- summaries


def evaluate_targets(res: Dict, shapes: List[Shape], threads: List[int]) -> List[Dict]:
    """Issue 3's targets on its shapes, issue 15's on the networks' shapes; ratio = torch / ours,
    1 thread."""
    rows = []
    if 1 not in threads:
        return rows
    R = res[1]
    network_shapes = [sh for sh in shapes if sh in NETWORK_SHAPES]
    for cat in CATS:
        if not network_shapes:
            break
        r = {sh: R[sh][cat]["torch"]["median_s"] / R[sh][cat]["ours"]["median_s"] for sh in network_shapes}
        rows.append(
            bc.ratio_target(
                f"{CAT_NAME[cat]} vs torch {FMT_NAME[cat[1]]}, every layer a network runs (issue 15)", r, 1.0, 1.0
            )
        )
    shapes = [sh for sh in shapes if sh in ISSUE3_SHAPES]
    if not shapes:
        return rows

    def ratios(cat):
        return {sh: R[sh][cat]["torch"]["median_s"] / R[sh][cat]["ours"]["median_s"] for sh in shapes}

    for cat, gm_t, min_t in (
        (("fwd", "nchw"), 4.0, 1.5),
        (("fwd", "cl"), 1.3, 1.0),
        (("fwdbwd", "nchw"), 4.0, 1.5),
        (("fwdbwd", "cl"), 4.0, 1.5),
    ):
        rows.append(bc.ratio_target(f"{CAT_NAME[cat]} vs torch {FMT_NAME[cat[1]]}", ratios(cat), gm_t, min_t))
    tax = {sh: R[sh][("fwd", "nchw")]["ours"]["median_s"] / R[sh][("fwd", "cl")]["ours"]["median_s"] for sh in shapes}
    worst = max(tax, key=tax.get)
    rows.append(
        {
            "target": "no layout tax: our NCHW fwd time <= 1.25x our channels_last fwd time, every shape",
            "got": f"max {tax[worst]:.2f}x at {shape_str(worst)} (geomean {geomean(list(tax.values())):.2f}x)",
            "met": tax[worst] <= 1.25,
            "misses": [f"{shape_str(sh)} {v:.2f}x" for sh, v in tax.items() if v > 1.25],
        }
    )
    s3 = [sh for sh in shapes if sh[2] == 3]
    for fmt in ("nchw", "cl"):
        if not s3:
            break
        pct = {sh: R[sh][("fwd", fmt)]["ours"]["pct_roof"] for sh in s3}
        worst = min(pct, key=pct.get)
        pct_l3 = {sh: R[sh][("fwd", fmt)]["ours"]["pct_roof_l3"] for sh in s3}
        rows.append(
            {
                "target": f"forward {FMT_NAME[fmt]} >= 60% of the roofline bound (DRAM bandwidth) on every 3x3 shape",
                "got": f"min {pct[worst]:.0f}% at {shape_str(worst)}, median {statistics.median(pct.values()):.0f}%"
                f" (vs the L3-bandwidth roof: min {min(pct_l3.values()):.0f}%)",
                "met": pct[worst] >= 60.0,
                "misses": [f"{shape_str(sh)} {v:.0f}%" for sh, v in pct.items() if v < 60.0],
            }
        )
    if 2 in threads:
        oc = statistics.mean(res[2][sh][cat]["load"]["others"] for sh in shapes for cat in CATS)
        note = (
            f"; CONTENDED: other processes used {oc:.1f} of the 2 CPUs on average during the 2-thread timings"
            if oc > 0.2
            else ""
        )
        for cat in CATS:
            sp = {sh: res[1][sh][cat]["ours"]["median_s"] / res[2][sh][cat]["ours"]["median_s"] for sh in shapes}
            sp_t = {sh: res[1][sh][cat]["torch"]["median_s"] / res[2][sh][cat]["torch"]["median_s"] for sh in shapes}
            gm, worst = geomean(list(sp.values())), min(sp, key=sp.get)
            rows.append(
                {
                    "target": f"2 threads >= 1.6x 1 thread (ours), {CAT_NAME[cat]} (met on the geomean)",
                    "got": f"geomean {gm:.2f}x, min {sp[worst]:.2f}x at {shape_str(worst)} "
                    f"(torch: geomean {geomean(list(sp_t.values())):.2f}x){note}",
                    "met": gm >= 1.6,
                    "misses": [f"{shape_str(sh)} {v:.2f}x" for sh, v in sp.items() if v < 1.6],
                }
            )
    return rows


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
        "Depthwise conv2d: sepconv_ext vs torch native (CPU, float32)",
        "F.conv2d groups=C",
        "N per shape, padding k//2",
        "ours/torch",
    )
    L += bc.roofline_lines(rf)
    L.append(
        "Counting: flop = 2 x MACs (fwd: N*C*Ho*Wo*k*k MACs; fwd+bwd: 3x that; bias not counted). "
        "Bytes (compulsory, float32): fwd = x + y + w + b; fwd+bwd = fwd + gy + x + gx + w + gw + gb.\n"
    )
    L += bc.targets_lines(targets, "Targets (issues 3 and 15; 1 thread, ratio = torch time / our time)")
    if chart_name:
        L.append(f"![torch/ours ratios]({chart_name})\n")

    for t in threads:
        for cat in CATS:
            L.append(f"## {CAT_NAME[cat]}, {t} thread{'s' if t > 1 else ''}\n")
            L.append(
                "| (C, H=W, k, s) | ours ms | torch ms | torch/ours | ours GFLOP/s | ours GB/s | "
                "ours % roof | ours % L3 roof | torch GFLOP/s | torch GB/s | torch % roof | "
                "bound GFLOP/s | flop/B | timing (ours; torch) | others' CPU | check |"
            )
            L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for sh in shapes:
                d = res[t][sh][cat]
                o, tt = d["ours"], d["torch"]
                L.append(
                    f"| {shape_str(sh)} | {bc.fmt_ms(o['median_s'])} | {bc.fmt_ms(tt['median_s'])} | "
                    f"{d['ratio']:.2f}x | {o['gflops']:.1f} | {o['gbs']:.1f} | {o['pct_roof']:.0f}% | "
                    f"{o['pct_roof_l3']:.0f}% | {tt['gflops']:.1f} | {tt['gbs']:.1f} | {tt['pct_roof']:.0f}% | "
                    f"{d['bound_gflops']:.1f} | {d['flop_per_byte']:.2f} | "
                    f"{o['mode']}, ±{o['spread'] * 50:.0f}%; {tt['mode']}, ±{tt['spread'] * 50:.0f}% | "
                    f"{d['load']['others']:.2f} | {d.get('check', '-')} |"
                )
            rs = [res[t][sh][cat]["ratio"] for sh in shapes]
            L.append(f"\ngeomean torch/ours {geomean(rs):.2f}x, min {min(rs):.2f}x, max {max(rs):.2f}x\n")
    L.append(bc.timing_footnote())
    return "\n".join(L).replace("±nan%", "single sample")


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = bc.parse_args(
        argv,
        __doc__,
        "depthwise",
        "C,H,k,stride,N",
        len(SHAPES),
        quick_help="2 rounds, min_run_time 0.02 s, no 31x31 shape unless --shapes names it: a smoke run",
    )

    sc, meta, rf = bc.start_run(args)
    shapes = args.shapes or ([sh for sh in SHAPES if sh[2] < 31] if args.quick else SHAPES)
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
            f"{'shape':<16} {'case':<16} {'ours ms':>9} {'torch ms':>9} {'t/o':>7} "
            f"{'ours GF/s':>9} {'GB/s':>6} {'%roof':>6} {'torch GF/s':>10} {'%roof':>6}"
        )
        for sh in shapes:
            res[t][sh] = {}
            for cat in CATS:
                tm = bc.time_interleaved(make_case(sc, sh, *cat), t, meta, f"{shape_str(sh)} {cat}")
                d = bc.case_record(tm, *work(sh, cat[0]), rf, t)
                d["ratio"] = d["torch"]["median_s"] / d["ours"]["median_s"]
                if (sh, cat[1]) in checks:
                    d["check"] = checks[(sh, cat[1])]
                res[t][sh][cat] = d
                o, tt = d["ours"], d["torch"]
                flag = bc.slow_flag(d)
                print(
                    f"{shape_str(sh):<16} {cat[0] + ' ' + cat[1]:<16} {o['median_s'] * 1e3:9.2f} "
                    f"{tt['median_s'] * 1e3:9.2f} {d['ratio']:6.2f}x {o['gflops']:9.1f} {o['gbs']:6.1f} "
                    f"{o['pct_roof']:5.0f}% {tt['gflops']:10.1f} {tt['pct_roof']:5.0f}%{flag}",
                    flush=True,
                )
        torch.set_num_threads(max(threads))
        bc.others_cores(meta, t, [res[t][sh][cat]["load"] for sh in shapes for cat in CATS])

    targets = evaluate_targets(res, shapes, threads)
    bc.finish_run(meta)
    bc.print_targets(targets, "targets (1 thread, torch/ours)", bool(args.shapes))

    md_path = bc.results_path(args.out, "depthwise", meta)
    bc.write_results(
        md_path,
        lambda chart_name: markdown(meta, rf, res, shapes, threads, targets, chart_name),
        {
            "meta": meta,
            "roofline": roofline.to_jsonable(rf),
            "targets": targets,
            "results": [
                {
                    "threads": t,
                    "shape": list(sh),
                    "direction": cat[0],
                    "format": cat[1],
                    **{k: v for k, v in res[t][sh][cat].items() if k not in IMPLS},
                    **{name: res[t][sh][cat][name] for name in IMPLS},
                }
                for t in threads
                for sh in shapes
                for cat in CATS
            ],
        },
        bc.cats_panels(res, shapes, threads),
        [shape_str(sh) for sh in shapes],
        bc.chart_title(meta, "per shape"),
        meta["elapsed_s"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
