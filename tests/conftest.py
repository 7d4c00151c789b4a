import os
import sys

import pytest
import torch

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
for p in (TESTS_DIR, REPO_ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

import sepconv_ext  # noqa: E402,F401  (registers torch.ops.sepconv.*)


def subprocess_env():
    """Environment for child interpreters: the repo importable, same thread count."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT, TESTS_DIR] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


@pytest.fixture(autouse=True)
def _seed_and_isa():
    """Deterministic RNG per test, and the CPU ISA restored if a test changed it."""
    torch.manual_seed(0)
    before = sepconv_ext.backend_info()["cpu_isa"]
    yield
    if sepconv_ext.backend_info()["cpu_isa"] != before:
        sepconv_ext.set_cpu_isa(before)
