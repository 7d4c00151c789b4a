"""Builds sepconv_ext._C against the torch that is already installed.

Install with:  pip install --no-build-isolation -e .
(--no-build-isolation: the extension must be compiled against *your* torch, not a second copy that
pip would download into an isolated build environment.)
"""
import glob
import os
import sys

from setuptools import find_packages, setup

try:
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension
except ImportError:
    sys.exit(
        "sepconv_ext compiles against the torch you already have installed, but torch is not "
        "importable here (plain `pip install .` builds in an isolated environment without it).\n"
        "Run instead:\n    pip install torch ninja pybind11 setuptools wheel\n"
        "    pip install --no-build-isolation -e ."
    )

ROOT = os.path.dirname(os.path.abspath(__file__))


def cpp_sources():
    """Every csrc/ source except the torch-free microkernel tests (built on their own)."""
    sources = glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True)
    return sorted(s for s in sources if os.sep + "tests" + os.sep not in s)


def extension():
    # No -march=native: SIMD code is selected per file and at run time (csrc/cpu/dispatch.cpp),
    # so one build runs on any CPU of its architecture.
    cxx_flags = ["-O3", "-std=c++17", "-fvisibility=hidden"]
    return CppExtension(
        name="sepconv_ext._C",
        sources=cpp_sources(),
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_compile_args={"cxx": cxx_flags},
    )


setup(
    name="sepconv_ext",
    version="0.1.0",
    description="Depthwise, pointwise and separable 2-D convolution operators for PyTorch",
    packages=find_packages(include=["sepconv_ext", "sepconv_ext.*"]),
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    python_requires=">=3.9",
    install_requires=["torch>=2.4"],
    zip_safe=False,
)
