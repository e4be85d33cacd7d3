"""A whole evaluation with Winograd's batched sgemms handed out one at a time (shipped) against an even split, paired.

nst.kernels.cpu_threads.matmul runs a batch of GEMMs (v5's 36 products M_k = U_k V_k) on our own
threads. Shipped: each thread takes the next GEMM when free, so a thread whose core the host is
also using takes fewer. The alternative, defined here: the batch cut in THREADS even slices, one a
thread (as it was until 2026-12-06). One Objective (bench_conv_choice's: tubingen in the style of
starry_night, SIZE², real weights), evaluated with each split in turn, alternating, paired ratios.
--busy adds a neighbour: another process spinning on one core 20 ms of every 60, as a shared host's
other tenants do; on a quiet host the two splits should tie.

    python bench/bench_gemm_split.py --size 256 --pairs 40
    python bench/bench_gemm_split.py --size 256 --pairs 40 --busy
"""
import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_conv_choice import objectives, paired  # noqa: E402


def even_split(a, b, out):
    # as cpu_threads.matmul, but a batch of whole GEMMs (out[k] = a[k] @ b[k]) is cut in THREADS even
    # slices, one a thread (the alternative)
    from nst.kernels.cpu_threads import MIN_SPLIT, THREADS, _bounds, matmul, on_threads
    if out.ndim != 3 or out.shape[0] < THREADS or out.size < MIN_SPLIT or THREADS == 1:
        return matmul(a, b, out)
    on_threads([lambda s=s, e=e: np.matmul(a[s:e], b[s:e], out=out[s:e]) for s, e in _bounds(out.shape[0], THREADS)])
    return out


def neighbour():
    # spin 20 ms, sleep 40 ms, until killed
    while True:
        t = time.perf_counter()
        while time.perf_counter() - t < 0.02:
            pass
        time.sleep(0.04)


def with_matmul(objective, matmul):
    # objective(x) with nst.kernels.conv3x3_forward's batched matmul replaced by `matmul`
    import nst.kernels.conv3x3_forward as conv

    def evaluate(x):
        shipped, conv.matmul = conv.matmul, matmul
        try:
            return objective(x)
        finally:
            conv.matmul = shipped
    return evaluate


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--busy", action="store_true", help="a neighbour process spinning 20 ms of every 60 on one core")
    a = p.parse_args()
    objective, _, x = objectives(a.size, {})
    objective(x)                                                     # warm-up
    busy = multiprocessing.Process(target=neighbour, daemon=True) if a.busy else None
    if busy:
        busy.start()
    try:
        print(f"{'with' if busy else 'without'} a busy neighbour; shipped = handed out, alternative = even split")
        paired(a.size, a.pairs, objective, with_matmul(objective, even_split), x)
    finally:
        if busy:
            busy.kill()


if __name__ == "__main__":
    main()
