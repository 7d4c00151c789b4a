"""Measure this machine's roofline: float32 FMA peak and memory bandwidth, 1 and 2 threads.

numpy/torch cannot measure either faithfully (their kernels add loads, call overhead and
their own threading), so a small C++ probe is written to a temp dir, compiled with the
system g++ (-O2 -mavx2 -mfma -fopenmp) and run. It prints one JSON line per test with the
seconds of every repetition; the medians are taken here.

Tests:
- fma:  each thread runs 12 independent chains of _mm256_fmadd_ps (8 lanes x 2 flop), enough
        to cover FMA latency x throughput (4 cycles x 2 pipes = 8 chains on Zen/Skylake).
- copy / triad (STREAM kernels, AVX2 loads and ordinary stores): a[i] = b[i] and
        a[i] = b[i] + s * c[i]; bytes counted as STREAM does (copy 8 B, triad 12 B per element,
        write-allocate reads not counted). "dram": arrays of 64 MiB each (>> 32 MiB L3);
        "l3": ~8 MiB in all; "l2": ~384 KiB per thread (L2 is 1 MiB per core here).
- copy_nt: dram copy with non-temporal stores (what a streaming kernel could reach).
With 2 threads each thread works on its own contiguous half (first-touched by itself);
time is wall time from a barrier to the last thread's finish. Repetitions are the outer loop
(every test once per repetition) so that bursts of load from other tenants of a shared VM
spread over all tests; the first repetition is a warm-up and dropped.

Usage:  python benchmarks/roofline.py [--quick] [--json]
From a benchmark:  import roofline; r = roofline.measure(); r["peak_gflops"][1], r["bw_gbs"][2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

PROBE_SRC = r"""
#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// 12 independent accumulator chains; the asm barrier keeps the compiler from folding them.
static float fma_chain(long iters, float seed) {
  __m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_set1_ps(seed + 1), a2 = _mm256_set1_ps(seed + 2),
         a3 = _mm256_set1_ps(seed + 3), a4 = _mm256_set1_ps(seed + 4), a5 = _mm256_set1_ps(seed + 5),
         a6 = _mm256_set1_ps(seed + 6), a7 = _mm256_set1_ps(seed + 7), a8 = _mm256_set1_ps(seed + 8),
         a9 = _mm256_set1_ps(seed + 9), a10 = _mm256_set1_ps(seed + 10), a11 = _mm256_set1_ps(seed + 11);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i) {
    a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c); a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c); a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c); a10 = _mm256_fmadd_ps(a10, m, c); a11 = _mm256_fmadd_ps(a11, m, c);
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),
                          "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

static void k_copy(float* a, const float* b, const float*, long n) {
  for (long i = 0; i < n; i += 8) _mm256_store_ps(a + i, _mm256_load_ps(b + i));
}
static void k_copy_nt(float* a, const float* b, const float*, long n) {
  for (long i = 0; i < n; i += 8) _mm256_stream_ps(a + i, _mm256_load_ps(b + i));
  _mm_sfence();
}
static void k_triad(float* a, const float* b, const float* c, long n) {
  const __m256 s = _mm256_set1_ps(3.0f);
  for (long i = 0; i < n; i += 8)
    _mm256_store_ps(a + i, _mm256_fmadd_ps(_mm256_load_ps(c + i), s, _mm256_load_ps(b + i)));
}

volatile float g_sink;

static void emit(const char* test, const char* level, int threads, double work_per_rep,
                 const char* unit, const std::vector<double>& secs) {
  std::printf("{\"test\": \"%s\", \"level\": \"%s\", \"threads\": %d, \"work\": %.17g, \"unit\": \"%s\", \"secs\": [",
              test, level, threads, work_per_rep, unit);
  for (size_t i = 0; i < secs.size(); ++i) std::printf("%s%.9g", i ? ", " : "", secs[i]);
  std::printf("]}\n");
  std::fflush(stdout);
}

static double time_fma(int threads, long iters) {
  double t0 = 0, t1 = 0;
#pragma omp parallel num_threads(threads)
  {
#pragma omp barrier
#pragma omp master
    t0 = now();
    float v = fma_chain(iters, 1.0f + omp_get_thread_num());
#pragma omp barrier
#pragma omp master
    { t1 = now(); g_sink = v; }
  }
  return t1 - t0;
}

typedef void (*kern_t)(float*, const float*, const float*, long);

static double time_bw(kern_t k, int threads, float** A, float** B, float** C, long per, int inner) {
  double t0 = 0, t1 = 0;
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
#pragma omp barrier
#pragma omp master
    t0 = now();
    for (int j = 0; j < inner; ++j) {
      k(A[t], B[t], C[t], per);
      __asm__ volatile("" ::: "memory");
    }
#pragma omp barrier
#pragma omp master
    t1 = now();
  }
  g_sink = A[0][per - 1];
  return t1 - t0;
}

struct Test {
  const char* test; const char* level; kern_t k; int arrays; long total; int inner;
  std::vector<double> secs;
};

