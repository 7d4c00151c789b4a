"""The machine-independent harness of the CPU benchmarks (bench_depthwise, bench_pointwise,
bench_separable): importing the extension, describing the machine and how busy it is,
interleaved timing, rates against the roofline, target rows, the results header, the ratio
chart and the results files (.md, .png, .json).

What is measured and how it is counted belongs to each bench_*.py; nothing here knows an op.
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
from typing import Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)

import torch  # noqa: E402
from torch.utils.benchmark import Timer  # noqa: E402

import roofline  # noqa: E402

SLOW_S = 0.3  # calls slower than this are timed with Timer.timeit(1) instead of blocked_autorange

DIR_NAME = {"fwd": "forward", "fwdbwd": "forward+backward"}
FMT_NAME = {"nchw": "NCHW", "cl": "channels_last"}
# The cases of a benchmark that puts each memory format against torch in the same format.
CATS = [("fwd", "nchw"), ("fwd", "cl"), ("fwdbwd", "nchw"), ("fwdbwd", "cl")]
CAT_NAME = {cat: f"{DIR_NAME[cat[0]]}, {FMT_NAME[cat[1]]}" for cat in CATS}


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
    info = {
        "model": platform.processor() or platform.machine(),
        "family": "?",
        "cpu_model": "?",
        "stepping": "?",
        "flags": "",
    }
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
        rev = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "") if rev else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


# ----------------------------------------------------------------------------- command line and run setup


def shape_parser(names: str) -> Callable[[str], Tuple[int, ...]]:
    """argparse type for a shape written as comma-separated ints, e.g. names='C,H,k,stride'."""
    n = len(names.split(","))

    def parse(s: str) -> Tuple[int, ...]:
        parts = [int(p) for p in re.split(r"[,x:]", s.strip("() ")) if p]
        if len(parts) != n:
            raise argparse.ArgumentTypeError(f"shape {s!r}: expected {names}")
        return tuple(parts)

    return parse


def parse_args(
    argv,
    doc: str,
    bench: str,
    fields: str,
    n_shapes: int,
    quick_help: str = "2 rounds, min_run_time 0.02 s: a smoke run",
) -> argparse.Namespace:
    """The command line every CPU benchmark takes: --shapes as `fields` (comma-separated ints),
    --quick, --out, and the timing / roofline / check options."""
    ap = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc
    )
    ap.add_argument(
        "--shapes",
        type=shape_parser(fields),
        nargs="+",
        default=None,
        help=f"subset of shapes as {fields} (default: the issue's {n_shapes})",
    )
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument(
        "--out", default=None, help=f"output .md path (default benchmarks/results/{bench}-<cpu>-<isa>[-quick].md)"
    )
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--isa", default=None, help="sepconv_ext.set_cpu_isa(ISA) first (avx512|avx2|neon|scalar)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; quick 2)")
    ap.add_argument("--min-run-time", type=float, default=None, help="blocked_autorange (default 0.2; quick 0.02)")
    ap.add_argument(
        "--slow-budget",
        type=float,
        default=None,
        help=f"seconds per case and impl for calls slower than {SLOW_S} s (default 8; quick 2)",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS for other processes to use < 0.3 cores",
    )
    ap.add_argument("--no-check", action="store_true", help="skip the ours-vs-torch check on one image")
    ap.add_argument("--no-roofline", action="store_true", help="skip the probe (percent columns become nan)")
    return ap.parse_args(argv)


def slow_flag(d: Dict) -> str:
    """The console marks of a timed case: ours slower than torch, a contended machine."""
    flag = "  <-- ours slower" if d["ratio"] < 1.0 else ""
    if d["load"]["others"] > 0.2:
        flag += f"  (others used {d['load']['others']:.1f} cores)"
    return flag


def timing_footnote(checked: str = "ours") -> str:
    """The markdown footnote of every per-shape table; `checked` names what the check compared."""
    return (
        "'timing': how each median was taken and half the spread (max-min)/median of the "
        "per-round medians; 'others' CPU': cores used by other processes while the case ran "
        "(/proc/stat; > 0.2 on this 2-CPU VM means contended, above all at 2 threads); 'check': "
        f"{checked}: max |ours - torch| / max |torch| over output and grads (one image, vs torch "
        "channels_last) and whether the output layout follows the input.\n"
    )


def start_run(args: argparse.Namespace):
    """Import the extension (and set --isa), wait for quiet if asked, describe the machine, print
    one line about it and measure the roofline. Returns (sepconv_ext, meta, roofline dict)."""
    sc = import_sepconv()
    if args.isa:
        sc.set_cpu_isa(args.isa)
    binfo = sc.backend_info()
    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else "not waited for"
    cpu = cpu_info()
    meta = {
        "quiet": quiet,
        "cpu": cpu,
        "isa": binfo["cpu_isa"],
        "isas": binfo["cpu_isas"],
        "version": binfo["version"],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git": git_rev(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load_before": loadavg(),
        "mode": "quick" if args.quick else "full",
        "rounds": args.rounds or (2 if args.quick else 5),
        "min_run_time": args.min_run_time or (0.02 if args.quick else 0.2),
        "slow_s": SLOW_S,
        "slow_budget_s": args.slow_budget or (2.0 if args.quick else 8.0),
        "threads": sorted(set(args.threads)),
    }
    meta["t_start"] = time.perf_counter()
    print(
        f"CPU {cpu['model']} ({cpu['simd']}), ISA {binfo['cpu_isa']}, torch {torch.__version__}, "
        f"threads {meta['threads']}, load {meta['load_before']}"
    )
    if args.no_roofline:
        nan = {t: float("nan") for t in (1, 2)}
        rf = {
            "source": "skipped",
            "peak_gflops": nan,
            "bw_gbs": nan,
            "l3_bw_gbs": nan,
            "l2_bw_gbs": nan,
            "detail": {},
            "seconds": 0.0,
        }
    else:
        rf = roofline.measure(quick=args.quick)
    return sc, meta, rf


def finish_run(meta: Dict) -> None:
    meta["load_after"] = loadavg()
    meta["elapsed_s"] = time.perf_counter() - meta.pop("t_start")


def others_cores(meta: Dict, threads: int, loads: List[Dict]) -> None:
    """Record the mean CPU used by other processes during the timings at `threads` threads."""
    ld = [x["others"] for x in loads]
    meta.setdefault("others_cores", {})[threads] = statistics.mean(ld) if ld else float("nan")


# ----------------------------------------------------------------------------- timing


def time_interleaved(fns: Dict[str, Callable], threads: int, meta: Dict, label: str) -> Dict[str, Dict]:
    """Interleaved timing of the implementations in `fns` (in their order, reversed every other
    round), meta giving rounds, min_run_time, slow_s, slow_budget_s and mode.
    Returns {impl: {median_s, samples_s, mode, spread}, "load": OtherLoad.stop()}."""
    names = tuple(fns)
    rounds, quick = meta["rounds"], meta["mode"] == "quick"
    torch.set_num_threads(threads)
    load = OtherLoad().start()
    est = {}
    for name in names:  # first call: warm-up and an estimate of the cost
        t0 = time.perf_counter()
        fns[name]()
        est[name] = time.perf_counter() - t0
    plan, samples = {}, {name: [] for name in names}
    for name in names:
        if est[name] < meta["slow_s"]:
            fns[name]()  # a second warm-up for cheap calls (allocator, oneDNN primitive caches)
            plan[name] = ("autorange", rounds)
        elif quick and est[name] > 1.0:
            samples[name].append(est[name])  # the (warm-up) call itself is the only sample
            plan[name] = ("first call", 0)
        else:
            plan[name] = ("timeit(1)", max(1, min(rounds, int(meta["slow_budget_s"] / est[name]))))
    timers = {
        name: Timer("fn()", globals={"fn": fns[name]}, num_threads=threads, label=label, description=name)
        for name in names
    }
    for r in range(max(p[1] for p in plan.values())):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            mode, n = plan[name]
            if r >= n:
                continue
            if mode == "autorange":
                m = timers[name].blocked_autorange(min_run_time=meta["min_run_time"])
            else:
                m = timers[name].timeit(1)
            samples[name].append(m.median)
    out = {}
    for name in names:
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


def case_record(tm: Dict[str, Dict], flop: float, byts: float, rf: Dict, threads: int) -> Dict:
    """One case's timings (time_interleaved's result) with its work and, per implementation,
    GFLOP/s, GB/s and % of the roofline bound (DRAM and L3 bandwidth) at `threads` threads."""
    ai = flop / byts
    have = threads in rf["peak_gflops"]
    bound = roofline.bound_gflops(rf, threads, ai) if have else float("nan")
    bound_l3 = roofline.bound_gflops(rf, threads, ai, "l3") if have else float("nan")
    d = {"flop": flop, "bytes": byts, "flop_per_byte": ai, "bound_gflops": bound, "bound_l3_gflops": bound_l3}
    for name, m in tm.items():
        if name == "load":
            continue
        gf = flop / m["median_s"] / 1e9
        m.update(gflops=gf, gbs=byts / m["median_s"] / 1e9, pct_roof=100 * gf / bound, pct_roof_l3=100 * gf / bound_l3)
        d[name] = m
    d["load"] = tm["load"]
    return d


# ----------------------------------------------------------------------------- numerical check


def compare_with_reference(
    f: Callable, ref: Callable, x: torch.Tensor, params: Sequence[torch.Tensor], gy: torch.Tensor, fmt: str
) -> Tuple[float, bool]:
    """f vs ref (torch, fed channels_last: its fast path): output and the grads of x and of every
    param, with x and gy in `fmt` ('nchw' or 'cl') for f. Returns (worst error relative to the
    reference's max abs value, whether f's output has the input's layout)."""
    cl = torch.channels_last
    gy = gy.contiguous(memory_format=cl) if fmt == "cl" else gy

    def run(fn, xin):
        leaves = [xin.clone().requires_grad_(True)] + [p.clone().requires_grad_(True) for p in params]
        y = fn(*leaves)
        return [y] + list(torch.autograd.grad(y, leaves, gy))

    ours = run(f, x.contiguous(memory_format=cl) if fmt == "cl" else x)
    theirs = run(ref, x.contiguous(memory_format=cl))
    err = 0.0
    for a, r in zip(ours, theirs):
        err = max(err, ((a - r).abs().max() / r.abs().max().clamp_min(1e-12)).item())
    layout_ok = ours[0].is_contiguous(memory_format=cl) if fmt == "cl" else ours[0].is_contiguous()
    return err, layout_ok


def run_checks(
    shapes: Sequence[tuple], check: Callable[[tuple, str], Tuple[float, bool]], threads: int
) -> Dict[Tuple[tuple, str], str]:
    """check(shape, fmt) -> (relative error, layout ok) for every shape and format, at `threads`
    threads. Returns the 'check' column per (shape, fmt): the error, flagged at 1e-4, and a bad
    output layout; prints the failures."""
    torch.set_num_threads(threads)
    notes = {}
    for sh in shapes:
        for fmt in FMT_NAME:
            err, lay = check(sh, fmt)
            notes[(sh, fmt)] = f"{err:.0e}{'' if err < 1e-4 else ' MISMATCH'}{'' if lay else ' LAYOUT'}"
            if err >= 1e-4 or not lay:
                print(f"!! {shape_str(sh)} {fmt}: rel err {err:.2e}, layout ok {lay}")
    return notes


# ----------------------------------------------------------------------------- summaries


def geomean(xs: List[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def shape_str(sh: Sequence[int]) -> str:
    return "(" + ",".join(map(str, sh)) + ")"


def fmt_ms(s: float) -> str:
    ms = s * 1e3
    return f"{ms:.0f}" if ms >= 1000 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def ratio_target(what: str, ratios: Dict[tuple, float], gm_target: float, min_target: Optional[float] = None) -> Dict:
    """A target row on per-shape ratios (> 1: ours faster): geomean >= gm_target and, if given,
    every shape >= min_target. 'misses' lists the shapes below min_target (else gm_target)."""
    gm, worst = geomean(list(ratios.values())), min(ratios, key=ratios.get)
    floor = gm_target if min_target is None else min_target
    return {
        "target": f"{what}: geomean >= {gm_target}x"
        + ("" if min_target is None else f", every shape >= {min_target}x"),
        "got": f"geomean {gm:.2f}x, min {ratios[worst]:.2f}x at {shape_str(worst)}",
        "met": gm >= gm_target and (min_target is None or ratios[worst] >= min_target),
        "misses": [f"{shape_str(sh)} {v:.2f}x" for sh, v in ratios.items() if v < floor],
    }


def print_targets(targets: List[Dict], heading: str, subset: bool) -> None:
    print(f"\n=== {heading}")
    for row in targets:
        print(
            f"[{'met' if row['met'] else 'MISSED'}] {row['target']}: {row['got']}"
            + (f"; below: {', '.join(row['misses'])}" if row["misses"] else "")
        )
    if subset:
        print("(a shape subset: the summaries cover only these shapes)")


# ----------------------------------------------------------------------------- markdown


def header_lines(meta: Dict, title: str, torch_what: str, case_what: str, impls_what: str) -> List[str]:
    """Title and the run's description: machine, ISA, versions, git, threads, date, load, mode.
    torch_what: which torch op is compared ('F.conv2d groups=C'); case_what: the cases' common
    setting ('N=8, padding k//2'); impls_what: the interleaved implementations ('ours/torch')."""
    cpu, threads = meta["cpu"], meta["threads"]
    oc = ", ".join(f"{t} thr: {v:.2f}" for t, v in meta.get("others_cores", {}).items())
    quick_note = " (quick: the warm-up call itself when > 1 s)" if meta["mode"] == "quick" else ""
    return [
        f"# {title}\n",
        f"- CPU: **{cpu['model']}** (family {cpu['family']}, model {cpu['cpu_model']}, "
        f"stepping {cpu['stepping']}), {cpu['logical_cpus']} logical CPUs, SIMD: {cpu['simd']}",
        f"- sepconv_ext {meta['version']} ISA: **{meta['isa']}** (usable here: {', '.join(meta['isas'])}); "
        f"git {meta['git']}",
        f"- torch {meta['torch']} ({torch_what}), Python {meta['python']}",
        f"- threads: {', '.join(map(str, threads))} (torch.set_num_threads and Timer(num_threads))",
        f"- date: {meta['date']}; run took {meta['elapsed_s']:.0f} s; load average (1/5/15 min) "
        f"before: {meta['load_before']}, after: {meta['load_after']} "
        f"(a shared, noisy VM: numbers move by 10-30% between runs)",
        f"- CPU used by other processes during the timings (cores, mean over cases): {oc}; "
        f"wait for quiet: {meta['quiet']}",
        f"- mode: {meta['mode']}: {case_what}, {meta['rounds']} interleaved rounds of "
        f"blocked_autorange(min_run_time={meta['min_run_time']} s) per case, {impls_what} order flipped "
        f"each round; calls slower than {meta['slow_s']} s use Timer.timeit(1) for up to "
        f"{meta['slow_budget_s']:.0f} s per case{quick_note}; time = median over rounds",
        "",
    ]


def roofline_lines(rf: Dict) -> List[str]:
    L = [
        "## Roofline (benchmarks/roofline.py, medians)\n",
        "| threads | FMA peak GFLOP/s | DRAM GB/s (max copy, triad) | DRAM copy NT-store GB/s | L3 GB/s | L2 GB/s | ridge flop/B (DRAM) |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in sorted(rf["peak_gflops"]):
        nt = rf["detail"].get(("copy_nt", "dram", t), {}).get("median", float("nan"))
        L.append(
            f"| {t} | {rf['peak_gflops'][t]:.1f} | {rf['bw_gbs'][t]:.1f} | {nt:.1f} | "
            f"{rf['l3_bw_gbs'][t]:.1f} | {rf['l2_bw_gbs'][t]:.1f} | {rf['peak_gflops'][t] / rf['bw_gbs'][t]:.1f} |"
        )
    L.append(
        f"\nSource: {rf['source']}. Bound per case = min(FMA peak, DRAM bandwidth x flop/byte) at the "
        "same thread count; '% L3 roof' uses the L3 bandwidth instead (most working sets here are "
        "<= 32 MiB, so a run can exceed 100% of the DRAM roof).\n"
    )
    return L


def targets_lines(targets: List[Dict], heading: str) -> List[str]:
    if not targets:
        return []
    L = [f"## {heading}\n", "| target | got | met? |", "|---|---|---|"]
    for row in targets:
        miss = f" — below: {', '.join(row['misses'])}" if row["misses"] else ""
        L.append(f"| {row['target']} | {row['got']}{miss} | {'**met**' if row['met'] else '**MISSED**'} |")
    L.append("")
    return L


# ----------------------------------------------------------------------------- chart and files


Panels = List[Tuple[str, Dict[str, List[float]]]]  # [(panel title, {series label: ratio per x label})]
TORCH_OVER_OURS = "torch time / our time (log)"


def ratio_chart(path: str, panels: Panels, xlabels: List[str], title: str, ylabel: str) -> bool:
    """Grouped bars of ratios (log scale, a line at 1), one panel per entry; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart (pip install matplotlib)", file=sys.stderr)
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 4.2 * len(panels)), squeeze=False)
    for ax, (panel_title, series) in zip(axes[:, 0], panels):
        width = 0.8 / len(series)
        for i, (label, ys) in enumerate(series.items()):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(xlabels))]
            ax.bar(xs, ys, width, label=label)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(xlabels)))
        ax.set_xticklabels(xlabels, rotation=20, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=min(4, len(series)))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def cats_panels(res: Dict, shapes: Sequence[tuple], threads: List[int]) -> Panels:
    """One panel per thread count, one series per CATS entry, of res[t][shape][cat]['ratio']."""
    return [
        (
            f"{t} thread{'s' if t > 1 else ''}  (> 1: ours faster)",
            {CAT_NAME[cat]: [res[t][sh][cat]["ratio"] for sh in shapes] for cat in CATS},
        )
        for t in threads
    ]


def results_path(out: Optional[str], bench: str, meta: Dict) -> str:
    """--out, else benchmarks/results/<bench>-<cpu>-<isa>[-quick].md."""
    stem = f"{bench}-{slug(meta['cpu']['model'])}-{slug(meta['isa'])}" + ("-quick" if meta["mode"] == "quick" else "")
    return out or os.path.join(HERE, "results", stem + ".md")


def chart_title(meta: Dict, batch) -> str:
    return (
        f"sepconv_ext {meta['isa']} vs torch {meta['torch']}, {meta['cpu']['model']}, N={batch} float32, {meta['date']}"
    )


def write_results(
    md_path: str,
    render_md: Callable[[Optional[str]], str],
    data: Dict,
    panels: Panels,
    xlabels: List[str],
    title: str,
    elapsed_s: float,
    ylabel: str = TORCH_OVER_OURS,
) -> None:
    """Write <base>.png (the ratio chart, if matplotlib is there), md_path (render_md(chart file
    name or None)) and <base>.json (data), and print where."""
    os.makedirs(os.path.dirname(os.path.abspath(md_path)), exist_ok=True)
    base = os.path.splitext(md_path)[0]
    have_chart = ratio_chart(base + ".png", panels, xlabels, title, ylabel)
    with open(md_path, "w") as f:
        f.write(render_md(os.path.basename(base) + ".png" if have_chart else None))
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1, default=str)
    print(f"\nwrote {md_path}" + (f", {base}.png" if have_chart else "") + f", {base}.json ({elapsed_s:.0f} s)")
