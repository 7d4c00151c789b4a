#!/usr/bin/env bash
# Part of the pytest suite against an AddressSanitizer + UndefinedBehaviorSanitizer build of the
# extension: every op, its gradients and its error paths run with every out-of-bounds access,
# use-after-free and undefined behaviour in our C++ code reported (and failing the run).
#
#   bash tools/run_sanitized_tests.sh                 # the subset below
#   bash tools/run_sanitized_tests.sh tests/test_x.py -k y   # any pytest arguments instead
#
# Uses the `python` on PATH (it needs torch, pytest, numpy, hypothesis). Builds out of tree, CPU
# only, in $SEPCONV_ASAN_BUILD (default ~/.cache/sepconv_ext-asan-build; a rebuild compiles only
# what changed), then runs pytest there with the ASan runtime preloaded: Python and torch are
# not instrumented, so the runtime must be loaded before them. Leak detection is off (the interpreter's own allocations would be reported at exit).
# pytest captures only Python's sys.stdout/stderr (--capture=sys): a report ends the process,
# and written to a captured file descriptor it would be lost with it.
# Measured on a 2-core AMD EPYC: build ~4 min cold, tests below ~4 min.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${SEPCONV_ASAN_BUILD:-$HOME/.cache/sepconv_ext-asan-build}"
# Mirror the sources into $build: a file that differs is copied with a new mtime (so ninja
# rebuilds it even where the cached object is newer than the checkout's file), one that is gone
# from the checkout is deleted there (setup.py compiles every .cpp it finds).
sources() { find setup.py csrc sepconv_ext tests -type f ! -name '_C*.so' ! -name _build_info.py \
  ! -path '*/__pycache__/*' | sort; }
mkdir -p "$build"
sources > "$build/.sources"
while read -r f; do
  cmp -s "$f" "$build/$f" || { mkdir -p "$build/$(dirname "$f")" && cp "$f" "$build/$f"; }
done < "$build/.sources"
cd "$build"
sources | comm -23 - .sources | xargs -r rm -f
echo "+ SEPCONV_SANITIZE=address,undefined python setup.py build_ext --inplace  (in $build)"
SEPCONV_FORCE_CPU=1 SEPCONV_SANITIZE=address,undefined MAX_JOBS="$(nproc)" \
  python setup.py -q build_ext --inplace > build.log 2>&1 || { tail -60 build.log; exit 1; }

# The ASan runtime, and libstdc++ with it: python does not link libstdc++, and ASan's
# __cxa_throw interceptor finds the real one only if it is loaded at start-up (else the first
# C++ exception, e.g. an op's argument error, aborts with "CHECK failed: asan_interceptors").
preload=""
for lib in libasan.so libstdc++.so; do
  path="$(${CXX:-g++} -print-file-name=$lib)"
  if [ ! -e "$path" ]; then
    echo "no $lib: '${CXX:-g++} -print-file-name=$lib' printed '$path'" >&2
    exit 1
  fi
  preload="$preload $path"
done
if [ "$#" -eq 0 ]; then
  # The whole suite but the tests that build and run other binaries (the kernel tests have
  # their own sanitizer builds; the C++ deployment test its own CMake build), spawn worker
  # processes (distributed) or need 16 GiB (big tensors; ASan's shadow memory on top).
  set -- tests --ignore=tests/test_cpu_kernels.py --ignore=tests/test_cpp_deploy.py \
    --ignore=tests/test_distributed.py --ignore=tests/test_big_tensors.py
fi
echo "+ LD_PRELOAD='${preload# }' python -m pytest -q $*"
LD_PRELOAD="${preload# }" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  python -m pytest -q -p no:cacheprovider --capture=sys "$@"
