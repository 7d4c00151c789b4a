import glob
import os
import sys

import pytest
import torch

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
# The checkout's package when it is built in place (pip install -e . / build_ext --inplace);
# else the installed one (pip install .), which the source tree, without a compiled _C, must
# not shadow (`python -m pytest` puts the working directory first on sys.path).
IN_PLACE_BUILD = bool(glob.glob(os.path.join(REPO_ROOT, "sepconv_ext", "_C*")))
IMPORT_PATHS = [TESTS_DIR] + ([REPO_ROOT] if IN_PLACE_BUILD else [])
if not IN_PLACE_BUILD:
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != REPO_ROOT]
for p in reversed(IMPORT_PATHS):
    if p not in sys.path:
        sys.path.insert(0, p)

import sepconv_ext  # noqa: E402,F401  (registers torch.ops.sepconv.*)


def subprocess_env():
    """Environment for child interpreters: the package the tests import, and tests/."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(IMPORT_PATHS + [p for p in [env.get("PYTHONPATH")] if p])
    return env


@pytest.fixture(autouse=True)
def _seed_and_isa():
    """Deterministic RNG per test, and the CPU ISA restored if a test changed it."""
    torch.manual_seed(0)
    before = sepconv_ext.backend_info()["cpu_isa"]
    yield
    if sepconv_ext.backend_info()["cpu_isa"] != before:
        sepconv_ext.set_cpu_isa(before)
