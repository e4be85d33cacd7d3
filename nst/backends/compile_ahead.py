"""Numba's first compilation, ahead of a run and in parallel.

A kernel compiles when first called, and the first run on a machine calls them one after another,
on one core: 36–40 s on a 2-core Zen 3 before its first evaluation ends. Each kernel saves what it
compiled in Numba's cache, which any later process loads (about 2 s for all of them). So when a
kernel a default run uses has nothing cached (`cold`), `compile_ahead` runs the numba backend's
ops once on tiny inputs in GROUPS, each group in a fresh process of its own, as many at once as
there are cores: the kernels compile side by side and are saved, and the run loads them. The ops
are called through the backend's own table (CHOSEN versions, the same wrappers), so the types the
kernels see, and so their compiled signatures, are a run's. A group that fails to compile is left
to compile when the run calls it, as before. On those 2 cores the first run's compiling takes 26 s
(bench/RESULTS.md, "The twenty-third session on #17"); one core compiles as before.
"""
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _conv(in_channels, side):
    # a layer with `in_channels` inputs (the version CHOSEN for it), forward and backward
    from nst.backends.numba_backend import chosen, prepare_weights
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, in_channels, 3, 3)).astype(np.float32)
    layer, b = prepare_weights(w, np.zeros(8, np.float32))
    x = rng.standard_normal((in_channels, side, side)).astype(np.float32)
    a = chosen("conv3x3_relu", in_channels)(x, layer.weights, b)
    chosen("conv3x3_relu_backward_input", in_channels)(a, a, layer.weights)


def _max_pools():
    # the max-pool forward and backward, on rows narrower and wider than the backward packs
    from nst.backends.numba_backend import chosen
    rng = np.random.default_rng(0)
    for side in (8, 128):
        x = rng.random((2, side, side), np.float32)
        chosen("maxpool2x2_backward")(chosen("maxpool2x2")(x), x)


def _losses():
    # the Gram, style, content and smoothness losses
    from nst.backends.numba_backend import chosen
    rng = np.random.default_rng(0)
    a = rng.random((8, 6, 6), np.float32)
    chosen("style_loss_and_grad")(a, chosen("gram")(a))
    chosen("content_loss_and_grad")(a, a + 1)
    chosen("tv_loss_and_grad")(rng.random((6, 6, 3), np.float32) * 255)


# the compile groups, each 4–12 s alone on the 2-core Zen 3 (a fresh process's own start included)
GROUPS = {
    "winograd": lambda: _conv(256, 12),
    "first layer": lambda: _conv(3, 12),
    "winograd fused per thread": lambda: _conv(64, 12),
    "max pools": _max_pools,
    "losses": _losses,
}

# the kernels a default run calls, by module (tests/test_compile_ahead.py checks a run's against it)
KERNELS = {
    "conv3x3_forward": ("_pad_flat", "_flat_cols", "_epilogue", "_direct", "_wino4_in", "_wino4_out",
                        "_wino4_in_one_thread", "_wino4_out_one_thread"),
    "maxpool2x2": ("_maxpool_fwd", "_maxpool_bwd_rows", "_maxpool_bwd_packed"),
    "gram_style_loss": ("_diff_scale", "_scale"),
    "content_loss": ("_content",),
    "tv_loss": ("_tv",),
}


GROUP_TIMEOUT_S = 600      # a group's process is killed after this (each takes 4–12 s here)


def cold():
    # -> True when a kernel of KERNELS has nothing cached for its current source; False when all do,
    # or when the cache cannot be looked at (another Numba's internals: the run compiles as it goes)
    import importlib
    try:
        for module, names in KERNELS.items():
            m = importlib.import_module(f"nst.kernels.{module}")
            if any(not getattr(m, n)._cache._cache_file._load_index() for n in names):   # {}: missing or stale
                return True
    except (AttributeError, OSError):
        return False
    return False


def compile_group(name):
    # run one group's ops here (a process compile_ahead started)
    GROUPS[name]()


def compile_ahead(processes=None, log=None):
    # -> the groups compiled (none when nothing is cold): each in a fresh `python -c` process (no
    # fork of this one's threads, no import of the caller's __main__), `processes` at once (default:
    # the cores this process may use); log(message) says it is happening
    if not processes:
        processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if processes < 2 or not cold():            # one core: the run's own compiling, one kernel after another, is
        return []                              # as fast (no process to start)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}

    def one(name):
        code = f"from nst.backends.compile_ahead import compile_group; compile_group({name!r})"
        try:
            done = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=GROUP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):              # no process, or a hung one: killed
            return None
        return name if done.returncode == 0 else None
    at_once = min(processes, len(GROUPS))
    if log:
        log(f"nst: compiling the CPU kernels for this machine, once ({at_once} processes at a time)")
    with ThreadPoolExecutor(at_once) as pool:
        return [n for n in pool.map(one, GROUPS) if n]


_LOOKED, _LOOKING = [], threading.Lock()


def compile_ahead_once(log=None):
    # compile_ahead the first time a process asks (get_backend("numba"): threads of a Dask worker may
    # ask at once, and wait for the first), nothing after; log: default the "nst" logger
    from nst.library import log_to_logger
    with _LOOKING:
        if not _LOOKED:
            _LOOKED.append(compile_ahead(log=log or log_to_logger))
