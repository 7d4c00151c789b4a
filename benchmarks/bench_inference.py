"""Inference anchors: every way a user can run a network's CPU inference, one process, float32.

Per network (torchvision's mobilenet_v2, mobilenet_v3_large, efficientnet_b0, mnasnet1_0 when
torchvision imports, else the built-in MobileNets), batch (1, 8) and thread count (1, 2):

    torch NCHW / torch CL      torch eager, eval, no_grad, NCHW or channels_last input
    inductor CL                torch.compile (inductor, freezing on), channels_last
    onnxruntime                ONNX Runtime CPU (torch.onnx.export, opset 17, all graph optimizations)
    convert CL                 sc.convert(model), eager, channels_last
    optimized NCHW / CL        sc.optimize_for_inference(model), eager
    optimized+compile CL       torch.compile of the optimized model (inductor, freezing)

All implementations of a case take turns in blocks of calls (one discarded warm-up call per
block, the order reversing every round); each time is the median of its timed calls. Every
output is checked against torch eager NCHW. Needs onnx + onnxruntime (pip) for the ONNX Runtime
column (absent: skipped, and said so); compiling needs a C++ compiler (inductor).

    python benchmarks/bench_inference.py                      # everything, results/ files
    python benchmarks/bench_inference.py --quick --models mobilenet_v2 --threads 1
"""

import argparse
import io
import math
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from sepconv_ext._timing import time_alternating  # noqa: E402

import bench_common as bc  # noqa: E402

