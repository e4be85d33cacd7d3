#!/usr/bin/env bash
# Compile every kernels/cuda/*.cu with nvcc for sm_80 and sm_90, warnings as errors (no GPU needed).
# Usage: bench/nvcc_check.sh   (NVCC=/path/to/nvcc to override). Exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
NVCC="${NVCC:-nvcc}"
command -v "$NVCC" >/dev/null 2>&1 || { echo "nvcc_check: $NVCC not found" >&2; exit 2; }
shopt -s nullglob
files=(kernels/cuda/*.cu)
[ ${#files[@]} -gt 0 ] || { echo "nvcc_check: no kernels/cuda/*.cu" >&2; exit 2; }
fail=0
for arch in sm_80 sm_90; do
    for f in "${files[@]}"; do
        # --std=c++17 as NVRTC gets it from the launchers; -cubin so ptxas runs too (spills, smem)
        if "$NVCC" -arch="$arch" --std=c++17 -Werror all-warnings -Xcompiler -Wall,-Werror \
                -Xptxas -Werror -cubin -o /dev/null "$f"; then
            echo "ok   $arch $f"
        else
            echo "FAIL $arch $f" >&2
            fail=1
        fi
        # the fallback the loader builds when NVRTC lacks <mma.h> must compile as well
        if grep -q NST_NO_WMMA "$f" && ! "$NVCC" -arch="$arch" --std=c++17 -DNST_NO_WMMA \
                -Werror all-warnings -Xcompiler -Wall,-Werror -Xptxas -Werror -cubin -o /dev/null "$f"; then
            echo "FAIL $arch -DNST_NO_WMMA $f" >&2
            fail=1
        fi
    done
done
[ $fail -eq 0 ] && echo "nvcc_check: all ${#files[@]} files compile for sm_80 and sm_90" || echo "nvcc_check: FAILED" >&2
exit $fail