int main(int argc, char** argv) {
  int reps = argc > 1 ? std::atoi(argv[1]) : 7;
  double scale = argc > 2 ? std::atof(argv[2]) : 1.0;   // <1: shorter tests (--quick)
  const long dram = 16L << 20;                          // floats: 64 MiB per array
  const long fma_iters = long(2.0e7 * scale);
  const int l3_inner = std::max(1, int(20 * scale)), l2_inner = std::max(1, int(400 * scale));
  for (int threads = 1; threads <= 2; ++threads) {
    // Each thread first-touches its own slice of three arrays; the smaller levels use a prefix.
    long per_dram = (dram / threads) / 64 * 64;
    std::vector<float*> A(threads), B(threads), C(threads);
#pragma omp parallel num_threads(threads)
    {
      int t = omp_get_thread_num();
      A[t] = (float*)std::aligned_alloc(64, per_dram * sizeof(float));
      B[t] = (float*)std::aligned_alloc(64, per_dram * sizeof(float));
      C[t] = (float*)std::aligned_alloc(64, per_dram * sizeof(float));
      for (long i = 0; i < per_dram; ++i) { A[t][i] = 0.f; B[t][i] = 1.f + (i & 7); C[t][i] = 0.5f; }
    }
    std::vector<Test> tests = {
        {"copy", "dram", k_copy, 2, dram, 1, {}},
        {"triad", "dram", k_triad, 3, dram, 1, {}},
        {"copy_nt", "dram", k_copy_nt, 2, dram, 1, {}},
        {"copy", "l3", k_copy, 2, 1L << 20, l3_inner, {}},                       // 8 MiB in all
        {"triad", "l3", k_triad, 3, (1L << 19) | (1L << 18), l3_inner, {}},     // 9 MiB in all
        {"copy", "l2", k_copy, 2, (48L << 10) * threads, l2_inner, {}},          // 384 KiB/thread
        {"triad", "l2", k_triad, 3, (32L << 10) * threads, l2_inner, {}},        // 384 KiB/thread
    };
    std::vector<double> fma_secs;
    // Repetitions outermost, so a burst of load from other tenants hits every test alike;
    // rep 0 warms clocks, threads and caches and is dropped.
    for (int r = 0; r < reps + 1; ++r) {
      double f = time_fma(threads, fma_iters);
      if (r) fma_secs.push_back(f);
      for (auto& T : tests) {
        long per = (T.total / threads) / 64 * 64;
        double s = time_bw(T.k, threads, A.data(), B.data(), C.data(), per, T.inner);
        if (r) T.secs.push_back(s);
      }
    }
    emit("fma", "core", threads, double(threads) * fma_iters * 12 * 8 * 2, "flop", fma_secs);
    for (auto& T : tests) {
      long per = (T.total / threads) / 64 * 64;
      emit(T.test, T.level, threads, double(T.arrays) * sizeof(float) * per * threads * T.inner, "byte", T.secs);
    }
    for (int t = 0; t < threads; ++t) { std::free(A[t]); std::free(B[t]); std::free(C[t]); }
  }
  return 0;
}
"""


def _compile_probe(tmp: str) -> str:
    src = os.path.join(tmp, "roofline_probe.cpp")
    exe = os.path.join(tmp, "roofline_probe")
    with open(src, "w") as f:
        f.write(PROBE_SRC)
    cxx = os.environ.get("CXX", "g++")
    subprocess.run(
        [cxx, "-O2", "-mavx2", "-mfma", "-fopenmp", "-std=c++17", src, "-o", exe],
        check=True,
        capture_output=True,
        text=True,
    )
    return exe


def _cpu_has_avx2_fma() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
        return "avx2" in flags and "fma" in flags
    except OSError:
        return False


def _run_probe(quick: bool) -> List[dict]:
    reps, scale = (7, 0.5) if quick else (11, 1.0)
    tmp = tempfile.mkdtemp(prefix="sepconv-roofline-")
    try:
        exe = _compile_probe(tmp)
        env = dict(os.environ, OMP_PROC_BIND="spread", OMP_WAIT_POLICY="active")
        out = subprocess.run([exe, str(reps), str(scale)], check=True, capture_output=True, text=True, env=env).stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _torch_fallback(quick: bool) -> List[dict]:
    """Rough numbers when no g++/AVX2 is available: big matmul for FLOP/s, tensor copy for BW."""
    import torch

    rows = []
    reps = 3 if quick else 7
    for threads in (1, 2):
        torch.set_num_threads(threads)
        a = torch.randn(1024, 1024)
        secs = []
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            torch.mm(a, a)
            secs.append(time.perf_counter() - t0)
        rows.append(dict(test="fma", level="core", threads=threads, work=2 * 1024**3, unit="flop", secs=secs[1:]))
        for level, n in (("dram", 16 << 20), ("l2", 48 << 10)):
            src, dst = torch.ones(n), torch.empty(n)
            inner = 1 if level == "dram" else 200
            secs = []
            for _ in range(reps + 1):
                t0 = time.perf_counter()
                for _ in range(inner):
                    dst.copy_(src)
                secs.append(time.perf_counter() - t0)
            rows.append(
                dict(test="copy", level=level, threads=threads, work=8.0 * n * inner, unit="byte", secs=secs[1:])
            )
    return rows


def measure(quick: bool = False, verbose: bool = True) -> Dict:
    """Measure the roofline; returns a dict (all rates are medians over repetitions):

    peak_gflops[t]        FMA peak, GFLOP/s, t threads (t = 1, 2)
    bw_gbs[t]             DRAM bandwidth for the roofline: max(copy, triad) with ordinary stores
    l2_bw_gbs[t]          L2-resident bandwidth, max(copy, triad)
    l3_bw_gbs[t]          L3-resident bandwidth, max(copy, triad)
    peak_gflops_max[t], bw_gbs_max[t]   the best single repetition (the machine when quiet)
    detail[(test, level, t)]  every test's median rate (GFLOP/s or GB/s) and spread
    source                "g++ probe" or "torch fallback"
    """
    t0 = time.perf_counter()
    if shutil.which(os.environ.get("CXX", "g++")) and _cpu_has_avx2_fma():
        try:
            rows, source = _run_probe(quick), "g++ AVX2 probe"
        except (subprocess.CalledProcessError, OSError) as e:
            print(f"roofline: probe failed ({e}); using torch fallback", file=sys.stderr)
            rows, source = _torch_fallback(quick), "torch fallback (rough)"
    else:
        rows, source = _torch_fallback(quick), "torch fallback (rough)"

    detail = {}
    for r in rows:
        rates = [r["work"] / s / 1e9 for s in r["secs"]]
        detail[(r["test"], r["level"], r["threads"])] = {
            "median": statistics.median(rates),
            "min": min(rates),
            "max": max(rates),
            "unit": "GFLOP/s" if r["unit"] == "flop" else "GB/s",
        }

    def best(level: str, t: int, stat: str = "median") -> float:
        vals = [detail[(k, level, t)][stat] for k in ("copy", "triad") if (k, level, t) in detail]
        return max(vals) if vals else float("nan")

    threads = sorted({k[2] for k in detail})
    res = {
        "source": source,
        "peak_gflops": {t: detail[("fma", "core", t)]["median"] for t in threads},
        "bw_gbs": {t: best("dram", t) for t in threads},
        "l3_bw_gbs": {t: best("l3", t) for t in threads},
        "l2_bw_gbs": {t: best("l2", t) for t in threads},
        # best single repetition: what the machine gives when the other tenants are quiet
        "peak_gflops_max": {t: detail[("fma", "core", t)]["max"] for t in threads},
        "bw_gbs_max": {t: best("dram", t, "max") for t in threads},
        "detail": detail,
        "seconds": time.perf_counter() - t0,
    }
    if verbose:
        print(format_summary(res))
    return res


def format_summary(res: Dict) -> str:
    lines = [f"roofline ({res['source']}, medians, {res['seconds']:.1f} s):"]
    for (test, level, t), d in sorted(res["detail"].items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
        lines.append(
            f"  {t} thr  {test:<7} {level:<5} {d['median']:8.1f} {d['unit']:<7} "
            f"(min {d['min']:.1f}, max {d['max']:.1f})"
        )
    for t in sorted(res["peak_gflops"]):
        lines.append(
            f"  => {t} thread(s): peak {res['peak_gflops'][t]:.1f} GFLOP/s, DRAM {res['bw_gbs'][t]:.1f} GB/s, "
            f"L3 {res['l3_bw_gbs'][t]:.1f} GB/s, L2 {res['l2_bw_gbs'][t]:.1f} GB/s, "
            f"ridge {res['peak_gflops'][t] / res['bw_gbs'][t]:.1f} flop/byte (DRAM); "
            f"best rep: peak {res['peak_gflops_max'][t]:.1f}, DRAM {res['bw_gbs_max'][t]:.1f}"
        )
    return "\n".join(lines)


def bound_gflops(res: Dict, threads: int, flop_per_byte: float, level: str = "dram") -> float:
    """Roofline bound in GFLOP/s: min(peak, bandwidth * arithmetic intensity)."""
    bw = {"dram": res["bw_gbs"], "l3": res["l3_bw_gbs"], "l2": res["l2_bw_gbs"]}[level][threads]
    return min(res["peak_gflops"][threads], bw * flop_per_byte)


def to_jsonable(res: Dict) -> Dict:
    out = {k: v for k, v in res.items() if k != "detail"}
    out["detail"] = {f"{t}:{lvl}:{th}": v for (t, lvl, th), v in res["detail"].items()}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter repetitions")
    ap.add_argument("--json", action="store_true", help="also print the dict as JSON")
    args = ap.parse_args()
    r = measure(quick=args.quick)
    if args.json:
        print(json.dumps(to_jsonable(r), indent=1))
