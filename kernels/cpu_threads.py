"""Threads for the Numba CPU kernels; imported first by every kernel module here.

The kernels alternate Numba parallel loops (OpenMP threads) with big sgemms. Two thread pools on
the same cores fight:
- GNU OpenMP's default wait policy spins idle workers after each parallel region, stealing the
  cores from the sgemm (an order of magnitude slower; bench/RESULTS.md has the numbers). libgomp
  reads OMP_WAIT_POLICY once, when it is loaded, which Numba does when it starts its thread
  pool. So on import this module starts that pool with OMP_WAIT_POLICY=PASSIVE (idle workers
  sleep) and then puts os.environ back as it was: the user's environment and child processes are
  untouched, and a user's own OMP_WAIT_POLICY wins. (If libgomp was already loaded, e.g. by torch
  imported first, its policy stands.)
- OpenBLAS's own pool busy-waits too, and as soon as anything else runs on the machine the
  two-thread sgemm collapses (bench/RESULTS.md has the numbers). So `matmul` and `gram` run
  single-threaded sgemms / syrks on our own Python threads (NumPy releases the GIL inside BLAS),
  split over the batch or the columns, with OpenBLAS held at one thread for the call
  (threadpoolctl): the same speed on a quiet machine, graceful on a busy one. A numba run holds
  every BLAS library at one thread throughout (`one_blas_thread_for_a_run`, the backend's
  `while_running`): L-BFGS's own products, left to OpenBLAS's two threads, kept one spinning into
  the next evaluation. The limit is process-wide, so the holds are counted: the first sets it, the
  last one out restores it (`_held`).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np
from numba.np.ufunc import parallel as _numba_parallel
from threadpoolctl import OpenBLASController, ThreadpoolController, threadpool_limits


def _start_numba_pool():
    # Numba's OpenMP pool, started with OMP_WAIT_POLICY=PASSIVE unless the user set a policy;
    # os.environ is restored before returning
    launch = getattr(_numba_parallel, "_launch_threads", None)    # Numba's own (private) starter
    user = os.environ.get("OMP_WAIT_POLICY")
    if launch is None or user is not None:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        launch()
    finally:
        del os.environ["OMP_WAIT_POLICY"]


_start_numba_pool()

THREADS = numba.config.NUMBA_NUM_THREADS
MIN_SPLIT = 1 << 16                    # outputs smaller than this run in one call (tests cover both)
_pool = ThreadPoolExecutor(THREADS, thread_name_prefix="nst-sgemm") if THREADS > 1 else None
_blas = ThreadpoolController().select(user_api="blas")   # found once: a search costs ~0.5 ms, a limit ~7 µs


def _held(limit):
    # a context: BLAS at one thread while any thread of the process holds it. The first holder sets
    # the limit (limit() -> a threadpoolctl limiter), the last one out restores the counts, so two
    # runs overlapping in one process (threads of a Dask worker, an API user's threads) cannot
    # leave BLAS at one thread after both have ended, as two limiters restoring out of order would.
    # Neither keeps threadpoolctl's "controlling thread" (OpenBLAS limits set from any other thread
    # are ignored while it holds on), so whichever of our threads comes last can restore.
    with _hold_lock:
        if _hold["count"] == 0:
            _hold["limiter"] = limit()
            OpenBLASController.clear_controlling_thread()
        _hold["count"] += 1
    try:
        yield
    finally:
        with _hold_lock:
            _hold["count"] -= 1
            if _hold["count"] == 0:
                _hold.pop("limiter").restore_original_limits()
                OpenBLASController.clear_controlling_thread()


_hold_lock, _hold = threading.Lock(), {"count": 0}


@contextmanager
def one_blas_thread():
    # a context: the BLAS libraries loaded at import (NumPy's) at one thread, their counts restored after
    yield from _held(lambda: _blas.limit(limits=1))


@contextmanager
def one_blas_thread_for_a_run():
    # a context: every BLAS library loaded by now at one thread (searched afresh, once a run: a
    # library loaded after import, e.g. OpenCV's own OpenBLAS, is held too, unless another run
    # already holds BLAS in this process)
    yield from _held(lambda: threadpool_limits(1, user_api="blas"))


def _bounds(n, parts):
    cuts = [n * k // parts for k in range(parts + 1)]
    return [(s, e) for s, e in zip(cuts, cuts[1:]) if e > s]


def on_threads(jobs):
    # run the callables `jobs` (at most THREADS) at once on our own threads, BLAS at one thread
    # (a single job runs on the calling thread)
    with one_blas_thread():
        if _pool is None or len(jobs) == 1:
            for job in jobs:
                job()
        else:
            for f in [_pool.submit(job) for job in jobs]:
                f.result()


def matmul(a, b, out):
    # out = a @ b (2-d M×K @ K×N, or batched B×M×K @ B×K×N), single-threaded sgemms on THREADS threads
    if _pool is None or out.size < MIN_SPLIT:
        jobs = [lambda: np.matmul(a, b, out=out)]
    elif out.ndim == 3 and out.shape[0] >= THREADS:                # whole GEMMs, handed out
        gemms = iter(range(out.shape[0]))                              # one at a time as each
        jobs = [lambda: _matmuls_from(gemms, a, b, out)] * THREADS     # thread is free
    else:                                                          # column blocks
        jobs = [lambda s=s, e=e: np.matmul(a, b[..., s:e], out=out[..., s:e])
                for s, e in _bounds(out.shape[-1], THREADS)]
    on_threads(jobs)
    return out


def _matmuls_from(gemms, a, b, out):
    # out[k] = a[k] @ b[k] for each k this thread takes from the shared iterator `gemms` (next() is
    # atomic under the GIL): a thread on a core the host is also using takes fewer. Against an even
    # split, whole evaluations 0.95–1.05× (median of the paired medians 0.98; bench/bench_gemm_split.py)
    for k in gemms:
        np.matmul(a[k], b[k], out=out[k])


def gram(f):
    # f C×N -> F Fᵀ (C×C): one syrk when small, else partial Grams of column blocks (a syrk
    # each, NumPy calls syrk for a product with its own transpose) on THREADS threads, summed
    blocks = _bounds(f.shape[1], 1 if _pool is None or f.size < MIN_SPLIT else THREADS) or [(0, 0)]
    parts = [None] * len(blocks)

    def job(k, s, e):
        fc = f[:, s:e]
        parts[k] = fc @ fc.T
    on_threads([lambda k=k, s=s, e=e: job(k, s, e) for k, (s, e) in enumerate(blocks)])
    return parts[0] if len(parts) == 1 else sum(parts)
