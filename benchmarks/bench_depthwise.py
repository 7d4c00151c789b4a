"""Depthwise conv2d: sepconv_ext.depthwise_conv2d vs torch native F.conv2d(groups=C), CPU float32.

One process, interleaved (ours and torch alternate, several rounds, the order flipping each
round), torch.utils.benchmark medians; NCHW and channels_last, forward and forward+backward
(grads of input, weight and bias; each format against torch in the same format); 1 and 2
threads. Prints per shape the times, GFLOP/s, GB/s, % of this machine's roofline bound
(benchmarks/roofline.py) and torch/ours; checks the targets of issue 3; writes
benchmarks/results/depthwise-<cpu>-<isa>.md (+ .png chart, + .json raw numbers).

    python benchmarks/bench_depthwise.py                 # full run (~10 min on 2 cores)
    python benchmarks/bench_depthwise.py --quick         # smoke run (< 60 s; skips 31x31)
    python benchmarks/bench_depthwise.py --threads 1 --shapes 32,112,3,1 96,56,7,1 --isa scalar
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.benchmark import Timer  # noqa: E402

import roofline  # noqa: E402

Shape = Tuple[int, int, int, int]  # (C, H=W, k, stride)

SHAPES: List[Shape] = [
    (32, 112, 3, 1), (96, 112, 3, 2), (144, 56, 3, 1), (144, 56, 3, 2), (192, 28, 3, 1),
    (384, 14, 3, 1), (576, 14, 3, 2), (960, 7, 3, 1), (96, 56, 7, 1), (384, 14, 7, 1),
    (128, 56, 31, 1),
]
BATCH = 8
# (direction, memory format)
CATS = [("fwd", "nchw"), ("fwd", "cl"), ("fwdbwd", "nchw"), ("fwdbwd", "cl")]
CAT_NAME = {
    ("fwd", "nchw"): "forward, NCHW",
    ("fwd", "cl"): "forward, channels_last",
    ("fwdbwd", "nchw"): "forward+backward, NCHW",
    ("fwdbwd", "cl"): "forward+backward, channels_last",
}
IMPLS = ("ours", "torch")


def import_sepconv(retries: int = 4, wait_s: float = 30.0):
    """The extension may be being rebuilt in place by someone else: retry a few times."""
    for i in range(retries):
        try:
            import sepconv_ext

            return sepconv_ext
        except Exception as e:  # ImportError, OSError (half-written .so), undefined symbol...
            if i == retries - 1:
                raise
            print(f"import sepconv_ext failed ({e!r}); retrying in {wait_s:.0f} s", file=sys.stderr)
            for m in [m for m in sys.modules if m.startswith("sepconv_ext")]:
                del sys.modules[m]
            time.sleep(wait_s)


# ----------------------------------------------------------------------------- machine info


def cpu_info() -> Dict[str, str]:
    info = {"model": platform.processor() or platform.machine(), "family": "?", "cpu_model": "?",
            "stepping": "?", "flags": ""}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key, val = key.strip(), val.strip()
                if key == "model name":
                    info["model"] = val
                elif key == "cpu family":
                    info["family"] = val
                elif key == "model":
                    info["cpu_model"] = val
                elif key == "stepping":
                    info["stepping"] = val
                elif key == "flags":
                    info["flags"] = val
                elif not line.strip() and info["flags"]:
                    break
    except OSError:
        pass
    flags = set(info["flags"].split())
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "asimd") if f in flags]
    info["simd"] = " ".join(simd) + ("" if "avx512f" in flags else " (no AVX-512)")
    info["logical_cpus"] = str(os.cpu_count())
    return info


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "cpu"


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


class OtherLoad:
    """CPU time used by everything except this process, in cores, between start() and stop():
    busy jiffies of /proc/stat (steal reported apart) minus this process's own CPU time. On a
    2-CPU VM, anything above ~0.2 cores means the timings of that case were contended."""

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
        steal = v[7] if len(v) > 7 else 0
        t = os.times()
        return time.perf_counter(), busy, steal, t.user + t.system

    def start(self) -> "OtherLoad":
        self.s = self._read()
        return self

    def stop(self) -> Dict[str, float]:
        e = self._read()
        if self.s is None or e is None or e[0] <= self.s[0]:
            return {"others": float("nan"), "steal": float("nan")}
        wall = e[0] - self.s[0]
        others = (e[1] - self.s[1]) / self.HZ - (e[3] - self.s[3])
        return {"others": max(0.0, others / wall), "steal": (e[2] - self.s[2]) / self.HZ / wall}


def wait_quiet(max_wait_s: float, threshold: float = 0.3) -> str:
    """Wait (up to max_wait_s) until other processes use < threshold cores over 5 s."""
    t0 = time.perf_counter()
    while True:
        ol = OtherLoad().start()
        time.sleep(5)
        o = ol.stop()["others"]
        waited = time.perf_counter() - t0
        if o < threshold:
            return f"quiet after {waited:.0f} s (others {o:.2f} cores)"
        if waited >= max_wait_s:
            return f"gave up waiting after {waited:.0f} s (others {o:.2f} cores)"
        if int(waited) % 30 < 5:
            print(f"waiting for a quiet machine: others use {o:.2f} cores ({waited:.0f} s)", flush=True)


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "") if rev else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


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
    c, h, k, s = shape
    ho = out_size(h, k, s)
    x, y, w, b = BATCH * c * h * h, BATCH * c * ho * ho, c * k * k, c
    macs = BATCH * c * ho * ho * k * k
    if direction == "fwd":
        return 2.0 * macs, 4.0 * (x + y + w + b)
    return 6.0 * macs, 4.0 * ((x + y + w + b) + (y + x + x + w + w + b))


# ----------------------------------------------------------------------------- cases


def make_case(sc, shape: Shape, direction: str, fmt: str, seed: int = 0):
    """Returns {impl: fn} plus the tensors; fn() runs one forward or forward+backward."""
    c, h, k, s = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, c, h, h, generator=g)
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
    gy = torch.randn(BATCH, c, ho, ho, generator=g)
    if fmt == "cl":
        gy = gy.contiguous(memory_format=torch.channels_last)
    fns = {
        name: (lambda f=f: torch.autograd.grad(f(x, w, b), (x, w, b), gy)) for name, f in conv.items()
    }
    return fns


def check_case(sc, shape: Shape, fmt: str) -> Tuple[float, bool]:
    """ours vs torch channels_last (its fast path) on one image: forward output and the three
    grads. Returns (worst error relative to the reference's max abs value, layout ok)."""
    c, h, k, s = shape
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, c, h, h, generator=g)
    w0 = (torch.randn(c, 1, k, k, generator=g) / k)
    b0 = torch.randn(c, generator=g)
    ho = out_size(h, k, s)
    gy = torch.randn(1, c, ho, ho, generator=g)
    cl = torch.channels_last

    def run(f, xin):
        xx = xin.clone().requires_grad_(True)
        ww, bb = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = f(xx, ww, bb)
        grads = torch.autograd.grad(y, (xx, ww, bb), gy.contiguous(memory_format=cl) if fmt == "cl" else gy)
        return y, grads

    xin = x0.contiguous(memory_format=cl) if fmt == "cl" else x0
    y1, g1 = run(lambda a, bw, bb: sc.depthwise_conv2d(a, bw, bb, s, k // 2), xin)
    y2, g2 = run(lambda a, bw, bb: F.conv2d(a, bw, bb, s, k // 2, 1, c), x0.contiguous(memory_format=cl))
    err = 0.0
    for a, r in zip((y1,) + tuple(g1), (y2,) + tuple(g2)):
        err = max(err, ((a - r).abs().max() / r.abs().max().clamp_min(1e-12)).item())
    layout_ok = y1.is_contiguous(memory_format=cl) if fmt == "cl" else y1.is_contiguous()
    return err, layout_ok


def time_pair(fns: Dict[str, Callable], threads: int, rounds: int, min_run_time: float,
              slow_s: float, slow_budget_s: float, quick: bool, label: str) -> Dict[str, Dict]:
    """Interleaved timing of ours and torch. Returns {impl: {median, samples, mode}}."""
    torch.set_num_threads(threads)
    load = OtherLoad().start()
    est = {}
    for name in IMPLS:  # first call: warm-up and an estimate of the cost
        t0 = time.perf_counter()
        fns[name]()
        est[name] = time.perf_counter() - t0
    plan, samples = {}, {name: [] for name in IMPLS}
    for name in IMPLS:
        if est[name] < slow_s:
            fns[name]()  # a second warm-up for cheap calls (allocator, oneDNN primitive caches)
            plan[name] = ("autorange", rounds)
        elif quick and est[name] > 1.0:
            samples[name].append(est[name])  # the (warm-up) call itself is the only sample
            plan[name] = ("first call", 0)
        else:
            plan[name] = ("timeit(1)", max(1, min(rounds, int(slow_budget_s / est[name]))))
    timers = {
        name: Timer("fn()", globals={"fn": fns[name]}, num_threads=threads, label=label,
                    description=name)
        for name in IMPLS
    }
    for r in range(max(p[1] for p in plan.values())):
        order = IMPLS if r % 2 == 0 else IMPLS[::-1]
        for name in order:
            mode, n = plan[name]
            if r >= n:
                continue
            if mode == "autorange":
                m = timers[name].blocked_autorange(min_run_time=min_run_time)
            else:
                m = timers[name].timeit(1)
            samples[name].append(m.median)
    out = {}
    for name in IMPLS:
        xs = samples[name]
        med = statistics.median(xs)
        out[name] = {
            "median_s": med,
            "samples_s": xs,
            "mode": f"{plan[name][0]} x{len(xs)}",
            "spread": (max(xs) - min(xs)) / med if len(xs) > 1 else float("nan"),
        }
    out["load"] = load.stop()
    return out


# ----------------------------------------------------------------------------- summaries


def geomean(xs: List[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def shape_str(sh: Shape) -> str:
    return f"({sh[0]},{sh[1]},{sh[2]},{sh[3]})"


def evaluate_targets(res: Dict, shapes: List[Shape], threads: List[int]) -> List[Dict]:
    """Issue 3 targets; ratio = torch / ours, 1 thread."""
    rows = []
    if 1 not in threads:
        return rows
    R = res[1]

    def ratios(cat):
        return {sh: R[sh][cat]["torch"]["median_s"] / R[sh][cat]["ours"]["median_s"] for sh in shapes}

    for cat, gm_t, min_t in ((("fwd", "nchw"), 4.0, 1.5), (("fwd", "cl"), 1.3, 1.0),
                             (("fwdbwd", "nchw"), 4.0, 1.5), (("fwdbwd", "cl"), 4.0, 1.5)):
        r = ratios(cat)
        gm, worst = geomean(list(r.values())), min(r, key=r.get)
        misses = [f"{shape_str(sh)} {v:.2f}x" for sh, v in r.items() if v < min_t]
        rows.append({
            "target": f"{CAT_NAME[cat]} vs torch {'NCHW' if cat[1] == 'nchw' else 'channels_last'}: "
                      f"geomean >= {gm_t}x, every shape >= {min_t}x",
            "got": f"geomean {gm:.2f}x, min {r[worst]:.2f}x at {shape_str(worst)}",
            "met": gm >= gm_t and r[worst] >= min_t,
            "misses": misses,
        })
    tax = {sh: R[sh][("fwd", "nchw")]["ours"]["median_s"] / R[sh][("fwd", "cl")]["ours"]["median_s"]
           for sh in shapes}
    worst = max(tax, key=tax.get)
    rows.append({
        "target": "no layout tax: our NCHW fwd time <= 1.25x our channels_last fwd time, every shape",
        "got": f"max {tax[worst]:.2f}x at {shape_str(worst)} (geomean {geomean(list(tax.values())):.2f}x)",
        "met": tax[worst] <= 1.25,
        "misses": [f"{shape_str(sh)} {v:.2f}x" for sh, v in tax.items() if v > 1.25],
    })
    s3 = [sh for sh in shapes if sh[2] == 3]
    for fmt in ("nchw", "cl"):
        if not s3:
            break
        pct = {sh: R[sh][("fwd", fmt)]["ours"]["pct_roof"] for sh in s3}
        worst = min(pct, key=pct.get)
        pct_l3 = {sh: R[sh][("fwd", fmt)]["ours"]["pct_roof_l3"] for sh in s3}
        rows.append({
            "target": f"forward {'NCHW' if fmt == 'nchw' else 'channels_last'} >= 60% of the roofline "
                      f"bound (DRAM bandwidth) on every 3x3 shape",
            "got": f"min {pct[worst]:.0f}% at {shape_str(worst)}, median {statistics.median(pct.values()):.0f}%"
                   f" (vs the L3-bandwidth roof: min {min(pct_l3.values()):.0f}%)",
            "met": pct[worst] >= 60.0,
            "misses": [f"{shape_str(sh)} {v:.0f}%" for sh, v in pct.items() if v < 60.0],
        })
    if 2 in threads:
        oc = statistics.mean(res[2][sh][cat]["load"]["others"] for sh in shapes for cat in CATS)
        note = (f"; CONTENDED: other processes used {oc:.1f} of the 2 CPUs on average during the "
                f"2-thread timings" if oc > 0.2 else "")
        for cat in CATS:
            sp = {sh: res[1][sh][cat]["ours"]["median_s"] / res[2][sh][cat]["ours"]["median_s"] for sh in shapes}
            sp_t = {sh: res[1][sh][cat]["torch"]["median_s"] / res[2][sh][cat]["torch"]["median_s"] for sh in shapes}
            gm, worst = geomean(list(sp.values())), min(sp, key=sp.get)
            rows.append({
                "target": f"2 threads >= 1.6x 1 thread (ours), {CAT_NAME[cat]} (met on the geomean)",
                "got": f"geomean {gm:.2f}x, min {sp[worst]:.2f}x at {shape_str(worst)} "
                       f"(torch: geomean {geomean(list(sp_t.values())):.2f}x){note}",
                "met": gm >= 1.6,
                "misses": [f"{shape_str(sh)} {v:.2f}x" for sh, v in sp.items() if v < 1.6],
            })
    return rows


# ----------------------------------------------------------------------------- output


def fmt_ms(s: float) -> str:
    ms = s * 1e3
    return f"{ms:.0f}" if ms >= 1000 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def markdown(meta: Dict, rf: Dict, res: Dict, shapes: List[Shape], threads: List[int],
             targets: List[Dict], chart_name: Optional[str]) -> str:
    L = []
    L.append("# Depthwise conv2d: sepconv_ext vs torch native (CPU, float32)\n")
    L.append(f"- CPU: **{meta['cpu']['model']}** (family {meta['cpu']['family']}, model {meta['cpu']['cpu_model']}, "
             f"stepping {meta['cpu']['stepping']}), {meta['cpu']['logical_cpus']} logical CPUs, "
             f"SIMD: {meta['cpu']['simd']}")
    L.append(f"- sepconv_ext {meta['version']} ISA: **{meta['isa']}** (usable here: {', '.join(meta['isas'])}); "
             f"git {meta['git']}")
    L.append(f"- torch {meta['torch']} (F.conv2d groups=C), Python {meta['python']}")
    L.append(f"- threads: {', '.join(map(str, threads))} (torch.set_num_threads and Timer(num_threads))")
    L.append(f"- date: {meta['date']}; run took {meta['elapsed_s']:.0f} s; load average (1/5/15 min) "
             f"before: {meta['load_before']}, after: {meta['load_after']} "
             f"(a shared, noisy VM: numbers move by 10-30% between runs)")
    oc = ", ".join(f"{t} thr: {v:.2f}" for t, v in meta.get("others_cores", {}).items())
    L.append(f"- CPU used by other processes during the timings (cores, mean over cases): {oc}; "
             f"wait for quiet: {meta['quiet']}")
    L.append(f"- mode: {meta['mode']}: N={BATCH}, padding k//2, {meta['rounds']} interleaved rounds of "
             f"blocked_autorange(min_run_time={meta['min_run_time']} s) per case, ours/torch order flipped "
             f"each round; calls slower than {meta['slow_s']} s use Timer.timeit(1) for up to "
             f"{meta['slow_budget_s']:.0f} s per case{' (quick: the warm-up call itself when > 1 s)' if meta['mode'] == 'quick' else ''}; "
             f"time = median over rounds")
    L.append("")
    L.append("## Roofline (benchmarks/roofline.py, medians)\n")
    L.append("| threads | FMA peak GFLOP/s | DRAM GB/s (max copy, triad) | DRAM copy NT-store GB/s | L3 GB/s | L2 GB/s | ridge flop/B (DRAM) |")
    L.append("|---|---|---|---|---|---|---|")
    for t in sorted(rf["peak_gflops"]):
        nt = rf["detail"].get(("copy_nt", "dram", t), {}).get("median", float("nan"))
        L.append(f"| {t} | {rf['peak_gflops'][t]:.1f} | {rf['bw_gbs'][t]:.1f} | {nt:.1f} | "
                 f"{rf['l3_bw_gbs'][t]:.1f} | {rf['l2_bw_gbs'][t]:.1f} | {rf['peak_gflops'][t] / rf['bw_gbs'][t]:.1f} |")
    L.append(f"\nSource: {rf['source']}. Bound per case = min(FMA peak, DRAM bandwidth x flop/byte) at the "
             "same thread count; '% L3 roof' uses the L3 bandwidth instead (most working sets here are "
             "<= 32 MiB, so a run can exceed 100% of the DRAM roof).\n")
    L.append("Counting: flop = 2 x MACs (fwd: N*C*Ho*Wo*k*k MACs; fwd+bwd: 3x that; bias not counted). "
             "Bytes (compulsory, float32): fwd = x + y + w + b; fwd+bwd = fwd + gy + x + gx + w + gw + gb.\n")

    if targets:
        L.append("## Targets (issue 3; 1 thread, ratio = torch time / our time)\n")
        L.append("| target | got | met? |")
        L.append("|---|---|---|")
        for row in targets:
            miss = f" — below: {', '.join(row['misses'])}" if row["misses"] else ""
            L.append(f"| {row['target']} | {row['got']}{miss} | {'**met**' if row['met'] else '**MISSED**'} |")
        L.append("")
    if chart_name:
        L.append(f"![torch/ours ratios]({chart_name})\n")

    for t in threads:
        for cat in CATS:
            L.append(f"## {CAT_NAME[cat]}, {t} thread{'s' if t > 1 else ''}\n")
            L.append("| (C, H=W, k, s) | ours ms | torch ms | torch/ours | ours GFLOP/s | ours GB/s | "
                     "ours % roof | ours % L3 roof | torch GFLOP/s | torch GB/s | torch % roof | "
                     "bound GFLOP/s | flop/B | timing (ours; torch) | others' CPU | check |")
            L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for sh in shapes:
                d = res[t][sh][cat]
                o, tt = d["ours"], d["torch"]
                L.append(
                    f"| {shape_str(sh)} | {fmt_ms(o['median_s'])} | {fmt_ms(tt['median_s'])} | "
                    f"{d['ratio']:.2f}x | {o['gflops']:.1f} | {o['gbs']:.1f} | {o['pct_roof']:.0f}% | "
                    f"{o['pct_roof_l3']:.0f}% | {tt['gflops']:.1f} | {tt['gbs']:.1f} | {tt['pct_roof']:.0f}% | "
                    f"{d['bound_gflops']:.1f} | {d['flop_per_byte']:.2f} | "
                    f"{o['mode']}, ±{o['spread'] * 50:.0f}%; {tt['mode']}, ±{tt['spread'] * 50:.0f}% | "
                    f"{d['load']['others']:.2f} | {d.get('check', '-')} |"
                )
            rs = [res[t][sh][cat]["ratio"] for sh in shapes]
            L.append(f"\ngeomean torch/ours {geomean(rs):.2f}x, min {min(rs):.2f}x, max {max(rs):.2f}x\n")
    L.append("'timing': how each median was taken and half the spread (max-min)/median of the per-round "
             "medians; 'others' CPU': cores used by other processes while the case ran (/proc/stat; "
             "> 0.2 on this 2-CPU VM means contended, above all at 2 threads); 'check': max |ours - torch| / max |torch| over output and grads (one image, vs "
             "torch channels_last) and whether the output layout follows the input.\n")
    return "\n".join(L).replace("±nan%", "single sample")


def chart(path: str, res: Dict, shapes: List[Shape], threads: List[int], title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart (pip install matplotlib)", file=sys.stderr)
        return False
    fig, axes = plt.subplots(len(threads), 1, figsize=(13, 4.2 * len(threads)), squeeze=False)
    width = 0.2
    for ax, t in zip(axes[:, 0], threads):
        for i, cat in enumerate(CATS):
            xs = [j + (i - 1.5) * width for j in range(len(shapes))]
            ys = [res[t][sh][cat]["ratio"] for sh in shapes]
            ax.bar(xs, ys, width, label=CAT_NAME[cat])
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(shapes)))
        ax.set_xticklabels([shape_str(sh) for sh in shapes], rotation=20, fontsize=8)
        ax.set_ylabel("torch time / our time (log)")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}  (> 1: ours faster)")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=4)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- main


def parse_shape(s: str) -> Shape:
    parts = [int(p) for p in re.split(r"[,x:]", s.strip("() ")) if p]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"shape {s!r}: expected C,H,k,stride")
    return tuple(parts)  # type: ignore[return-value]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shapes", type=parse_shape, nargs="+", default=None,
                    help="subset of shapes as C,H,k,stride (default: the issue's 11)")
    ap.add_argument("--quick", action="store_true",
                    help="2 rounds, min_run_time 0.02 s, no 31x31 shape unless --shapes names it: a smoke run")
    ap.add_argument("--isa", default=None, help="sepconv_ext.set_cpu_isa(ISA) first (avx512|avx2|neon|scalar)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; quick 2)")
    ap.add_argument("--min-run-time", type=float, default=None, help="blocked_autorange (default 0.2; quick 0.02)")
    ap.add_argument("--slow-budget", type=float, default=None,
                    help="seconds per case and impl for calls slower than 0.3 s (default 8; quick 2)")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                    help="first wait up to SECONDS for other processes to use < 0.3 cores")
    ap.add_argument("--no-check", action="store_true", help="skip the ours-vs-torch check on one image")
    ap.add_argument("--out", default=None, help="output .md path (default benchmarks/results/depthwise-<cpu>-<isa>[-quick].md)")
    ap.add_argument("--no-roofline", action="store_true", help="skip the probe (percent columns become nan)")
    args = ap.parse_args(argv)

    sc = import_sepconv()
    if args.isa:
        sc.set_cpu_isa(args.isa)
    binfo = sc.backend_info()
    shapes = args.shapes or ([sh for sh in SHAPES if sh[2] < 31] if args.quick else SHAPES)
    threads = sorted(set(args.threads))
    rounds = args.rounds or (2 if args.quick else 5)
    mrt = args.min_run_time or (0.02 if args.quick else 0.2)
    slow_s = 0.3
    slow_budget = args.slow_budget or (2.0 if args.quick else 8.0)

    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else "not waited for"
    cpu = cpu_info()
    meta = {
        "quiet": quiet,
        "cpu": cpu, "isa": binfo["cpu_isa"], "isas": binfo["cpu_isas"], "version": binfo["version"],
        "torch": torch.__version__, "python": platform.python_version(), "git": git_rev(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load_before": loadavg(), "mode": "quick" if args.quick else "full", "rounds": rounds,
        "min_run_time": mrt, "slow_s": slow_s, "slow_budget_s": slow_budget,
    }
    t_start = time.perf_counter()
    print(f"CPU {cpu['model']} ({cpu['simd']}), ISA {binfo['cpu_isa']}, torch {torch.__version__}, "
          f"threads {threads}, load {meta['load_before']}")
    if args.no_roofline:
        rf = {"source": "skipped", "peak_gflops": {t: float("nan") for t in (1, 2)},
              "bw_gbs": {t: float("nan") for t in (1, 2)}, "l3_bw_gbs": {t: float("nan") for t in (1, 2)},
              "l2_bw_gbs": {t: float("nan") for t in (1, 2)}, "detail": {}, "seconds": 0.0}
    else:
        rf = roofline.measure(quick=args.quick)

    checks = {}
    if not args.no_check:
        torch.set_num_threads(max(threads))
        for sh in shapes:
            for fmt in ("nchw", "cl"):
                err, lay = check_case(sc, sh, fmt)
                checks[(sh, fmt)] = f"{err:.0e}{'' if err < 1e-4 else ' MISMATCH'}{'' if lay else ' LAYOUT'}"
                if err >= 1e-4 or not lay:
                    print(f"!! {shape_str(sh)} {fmt}: rel err {err:.2e}, layout ok {lay}")

    res: Dict[int, Dict] = {}
    for t in threads:
        res[t] = {}
        print(f"\n=== {t} thread(s): peak {rf['peak_gflops'].get(t, float('nan')):.1f} GFLOP/s, "
              f"DRAM {rf['bw_gbs'].get(t, float('nan')):.1f} GB/s")
        print(f"{'shape':<16} {'case':<16} {'ours ms':>9} {'torch ms':>9} {'t/o':>7} "
              f"{'ours GF/s':>9} {'GB/s':>6} {'%roof':>6} {'torch GF/s':>10} {'%roof':>6}")
        for sh in shapes:
            res[t][sh] = {}
            for cat in CATS:
                fns = make_case(sc, sh, *cat)
                tm = time_pair(fns, t, rounds, mrt, slow_s, slow_budget, args.quick,
                               f"{shape_str(sh)} {cat}")
                flop, byts = work(sh, cat[0])
                ai = flop / byts
                bound = roofline.bound_gflops(rf, t, ai) if t in rf["peak_gflops"] else float("nan")
                bound_l3 = roofline.bound_gflops(rf, t, ai, "l3") if t in rf["peak_gflops"] else float("nan")
                d = {"flop": flop, "bytes": byts, "flop_per_byte": ai, "bound_gflops": bound,
                     "bound_l3_gflops": bound_l3}
                for name in IMPLS:
                    m = tm[name]
                    gf = flop / m["median_s"] / 1e9
                    m.update(gflops=gf, gbs=byts / m["median_s"] / 1e9, pct_roof=100 * gf / bound,
                             pct_roof_l3=100 * gf / bound_l3)
                    d[name] = m
                d["ratio"] = tm["torch"]["median_s"] / tm["ours"]["median_s"]
                d["load"] = tm["load"]
                if (sh, cat[1]) in checks:
                    d["check"] = checks[(sh, cat[1])]
                res[t][sh][cat] = d
                o, tt = d["ours"], d["torch"]
                flag = "  <-- ours slower" if d["ratio"] < 1.0 else ""
                if d["load"]["others"] > 0.2:
                    flag += f"  (others used {d['load']['others']:.1f} cores)"
                print(f"{shape_str(sh):<16} {cat[0] + ' ' + cat[1]:<16} {o['median_s'] * 1e3:9.2f} "
                      f"{tt['median_s'] * 1e3:9.2f} {d['ratio']:6.2f}x {o['gflops']:9.1f} {o['gbs']:6.1f} "
                      f"{o['pct_roof']:5.0f}% {tt['gflops']:10.1f} {tt['pct_roof']:5.0f}%{flag}", flush=True)
        torch.set_num_threads(max(threads))
        ld = [res[t][sh][cat]["load"]["others"] for sh in shapes for cat in CATS]
        meta.setdefault("others_cores", {})[t] = statistics.mean(ld) if ld else float("nan")

    targets = evaluate_targets(res, shapes, threads)
    meta["load_after"] = loadavg()
    meta["elapsed_s"] = time.perf_counter() - t_start

    print("\n=== targets (1 thread, torch/ours)")
    for row in targets:
        print(f"[{'met' if row['met'] else 'MISSED'}] {row['target']}: {row['got']}"
              + (f"; below: {', '.join(row['misses'])}" if row["misses"] else ""))
    if args.shapes:
        print("(a shape subset: the summaries cover only these shapes)")

    stem = f"depthwise-{slug(cpu['model'])}-{slug(binfo['cpu_isa'])}" + ("-quick" if args.quick else "")
    md_path = args.out or os.path.join(HERE, "results", stem + ".md")
    os.makedirs(os.path.dirname(os.path.abspath(md_path)), exist_ok=True)
    base = os.path.splitext(md_path)[0]
    title = (f"sepconv_ext {binfo['cpu_isa']} vs torch {torch.__version__}, {cpu['model']}, "
             f"N={BATCH} float32, {meta['date']}")
    have_chart = chart(base + ".png", res, shapes, threads, title)
    with open(md_path, "w") as f:
        f.write(markdown(meta, rf, res, shapes, threads, targets,
                         os.path.basename(base) + ".png" if have_chart else None))
    with open(base + ".json", "w") as f:
        json.dump({
            "meta": meta, "roofline": roofline.to_jsonable(rf), "targets": targets,
            "results": [
                {"threads": t, "shape": list(sh), "direction": cat[0], "format": cat[1],
                 **{k: v for k, v in res[t][sh][cat].items() if k not in IMPLS},
                 **{name: res[t][sh][cat][name] for name in IMPLS}}
                for t in threads for sh in shapes for cat in CATS
            ],
        }, f, indent=1, default=str)
    print(f"\nwrote {md_path}" + (f", {base}.png" if have_chart else "") + f", {base}.json "
          f"({meta['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
