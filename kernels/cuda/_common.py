"""What every launcher in kernels/cuda shares: argument checks, the device seam, grids, scalar casts.

The checks are pure functions over anything with .dtype/.shape/.flags. The seam, device(**arrays),
looks at the arrays a launcher was given: cupy arrays -> Gpu (cupy.RawModule from the .cu text),
numpy arrays -> Host (the same .cu compiled by g++ against host/cuda_host.h and run on the CPU,
the `cuda-cpu` path). A launcher allocates and launches through the device it gets, so its grid,
block and argument code is the code under test on both; cupy is imported only for cupy arrays.
"""
import functools
import math
import os
import re
import shutil

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
INT32_MAX = 2**31 - 1          # kernels index with int: every array must stay below this


class KernelArgError(ValueError):
    """A launcher was given an array of the wrong dtype, layout or shape (message names it)."""


def check(name, a, shape=None, ndim=None, dtype=np.float32):
    # -> a.shape;  shape: a tuple whose None entries match any size. Runs on every launch: plain
    # attribute reads and tuple tests only (it was ~10 % of a small GPU evaluation's host time).
    try:
        a_dtype, a_shape, contiguous = a.dtype, a.shape, a.flags.c_contiguous
    except AttributeError:
        raise KernelArgError(f"{name}: expected an array, got {type(a).__name__}") from None
    if a_dtype != dtype:
        raise KernelArgError(f"{name}: dtype {a_dtype}, expected {np.dtype(dtype)}")
    if ndim is None and shape is not None:
        ndim = len(shape)
    if ndim is not None and len(a_shape) != ndim:
        raise KernelArgError(f"{name}: {len(a_shape)}-d array of shape {tuple(a_shape)}, expected {ndim}-d")
    if shape is not None and any(s is not None and s != t for s, t in zip(shape, a_shape)):
        want = "×".join("*" if s is None else str(s) for s in shape)
        raise KernelArgError(f"{name}: shape {tuple(a_shape)}, expected {want}")
    if not contiguous:
        raise KernelArgError(f"{name}: not C-contiguous (pass cupy.ascontiguousarray({name}))")
    check_size(name, math.prod(a_shape))
    if 0 in a_shape:
        raise KernelArgError(f"{name}: empty array of shape {tuple(a_shape)}")
    return tuple(a_shape)


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


def _is_cupy(a):
    return type(a).__module__.split(".")[0] == "cupy"


def device(**arrays):
    # -> Gpu() when every array is a cupy.ndarray, Host() when every one is a numpy.ndarray
    kinds = {name: "gpu" if _is_cupy(a) else "host" if isinstance(a, np.ndarray) else None
             for name, a in arrays.items()}
    for name, kind in kinds.items():
        if kind is None:
            raise KernelArgError(f"{name}: a {type(arrays[name]).__name__}, expected a cupy.ndarray "
                                 "(GPU) or a numpy.ndarray (cuda-cpu)")
    if len(set(kinds.values())) > 1:
        where = ", ".join(f"{n} on the {'GPU' if k == 'gpu' else 'host'}" for n, k in kinds.items())
        raise KernelArgError(f"arrays on different devices ({where}): pass all cupy or all numpy arrays")
    return GPU if "gpu" in kinds.values() else HOST


def reference_baseline(reference, check_args, names):
    # nst's NumPy reference function -> the launcher "cupy": the reference run on the given arrays
    # after the launcher's own checks (on cupy arrays NumPy dispatches its functions to CuPy)
    def baseline(*arrays):
        check_args(*arrays)
        device(**dict(zip(names, arrays)))
        return reference(*arrays)
    baseline.__doc__ = f"the NumPy reference {reference.__module__}.{reference.__name__} run by CuPy"
    return baseline


class Gpu:
    """Kernels from cupy.RawModule, arrays in device memory."""
    name = "gpu"

    @property
    def xp(self):
        return cupy()

    def empty(self, shape, dtype=np.float32):
        return cupy().empty(shape, dtype=dtype)

    def zeros(self, shape, dtype=np.float32):
        return cupy().zeros(shape, dtype=dtype)

    def function(self, cu, kernel):
        return module(cu).get_function(kernel)

    def compute_capability(self):
        return int(cupy().cuda.Device().compute_capability)


