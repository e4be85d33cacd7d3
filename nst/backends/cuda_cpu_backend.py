"""The cuda-cpu backend: the CUDA kernels of kernels/cuda, run on the CPU, over NumPy arrays.

The same .cu sources and launchers as the cupy backend (one table, cupy_backend.CHOSEN): g++
compiles each .cu against kernels/cuda/host/cuda_host.h, blocks run in turn and each block's
threads as fibers meeting at __syncthreads. Slow (a 256-thread block takes about a millisecond)
but exact to the GPU's semantics where it matters: CI runs every kernel this way, and printf or
gdb work inside a kernel. Needs only a C++ compiler; the build is cached (kernels/cuda/host/build.py).
"""
from .backend import BackendUnavailable


def load():
    import numpy as np
    from nst.kernels.cuda.host import build
    try:
        build.compiler()
    except build.HostCompilerMissing as e:
        raise BackendUnavailable(str(e)) from None
    from .cupy_backend import kernel_backend
    return kernel_backend("cuda-cpu", np)
