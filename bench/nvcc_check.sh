#!/usr/bin/env bash
# Compile every kernels/cuda/*.cu with nvcc for sm_75, sm_80 and sm_90, warnings as errors (no GPU
# needed). sm_75 (Turing) has no TF32 tensor cores: there the WMMA versions compile to a trap
# (gemm_wmma.cuh's NST_WMMA is 0), and everything else must build.
# Usage: bench/nvcc_check.sh   (NVCC=/path/to/nvcc to override). Exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
NVCC="${NVCC:-nvcc}"
command -v "$NVCC" >/dev/null 2>&1 || { echo "nvcc_check: $NVCC not found" >&2; exit 2; }
shopt -s nullglob
files=(kernels/cuda/*.cu)
[ ${#files[@]} -gt 0 ] || { echo "nvcc_check: no kernels/cuda/*.cu" >&2; exit 2; }
ARCHS="${ARCHS:-sm_75 sm_80 sm_90}"
fail=0
for arch in $ARCHS; do
    for f in "${files[@]}"; do
        # --std=c++17 as NVRTC gets it from the launchers; -cubin so ptxas runs too (spills, smem)
        if "$NVCC" -arch="$arch" --std=c++17 -Werror all-warnings -Xcompiler -Wall,-Werror \
                -Xptxas -Werror -cubin -o /dev/null "$f"; then
            echo "ok   $arch $f"
        else
            echo "FAIL $arch $f" >&2
            fail=1
        fi
    done
done
[ $fail -eq 0 ] && echo "nvcc_check: all ${#files[@]} files compile for $ARCHS" || echo "nvcc_check: FAILED" >&2
exit $fail
