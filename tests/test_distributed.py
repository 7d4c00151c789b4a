"""DistributedDataParallel training of a converted network: 2 processes, gloo, on 127.0.0.1.

Each rank trains on its half of the batch; DDP averages the gradients, so after every step each
parameter's gradient and value must equal those of one process training on the whole batch
(float64: equal up to the order of the all-reduce's sums). Once eagerly for two SGD steps, once
under torch.compile for one. The network has no BatchNorm: in train mode each process would
normalise with its own half-batch statistics (SyncBatchNorm, which would not, runs on GPUs only).
"""

import datetime
import os
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

import sepconv_ext as sc

WORLD = 2
BATCH = 8  # 4 per rank
STEPS = 2
TIMEOUT_S = 300  # the whole spawn, compile included


def make_network():
    """Stem, a MobileNetV2-style inverted residual (expand 1x1, depthwise, project 1x1), a
    strided depthwise with a depth multiplier and a fused separable layer, then a classifier:
    after convert() every conv but the stem runs our ops."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU6(),
        nn.Conv2d(8, 24, 1),
        nn.ReLU6(),
        nn.Conv2d(24, 24, 3, padding=1, groups=24),
        nn.ReLU6(),
        nn.Conv2d(24, 16, 1),
        nn.Conv2d(16, 32, 5, stride=2, padding=2, groups=16),
        nn.Hardswish(),
        sc.SeparableConv2d(32, 40, 3, padding="same"),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(40, 10),
    )
    return sc.convert(net).double()


def make_batch():
    g = torch.Generator().manual_seed(1)
    return (
        torch.randn(BATCH, 3, 20, 18, dtype=torch.float64, generator=g),
        torch.randint(0, 10, (BATCH,), generator=g),
    )


def train(model, x, y, steps):
    """SGD with momentum; per step the gradients (after backward) and parameters (after step)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    record = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        grads = {n: p.grad.detach().clone() for n, p in named(model)}
        opt.step()
        record.append((grads, {n: p.detach().clone() for n, p in named(model)}))
    return record


def named(model):
    """Parameters by their name in the plain network (without DDP's / compile's prefixes)."""
    for name, p in model.named_parameters():
        for prefix in ("_orig_mod.", "module."):
            name = name[len(prefix) :] if name.startswith(prefix) else name
        yield name, p


def inductor_recording_ops(seen):
    """Inductor, noting the sepconv ops of every graph it compiles in `seen` (DDP's optimizer
    hands it one graph per gradient bucket; DDP's own logging breaks the graph)."""
    from torch._inductor.compile_fx import compile_fx

    def backend(gm, example_inputs):
        seen.update(str(n.target) for n in gm.graph.nodes if "sepconv" in str(n.target))
        return compile_fx(gm, example_inputs)

    return backend


def worker(rank, port, out_dir, compiled, steps):
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=TIMEOUT_S),
    )
    try:
        model = nn.parallel.DistributedDataParallel(make_network())
        compiled_ops = set()
        if compiled:
            model = torch.compile(model, backend=inductor_recording_ops(compiled_ops))
        x, y = make_batch()
        half = BATCH // WORLD
        start = time.perf_counter()
        record = train(model, x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half], steps)
        seconds = time.perf_counter() - start
        torch.save(
            {"record": record, "seconds": seconds, "compiled_ops": compiled_ops},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ddp(tmp_path, compiled, steps):
    """Spawns the ranks (bounded in time) and returns each rank's record and wall time."""
    ctx = mp.start_processes(
        worker, args=(free_port(), str(tmp_path), compiled, steps), nprocs=WORLD, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=5):  # raises if a rank failed
            if time.monotonic() > deadline:
                pytest.fail(f"DDP ranks still running after {TIMEOUT_S} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_ddp_matches_one_process(compiled, tmp_path):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    if compiled and not hasattr(torch, "compile"):
        pytest.skip("no torch.compile")
    steps = 1 if compiled else STEPS
    x, y = make_batch()
    expected = train(make_network(), x, y, steps)
    ranks = run_ddp(tmp_path, compiled, steps)
    print(
        f"DDP {'compiled' if compiled else 'eager'}: {steps} step(s) in "
        f"{', '.join('%.1f' % r['seconds'] for r in ranks)} s (ranks)"
    )
    for rank, result in enumerate(ranks):
        if compiled:  # our three ops ran inside compiled graphs
            for op in ("depthwise_conv2d", "pointwise_conv2d", "separable_conv2d"):
                assert any(op in name for name in result["compiled_ops"]), (op, result["compiled_ops"])
        assert len(result["record"]) == steps
        for step, ((grads, params), (want_grads, want_params)) in enumerate(zip(result["record"], expected)):
            assert grads.keys() == want_grads.keys()
            for name in want_grads:
                torch.testing.assert_close(
                    grads[name],
                    want_grads[name],
                    rtol=1e-11,
                    atol=1e-13,
                    msg=lambda m: f"rank {rank} step {step} grad {name}: {m}",
                )
                torch.testing.assert_close(
                    params[name],
                    want_params[name],
                    rtol=1e-11,
                    atol=1e-13,
                    msg=lambda m: f"rank {rank} step {step} param {name}: {m}",
                )
