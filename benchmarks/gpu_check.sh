#!/usr/bin/env bash
# The prepared GPU check for a lent GPU machine (device tool: torch 2.11 + nvcc 13.0, no
# internet). Run from the repository root:   bash benchmarks/gpu_check.sh
# 1. builds the extension in place for the local GPU's arch only (pip -e, against the torch there),
# 2. runs tests/test_cuda.py (and the registration test), 3. runs benchmarks/bench_cuda.py,
# 4. benchmarks/cuda_path_probes.py (both sides of the CUDA ops' implementation choices), and
# the host CPU's own check (often the only real AVX-512 a session gets): the torch-free kernel
# tests natively (plain and under ASan/UBSan), the per-ISA pytest cases and the fuzz tests, with
# the CPU's model and flags recorded in cpu.txt.
# GPU_CHECK_BENCH=0 skips step 3 (a short verification run).
# Everything lands under $OUT (or ./gpu_check_out): build.log, tests.log, junit.xml, bench_cuda.md,
# bench_cuda.json, path_probes.md, env.txt, cpu.txt, cpu_tests.log. Each stage has its own time
# limit so the whole stays under 9.5 minutes: build <= 180 s, tests <= 140 s, CPU <= 120 s,
# benchmark <= 80 s (new shapes stop at 50 s), probes <= 30 s: <= 550 s + setup. Seen on an
# H100: 60 + 40 + (CPU stage not run yet) + 45 + ~15 s.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
t0=$(date +%s)
stamp() { echo "[gpu_check +$(( $(date +%s) - t0 ))s] $*"; }

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  command -v nvcc && nvcc --version | tail -2
  nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# Local GPU only (e.g. 9.0 on an H100/H200): one arch compiles fastest.
arch=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
export TORCH_CUDA_ARCH_LIST="$arch"
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
stamp "building for sm_${arch/./} (CUDA_HOME=${CUDA_HOME:-?}, MAX_JOBS=$MAX_JOBS)"
if ! timeout 180 "$PY" -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1; then
  stamp "BUILD FAILED"; tail -40 "$OUT/build.log"; exit 1
fi
stamp "built"
"$PY" -c "import sepconv_ext as sc; print(sc.backend_info())" | tee -a "$OUT/env.txt"

xdist=()
"$PY" -c "import xdist" 2>/dev/null && xdist=(-n 8)
stamp "tests/test_cuda.py ${xdist[*]}"
timeout 140 "$PY" -m pytest -q -rs "${xdist[@]}" tests/test_cuda.py --junitxml="$OUT/junit.xml" \
  > "$OUT/tests.log" 2>&1
test_rc=$?
tail -25 "$OUT/tests.log"
stamp "tests rc=$test_rc"

# The host CPU: which one, which ISAs the extension runs there, and their tests against scalar.
{
  lscpu
  echo "x86 SIMD flags: $(grep -o -w -E 'avx512[a-z_0-9]*|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  "$PY" -c "import sepconv_ext as sc; i = sc.backend_info(); print('cpu_isas', i['cpu_isas'], 'default', i['cpu_isa'])"
} > "$OUT/cpu.txt" 2>&1
grep -E "Model name|SIMD flags|cpu_isas" "$OUT/cpu.txt"
stamp "CPU: kernel tests (native, sanitizers), per-ISA pytest cases, fuzz"
timeout 60 "$PY" -m pytest -q -rs "${xdist[@]}" tests/test_cpu_kernels.py -k native > "$OUT/cpu_tests.log" 2>&1
kernel_rc=$?
timeout 60 "$PY" -m pytest -q -rs "${xdist[@]}" tests/test_differential.py -k "every_isa or fused" \
  tests/test_fuzz.py >> "$OUT/cpu_tests.log" 2>&1
isa_rc=$?
grep -E "passed|failed|error" "$OUT/cpu_tests.log" | tail -4
stamp "CPU tests rc=$kernel_rc (kernel tests), $isa_rc (ISA pytest cases, fuzz)"
test_rc=$(( test_rc || kernel_rc || isa_rc ))

if [ "${GPU_CHECK_BENCH:-1}" = 0 ]; then  # a short verification run: build, tests, probes
  timeout 30 "$PY" benchmarks/cuda_path_probes.py > "$OUT/path_probes.md" 2>&1
  cat "$OUT/path_probes.md"
  stamp "done (no benchmark: GPU_CHECK_BENCH=0)"
  exit "$test_rc"
fi
stamp "benchmark"
timeout 80 "$PY" benchmarks/bench_cuda.py --out "$OUT" --reps 10 --budget-s 50 > "$OUT/bench.log" 2>&1
bench_rc=$?
tail -70 "$OUT/bench.log"
stamp "benchmark rc=$bench_rc"
timeout 30 "$PY" benchmarks/cuda_path_probes.py > "$OUT/path_probes.md" 2>&1
cat "$OUT/path_probes.md"
stamp "done"
[ "$test_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