CL = torch.channels_last
TORCHVISION = ["mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "mnasnet1_0"]
IMPLS = ["torch NCHW", "torch CL", "inductor CL", "onnxruntime", "convert CL", "optimized NCHW", "optimized CL",
         "optimized+compile CL"]  # fmt: skip
OURS = ["optimized NCHW", "optimized CL", "optimized+compile CL"]
# The targets: ours (best of OURS) against each anchor, geomean over networks and batches, 1 thread.
TARGETS = [("onnxruntime", 1.0, 0.85), ("inductor CL", 1.3, None), ("best torch eager", 2.5, None)]


def networks() -> Dict[str, Callable[[], nn.Module]]:
    try:
        import torchvision
    except Exception:  # not installed, or built for another torch
        from sepconv_ext.models import MODELS

        return dict(MODELS)
    return {name: (lambda name=name: getattr(torchvision.models, name)(weights=None)) for name in TORCHVISION}


def onnx_session(model: nn.Module, x: torch.Tensor, threads: int):
    """An ONNX Runtime CPU session of ``model`` (exported at x's shape), or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    f = io.BytesIO()
    torch.onnx.export(model, (x,), f, opset_version=17, input_names=["x"], output_names=["y"], dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(f.getvalue(), options, providers=["CPUExecutionProvider"])


def compiled(model: nn.Module) -> nn.Module:
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    return torch.compile(model)


def run_case(sc, build: Callable[[], nn.Module], batch: int, threads: int, rounds: int, block: int) -> Dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(batch, 3, 224, 224)
    x_cl = x.contiguous(memory_format=CL)
    model_cl = model.to(memory_format=CL)  # the same parameters, in place
    optimized = sc.optimize_for_inference(model)
    fns: Dict[str, Callable[[], torch.Tensor]] = {
        "torch NCHW": lambda: model(x),
        "torch CL": lambda: model_cl(x_cl),
    }
    compiled_torch = compiled(model_cl)
    fns["inductor CL"] = lambda: compiled_torch(x_cl)
    session = onnx_session(model, x, threads)
    if session is not None:
        fns["onnxruntime"] = lambda: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    converted = sc.convert(model_cl)
    fns["convert CL"] = lambda: converted(x_cl)
    fns["optimized NCHW"] = lambda: optimized(x)
    fns["optimized CL"] = lambda: optimized(x_cl)
    compiled_ours = compiled(optimized)
    fns["optimized+compile CL"] = lambda: compiled_ours(x_cl)

    result: Dict = {"impls": {}}
    with torch.no_grad():
        reference = model(x)
        for name, fn in fns.items():
            t0 = time.perf_counter()
            y = fn()  # the first call compiles / exports
            err = ((y - reference).abs().max() / reference.abs().max()).item()
            result["impls"][name] = {"rel_err": err, "first_call_s": time.perf_counter() - t0}
        samples = time_alternating(fns, rounds, block)
    for name, s in samples.items():
        result["impls"][name]["median_ms"] = statistics.median(s) * 1e3
    return result


def best_ms(r: Dict, names: List[str]) -> float:
    return min(r["impls"][n]["median_ms"] for n in names if n in r["impls"])


def ratios(r: Dict) -> Dict[str, float]:
    """Anchor time / our best time (> 1: ours faster)."""
    ours = best_ms(r, OURS)
    out = {"best torch eager": best_ms(r, ["torch NCHW", "torch CL"]) / ours}
    for anchor in ("inductor CL", "onnxruntime", "convert CL"):
        if anchor in r["impls"]:
            out[anchor] = r["impls"][anchor]["median_ms"] / ours
    return out


def geomean(xs: List[float]) -> float:
    return math.exp(sum(math.log(v) for v in xs) / len(xs)) if xs else float("nan")


def render_md(meta: Dict, res: Dict, chart: Optional[str]) -> str:
    cpu = meta["cpu"]
    lines = [
        "# Inference anchors: torch eager, inductor, ONNX Runtime, sc.convert, sc.optimize_for_inference\n",
        f"- CPU: **{cpu['model']}** (family {cpu['family']}, model {cpu['cpu_model']}), {cpu['logical_cpus']} "
        f"logical CPUs, SIMD: {cpu['simd']}; sepconv_ext ISA **{meta['isa']}**, git {meta['git']}",
        f"- torch {meta['torch']}, onnxruntime {meta['onnxruntime'] or 'not installed'}; date {meta['date']}; "
        f"load average before/after: {meta['load_before']} / {meta['load_after']}; run took {meta['elapsed_s']:.0f} s",
        f"- networks at 224x224, float32, eval, no_grad, random init (seed 0); {meta['rounds']} interleaved rounds "
        f"of {meta['block']} timed calls per implementation (one warm-up call before each block, order "
        "reversed every round); time = median of the timed calls; max rel err: of any implementation's "
        "output against torch eager NCHW, relative to its largest magnitude",
        "- ratios: anchor time / our best (the fastest of optimized NCHW, optimized CL, optimized+compile CL); "
        "> 1: ours faster",
    ]
    for t, by_batch in res.items():
        for batch, by_net in by_batch.items():
            lines += ["", f"### {t} thread{'s' if int(t) > 1 else ''}, N={batch} (ms)", ""]
            present = [i for i in IMPLS if any(i in r["impls"] for r in by_net.values())]
            lines.append(
                "| network | " + " | ".join(present) + " | ours vs ORT | vs inductor | vs best eager | max rel err |"
            )
            lines.append("|---" * (len(present) + 5) + "|")
            for net, r in by_net.items():
                cells = [f"{r['impls'][i]['median_ms']:.1f}" if i in r["impls"] else "-" for i in present]
                q = ratios(r)
                err = max(v["rel_err"] for v in r["impls"].values())
                lines.append(
                    f"| {net} | " + " | ".join(cells) + f" | {q.get('onnxruntime', float('nan')):.2f} | "
                    f"{q.get('inductor CL', float('nan')):.2f} | {q['best torch eager']:.2f} | {err:.1e} |"
                )
    lines += [
        "",
        "## Targets (1 thread, geomean over networks and N=1, N=8; ours = best of optimized eager/compiled)",
        "",
    ]
    for anchor, gm_target, min_target in TARGETS:
        qs = [ratios(r).get(anchor) for b in res.get("1", {}).values() for r in b.values()]
        qs = [q for q in qs if q is not None]
        if not qs:
            lines.append(f"- vs {anchor}: not measured")
            continue
        gm, worst = geomean(qs), min(qs)
        verdict = "met" if gm >= gm_target and (min_target is None or worst >= min_target) else "MISSED"
        extra = f", every network >= {min_target}" if min_target else ""
        lines.append(f"- vs {anchor}: geomean {gm:.2f} (target >= {gm_target}{extra}; worst {worst:.2f}): {verdict}")
    if chart:
        lines += ["", f"![chart]({chart})"]
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", help="networks (default: all available)")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, help="rounds (default 4, quick 2)")
    ap.add_argument("--block", type=int, help="timed calls per impl per round (default 3, quick 1)")
    ap.add_argument("--quick", action="store_true", help="short rounds")
    ap.add_argument("--out", help="results .md path (default benchmarks/results/inference-<cpu>-<isa>.md)")
    args = ap.parse_args(argv)
    sc = bc.import_sepconv()
    rounds = args.rounds or (2 if args.quick else 4)
    block = args.block or (1 if args.quick else 3)
    nets = networks()
    names = args.models or list(nets)
    meta = {
        "cpu": bc.cpu_info(),
        "isa": sc.backend_info()["cpu_isa"],
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "mode": "quick" if args.quick else "full",
        "git": bc.git_rev(),
        "rounds": rounds,
        "block": block,
        "load_before": bc.loadavg(),
    }
    try:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        meta["onnxruntime"] = None
        print("onnxruntime not installed: no ONNX Runtime column (pip install onnx onnxruntime)", file=sys.stderr)
    start = time.time()
    res: Dict[str, Dict[str, Dict[str, Dict]]] = {}
    for t in args.threads:
        for batch in args.batches:
            for name in names:
                r = run_case(sc, nets[name], batch, t, rounds, block)
                res.setdefault(str(t), {}).setdefault(str(batch), {})[name] = r
                cells = ", ".join(f"{k} {v['median_ms']:.1f}" for k, v in r["impls"].items())
                print(f"{t}t N={batch} {name}: {cells}", flush=True)
    xlabels = [f"{n} N={b}" for b in map(str, args.batches) for n in names]
    panels = [
        (
            f"{t} thread{'s' if int(t) > 1 else ''}: anchor time / our best (> 1: ours faster)",
            {
                anchor: [ratios(res[t][b][n]).get(anchor, float("nan")) for b in map(str, args.batches) for n in names]
                for anchor in ("best torch eager", "inductor CL", "onnxruntime")
            },
        )
        for t in res
    ]
    meta["elapsed_s"] = time.time() - start
    meta["load_after"] = bc.loadavg()
    path = bc.results_path(args.out, "inference", meta)
    bc.write_results(
        path,
        lambda chart: render_md(meta, res, chart),
        {"meta": meta, "results": res},
        panels,
        xlabels,
        f"sc.optimize_for_inference vs anchors, {meta['cpu']['model']}, torch {meta['torch']}, {meta['date']}",
        meta["elapsed_s"],
        ylabel="anchor time / our time (log)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
