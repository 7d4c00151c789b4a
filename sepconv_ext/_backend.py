"""Which kernels this build and machine run, and the switch between CPU ISAs."""

from __future__ import annotations

from typing import Any, Dict

import torch

from sepconv_ext._extension import _C, build_info

__all__ = ["backend_info", "cpu_cache_info", "empty_cpu_cache", "set_cpu_isa"]

# Where each CPU ISA's kernels passed the test suite on real hardware (not emulation). Add a
# machine when a session runs the tests on a new CPU (benchmarks/results/isa-verification.md
# keeps the log of each run).
ISA_VERIFIED_ON = {
    "avx512": "AMD EPYC Zen 5 (family 26, model 2), 2026-12-04: full pytest suite (AVX-512 as "
    "the default ISA) and the torch-free kernel tests; 2026-12-06: the kernel tests "
    "and the extension under ASan/UBSan, 100,000 fuzz configurations; AMD EPYC Zen 4 "
    "(family 25, model 17), 2026-12-06: the full CI run (kernel tests plain and under "
    "ASan/UBSan, the whole pytest suite)",
    "avx2": "AMD EPYC Zen 3 (family 25, model 1): every CI run since 2026-11; and on the Zen 5 "
    "and Zen 4 above, the kernel tests and the per-ISA pytest cases",
    "scalar": "every CI run, on both machines above",
    "neon": "not on hardware: kernel tests under qemu-aarch64 (user-mode emulation), every CI run",
}


def backend_info() -> Dict[str, Any]:
    """Describe the active backend.

    Returns:
        A dict with 'version' (package version), 'cpu_isa' (the ISA the CPU kernels use now),
        'cpu_isas' (ISAs usable here, best first), 'cuda' (CUDA kernels compiled in and a GPU
        available), 'cuda_archs' (the GPU architectures compiled for), 'torch_built' (the torch
        version the extension was compiled against; None for a build that predates the record)
        and 'isa_verified_on' (per CPU ISA, the real hardware its kernels were tested on).
    """
    from sepconv_ext import __version__  # here, not at the top: the package imports us

    info = build_info()
    return {
        "version": __version__,
        "cpu_isa": _C.cpu_isa(),
        "cpu_isas": list(_C.cpu_isas()),
        "cuda": bool(_C.cuda_compiled()) and torch.cuda.is_available(),
        "cuda_archs": list(_C.cuda_archs()),
        "torch_built": info.TORCH_VERSION if info is not None else None,
        "isa_verified_on": dict(ISA_VERIFIED_ON),
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


def cpu_cache_info() -> Dict[str, int]:
    """The CPU output cache: where the CPU kernels' outputs of 256 KiB or more get their memory.

    A freed output's block is kept and handed to the next output of about its size, so that a
    network's every step does not page-fault on freshly mapped memory (README, "Memory").

    Returns:
        A dict with 'limit_bytes' (the most it holds while no tensor uses the blocks; env
        SEPCONV_CPU_CACHE_MB, default 1024, 0: off), 'cached_bytes' (held now), 'hits' and
        'misses' (outputs served from a held block / from fresh memory, since import).
    """
    return dict(_C.cpu_cache_info())


def empty_cpu_cache() -> None:
    """Free the blocks the CPU output cache holds (those in live tensors return when they die)."""
    _C.empty_cpu_cache()