class Host:
    """Kernels run on the CPU by kernels/cuda/host (cuda-cpu); numpy arrays stand for device memory,
    allocated poisoned (NaN, or all bits set for integers) as cudaMalloc's leftovers might be."""
    name = "host"
    xp = np
    ARCH = 80                   # the emulated GPU: host/cuda_host.h defines __CUDA_ARCH__ 800

    def empty(self, shape, dtype=np.float32):
        a = np.empty(shape, dtype=dtype)
        a.view(np.uint8)[...] = 0xFF
        return a

    def zeros(self, shape, dtype=np.float32):
        return np.zeros(shape, dtype=dtype)

    def function(self, cu, kernel):
        from .host import build
        return build.module(cu).get_function(kernel)

    def compute_capability(self):
        return self.ARCH


GPU, HOST = Gpu(), Host()


def require_arch(dev, cc, what):
    # versions written for newer GPUs refuse older ones in one line (the .cu traps there)
    have = dev.compute_capability()
    if have < cc:
        raise KernelArgError(f"{what}: needs compute capability {cc // 10}.{cc % 10}, "
                             f"this GPU has {have // 10}.{have % 10}")


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


# ---- the conv launchers' shared parts (conv3x3_forward.py, conv3x3_backward_input.py) ---------
TILE = 64                       # output tile of the tiled and WMMA versions (TILE_M = TILE_N in the .cuh)
COLS_LIMIT = 1 << 27            # the im2col baselines' column buffer, floats per chunk (512 MiB)


def grid_per_output(m, n):
    # one thread per output of an M×N result
    return grid1d(m * n, 256)


def grid_tiles(m, n):
    # one block per TILE×TILE tile of an M×N result
    return cdiv(n, TILE), cdiv(m, TILE)


def conv_launcher(cu, kernel, grid, threads, arch, check_args, names, out):
    # -> launch(*arrays): check_args(*arrays) -> dims (I, O, H, W), the kernel's int arguments;
    # the kernel runs on `arrays` (called `names`) into a new dims[out]×H×W output
    def launch(*arrays):
        dims = check_args(*arrays)
        dev = device(**dict(zip(names, arrays)))
        if arch:
            require_arch(dev, arch, f"{cu} {kernel}")
        m, n = dims[out], dims[2] * dims[3]
        y = dev.empty((m, dims[2], dims[3]))
        dev.function(cu, kernel)(grid(m, n), (threads,), (*arrays, y, *i32(*dims)))
        return y
    launch.__name__ = launch.__qualname__ = kernel
    return launch


def im2col_matmul(dev, im2col, inputs, dims, wmat, n):
    # the baselines: out M×N = wmat (M×K) @ cols, cols K×chunk filled chunk by chunk by the im2col
    # kernel (inputs: its array arguments, dims: its int arguments before the chunk's start and count)
    m, k = wmat.shape
    out = dev.empty((m, n))
    chunk = max(1, min(n, COLS_LIMIT // k))
    cols = dev.empty((k, chunk))
    for n0 in range(0, n, chunk):
        cnt = min(chunk, n - n0)
        c = cols[:, :cnt] if cnt == chunk else dev.empty((k, cnt))
        im2col(grid1d(k * cnt, 256, 1 << 20), (256,), (*inputs, c, *i32(*dims, n0, cnt)))
        if cnt == n:                                  # one chunk: the product lands in out itself
            dev.xp.matmul(wmat, c, out=out)
        else:
            out[:, n0:n0 + cnt] = dev.xp.matmul(wmat, c)
    return out


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
    nvcc = shutil.which("nvcc")
    candidates = [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda",
                  nvcc and os.path.dirname(os.path.dirname(nvcc))]
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
    for d in dirs:        # a complete set: CUDA 13's header wheel has mma.h without its crt/mma.h
        if d and all(os.path.isfile(os.path.join(d, h)) for h in ("mma.h", "crt/mma.h")):
            return (f"--include-path={d}",)
    return ()


@functools.lru_cache(maxsize=None)
def module(name):
    # compiled once per process for the current device's architecture (cached on disk by cupy);
    # the WMMA code compiles only where __CUDA_ARCH__ >= 800 (gemm_wmma.cuh), nothing to retry
    text = source(name)
    mod = cupy().RawModule(code=text, options=("--std=c++17",) + _include_options(text))
    mod.compile()
    return mod
