"""``python -m sepconv_ext``: check and time MobileNetV2's layers, then a whole network.

Each layer (224x224 input, batch 1, float32, NCHW) is first compared with ``F.conv2d``; then
ours and torch's are timed, alternating per layer so that drifting machine load hits both alike.
Then a whole network (the built-in MobileNetV2, or ``--model NAME`` from torchvision) is
converted with ``sc.convert``, checked against the original, and its inference and training
step are timed against the original's. The exit status is 1 if any result differs beyond
tolerance.
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.utils import benchmark

import sepconv_ext as sc
from sepconv_ext._timing import median_ms, network_step, time_alternating
from sepconv_ext.models import MODELS

# Distinct layer shapes of MobileNetV2 at 224x224.
# fmt: off
_DEPTHWISE = [  # (channels, input size, stride), 3x3 kernel, padding 1
    (32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2),
    (192, 28, 1), (384, 14, 1), (576, 14, 2), (960, 7, 1),
]
# fmt: on
# fmt: off
_POINTWISE = [  # (in channels, out channels, input size)
    (32, 16, 112), (96, 24, 56), (144, 24, 56), (192, 32, 28),
    (384, 64, 14), (576, 96, 14), (960, 160, 7), (320, 1280, 7),
]
# fmt: on

# float32, reductions over up to 1280 terms in another order than oneDNN's.
_RTOL, _ATOL = 1e-4, 1e-5


@dataclass
class _Layer:
    name: str
    shape: str
    ours: Callable[[], torch.Tensor]
    reference: Callable[[], torch.Tensor]


def _layers(quick: bool) -> List[_Layer]:
    depthwise = _DEPTHWISE[::2] if quick else _DEPTHWISE
    pointwise = _POINTWISE[::2] if quick else _POINTWISE
    layers = []
    for c, size, stride in depthwise:
        x = torch.randn(1, c, size, size)
        w, b = torch.randn(c, 1, 3, 3) / 3, torch.randn(c)
        layers.append(
            _Layer(
                f"dw3x3 s{stride}",
                f"{c}x{size}x{size}",
                lambda x=x, w=w, b=b, s=stride: sc.depthwise_conv2d(x, w, b, s, 1),
                lambda x=x, w=w, b=b, s=stride, c=c: F.conv2d(x, w, b, s, 1, groups=c),
            )
        )
    for cin, cout, size in pointwise:
        x = torch.randn(1, cin, size, size)
        w, b = torch.randn(cout, cin, 1, 1) / cin**0.5, torch.randn(cout)
        layers.append(
            _Layer(
                "pw1x1",
                f"{cin}->{cout}x{size}x{size}",
                lambda x=x, w=w, b=b: sc.pointwise_conv2d(x, w, b),
                lambda x=x, w=w, b=b: F.conv2d(x, w, b),
            )
        )
    return layers


def _time_ms(fns: Tuple[Callable[[], torch.Tensor], ...], rounds: int, min_run_time: float) -> List[float]:
    """Best median time of each function over ``rounds`` rounds, the functions taking turns.

    Taking turns and keeping the best round keeps a noisy, shared machine from favouring
    whichever function ran during a quiet spell.
    """
    # Timer defaults to one thread; measure with the threads the user asked for.
    timers = [benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()) for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, timer in enumerate(timers):
            best[i] = min(best[i], timer.blocked_autorange(min_run_time=min_run_time).median * 1e3)
    return best


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _network(name: str) -> torch.nn.Module:
    """A built-in network, or torchvision's of that name (``tv:NAME`` forces torchvision)."""
    if name in MODELS:
        return MODELS[name]()
    try:
        import torchvision
    except Exception as e:
        raise SystemExit(
            f"--model {name}: not a built-in network ({sorted(MODELS)}) and torchvision does not import ({e})"
        ) from e
    builder = getattr(torchvision.models, name.removeprefix("tv:"), None)
    if builder is None:
        raise SystemExit(f"--model {name}: torchvision has no such network")
    return builder(weights=None)


