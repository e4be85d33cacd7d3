"""Freed arrays keep their pages: glibc malloc told not to hand large blocks back to the OS.

Every evaluation allocates the same large arrays (activations, gradients: 64 MiB each at 512² in
block 1) and frees them. By default glibc returns blocks above its mmap threshold (at most 32
MiB) and the free top of the heap (above the trim threshold) to the OS, so the next evaluation
faults every page in again and the kernel zeroes it: system time that grows with the image
(bench/RESULTS.md, "Measurements formerly in code comments", has the numbers). With both
thresholds at LIMIT, blocks up to LIMIT come from the heap and stay mapped between evaluations
(freed blocks serve any shape, which costs less peak memory than a pool of arrays per shape).
One arena for every thread: our sgemm threads' and Numba's threads' temporaries otherwise land in
glibc's per-thread arenas, each keeping its own freed blocks, so the peak grew by whichever thread
had run which piece: 827–923 MiB over twelve identical tiled 768 px runs, 772–807 MiB in one arena
(bench/RESULTS.md, "2026-12-06: one malloc arena").

It is process-wide (mallopt has no scope), so the Numba backend sets it when it loads, once; a
no-op where the C library has no mallopt (musl, macOS). The cost: up to LIMIT of freed memory
stays with the process after a run instead of going back to the OS.
"""
import ctypes
import ctypes.util
import functools

LIMIT = 1 << 30                      # blocks up to 1 GiB (block 1 at 2048² is 1 GiB)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8     # glibc's mallopt parameters


@functools.cache
def keep_freed_pages(limit=LIMIT):
    # -> True when glibc took the settings (once per process), False where there is no mallopt. Call it
    # before threads allocate: a thread keeps the arena it has, and a later one reuses a freed arena
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    settings = ((_M_MMAP_THRESHOLD, int(limit)), (_M_TRIM_THRESHOLD, int(limit)), (_M_ARENA_MAX, 1))
    return all([bool(mallopt(name, value)) for name, value in settings])
