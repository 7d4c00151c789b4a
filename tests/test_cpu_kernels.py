"""The torch-free microkernel tests (csrc/cpu/tests/): every SIMD ISA against the portable kernels.

Built with the system compilers, natively for every ISA this CPU runs, cross-built for AArch64
and run under qemu for NEON, and built once more with the AVX-512 kernels compiled against SIMDe
(portable implementations of the x86 intrinsics), so that they run on CPUs without AVX-512 too.
The native and SIMDe builds run a second time under AddressSanitizer and
UndefinedBehaviorSanitizer: any finding fails the test. CI installs the cross toolchain and SIMDe
(pip cmeel-simde) and sets SEPCONV_REQUIRE_NEON=1, SEPCONV_REQUIRE_SIMDE=1 and
SEPCONV_REQUIRE_SANITIZERS=1, so there no run can be skipped silently.
"""

import functools
import glob
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile

import pytest

import sepconv_ext as sc

CPU_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc", "cpu")
TESTS = sorted(glob.glob(os.path.join(CPU_DIR, "tests", "test_*_kernels.cpp")))
KERNELS = sorted(glob.glob(os.path.join(CPU_DIR, "*.cpp")))
TEST_IDS = [os.path.basename(t) for t in TESTS]
# Tests of the kernels' support code (the scratch arena), not of an ISA: native and sanitized.
SUPPORT_TESTS = sorted(set(glob.glob(os.path.join(CPU_DIR, "tests", "test_*.cpp"))) - set(TESTS))
SUPPORT_IDS = [os.path.basename(t) for t in SUPPORT_TESTS]

# -O1 keeps the sanitizers' reports readable and the build short; halting on the first report
# (-fno-sanitize-recover, halt_on_error) makes any finding a failed run.
SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:detect_leaks=1:strict_string_checks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
# A sanitizer that reports exits non-zero; these lines in its output also count as a finding.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def host_cxx():
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    return cxx


