#!/usr/bin/env bash
# The GPU check: the CUDA kernel tests, then the benchmark; logs and a markdown table under $OUT.
# Usage (repository root, on a machine with a GPU, CuPy and pytest): bash bench/gpu_check.sh
# Keeps going to the benchmark even when tests fail; exits with the tests' status.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
export OUT PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"

{ nvidia-smi 2>&1 || true; "$PY" -c "import cupy; print('cupy', cupy.__version__)" 2>&1; } > "$OUT/machine.txt"

echo "== tests: $PY -m pytest tests/test_kernels_cuda.py -q"
"$PY" -m pytest tests/test_kernels_cuda.py -q -rs 2>&1 | tee "$OUT/tests.log"
test_rc=${PIPESTATUS[0]}

echo "== benchmark: $PY bench/bench_gpu.py"
timeout 330 "$PY" bench/bench_gpu.py --out "$OUT/bench_gpu.md" 2>&1 | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}

{
    echo "# GPU check"
    echo
    echo "- tests (tests/test_kernels_cuda.py): exit $test_rc — $(tail -n 1 "$OUT/tests.log")"
    echo "- benchmark (bench/bench_gpu.py): exit $bench_rc"
    echo
    cat "$OUT/bench_gpu.md" 2>/dev/null || echo "(no benchmark table: see bench.log)"
} > "$OUT/results.md"

echo
echo "results: $OUT/results.md (tests.log, bench.log, bench_gpu.md, machine.txt beside it)"
exit "$test_rc"
