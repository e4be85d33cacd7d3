"""Backends: each one is a table of kernels that computes the ops of nst/ops.py and nst/losses.py.

The maths lives in nst/ (reference) and kernels/ (fast versions); a backend only picks which
function computes each op, by name. nst/vgg.py and nst/objective.py run the same code on every
backend through this table.
"""
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

NAMES = ("numpy", "numba", "cupy", "cuda-cpu")


@dataclass(frozen=True)
class Backend:
    name: str
    xp: ModuleType                       # the array module: numpy, or cupy for the GPU
    prepare_weights: Callable            # (w O×I×3×3 f32, b O f32) -> what the conv kernels take
    conv3x3_relu: Callable               # (x I×H×W, w, b) -> a O×H×W
    conv3x3_relu_backward_input: Callable  # (da O×H×W, a O×H×W, w) -> dx I×H×W
    maxpool2x2: Callable                 # x C×H×W -> C×⌊H/2⌋×⌊W/2⌋
    maxpool2x2_backward: Callable        # (dy, x) -> dx C×H×W
    avgpool2x2: Callable
    avgpool2x2_backward: Callable
    gram: Callable                       # a C×H×W -> Ĝ C×C
    content_loss_and_grad: Callable      # (a, target) -> (J_c 0-d, ∂J_c/∂a)
    style_loss_and_grad: Callable        # (a, Ĝ(S)) -> (J_s^l 0-d, ∂J_s^l/∂a)
    tv_loss_and_grad: Callable           # x H×W×3 -> (J_tv 0-d, ∂J_tv/∂x)
    adam_step: Callable = None           # (x, g, m, v, t, lr, β1, β2, ε, lo, hi), in place (nst.ops.adam_step)

    def to_device(self, array):
        return self.xp.asarray(array)

    def to_host(self, array):
        return array.get() if hasattr(array, "get") else array


def _checked_cupy():
    # the cupy backend if a GPU answers and passes the one-time self-check, else BackendUnavailable
    import warnings
    from . import cupy_backend, selfcheck
    be = get_backend("cupy")
    ok, error = selfcheck.passes(be, cupy_backend.device_key())
    if not ok:
        warnings.warn(f"auto: the GPU failed nst's self-check ({error}); using numba", stacklevel=3)
        raise BackendUnavailable(f"cupy backend: self-check failed ({error})")
    return be


def get_backend(name="auto"):
    # "auto": cupy when a GPU answers and passes the self-check (nst/backends/selfcheck.py), else
    # numba, else the numpy reference.
    if name == "auto":
        for candidate in (_checked_cupy, lambda: get_backend("numba")):
            try:
                return candidate()
            except BackendUnavailable:
                continue
        name = "numpy"
    if name == "numpy":
        from .numpy_backend import BACKEND
    elif name == "numba":
        from .numba_backend import load
        BACKEND = load()
    elif name == "cupy":
        from .cupy_backend import load
        BACKEND = load()
    elif name == "cuda-cpu":
        from .cuda_cpu_backend import load
        BACKEND = load()
    else:
        raise ValueError(f"unknown backend {name!r}: choose one of auto, {', '.join(NAMES)}")
    return BACKEND


class BackendUnavailable(RuntimeError):
    """The backend's library or device is missing on this machine (message says which)."""
