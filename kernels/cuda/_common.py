"""What every launcher in kernels/cuda shares: argument checks, .cu loading, grids, scalar casts.

The checks are pure functions over anything with .dtype/.shape/.flags (NumPy arrays included), so
tests can exercise them on a machine without a GPU; cupy is imported only when a kernel launches.
"""
import functools
import os
import re

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
INT32_MAX = 2**31 - 1          # kernels index with int: every array must stay below this


class KernelArgError(ValueError):
    """A launcher was given an array of the wrong dtype, layout or shape (message names it)."""


def check(name, a, shape=None, ndim=None, dtype=np.float32):
    # -> a.shape;  shape: a tuple whose None entries match any size
    if not (hasattr(a, "dtype") and hasattr(a, "shape") and hasattr(a, "flags")):
        raise KernelArgError(f"{name}: expected an array, got {type(a).__name__}")
    if a.dtype != np.dtype(dtype):
        raise KernelArgError(f"{name}: dtype {a.dtype}, expected {np.dtype(dtype)}")
    if ndim is None and shape is not None:
        ndim = len(shape)
    if ndim is not None and len(a.shape) != ndim:
        raise KernelArgError(f"{name}: {len(a.shape)}-d array of shape {tuple(a.shape)}, expected {ndim}-d")
    if shape is not None and any(s is not None and s != t for s, t in zip(shape, a.shape)):
        want = "×".join("*" if s is None else str(s) for s in shape)
        raise KernelArgError(f"{name}: shape {tuple(a.shape)}, expected {want}")
    if not a.flags.c_contiguous:
        raise KernelArgError(f"{name}: not C-contiguous (pass cupy.ascontiguousarray({name}))")
    check_size(name, int(np.prod(a.shape, dtype=np.int64)))
    if 0 in a.shape:
        raise KernelArgError(f"{name}: empty array of shape {tuple(a.shape)}")
    return tuple(int(s) for s in a.shape)


def check_size(name, n):
    if n > INT32_MAX:
        raise KernelArgError(f"{name}: {n} elements, more than the int32 indexing of the kernels allows")


def check_same(names, arrays):
    # all arrays float32 C-contiguous with the shape of the first -> that shape
    shape = check(names[0], arrays[0])
    for n, a in zip(names[1:], arrays[1:]):
        check(n, a, shape=shape)
    return shape


def cupy():
    import cupy as cp
    return cp


def on_device(**arrays):
    cp = cupy()
    for name, a in arrays.items():
        if not isinstance(a, cp.ndarray):
            raise KernelArgError(f"{name}: a {type(a).__name__}, expected a cupy.ndarray on the device")


def cdiv(a, b):
    return (a + b - 1) // b


def i32(*values):
    return tuple(np.int32(v) for v in values)


def f32(*values):
    return tuple(np.float32(v) for v in values)


def grid1d(n, threads=256, max_blocks=None):
    # blocks for n elements, one per thread (grid-stride kernels may cap the count)
    blocks = max(1, cdiv(n, threads))
    return (min(blocks, max_blocks) if max_blocks else blocks,)


# ---- sources -------------------------------------------------------------------------------
_LOCAL_INCLUDE = re.compile(r'^#include "([\w.]+)"[ \t]*$', re.M)


def cu_path(name):
    return os.path.join(HERE, name)


def source(name, _seen=None):
    # the .cu text with local "x.cuh" includes inlined, so cupy's cache key (the source) covers them
    seen = set() if _seen is None else _seen
    seen.add(name)
    with open(cu_path(name), encoding="utf-8") as f:
        text = f.read().replace("#pragma once\n", "")

    def inline(m):
        return "" if m.group(1) in seen else source(m.group(1), seen)
    return _LOCAL_INCLUDE.sub(inline, text)


def _include_options(text):
    # <mma.h> comes from the CUDA headers; NVRTC needs their folder when the wheel does not add it
    if "<mma.h>" not in text:
        return ()
    candidates = [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"]
    try:
        candidates.insert(0, cupy().cuda.get_cuda_path())
    except Exception:  # noqa: BLE001 - any failure only means one candidate fewer
        pass
    dirs = [os.path.join(c, "include") for c in candidates if c]
    try:
        from cuda.pathfinder import find_nvidia_header_directory
        dirs.insert(0, find_nvidia_header_directory("cudart"))
    except Exception:  # noqa: BLE001
        pass
    for d in dirs:
        if d and os.path.isfile(os.path.join(d, "mma.h")):
            return (f"--include-path={d}",)
    return ()


@functools.lru_cache(maxsize=None)
def module(name):
    # compiled once per process (and cached on disk by cupy). Should NVRTC not find <mma.h>, the
    # file is rebuilt with -DNST_NO_WMMA: the tensor-core versions go, the others still work.
    cp = cupy()
    text = source(name)
    options = ("--std=c++17",) + _include_options(text)
    mod = cp.RawModule(code=text, options=options)
    try:
        mod.compile()
    except cp.cuda.compiler.CompileException as e:
        if "<mma.h>" not in text or "mma.h" not in str(e):
            raise
        import warnings
        warnings.warn(f"{name}: NVRTC cannot include <mma.h>; the WMMA versions are unavailable")
        mod = cp.RawModule(code=text, options=options + ("-DNST_NO_WMMA",))
        mod.compile()
    return mod


def function(name, kernel):
    return module(name).get_function(kernel)
