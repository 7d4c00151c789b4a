"""Pointwise (1x1) conv2d: sepconv_ext.pointwise_conv2d vs torch native F.conv2d, CPU float32.

One process, interleaved (ours and torch alternate, several rounds, the order flipping each
round), torch.utils.benchmark medians; issue 4's MobileNetV2 layers at N=8 plus the layers and
batch sizes whole networks use (squeeze-excitation, MobileNetV3, N=1); NCHW and channels_last, forward and forward+backward
(grads of input, weight and bias; each format against torch in the same format); 1 and 2
threads. Prints per shape the times, GFLOP/s, GB/s, % of this machine's roofline bound and of
its FMA peak (benchmarks/roofline.py) and torch/ours; checks the targets of issue 4; writes
benchmarks/results/pointwise-<cpu>-<isa>.md (+ .png chart, + .json raw numbers).

    python benchmarks/bench_pointwise.py                 # full run
    python benchmarks/bench_pointwise.py --quick         # smoke run
    python benchmarks/bench_pointwise.py --threads 1 --shapes 320,1280,7,8 960,240,1,1 --isa scalar
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bench_common as bc  # noqa: E402
import roofline  # noqa: E402
from bench_common import CAT_NAME, CATS, FMT_NAME, geomean, shape_str  # noqa: E402

Shape = Tuple[int, int, int, int]  # (Cin, Cout, H=W, N)

# Issue 4's MobileNetV2 layers at N=8, then layers whole networks run that those lack (issue
# 15): squeeze-excitation 1x1 convs on 1x1 planes (MobileNetV3-Large, EfficientNet-B0), other
# MobileNetV3 layers, and batch 1.
# fmt: off
SHAPES: List[Shape] = [
    (32, 16, 112, 8), (96, 24, 56, 8), (144, 24, 56, 8), (24, 144, 56, 8), (192, 32, 28, 8),
    (384, 64, 14, 8), (576, 96, 14, 8), (960, 160, 7, 8), (320, 1280, 7, 8),
    (960, 240, 1, 8), (240, 960, 1, 8), (120, 32, 1, 8), (960, 240, 1, 1),
    (16, 64, 112, 8), (72, 40, 28, 8), (240, 80, 14, 8), (672, 160, 7, 8),
    (16, 96, 112, 1), (144, 24, 56, 1), (96, 576, 14, 1), (160, 960, 7, 1), (320, 1280, 7, 1),
]
# fmt: on
PEAK_SHAPE: Shape = (320, 1280, 7, 8)  # the large shape the "% of FMA peak" target is evaluated on
IMPLS = ("ours", "torch")


# ----------------------------------------------------------------------------- work model


def work(shape: Shape, direction: str) -> Tuple[float, float]:
    """(flop, compulsory bytes) of one call.

    flop: 2 * MACs. Forward MACs = N*Cin*Cout*H*W; forward+backward = 3x that (grad_input and
    grad_weight each do as many MACs as the forward); bias add/reduction not counted.
    bytes (float32): forward = x + y + w + b; forward+backward adds the backward's compulsory
    traffic gy + x + gx + w + gw + gb (x is read again: fwd and bwd are separate calls).
    """
    cin, cout, h, n = shape
    x, y, w, b = n * cin * h * h, n * cout * h * h, cout * cin, cout
    macs = n * cin * cout * h * h
    if direction == "fwd":
        return 2.0 * macs, 4.0 * (x + y + w + b)
    return 6.0 * macs, 4.0 * ((x + y + w + b) + (y + x + x + w + w + b))


# ----------------------------------------------------------------------------- cases


def tensors(shape: Shape, batch: int, seed: int):
    """x (batch, Cin, H, H), w (Cout, Cin, 1, 1), b (Cout,), gy (batch, Cout, H, H), seeded."""
    cin, cout, h, _ = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, h, h, generator=g)
    w = torch.randn(cout, cin, 1, 1, generator=g) / cin**0.5
    b = torch.randn(cout, generator=g)
    gy = torch.randn(batch, cout, h, h, generator=g)
    return x, w, b, gy


def make_case(sc, shape: Shape, direction: str, fmt: str) -> Dict:
    """{impl: fn}; fn() runs one forward or forward+backward."""
    x, w, b, gy = tensors(shape, shape[3], seed=0)
    if fmt == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
        gy = gy.contiguous(memory_format=torch.channels_last)
    conv = {"ours": sc.pointwise_conv2d, "torch": F.conv2d}
    if direction == "fwd":
        return {name: (lambda f=f: f(x, w, b)) for name, f in conv.items()}
    for t in (x, w, b):
        t.requires_grad_(True)
    return {name: (lambda f=f: torch.autograd.grad(f(x, w, b), (x, w, b), gy)) for name, f in conv.items()}


def check_case(sc, shape: Shape, fmt: str) -> Tuple[float, bool]:
    """ours vs torch channels_last on one image: output and the three grads."""
    x, w, b, gy = tensors(shape, 1, seed=1)
    return bc.compare_with_reference(sc.pointwise_conv2d, F.conv2d, x, (w, b), gy, fmt)


# ----------------------------------------------------------------------------- summaries


def microkernel_probe() -> Dict[str, float]:
    """GFLOP/s of each usable ISA's GEMM tile in isolation (benchmarks/gemm_probe.cpp: one L2-sized
    cache block, one thread, best of many), built from csrc/cpu/ with the extension's -O3.
    Empty if no C++ compiler is available."""
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        return {}
    cpu_dir = os.path.join(bc.ROOT, "csrc", "cpu")
    tmp = tempfile.mkdtemp(prefix="sepconv-gemm-probe-")
    try:
        exe = os.path.join(tmp, "gemm_probe")
        subprocess.run(
            [
                cxx,
                "-O3",
                "-std=c++17",
                "-I",
                cpu_dir,
                "-o",
                exe,
                *sorted(glob.glob(os.path.join(cpu_dir, "*.cpp"))),
                os.path.join(bc.HERE, "gemm_probe.cpp"),
            ],
            check=True,
            capture_output=True,
        )
        out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {r["isa"]: r["gflops"] for r in map(json.loads, out.splitlines())}


def evaluate_targets(
    res: Dict, shapes: List[Shape], threads: List[int], rf: Dict, probe: Dict[str, float], isa: str
) -> List[Dict]:
    """Issue 4's pointwise targets; ratio = torch / ours, 1 thread."""
    if 1 not in threads:
        return []
    R = res[1]
    rows = []
    for cat in CATS:
        ratios = {sh: R[sh][cat]["ratio"] for sh in shapes}
        what = f"{CAT_NAME[cat]} vs torch {FMT_NAME[cat[1]]}"
        if cat[0] == "fwd":
            rows.append(bc.ratio_target(what, ratios, 0.9, 0.7))
        else:
            rows.append(bc.ratio_target(what, ratios, 1.0))
    if isa in probe:
        pct = 100 * probe[isa] / rf["peak_gflops"][1]
        rows.append(
            {
                "target": "microkernel >= 80% of the measured FMA peak",
                "got": f"{pct:.0f}% of peak: {probe[isa]:.1f} GFLOP/s, {isa} GEMM tile in isolation "
                f"(benchmarks/gemm_probe.cpp, 96x256x256 L2-resident block, 1 thread)",
                "met": pct >= 80.0,
                "misses": [],
            }
        )
    if PEAK_SHAPE in shapes:
        for fmt in FMT_NAME:
            pct = R[PEAK_SHAPE][("fwd", fmt)]["ours"]["pct_peak"]
            rows.append(
                {
                    "target": f"the whole op near the FMA peak on the larger shapes: forward "
                    f"{FMT_NAME[fmt]} on {shape_str(PEAK_SHAPE)} >= 80% of peak",
                    "got": f"{pct:.0f}% of peak (the whole pointwise_conv2d call: packing, edges "
                    f"and memory traffic included)",
                    "met": pct >= 80.0,
                    "misses": [],
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
        "Pointwise (1x1) conv2d: sepconv_ext vs torch native (CPU, float32)",
        "F.conv2d with a 1x1 weight",
        "N as in each shape",
        "ours/torch",
    )
    L += bc.roofline_lines(rf)
    L.append(
        "Counting: flop = 2 x MACs (fwd: N*Cin*Cout*H*W MACs; fwd+bwd: 3x that; bias not counted). "
        "Bytes (compulsory, float32): fwd = x + y + w + b; fwd+bwd = fwd + gy + x + gx + w + gw + gb. "
        "'% peak' = GFLOP/s / FMA peak at the same thread count.\n"
    )
    L += bc.targets_lines(targets, "Targets (issue 4; 1 thread, ratio = torch time / our time)")
    if chart_name:
        L.append(f"![torch/ours ratios]({chart_name})\n")

    for t in threads:
        for cat in CATS:
            L.append(f"## {CAT_NAME[cat]}, {t} thread{'s' if t > 1 else ''}\n")
            L.append(
                "| (Cin, Cout, H=W, N) | ours ms | torch ms | torch/ours | ours GFLOP/s | ours GB/s | "
                "ours % peak | ours % roof | ours % L3 roof | torch GFLOP/s | torch GB/s | torch % peak | "
                "torch % roof | bound GFLOP/s | flop/B | timing (ours; torch) | others' CPU | check |"
            )
            L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for sh in shapes:
                d = res[t][sh][cat]
                o, tt = d["ours"], d["torch"]
                L.append(
                    f"| {shape_str(sh)} | {bc.fmt_ms(o['median_s'])} | {bc.fmt_ms(tt['median_s'])} | "
                    f"{d['ratio']:.2f}x | {o['gflops']:.1f} | {o['gbs']:.1f} | {o['pct_peak']:.0f}% | "
                    f"{o['pct_roof']:.0f}% | {o['pct_roof_l3']:.0f}% | {tt['gflops']:.1f} | {tt['gbs']:.1f} | "
                    f"{tt['pct_peak']:.0f}% | {tt['pct_roof']:.0f}% | {d['bound_gflops']:.1f} | "
                    f"{d['flop_per_byte']:.2f} | "
                    f"{o['mode']}, ±{o['spread'] * 50:.0f}%; {tt['mode']}, ±{tt['spread'] * 50:.0f}% | "
                    f"{d['load']['others']:.2f} | {d.get('check', '-')} |"
                )
            rs = [res[t][sh][cat]["ratio"] for sh in shapes]
            L.append(f"\ngeomean torch/ours {geomean(rs):.2f}x, min {min(rs):.2f}x, max {max(rs):.2f}x\n")
    L.append(bc.timing_footnote())
    return "\n".join(L).replace("±nan%", "single sample")


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = bc.parse_args(argv, __doc__, "pointwise", "Cin,Cout,H,N", len(SHAPES))

    sc, meta, rf = bc.start_run(args)
    shapes = args.shapes or SHAPES
    threads = meta["threads"]
    checks = {} if args.no_check else bc.run_checks(shapes, lambda sh, fmt: check_case(sc, sh, fmt), max(threads))

    res: Dict[int, Dict] = {}
    for t in threads:
        res[t] = {}
        peak = rf["peak_gflops"].get(t, float("nan"))
        print(f"\n=== {t} thread(s): peak {peak:.1f} GFLOP/s, DRAM {rf['bw_gbs'].get(t, float('nan')):.1f} GB/s")
        print(
            f"{'shape':<16} {'case':<16} {'ours ms':>9} {'torch ms':>9} {'t/o':>7} "
            f"{'ours GF/s':>9} {'GB/s':>6} {'%peak':>6} {'%roof':>6} {'torch GF/s':>10} {'%roof':>6}"
        )
        for sh in shapes:
            res[t][sh] = {}
            for cat in CATS:
                tm = bc.time_interleaved(make_case(sc, sh, *cat), t, meta, f"{shape_str(sh)} {cat}")
                d = bc.case_record(tm, *work(sh, cat[0]), rf, t)
                for name in IMPLS:
                    d[name]["pct_peak"] = 100 * d[name]["gflops"] / peak
                d["ratio"] = d["torch"]["median_s"] / d["ours"]["median_s"]
                if (sh, cat[1]) in checks:
                    d["check"] = checks[(sh, cat[1])]
                res[t][sh][cat] = d
                o, tt = d["ours"], d["torch"]
                flag = bc.slow_flag(d)
                print(
                    f"{shape_str(sh):<16} {cat[0] + ' ' + cat[1]:<16} {o['median_s'] * 1e3:9.2f} "
                    f"{tt['median_s'] * 1e3:9.2f} {d['ratio']:6.2f}x {o['gflops']:9.1f} {o['gbs']:6.1f} "
                    f"{o['pct_peak']:5.0f}% {o['pct_roof']:5.0f}% {tt['gflops']:10.1f} {tt['pct_roof']:5.0f}%"
                    f"{flag}",
                    flush=True,
                )
        torch.set_num_threads(max(threads))
        bc.others_cores(meta, t, [res[t][sh][cat]["load"] for sh in shapes for cat in CATS])

    probe = {} if args.no_roofline else microkernel_probe()
    if probe:
        print("GEMM tile in isolation (1 thread): " + ", ".join(f"{isa} {gf:.1f} GFLOP/s" for isa, gf in probe.items()))
    meta["gemm_probe_gflops"] = probe
    targets = evaluate_targets(res, shapes, threads, rf, probe, meta.get("isa", ""))
    bc.finish_run(meta)
    bc.print_targets(targets, "targets (1 thread, torch/ours)", bool(args.shapes))

    md_path = bc.results_path(args.out, "pointwise", meta)
    bc.write_results(
        md_path,
        lambda chart_name: markdown(meta, rf, res, shapes, threads, targets, chart_name),
        {
            "meta": meta,
            "roofline": roofline.to_jsonable(rf),
            "targets": targets,
            "results": [
                {"threads": t, "shape": list(sh), "direction": cat[0], "format": cat[1], **res[t][sh][cat]}
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
