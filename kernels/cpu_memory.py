"""Freed arrays keep their pages, in one heap: glibc malloc told not to hand large blocks back to the OS.

Every evaluation allocates the same large arrays (activations, gradients: 64 MiB each at 512² in
block 1) and frees them. By default glibc returns blocks above its mmap threshold (at most 32
MiB) and the free top of the heap (above the trim threshold) to the OS, so the next evaluation
faults every page in again and the kernel zeroes it: system time that grows with the image
(bench/RESULTS.md, "Measurements formerly in code comments", has the numbers). With both
thresholds at LIMIT, blocks up to LIMIT come from the heap and stay mapped between evaluations
(freed blocks serve any shape, which costs less peak memory than a pool of arrays per shape).
One heap for every thread (`one_heap`): our sgemm threads' and Numba's threads' temporaries, and
the weights a run reads on a thread, otherwise land in glibc's per-thread arenas, each keeping its own
freed blocks, so the peak moved with whichever thread had run which piece: 827–923 MiB over twelve
identical tiled 768 px runs, 761–807 MiB in one arena (bench/RESULTS.md, "2026-12-06: one malloc arena").

Both are process-wide (mallopt has no scope): the Numba backend sets both when it loads, once, and a
run sets one_heap before it starts its weights' thread (nst.run.Run.read_weights_ahead); a no-op where
the C library has no mallopt (musl, macOS). The cost: up to LIMIT of freed memory stays with the
process after a run instead of going back to the OS.
"""
import ctypes
import ctypes.util
import functools

LIMIT = 1 << 30                      # blocks up to 1 GiB (block 1 at 2048² is 1 GiB)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8     # glibc's mallopt parameters


@functools.cache
def _mallopt():
    # glibc's mallopt(param, value) -> nonzero when taken; None where the C library has none
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return None


@functools.cache
def one_heap():
    # every thread's allocations in glibc's main arena -> True when taken (once per process). Call it
    # before threads allocate: a thread keeps the arena it has, and a later one reuses a freed arena
    mallopt = _mallopt()
    return bool(mallopt and mallopt(_M_ARENA_MAX, 1))


@functools.cache
def keep_freed_pages(limit=LIMIT):
    # -> True when glibc took the settings, one_heap's too (once per process), False where there is no mallopt
    mallopt = _mallopt()
    if mallopt is None:
        return False
    kept = bool(mallopt(_M_MMAP_THRESHOLD, int(limit))) and bool(mallopt(_M_TRIM_THRESHOLD, int(limit)))
    return one_heap() and kept