def _whole_network(name: str, quick: bool) -> bool:
    """Converted vs original, checked and timed (inference and a training step, channels_last,
    where torch is fastest on CPU). Returns whether the outputs matched."""
    infer_batch, train_batch = (2, 2) if quick else (8, 4)
    rounds, block = (1, 1) if quick else (2, 2)
    torch.manual_seed(0)
    original = _network(name).to(memory_format=torch.channels_last)
    converted = sc.convert(original)
    replaced = sum(type(m) is torch.nn.Conv2d for m in original.modules()) - sum(
        type(m) is torch.nn.Conv2d for m in converted.modules()
    )
    print(f"\nWhole network: {name}, 224x224, float32, channels_last, {replaced} layers converted")
    header = f"{'case':<22} {'max rel err':>11} {'torch ms':>9} {'ours ms':>9} {'torch/ours':>10}"
    print(header)
    print("-" * len(header))
    ok, ratios = True, []
    for training, batch in ((False, infer_batch), (True, train_batch)):
        x = torch.randn(batch, 3, 224, 224).to(memory_format=torch.channels_last)
        for model in (original, converted):
            model.train(training)
        outputs = []
        for model in (original, converted):
            torch.manual_seed(1)  # the same dropout masks
            with torch.no_grad():
                outputs.append(model(x))
        error = ((outputs[1] - outputs[0]).abs().max() / outputs[0].abs().max()).item()
        ok &= error < 1e-3
        fns = {"torch": network_step(original, x, training), "ours": network_step(converted, x, training)}
        samples = time_alternating(fns, rounds, block)
        torch_ms, ours_ms = median_ms(samples["torch"]), median_ms(samples["ours"])
        ratios.append(torch_ms / ours_ms)
        case = f"{'training step' if training else 'inference'} N={batch}"
        print(f"{case:<22} {error:>11.2e} {torch_ms:>9.1f} {ours_ms:>9.1f} {torch_ms / ours_ms:>10.2f}")
    print(
        f"sc.convert({name}): inference {ratios[0]:.2f}x, training step {ratios[1]:.2f}x "
        f"torch's speed on this machine ({torch.get_num_threads()} threads)"
    )
    # Inference only: BatchNorm folded into the convs, activations fused into the kernels.
    original.eval()
    optimized = sc.optimize_for_inference(original)
    x = torch.randn(infer_batch, 3, 224, 224).to(memory_format=torch.channels_last)
    with torch.no_grad():
        reference = original(x)
        error = ((optimized(x) - reference).abs().max() / reference.abs().max()).item()
    ok &= error < 1e-3
    fns = {"torch": network_step(original, x, False), "ours": network_step(optimized, x, False)}
    samples = time_alternating(fns, rounds, block)
    torch_ms, ours_ms = median_ms(samples["torch"]), median_ms(samples["ours"])
    case = f"optimized inf. N={infer_batch}"
    print(f"{case:<22} {error:>11.2e} {torch_ms:>9.1f} {ours_ms:>9.1f} {torch_ms / ours_ms:>10.2f}")
    print(
        f"sc.optimize_for_inference({name}): inference {torch_ms / ours_ms:.2f}x torch's speed "
        f"(eval, channels_last, {torch.get_num_threads()} threads)"
    )
    return ok


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sepconv_ext", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's default)")
    parser.add_argument("--quick", action="store_true", help="every other layer, one short timing round")
    parser.add_argument(
        "--model",
        default="mobilenet_v2",
        help="whole network: built-in mobilenet_v2 / mobilenet_v3_large, or a "
        "torchvision network name when torchvision is installed",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rounds, min_run_time = (1, 0.02) if args.quick else (3, 0.05)

    print(f"sepconv_ext {sc.backend_info()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU: {_cpu_model()}")
    print("MobileNetV2 224x224, batch 1, float32, NCHW\n")
    header = f"{'layer':<10} {'shape':<16} {'max abs err':>11} {'torch ms':>9} {'ours ms':>9} {'torch/ours':>10}"
    print(header)
    print("-" * len(header))

    torch.manual_seed(0)
    failed: List[Tuple[str, str]] = []
    for layer in _layers(args.quick):
        expected, actual = layer.reference(), layer.ours()
        error = (actual - expected).abs().max().item()
        if not torch.allclose(actual, expected, rtol=_RTOL, atol=_ATOL):
            failed.append((layer.name, layer.shape))
        torch_ms, ours_ms = _time_ms((layer.reference, layer.ours), rounds, min_run_time)
        print(
            f"{layer.name:<10} {layer.shape:<16} {error:>11.2e} {torch_ms:>9.3f} {ours_ms:>9.3f} "
            f"{torch_ms / ours_ms:>10.2f}"
        )

    if failed:
        print(f"\nFAILED: results differ from F.conv2d beyond rtol={_RTOL}, atol={_ATOL}: {failed}")
    else:
        print(f"\nall results match F.conv2d (rtol={_RTOL}, atol={_ATOL})")
    if not _whole_network(args.model, args.quick):
        print(f"FAILED: the converted {args.model} differs from the original")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
