"""Whole networks: the original model vs ``sepconv_ext.convert(model)``, CPU float32, 224x224.

Both models live in one process, built from the same weights; they take turns in blocks of
calls (one discarded warm-up call per block, the order flipping every round), and each side's
time is the median of all its timed calls. Cases: inference (eval, no_grad) at N=1 and N=8,
and a training step (train mode, forward + loss.backward() + zero_grad, N=8); NCHW and
channels_last input (each side against torch in the same format); 1 and 2 threads. Every case
also checks the converted model's output against the original's.

Each case runs in a fresh process of its own. glibc's malloc adapts its mmap and trim
thresholds to the sizes the process has freed so far, and those decide whether torch's large
tensors (BatchNorm and activation outputs) come back as reused heap or as fresh pages that
fault on first touch (measured: MobileNetV2 inference N=1 channels_last, torch alone 19.5-20.7
ms with ~2300 faults per call, but 16 ms after a training case had run in the same process).
In one long process, the torch side's time depended on which cases ran before it.
``--fault-free`` runs the cases with glibc told never to return memory to the kernel
(MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_): no page faults on either side, the kernels'
and the surrounding ops' own speed (as with a caching allocator such as jemalloc or tcmalloc).

Networks: the built-in ones (sepconv_ext.models: mobilenet_v2, mobilenet_v3_large), always;
torchvision's mobilenet_v2, mobilenet_v3_large, efficientnet_b0, mnasnet1_0 and convnext_tiny
when torchvision imports (they are named tv:<name>). Random init, seeded.

    python benchmarks/bench_models.py                       # everything, results/ files
    python benchmarks/bench_models.py --quick               # built-in networks, short rounds
    python benchmarks/bench_models.py --models mobilenet_v2 --modes infer8 --formats cl --threads 1
    python benchmarks/bench_models.py --profile tv:mobilenet_v3_large --modes infer8 --formats nchw
        # per-op breakdown (torch.profiler), torch and ours side by side, no results files
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

# benchmarks/ (bench_common) and the repository root (sepconv_ext, as an in-place build) first.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from sepconv_ext._timing import network_step, time_alternating  # noqa: E402

import bench_common as bc  # noqa: E402

MODES = {  # name: (training step?, batch)
    "infer1": (False, 1),
    "infer8": (False, 8),
    "train8": (True, 8),
}
MODE_NAME = {"infer1": "inference N=1", "infer8": "inference N=8", "train8": "training step N=8"}
FORMATS = {"nchw": torch.contiguous_format, "cl": torch.channels_last}
TORCHVISION = ["mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "mnasnet1_0", "convnext_tiny"]
IMPLS = ("torch", "ours")


def available_models() -> Dict[str, Callable[[], nn.Module]]:
    from sepconv_ext.models import MODELS

    models: Dict[str, Callable[[], nn.Module]] = dict(MODELS)
    try:
        import torchvision
    except Exception:  # not installed, or built for another torch
        return models
    for name in TORCHVISION:
        models[f"tv:{name}"] = lambda name=name: getattr(torchvision.models, name)(weights=None)
    return models


# ----------------------------------------------------------------------------- one case


class Case:
    """A network, its converted copy, an input and the step to time, for one configuration."""

    def __init__(self, sc, build: Callable[[], nn.Module], mode: str, fmt: str, seed: int = 0):
        self.training, batch = MODES[mode]
        torch.manual_seed(seed)
        original = build().to(memory_format=FORMATS[fmt])
        original.train(self.training)
        self.models = {"torch": original, "ours": sc.convert(original)}
        self.x = torch.randn(batch, 3, 224, 224).to(memory_format=FORMATS[fmt])

    def step(self, impl: str) -> Callable[[], None]:
        return network_step(self.models[impl], self.x, self.training)

    def check(self) -> Dict[str, float]:
        """Max abs difference of the outputs relative to the original's max magnitude (training:
        and of every parameter's gradient, relative to the largest); both sides see the same RNG
        (dropout)."""
        out = {}
        states = {k: copy.deepcopy(m.state_dict()) for k, m in self.models.items()}
        results = {}
        for impl, model in self.models.items():
            torch.manual_seed(1)
            with torch.set_grad_enabled(self.training):
                y = model(self.x)
            grads = None
            if self.training:
                y.sum().backward()
                grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
                model.zero_grad(set_to_none=True)
            results[impl] = (y.detach(), grads)
            model.load_state_dict(states[impl])  # undo the BatchNorm statistics update
        (y0, g0), (y1, g1) = results["torch"], results["ours"]
        out["output_rel_err"] = ((y1 - y0).abs().max() / y0.abs().max().clamp_min(1e-30)).item()
        if self.training:  # relative to the largest gradient: some are rounding noise around 0
            scale = max(a.abs().max().item() for a in g0)
            out["grad_rel_err"] = max((b - a).abs().max().item() for a, b in zip(g0, g1)) / scale
        return out


def time_case(case: Case, rounds: int, block: int) -> Dict[str, Dict]:
    """Median of every timed call per side (sepconv_ext._timing.time_alternating)."""
    load = bc.OtherLoad().start()
    samples = time_alternating({impl: case.step(impl) for impl in IMPLS}, rounds, block)
    out: Dict[str, Dict] = {impl: {"median_s": statistics.median(xs), "samples_s": xs} for impl, xs in samples.items()}
    out["load"] = load.stop()
    return out


# ----------------------------------------------------------------------------- per-op profile


def _op_key(event) -> str:
    """An op's name, with the kind of convolution where its input shapes say (torch's convs
    are one op name for every kind)."""
    name = event.key
    shapes = getattr(event, "input_shapes", None) or []
    if "conv" in name and len(shapes) > 1 and len(shapes[1]) == 4:
        cout, cin_g, kh, kw = shapes[1]
        kind = "1x1" if (kh, kw) == (1, 1) else ("depthwise" if cin_g == 1 else f"{kh}x{kw}")
        name += f" [{kind}]"
    return name


def profile(
    sc, name: str, build: Callable[[], nn.Module], mode: str, fmt: str, threads: int, calls: int, top: int
) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(threads)
    case = Case(sc, build, mode, fmt)
    table: Dict[str, Dict[str, Tuple[int, float]]] = {}
    totals = {}
    for impl in IMPLS:
        fn = case.step(impl)
        fn()
        fn()
        with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            totals[impl] = (time.perf_counter() - t0) / calls * 1e3
        agg: Dict[str, Tuple[int, float]] = {}
        for ev in prof.key_averages(group_by_input_shape=True):
            k = _op_key(ev)
            n, t = agg.get(k, (0, 0.0))
            agg[k] = (n + ev.count, t + ev.self_cpu_time_total / 1e3 / calls)
        for k, v in agg.items():
            table.setdefault(k, {})[impl] = v
    print(
        f"\n{name}, {MODE_NAME[mode]}, {bc.FMT_NAME[fmt]}, {threads} thread(s): wall per call "
        f"(profiled) torch {totals['torch']:.1f} ms, ours {totals['ours']:.1f} ms"
    )
    print("self CPU time per call, ms (calls per step)")
    rows = sorted(table.items(), key=lambda kv: -max(v[1] for v in kv[1].values()))[:top]
    w = max(len(k) for k, _ in rows)
    print(f"{'op':<{w}} {'torch':>14} {'ours':>14} {'ours-torch':>11}")
    for k, v in rows:
        cells = [f"{v[i][1]:8.2f} ({v[i][0] // calls:3d})" if i in v else f"{'-':>14}" for i in IMPLS]
        diff = v.get("ours", (0, 0.0))[1] - v.get("torch", (0, 0.0))[1]
        print(f"{k:<{w}} {cells[0]:>14} {cells[1]:>14} {diff:>+11.2f}")


# ----------------------------------------------------------------------------- results


def render_md(meta: Dict, res: Dict, chart: Optional[str]) -> str:
    cpu = meta["cpu"]
    lines = [
        "# Whole networks: torch vs sepconv_ext.convert(), CPU float32, 224x224",
        "",
        f"- machine: {cpu['model']} (family {cpu['family']}, model {cpu['cpu_model']}), "
        f"{cpu['simd']}, {cpu['logical_cpus']} logical CPUs; ISA {meta['isa']}",
        f"- torch {meta['torch']}, sepconv_ext {meta['version']} ({meta['git']}), "
        f"torchvision {meta['torchvision']}, Python {meta['python']}",
        f"- {meta['date']}, {meta['mode']} run, {meta['rounds']} rounds x {meta['block']} timed "
        f"calls per side, load before {meta['load_before']}, after {meta['load_after']}, "
        f"{meta['elapsed_s']:.0f} s",
        f"- every case in a fresh process (glibc's malloc thresholds adapt to what a process has "
        f"freed: see bench_models.py); malloc: {meta.get('malloc', 'glibc defaults')}",
        "- times: median of every timed call per side (sides alternate in blocks, one warm-up "
        "call per block); ratio = torch / ours (> 1: converting made it faster); "
        "err = max |ours - torch| / max |torch| of the output (training: and of every gradient)",
        "",
    ]
    if chart:
        lines += [f"![ratios]({chart})", ""]
    for t in meta["threads"]:
        lines += [
            f"## {t} thread{'s' if t > 1 else ''}",
            "",
            "| network | case | torch ms | ours ms | torch/ours | err |",
            "|---|---|---|---|---|---|",
        ]
        for name in res:
            for key, d in res[name].get(t, {}).items():
                err = max(v for k, v in d["check"].items())
                lines.append(
                    f"| {name} | {key} | {d['torch']['median_s'] * 1e3:.1f} | "
                    f"{d['ours']['median_s'] * 1e3:.1f} | **{d['ratio']:.2f}** | {err:.1e} |"
                )
        lines.append("")
    lines += [
        "## Geomeans (torch/ours)",
        "",
        "| threads | mode | same format | best format vs best format | min |",
        "|---|---|---|---|---|",
    ]
    for t, mode, same, best, lo in summary(res, meta["threads"]):
        lines.append(f"| {t} | {MODE_NAME[mode]} | {same:.2f} | {best:.2f} | {lo:.2f} |")
    return "\n".join(lines) + "\n"


def run_case(sc, build: Callable[[], nn.Module], mode: str, fmt: str, rounds: int, block: int) -> Dict:
    case = Case(sc, build, mode, fmt)
    check = case.check()
    tm = time_case(case, rounds, block)
    return {**tm, "check": check, "ratio": tm["torch"]["median_s"] / tm["ours"]["median_s"]}


FAULT_FREE_ENV = {"MALLOC_MMAP_THRESHOLD_": "4000000000", "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def run_case_isolated(
    name: str, mode: str, fmt: str, threads: int, rounds: int, block: int, isa: Optional[str], fault_free: bool
) -> Dict:
    """run_case in a fresh interpreter (see the module docstring: why)."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--one-case",
        name,
        mode,
        fmt,
        str(threads),
        "--rounds",
        str(rounds),
        "--block",
        str(block),
    ] + (["--isa", isa] if isa else [])
    env = {**os.environ, **(FAULT_FREE_ENV if fault_free else {})}
    run = bc.subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith(_CASE_JSON)]
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"case {name} {mode} {fmt} {threads}t failed:\n{run.stdout[-2000:]}{run.stderr[-4000:]}")
    return json.loads(lines[-1][len(_CASE_JSON) :])


