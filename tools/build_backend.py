"""PEP 517 build backend: setuptools' own, run so that the extension compiles against the torch
of the environment it installs into.

A C++ extension must be built against the torch it will run with (same version, same CPU or
CUDA variant: the ABI is not stable across releases). pip's default build isolation hides the
target environment's packages from the build, so a plain `pip install .` would otherwise
either fail to import torch or (with torch in build-system.requires) download and build against
a second, possibly different torch. This backend asks the interpreter pip runs (the target
environment's Python) where its torch lives and appends that environment's import paths to the
build's, after the isolated environment's own (setuptools and wheel still come from there). Only
where the target has no torch at all does it ask pip for one in the build environment; the
wheel then requires exactly that torch version (setup.py pins it), so pip installs the same one.

pip runs each hook in a fresh process, so this module's import-time setup applies to every hook.
"""

import importlib.util
import json
import os
import subprocess
import sys

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every hook we do not override)

# What the target interpreter prints: its torch (or null) and its import paths. -E: without
# PYTHONPATH, which pip points at the isolated environment; so this sees the target's own paths.
_PROBE = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.find_spec('torch')\n"
    "print(json.dumps({'torch': spec.origin if spec else None, 'path': sys.path}))\n"
)


def _target_environment():
    """{'torch': path of the target's torch/__init__.py or None, 'path': its sys.path}."""
    try:
        out = subprocess.run(
            [sys.executable, "-E", "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
        ).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {"torch": None, "path": []}


def _make_target_torch_importable():
    """True when torch is importable here afterwards (already, or from the target)."""
    if importlib.util.find_spec("torch") is not None:  # no isolation, or torch in the build env
        return True
    target = _target_environment()
    if target["torch"] is None:
        return False
    extra = [p for p in target["path"] if p and p not in sys.path]
    sys.path.extend(extra)
    # Processes the build starts (none today; a compiler wrapper might) see the same paths.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p] + extra
    )
    importlib.invalidate_caches()
    return importlib.util.find_spec("torch") is not None


_TORCH_IMPORTABLE = _make_target_torch_importable()


def _with_torch(requires):
    # Only a target without torch gets one in the build environment: pip's newest (its default
    # CUDA build on Linux x86-64: several GB), installed again into the target as the pinned
    # dependency of the wheel.
    return list(requires) + ([] if _TORCH_IMPORTABLE else ["torch"])


def get_requires_for_build_wheel(config_settings=None):
    return _with_torch(_setuptools.get_requires_for_build_wheel(config_settings))


def get_requires_for_build_editable(config_settings=None):
    return _with_torch(_setuptools.get_requires_for_build_editable(config_settings))
