"""Builds sepconv_ext._C against the torch of the environment it installs into.

Install with:  pip install .
(tools/build_backend.py, the PEP 517 backend pyproject.toml names, makes that environment's
torch the one the build imports; `pip install --no-build-isolation [-e] .` builds against the
torch importable here.) The wheel requires exactly the torch version it was compiled against,
and sepconv_ext/_build_info.py records it for the check at import.
"""

import glob
import os
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
# Commands that only describe or pack the sources, which need no torch (an sdist built where
# torch is absent, and the metadata step setuptools runs before the build requirements exist).
SOURCE_ONLY_COMMANDS = {"sdist", "egg_info", "dist_info", "--name", "--version", "--help", "-h"}

try:
    import torch
except ImportError:
    if not SOURCE_ONLY_COMMANDS.intersection(sys.argv[1:]):
        sys.exit(
            "sepconv_ext compiles against the torch of the environment it installs into, but no "
            "torch is importable here. Either `pip install .` (its build backend finds the target "
            "environment's torch, or installs one), or install torch first and run "
            "`pip install --no-build-isolation -e .`"
        )
    torch = None

# Default GPU architectures when TORCH_CUDA_ARCH_LIST is unset and no GPU is visible: Ampere
# (A100, sm_80) and Hopper (H100/H200, sm_90), plus PTX of sm_90 so newer GPUs JIT-compile it.
DEFAULT_CUDA_ARCHS = "8.0;9.0+PTX"


def find_cuda_home():
    """The CUDA toolkit to build with, or None.

    $CUDA_HOME (or $CUDA_PATH) first, then /usr/local/cuda when it has bin/nvcc, then torch's own
    guess. torch alone guesses from the `nvcc` on PATH, which is wrong where that nvcc is a
    wrapper script (e.g. /usr/local/bin/nvcc exec'ing /usr/local/cuda-13.0/bin/nvcc gives
    CUDA_HOME=/usr/local, and the link then fails for want of /usr/local/lib64/libcudart).
    """

    def has_nvcc(home):
        return bool(home) and os.path.isfile(os.path.join(home, "bin", "nvcc"))

    for var in ("CUDA_HOME", "CUDA_PATH"):
        if has_nvcc(os.environ.get(var)):
            return os.environ[var]
    if has_nvcc("/usr/local/cuda"):
        return "/usr/local/cuda"
    from torch.utils import cpp_extension  # its guess, made at import time

    return cpp_extension.CUDA_HOME if has_nvcc(cpp_extension.CUDA_HOME) else None


def want_cuda():
    """(build the CUDA kernels?, CUDA_HOME). SEPCONV_FORCE_CPU=1 skips CUDA."""
    if os.environ.get("SEPCONV_FORCE_CPU", "0") not in ("", "0"):
        return False, None
    if not torch.version.cuda:  # a CPU-only torch: nothing to link the kernels against
        return False, None
    home = find_cuda_home()
    return home is not None, home


def cuda_arch_list():
    """TORCH_CUDA_ARCH_LIST if set, else the local GPU's arch, else DEFAULT_CUDA_ARCHS.

    The result is written back to TORCH_CUDA_ARCH_LIST, which torch's build reads."""
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if not archs:
        try:
            if torch.cuda.is_available():
                major, minor = torch.cuda.get_device_capability()
                archs = f"{major}.{minor}"
        except Exception:  # no driver, no device: fall through to the default
            archs = ""
    if not archs:
        archs = DEFAULT_CUDA_ARCHS
    os.environ["TORCH_CUDA_ARCH_LIST"] = archs
    return [a for a in archs.replace(",", ";").replace(" ", ";").split(";") if a]


def torch_release(version):
    """'2.13.0' of '2.13.0+cpu': the release, without the local build label."""
    return version.split("+")[0]


def write_build_info(with_cuda):
    """sepconv_ext/_build_info.py: the torch this build compiles against, which the package
    compares with the running torch at import (a mismatch is an ABI break: undefined symbols or
    worse), and which backend_info() reports."""
    text = (
        '"""Written by setup.py at build time (not in git): the torch sepconv_ext._C was built '
        'against."""\n'
        f"TORCH_VERSION = {torch.__version__!r}\n"
        f"TORCH_CUDA = {torch.version.cuda!r}\n"
        f"TORCH_DIR = {os.path.dirname(torch.__file__)!r}\n"
        f"WITH_CUDA = {with_cuda!r}\n"
    )
    path = os.path.join(ROOT, "sepconv_ext", "_build_info.py")
    old = open(path).read() if os.path.exists(path) else None
    if old != text:  # unchanged: keep the mtime, so an in-place rebuild stays incremental
        with open(path, "w") as f:
            f.write(text)