_CASE_JSON = "CASE-JSON "


def summary(res: Dict, threads: List[int]):
    """Per (threads, mode): geomean same format, geomean best format vs best, min ratio."""
    rows = []
    for t in threads:
        for mode in MODES:
            same, best = [], []
            for name in res:
                cases = {
                    fmt: d for (key, d) in res[name].get(t, {}).items() for fmt in FORMATS if key == f"{mode} {fmt}"
                }
                if not cases:
                    continue
                same += [d["ratio"] for d in cases.values()]
                best.append(
                    min(d["torch"]["median_s"] for d in cases.values())
                    / min(d["ours"]["median_s"] for d in cases.values())
                )
            if same:
                rows.append((t, mode, bc.geomean(same), bc.geomean(best), min(same)))
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", help="networks (default: all available)")
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--formats", nargs="+", choices=list(FORMATS), default=list(FORMATS))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, help="rounds (default 4, quick 2)")
    ap.add_argument("--block", type=int, help="timed calls per side per round (default 3, quick 2)")
    ap.add_argument("--quick", action="store_true", help="built-in networks, short rounds")
    ap.add_argument("--isa", help="sepconv_ext.set_cpu_isa(ISA) first")
    ap.add_argument("--profile", metavar="NETWORK", help="per-op breakdown of one network instead")
    ap.add_argument("--profile-calls", type=int, default=3)
    ap.add_argument("--top", type=int, default=30, help="rows of the per-op breakdown")
    ap.add_argument("--out", help="results .md path (default benchmarks/results/models-<cpu>-<isa>.md)")
    ap.add_argument(
        "--fault-free", action="store_true", help="glibc malloc never unmaps or trims (no page faults on either side)"
    )
    ap.add_argument(
        "--one-case", nargs=4, metavar=("NETWORK", "MODE", "FORMAT", "THREADS"), help=argparse.SUPPRESS
    )  # internal: one case, printed as JSON
    args = ap.parse_args(argv)

    sc = bc.import_sepconv()
    if args.isa:
        sc.set_cpu_isa(args.isa)
    models = available_models()
    if args.one_case:
        name, mode, fmt, t = args.one_case
        torch.set_num_threads(int(t))
        d = run_case(sc, models[name], mode, fmt, args.rounds, args.block)
        print(_CASE_JSON + json.dumps(d), flush=True)
        return 0
    if args.profile:
        for t in args.threads:
            for mode in args.modes:
                for fmt in args.formats:
                    profile(sc, args.profile, models[args.profile], mode, fmt, t, args.profile_calls, args.top)
        return 0

    names = args.models or ([n for n in models if not n.startswith("tv:")] if args.quick else list(models))
    unknown = [n for n in names if n not in models]
    if unknown:
        ap.error(f"unknown networks {unknown}; available: {sorted(models)}")
    try:
        import torchvision

        tv_version = torchvision.__version__
    except Exception:
        tv_version = "not importable"
    cpu = bc.cpu_info()
    meta = {
        "cpu": cpu,
        "isa": sc.backend_info()["cpu_isa"],
        "version": sc.backend_info()["version"],
        "torch": torch.__version__,
        "torchvision": tv_version,
        "python": bc.platform.python_version(),
        "git": bc.git_rev(),
        "date": bc.datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "mode": "quick" if args.quick else "full",
        "rounds": args.rounds or (2 if args.quick else 4),
        "block": args.block or (2 if args.quick else 3),
        "threads": sorted(set(args.threads)),
        "load_before": bc.loadavg(),
        "malloc": (
            "fault-free: " + " ".join(f"{k}={v}" for k, v in FAULT_FREE_ENV.items())
            if args.fault_free
            else "glibc defaults"
        ),
    }
    t_start = time.perf_counter()
    print(
        f"CPU {cpu['model']} ({cpu['simd']}), ISA {meta['isa']}, torch {torch.__version__}, "
        f"torchvision {tv_version}, threads {meta['threads']}, load {meta['load_before']}"
    )
    res: Dict[str, Dict] = {}
    for name in names:
        print(f"\n{name}")
        print(
            f"  {'threads':>7} {'case':<12} {'torch ms':>9} {'ours ms':>9} {'torch/ours':>10} {'err':>8} {'others':>6}"
        )
        for t in meta["threads"]:
            for mode in args.modes:
                for fmt in args.formats:
                    d = run_case_isolated(name, mode, fmt, t, meta["rounds"], meta["block"], args.isa, args.fault_free)
                    res.setdefault(name, {}).setdefault(t, {})[f"{mode} {fmt}"] = d
                    tm, check = d, d["check"]
                    print(
                        f"  {t:>7} {mode + ' ' + fmt:<12} {tm['torch']['median_s'] * 1e3:>9.1f} "
                        f"{tm['ours']['median_s'] * 1e3:>9.1f} {d['ratio']:>10.2f} "
                        f"{max(check.values()):>8.1e} {tm['load']['others']:>6.2f}",
                        flush=True,
                    )
    print("\ngeomeans torch/ours: threads, mode, same format, best vs best, min")
    for t, mode, same, best, lo in summary(res, meta["threads"]):
        print(f"  {t} {MODE_NAME[mode]:<18} {same:.2f} {best:.2f} {lo:.2f}")
    meta["load_after"] = bc.loadavg()
    meta["elapsed_s"] = time.perf_counter() - t_start
    stem = (
        f"models-{bc.slug(cpu['model'])}-{bc.slug(meta['isa'])}"
        + ("-quick" if args.quick else "")
        + ("-fault-free" if args.fault_free else "")
    )
    md_path = args.out or os.path.join(bc.HERE, "results", stem + ".md")
    panels = [
        (
            f"{t} thread{'s' if t > 1 else ''}  (> 1: converted faster)",
            {
                f"{mode} {fmt}": [res[n][t].get(f"{mode} {fmt}", {}).get("ratio", float("nan")) for n in res]
                for mode in args.modes
                for fmt in args.formats
            },
        )
        for t in meta["threads"]
    ]
    bc.write_results(
        md_path,
        lambda chart: render_md(meta, res, chart),
        {"meta": meta, "results": res},
        panels,
        list(res),
        f"sepconv_ext.convert vs torch {torch.__version__}, {cpu['model']}, float32 224x224, {meta['date']}",
        meta["elapsed_s"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