def build_and_run(cxx, flags, src, exe, *, runner=(), env=None, timeout=600):
    """Compile the kernels and one test source with `flags`, run the binary (under `runner`, e.g.
    qemu), and return its stdout after checking it exited 0 with no sanitizer report."""
    build = subprocess.run(
        [cxx, "-std=c++17", *flags, "-I", CPU_DIR, "-o", exe, *KERNELS, src], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run(
        [*runner, exe],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )
    report = run.stdout[-4000:] + run.stderr[-4000:]
    assert run.returncode == 0, report
    assert not any(mark in run.stderr for mark in SANITIZER_MARKS), report
    assert "FAILURES" not in run.stdout, report
    return run.stdout


@functools.lru_cache(maxsize=None)
def sanitizers_missing(cxx):
    """None if `cxx` builds and runs a program under ASan+UBSan here, else why not."""
    tmp = tempfile.mkdtemp()
    src, exe = os.path.join(tmp, "probe.cpp"), os.path.join(tmp, "probe")
    with open(src, "w") as f:
        f.write("#include <vector>\nint main() { std::vector<int> v(4); return v[3]; }\n")
    build = subprocess.run([cxx, *SANITIZE, "-o", exe, src], capture_output=True, text=True)
    if build.returncode != 0:
        return f"{cxx} cannot build with {' '.join(SANITIZE)}: {build.stderr[-300:]}"
    run = subprocess.run([exe], capture_output=True, text=True, env={**os.environ, **SANITIZER_ENV})
    shutil.rmtree(tmp, ignore_errors=True)
    return None if run.returncode == 0 else f"a sanitized program does not run here: {run.stderr[-300:]}"


def sanitized_cxx():
    cxx = host_cxx()
    missing = sanitizers_missing(cxx)
    if missing is not None:
        if os.environ.get("SEPCONV_REQUIRE_SANITIZERS") == "1":
            pytest.fail(f"SEPCONV_REQUIRE_SANITIZERS=1 but {missing}")
        pytest.skip(missing)
    return cxx


def check_every_native_isa_ran(stdout):
    for isa in sc.backend_info()["cpu_isas"]:
        assert f"{isa} " in stdout, stdout


@pytest.mark.parametrize("src", TESTS, ids=TEST_IDS)
def test_native_isas_match_scalar(src, tmp_path):
    out = build_and_run(host_cxx(), ["-O2"], src, str(tmp_path / "kernel_test"))
    check_every_native_isa_ran(out)


@pytest.mark.parametrize("src", TESTS, ids=TEST_IDS)
def test_native_isas_under_sanitizers(src, tmp_path):
    out = build_and_run(sanitized_cxx(), SANITIZE, src, str(tmp_path / "kernel_test_asan"), env=SANITIZER_ENV)
    check_every_native_isa_ran(out)


@pytest.mark.parametrize("src", SUPPORT_TESTS, ids=SUPPORT_IDS)
def test_support_code(src, tmp_path):
    assert ": ok" in build_and_run(host_cxx(), ["-O2"], src, str(tmp_path / "support_test"))


@pytest.mark.parametrize("src", SUPPORT_TESTS, ids=SUPPORT_IDS)
def test_support_code_under_sanitizers(src, tmp_path):
    out = build_and_run(sanitized_cxx(), SANITIZE, src, str(tmp_path / "support_test_asan"), env=SANITIZER_ENV)
    assert ": ok" in out


@pytest.mark.parametrize("src", TESTS, ids=TEST_IDS)
def test_neon_matches_scalar_under_qemu(src, tmp_path):
    cxx, qemu = shutil.which("aarch64-linux-gnu-g++"), shutil.which("qemu-aarch64")
    if cxx is None or qemu is None:
        if os.environ.get("SEPCONV_REQUIRE_NEON") == "1":
            pytest.fail("SEPCONV_REQUIRE_NEON=1 but aarch64-linux-gnu-g++ or qemu-aarch64 is missing")
        pytest.skip(
            "NEON test needs aarch64-linux-gnu-g++ and qemu-aarch64 (apt-get install g++-aarch64-linux-gnu qemu-user)"
        )
    out = build_and_run(
        cxx,
        ["-O2", "-static"],
        src,
        str(tmp_path / "kernel_test_aarch64"),
        runner=(qemu, "-L", "/usr/aarch64-linux-gnu"),
    )
    assert "neon " in out, out


def simde_include_dir():
    """The include directory holding simde/x86/avx512.h: $SEPCONV_SIMDE_INCLUDE, else where pip's
    cmeel-simde puts it (site-packages/cmeel.prefix/include), else None."""
    env = os.environ.get("SEPCONV_SIMDE_INCLUDE")
    roots = [env] if env else []
    sites = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    roots += [os.path.join(p, "cmeel.prefix", "include") for p in sites]
    return next((r for r in roots if os.path.isfile(os.path.join(r, "simde", "x86", "avx512.h"))), None)


def simde_flags():
    """Compiler flags for the AVX-512 kernels over SIMDe, or a skip (a failure under
    SEPCONV_REQUIRE_SIMDE=1) where it cannot be built."""
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.skip("needs an x86-64 Linux machine")
    include = simde_include_dir()
    if include is None:
        if os.environ.get("SEPCONV_REQUIRE_SIMDE") == "1":
            pytest.fail("SEPCONV_REQUIRE_SIMDE=1 but SIMDe is not installed (pip install cmeel-simde)")
        pytest.skip("SIMDe not found: pip install cmeel-simde, or set SEPCONV_SIMDE_INCLUDE")
    return ["-Wno-psabi", "-DSEPCONV_AVX512_VIA_SIMDE", "-I", include]


def check_simde_run(stdout, exe):
    assert "avx512 " in stdout, stdout
    objdump = shutil.which("objdump")
    if objdump is not None:  # portable code only: it would run on a CPU without AVX-512
        asm = subprocess.run([objdump, "-d", exe], capture_output=True, text=True).stdout
        assert "%zmm" not in asm, "the SIMDe build contains AVX-512 instructions"


@pytest.mark.parametrize("src", TESTS, ids=TEST_IDS)
def test_avx512_via_simde_matches_scalar(src, tmp_path):
    """The AVX-512 kernels (16-lane transposes, 9-15-lane masks, channel blocks of 16) on any
    x86-64 CPU: vec_avx512.h over SIMDe, with lane-exact masked loads and stores
    (csrc/cpu/tests/simde_avx512.h) and the AVX-512 dispatch row forced on."""
    flags, cxx, exe = simde_flags(), host_cxx(), str(tmp_path / "kernel_test_simde")
    check_simde_run(build_and_run(cxx, ["-O2", *flags], src, exe), exe)


@pytest.mark.parametrize("src", TESTS, ids=TEST_IDS)
def test_avx512_via_simde_under_sanitizers(src, tmp_path):
    flags, cxx, exe = simde_flags(), sanitized_cxx(), str(tmp_path / "kernel_test_simde_asan")
    check_simde_run(build_and_run(cxx, [*SANITIZE, *flags], src, exe, env=SANITIZER_ENV), exe)
