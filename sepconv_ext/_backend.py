"""Which kernels this build and machine run, and the switch between CPU ISAs."""

from __future__ import annotations

from typing import Any, Dict

import torch

from sepconv_ext import _C

__all__ = ["backend_info", "set_cpu_isa"]


def backend_info() -> Dict[str, Any]:
    """Describe the active backend.

    Returns:
        A dict with 'version' (package version), 'cpu_isa' (the ISA the CPU kernels use now),
        'cpu_isas' (ISAs usable here, best first), 'cuda' (CUDA kernels compiled in and a GPU
        available) and 'cuda_archs' (the GPU architectures compiled for).
    """
    from sepconv_ext import __version__  # here, not at the top: the package imports us

    return {
        "version": __version__,
        "cpu_isa": _C.cpu_isa(),
        "cpu_isas": list(_C.cpu_isas()),
        "cuda": bool(_C.cuda_compiled()) and torch.cuda.is_available(),
        "cuda_archs": list(_C.cuda_archs()),
    }


def set_cpu_isa(name: str) -> str:
    """Make the CPU kernels use ISA ``name`` ('avx512', 'avx2', 'neon' or 'scalar').

    Returns:
        The previously active ISA.

    Raises:
        ValueError: ``name`` is not one this CPU and build can run.
    """
    # The library validates (one place, shared with C++ callers); its std::invalid_argument
    # arrives here as ValueError naming the usable ISAs.
    return _C.set_cpu_isa(name)
