"""Loading sepconv_ext._C, the compiled extension, with an error that says what is wrong when it
cannot run here: built against another torch, or no build at all (the source tree)."""

from __future__ import annotations

import glob
import importlib
import os
from types import ModuleType
from typing import Optional

import torch

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REINSTALL = (
    "reinstall sepconv_ext so that it compiles against this torch: `pip install "
    "--force-reinstall --no-deps --no-cache-dir <sepconv_ext sources>`, or rebuild a "
    "checkout in place with `pip install --no-build-isolation -e .`"
)


def torch_release(version: str) -> str:
    """'2.13.0' of '2.13.0+cpu': builds of one release share its ABI; releases do not."""
    return version.split("+")[0]


def build_info() -> Optional[ModuleType]:
    """sepconv_ext/_build_info.py (written by setup.py when it compiled _C), or None."""
    try:
        return importlib.import_module("sepconv_ext._build_info")
    except ImportError:
        return None


def check_torch(info: Optional[ModuleType]) -> None:
    """Raise ImportError if the running torch is not one the extension can load into. Checked
    before loading: a library built against another release fails with undefined symbols, or
    loads and misbehaves."""
    if info is None:
        return
    running = torch.__version__
    if torch_release(info.TORCH_VERSION) != torch_release(running):
        raise ImportError(
            f"sepconv_ext was built against torch {info.TORCH_VERSION}, but torch {running} is running: {REINSTALL}"
        )
    if info.WITH_CUDA and torch.version.cuda is None:
        raise ImportError(
            f"sepconv_ext was built with CUDA kernels against torch {info.TORCH_VERSION} "
            f"(CUDA {info.TORCH_CUDA}), but the running torch {running} has no CUDA: "
            f"{REINSTALL}"
        )


def load() -> ModuleType:
    """Import sepconv_ext._C (which registers torch.ops.sepconv.*), or raise an ImportError that
    names the cause."""
    info = build_info()
    check_torch(info)
    try:
        return importlib.import_module("sepconv_ext._C")
    except ImportError as e:
        if not glob.glob(os.path.join(PACKAGE_DIR, "_C*")):
            raise ImportError(
                f"sepconv_ext at {PACKAGE_DIR} has no compiled extension (_C). If that is its "
                "source tree, Python imported it ahead of the installed package because it runs "
                "from the repository root: run from another directory, or build in place with "
                "`pip install --no-build-isolation -e .`"
            ) from e
        built = f"torch {info.TORCH_VERSION}" if info is not None else "an unknown torch"
        raise ImportError(
            f"sepconv_ext's compiled extension failed to load ({e}); it was built "
            f"against {built} and torch {torch.__version__} is running: {REINSTALL}"
        ) from e


_C = load()
