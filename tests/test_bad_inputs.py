"""Bad inputs must raise RuntimeError / ValueError / TypeError naming the argument (bad_cases.py).

The battery runs first in a child interpreter (so a segfault or abort fails a test instead of
killing pytest; a case that crashes the child is re-run skipped, and the in-process copy of that
case is failed without being executed), then each case runs in-process as its own test.
"""

import os
import subprocess
import sys

import pytest
import torch

import bad_cases as BC
import reference as R
from conftest import TESTS_DIR, subprocess_env

CHILD_TIMEOUT = 240


def _run_child(skip):
    cmd = [sys.executable, os.path.join(TESTS_DIR, "bad_cases.py")]
    if skip:
        cmd += ["--skip"] + list(skip)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT, env=subprocess_env())
        return p.returncode, p.stdout, p.stderr, False
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, out, err, True


@pytest.fixture(scope="module")
def child():
    """{'first': (rc, stdout, stderr), 'crashed': {case_id: description}}"""
    crashed, skip, first = {}, [], None
    for _ in range(20):
        rc, out, err, hung = _run_child(skip)
        if first is None:
            first = (rc, out, err)
        lines = out.splitlines()
        began = [ln[len("BEGIN ") :] for ln in lines if ln.startswith("BEGIN ")]
        ended = {ln[len("END ") :] for ln in lines if ln.startswith("END ")}
        unfinished = [c for c in began if c not in ended]
        finished = lines and lines[-1].strip() in ("OK",) or any(ln.startswith("FAILED ") for ln in lines)
        if unfinished:
            what = "hung (timeout)" if hung else f"crashed the interpreter (rc={rc})"
            crashed[unfinished[-1]] = f"{what}; stderr tail:\n{err[-1500:]}"
            skip.append(unfinished[-1])
            continue
        if not finished:
            crashed["<startup>"] = f"child did not run (rc={rc}):\n{err[-3000:]}"
        break
    return {"first": first, "crashed": crashed}


def test_battery_in_subprocess(child):
    rc, out, err = child["first"]
    crashes = "\n".join(f"{k}: {v}" for k, v in child["crashed"].items())
    assert not child["crashed"], f"bad-input cases crashed or hung the interpreter:\n{crashes}"
    fails = "\n".join(ln for ln in out.splitlines() if ln.startswith("FAIL "))
    assert rc == 0 and out.strip().endswith("OK"), f"rc={rc}\n{fails}\n{err[-2000:]}"


@pytest.mark.parametrize("case", BC.CASES, ids=[c.id for c in BC.CASES])
def test_bad_input(case, child):
    if case.id in child["crashed"]:
        pytest.fail(f"{case.id} {child['crashed'][case.id]}")
    if "<startup>" in child["crashed"]:
        pytest.fail(child["crashed"]["<startup>"])
    BC.check(case, rg=False)
    BC.check(case, rg=True)


def test_cases_have_unique_ids():
    ids = [c.id for c in BC.CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
def test_half_dtypes_raise_or_are_correct(dtype):
    """CPU float16/bfloat16 are optional: either a clean error naming input/dtype, or a right answer."""
    x = torch.randn(2, 8, 6, 6).to(dtype)
    w = torch.randn(16, 1, 3, 3).to(dtype)
    pw = torch.randn(5, 16, 1, 1).to(dtype)
    calls = [
        (
            "depthwise",
            lambda: torch.ops.sepconv.depthwise_conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1]),
            lambda: R.ref_depthwise_conv2d(x.double(), w.double(), None, 1, 1),
        ),
        (
            "pointwise",
            lambda: torch.ops.sepconv.pointwise_conv2d(x, pw[:, :8], None),
            lambda: R.ref_pointwise_conv2d(x.double(), pw[:, :8].double()),
        ),
        (
            "separable",
            lambda: torch.ops.sepconv.separable_conv2d(x, w, pw, None, None, [1, 1], [1, 1, 1, 1], [1, 1]),
            lambda: R.ref_separable_conv2d(x.double(), w.double(), pw.double(), None, None, 1, 1),
        ),
    ]
    for name, fn, ref in calls:
        try:
            out = fn()
        except (RuntimeError, ValueError, TypeError) as e:
            assert any(s in str(e).lower() for s in ("input", "dtype", "type")), f"{name}: {e}"
            continue
        assert out.dtype == dtype, name
        exp = ref()
        err = (out.double() - exp).abs().max().item()
        assert err <= 5e-2 * max(1.0, exp.abs().max().item()), f"{name} {dtype}: max err {err}"


def test_inputs_unchanged_after_errors():
    x = torch.randn(1, 3, 5, 5)
    w = torch.randn(4, 1, 3, 3)
    x0, w0 = x.clone(), w.clone()
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        torch.ops.sepconv.depthwise_conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1])
    assert torch.equal(x, x0) and torch.equal(w, w0)
