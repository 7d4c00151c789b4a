"""The torch-free microkernel tests (csrc/cpu/tests/): every SIMD ISA against the portable kernels.

Built with the system compilers, natively for every ISA this CPU runs, cross-built for AArch64
and run under qemu for NEON, and built once more with the AVX-512 kernels compiled against SIMDe
(portable implementations of the x86 intrinsics), so that they run on CPUs without AVX-512 too.
CI installs the cross toolchain and SIMDe (pip cmeel-simde) and sets SEPCONV_REQUIRE_NEON=1 and
SEPCONV_REQUIRE_SIMDE=1, so there neither run can be skipped silently.
"""
import glob
import os
import shutil
import site
import subprocess
import sys
import sysconfig

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


def simde_include_dir():
    """The include directory holding simde/x86/avx512.h: $SEPCONV_SIMDE_INCLUDE, else where pip's
    cmeel-simde puts it (site-packages/cmeel.prefix/include), else None."""
    env = os.environ.get("SEPCONV_SIMDE_INCLUDE")
    roots = [env] if env else []
    sites = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    roots += [os.path.join(p, "cmeel.prefix", "include") for p in sites]
    return next((r for r in roots if os.path.isfile(os.path.join(r, "simde", "x86", "avx512.h"))), None)


@pytest.mark.parametrize("src", TESTS, ids=[os.path.basename(t) for t in TESTS])
def test_avx512_via_simde_matches_scalar(src, tmp_path):
    """The AVX-512 kernels (16-lane transposes, 9-15-lane masks, channel blocks of 16) on any
    x86-64 CPU: vec_avx512.h over SIMDe, with lane-exact masked loads and stores
    (csrc/cpu/tests/simde_avx512.h) and the AVX-512 dispatch row forced on."""
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None or not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.skip("needs an x86-64 Linux machine with a C++ compiler")
    include = simde_include_dir()
    if include is None:
        if os.environ.get("SEPCONV_REQUIRE_SIMDE") == "1":
            pytest.fail("SEPCONV_REQUIRE_SIMDE=1 but SIMDe is not installed (pip install cmeel-simde)")
        pytest.skip("SIMDe not found: pip install cmeel-simde, or set SEPCONV_SIMDE_INCLUDE")
    exe = str(tmp_path / "kernel_test_simde")
    build = subprocess.run([cxx, "-O2", "-std=c++17", "-Wno-psabi", "-DSEPCONV_AVX512_VIA_SIMDE",
                            "-I", CPU_DIR, "-I", include, "-o", exe, *KERNELS, src],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    objdump = shutil.which("objdump")
    if objdump is not None:  # portable code only: it would run on a CPU without AVX-512
        asm = subprocess.run([objdump, "-d", exe], capture_output=True, text=True).stdout
        assert "%zmm" not in asm, "the SIMDe build contains AVX-512 instructions"
    run = subprocess.run([exe], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "avx512 " in run.stdout and "FAILURES" not in run.stdout, run.stdout