if torch is not None:
    WITH_CUDA, CUDA_HOME = want_cuda()
    if WITH_CUDA:
        # Before torch.utils.cpp_extension is imported: it reads CUDA_HOME once, at import.
        os.environ["CUDA_HOME"] = CUDA_HOME
    from torch.utils import cpp_extension  # noqa: E402
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402

    if WITH_CUDA:
        cpp_extension.CUDA_HOME = CUDA_HOME  # in case something imported it earlier
    write_build_info(WITH_CUDA)


def cpp_sources():
    """Every csrc/ source except the torch-free microkernel tests (built on their own)."""
    sources = glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True)
    return sorted(s for s in sources if os.sep + "tests" + os.sep not in s)


def cxx_std_flag():
    """C++17 as before for torch < 2.14; torch 2.14's headers need C++20 (std::strong_ordering,
    concepts), which is also what torch.utils.cpp_extension itself defaults to."""
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    return "-std=c++17" if (major, minor) < (2, 14) else "-std=c++20"


def cuda_sources():
    sources = glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True)
    return sorted(s for s in sources if os.sep + "tests" + os.sep not in s)


def string_macro(name, value):
    """-DNAME="value": torch's build quotes every flag for the shell itself."""
    return f'-D{name}="{value}"'


def openmp_flags():
    """-fopenmp when torch's intra-op thread pool is OpenMP (Linux builds).

    at::parallel_for is a header template: compiled without _OPENMP it runs the whole range on
    the calling thread, so without this flag every kernel would ignore torch.set_num_threads.
    The OpenMP runtime itself is the one torch already loaded (no link flag, so no second one).
    """
    info = torch.__config__.parallel_info()
    if sys.platform == "darwin" or "OpenMP" not in info or "OpenMP not found" in info:
        return []
    return ["-fopenmp", "-DAT_PARALLEL_OPENMP"]


def sanitizer_flags():
    """SEPCONV_SANITIZE=address or address,undefined: a sanitizer build of the C++ code for
    tools/run_sanitized_tests.sh (a test build: -O1 -g, and Python must start with the ASan
    runtime preloaded, as that script does). Empty or unset: none."""
    value = os.environ.get("SEPCONV_SANITIZE", "").strip()
    if not value:
        return []
    kinds = value.split(",")
    if "address" not in kinds or not set(kinds) <= {"address", "undefined"}:
        raise SystemExit(f"SEPCONV_SANITIZE={value!r}: expected 'address' or 'address,undefined'")
    print(f"sepconv_ext: sanitizer build (-fsanitize={value}), for tests only")
    return ["-O1", "-g", f"-fsanitize={value}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def extension():
    # No -march=native: SIMD code is selected per file and at run time (csrc/cpu/dispatch.cpp),
    # so one build runs on any CPU of its architecture.
    sanitize = sanitizer_flags()
    cxx_flags = ["-O3", cxx_std_flag(), "-fvisibility=hidden"] + openmp_flags() + sanitize
    include_dirs = [os.path.join(ROOT, "csrc")]
    if not WITH_CUDA:
        return CppExtension(
            name="sepconv_ext._C",
            sources=cpp_sources(),
            include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=sanitize,
        )
    archs = cuda_arch_list()
    print(
        f"sepconv_ext: building the CUDA kernels with CUDA_HOME={CUDA_HOME} for TORCH_CUDA_ARCH_LIST={';'.join(archs)}"
    )
    cxx_flags += ["-DSEPCONV_WITH_CUDA", string_macro("SEPCONV_CUDA_ARCHS", ",".join(archs))]
    nvcc_flags = ["-O3", cxx_std_flag(), "-DSEPCONV_WITH_CUDA", "-lineinfo"]
    return CUDAExtension(
        name="sepconv_ext._C",
        sources=cpp_sources() + cuda_sources(),
        include_dirs=include_dirs,
        extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
        extra_link_args=sanitize,
    )


setup(
    name="sepconv_ext",
    version="0.1.0",
    description="Depthwise, pointwise and separable 2-D convolution operators for PyTorch",
    packages=find_packages(include=["sepconv_ext", "sepconv_ext.*"]),
    ext_modules=[extension()] if torch is not None else [],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)} if torch is not None else {},
    python_requires=">=3.9",
    # The compiled extension runs only with the torch release it was built against.
    install_requires=[f"torch=={torch_release(torch.__version__)}" if torch is not None else "torch>=2.4"],
    entry_points={"console_scripts": ["sepconv-ext = sepconv_ext.__main__:main"]},
    zip_safe=False,
)
