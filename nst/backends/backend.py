"""The Backend table: the ops a backend computes, by name (see nst/backends/__init__.py)."""
from contextlib import nullcontext
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import numpy as np


def to_host(array):
    # a numpy or cupy array -> a numpy array (cupy copies it from the device)
    return array.get() if hasattr(array, "get") else np.asarray(array)


def xp_of(array):
    # the array module of a numpy or cupy array: numpy, or cupy (imported only for a cupy array)
    return np if isinstance(array, np.ndarray) else __import__("cupy")


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
    temporal_loss_and_grad: Callable     # (x, ω H×W×3, c H×W) -> (J_t 0-d, ∂J_t/∂x)  (video)
    adam_step: Callable = None           # (x, g, m, v, t, lr, β1, β2, ε, lo, hi), in place (nst.ops.adam_step)
    while_running: Callable = nullcontext  # () -> a context a run holds throughout (numba: BLAS at one thread)

    def to_device(self, array):
        return self.xp.asarray(array)

    to_host = staticmethod(to_host)


NOT_OPS = ("name", "xp", "prepare_weights", "while_running")            # the fields that are not ops
OPS = tuple(f for f in Backend.__dataclass_fields__ if f not in NOT_OPS)  # every op of the table, by name
CONV_OPS = ("conv3x3_relu", "conv3x3_relu_backward_input")   # the ops a ConvLayer chooses per layer


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer as a backend prepared it: its weights and the two kernels chosen for it."""
    weights: object                  # what both kernels read (numba: ConvWeights; cuda: w O×I×3×3)
    forward: Callable                # (x I×H×W, weights, b O) -> a O×H×W
    backward: Callable               # (da O×H×W, a O×H×W, weights) -> dx I×H×W


def conv3x3_relu(x, layer, b):
    # x I×H×W -> a O×H×W with the layer's chosen forward kernel
    return layer.forward(x, layer.weights, b)


def conv3x3_relu_backward_input(da, a, layer):
    # da, a O×H×W -> dx I×H×W with the layer's chosen backward kernel
    return layer.backward(da, a, layer.weights)


def chosen_version(table, op, in_channels=None):
    # the version a backend's CHOSEN `table` names for op; a conv op's entry may be a dict from a
    # layer's input channels to a version, "*" for every other layer
    entry = table[op]
    return entry.get(in_channels, entry["*"]) if isinstance(entry, dict) else entry


class BackendUnavailable(RuntimeError):
    """The backend's library or device is missing on this machine (message says which)."""
