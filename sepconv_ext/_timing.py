"""Timing whole networks fairly on a noisy machine: shared by ``python -m sepconv_ext`` and
``benchmarks/bench_models.py``."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List

import torch
from torch import Tensor, nn


def network_step(model: nn.Module, x: Tensor, training: bool) -> Callable[[], None]:
    """One inference call (no_grad) or one training step (forward, backward of the output's
    sum, zero_grad) of ``model``, which must already be in the matching mode."""
    if not training:

        def infer() -> None:
            with torch.no_grad():
                model(x)

        return infer

    def train() -> None:
        model(x).sum().backward()
        model.zero_grad(set_to_none=True)

    return train


def time_alternating(fns: Dict[str, Callable[[], None]], rounds: int, block: int) -> Dict[str, List[float]]:
    """Seconds per call of each function: in every round each runs one untimed call then
    ``block`` timed ones, the functions taking turns and the order flipping each round, so
    that machine load and cache state hit all alike. Returns every timed sample."""
    names = list(fns)
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fns[name]()
            for _ in range(block):
                t0 = time.perf_counter()
                fns[name]()
                samples[name].append(time.perf_counter() - t0)
    return samples


def median_ms(samples: List[float]) -> float:
    return statistics.median(samples) * 1e3
