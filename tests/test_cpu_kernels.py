"""The torch-free microkernel tests (csrc/cpu/tests/): every SIMD ISA against the portable kernels.

Built with the system compilers, natively for every ISA this CPU runs, and cross-built for
AArch64 and run under qemu for NEON. CI installs the cross toolchain and sets
SEPCONV_REQUIRE_NEON=1, so there the NEON run cannot be skipped silently.
"""
import glob
import os
import shutil
import subprocess

import pytest

import sepconv_ext as sc

CPU_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc", "cpu")
TESTS = sorted(glob.glob(os.path.join(CPU_DIR, "tests", "test_*.cpp")))
KERNELS = sorted(glob.glob(os.path.join(CPU_DIR, "*.cpp")))


@pytest.mark.parametrize("src", TESTS, ids=[os.path.basename(t) for t in TESTS])
def test_native_isas_match_scalar(src, tmp_path):
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    exe = str(tmp_path / "kernel_test")
    build = subprocess.run([cxx, "-O2", "-std=c++17", "-I", CPU_DIR, "-o", exe, *KERNELS, src],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([exe], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # Every ISA the extension can use here was exercised.
    for isa in sc.backend_info()["cpu_isas"]:
        assert f"{isa} " in run.stdout, run.stdout


@pytest.mark.parametrize("src", TESTS, ids=[os.path.basename(t) for t in TESTS])
def test_neon_matches_scalar_under_qemu(src, tmp_path):
    cxx, qemu = shutil.which("aarch64-linux-gnu-g++"), shutil.which("qemu-aarch64")
    if cxx is None or qemu is None:
        if os.environ.get("SEPCONV_REQUIRE_NEON") == "1":
            pytest.fail("SEPCONV_REQUIRE_NEON=1 but aarch64-linux-gnu-g++ or qemu-aarch64 is missing")
        pytest.skip("NEON test needs aarch64-linux-gnu-g++ and qemu-aarch64 "
                    "(apt-get install g++-aarch64-linux-gnu qemu-user)")
    exe = str(tmp_path / "kernel_test_aarch64")
    build = subprocess.run([cxx, "-O2", "-std=c++17", "-static", "-I", CPU_DIR, "-o", exe,
                            *KERNELS, src], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([qemu, "-L", "/usr/aarch64-linux-gnu", exe], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "neon " in run.stdout, run.stdout
