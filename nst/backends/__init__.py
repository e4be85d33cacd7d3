"""Backends: each one is a table of kernels that computes the ops of nst/ops.py and nst/losses.py.

The maths lives in nst/ (reference) and kernels/ (fast versions); a backend only picks which
function computes each op, by name. nst/vgg.py and nst/objective.py run the same code on every
backend through this table.
"""
from nst.kernels.cpu_memory import one_heap     # the host's threads in one heap, for a run to set early

from .backend import Backend, BackendUnavailable

__all__ = ["Backend", "BackendUnavailable", "NAMES", "get_backend", "one_heap"]
NAMES = ("numpy", "numba", "cupy", "cuda-cpu")


def get_backend(name, log=None):
    # the backend called `name` (one of NAMES); BackendUnavailable when it cannot run here.
    # "auto" is chosen by the runs, nst.run.selfcheck.choose_backend (it self-checks a GPU first).
    # log(message): where numba's first load on a machine says it compiles its kernels (default: the
    # "nst" logger)
    if name == "numpy":
        from .numpy_backend import BACKEND
    elif name == "numba":
        from .compile_ahead import compile_ahead_once
        from .numba_backend import load
        BACKEND = load()
        compile_ahead_once(log)         # the first load on a machine: the kernels compiled side by side
    elif name == "cupy":
        from .cupy_backend import load
        BACKEND = load()
    elif name == "cuda-cpu":
        from .cuda_cpu_backend import load
        BACKEND = load()
    else:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(NAMES)} "
                         "(\"auto\" is for nst.stylize and the command line)")
    return BACKEND
