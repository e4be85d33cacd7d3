"""The Numba CPU backend: the kernels of kernels/*.py, picked by name from one table, CHOSEN.

CHOSEN maps each Backend field to "module.function" in kernels/; the benchmarks
(bench/bench_kernels_cpu.py) and tests (tests/test_kernels_numba.py) run the same functions by the
same names, so the code benchmarked is the code shipped. A conv op may choose per layer: its entry
is then a dict from a layer's input channels I to a kernel ("*": every other layer). The choice is made
once, in prepare_weights, which returns (layer, b): `layer` holds the layer's two chosen kernels
and its weights in the one form both read (conv3x3_forward.ConvWeights; the raw w is not kept),
and b is the bias the forward adds.
"""
import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .backend import Backend, BackendUnavailable

# Measured side by side, single-threaded (thread CPU time, robust on a busy machine; bench/RESULTS.md):
# Winograd F(4×4) (v5) beats F(2×2) (v4) by 10–30% on every layer from 64 channels up, except
# on the layers with 512 inputs, where F(2×2) stays (measured again 2026-11-28, 512→512 fwd/bwd
# ms, v4 → v5: 16² 4.3/4.9 → 5.1/5.9, 32² 14.4/15.4 → 12.1/13.3, 64² 61/64 → 45/52): at 256²
# the gain is 1–2% of an evaluation, against +77 MiB of U (36/9 of the weights instead of 16/9)
# and ~10× F(2×2)'s rounding error, which flips ReLU masks where a pre-activation is within
# ~3e-6·max of 0 (at 128², tubingen: 2 flips with F(4×4) on the 64–256 layers, 0 with F(2×2);
# each moves ∂J/∂X by up to 5e-3 of its max over a receptive field of pixels). The K=27 first
# layer's forward is fastest as a flat-shift im2col (v3: 9.0 ms vs v1 10.6, v5 12.8 at 256²),
# its backward (64→3, M = 3) as direct loops (v6: 25 ms vs v5 33 at 256², 62 vs 88 at 512²).
# Forward and backward of a layer read one weight form, so a layer takes one Winograd size for
# both. Style loss: v2 (sgemms on our own threads) ties v1 single-threaded, and on a busy machine
# v1's OpenBLAS threads spin: 3–4× the wall time and 2–3× the CPU of v2 at C ≥ 128.
CHOSEN = {
    "conv3x3_relu": {3: "conv3x3_forward.conv3x3_relu_v3",
                     512: "conv3x3_forward.conv3x3_relu_v4",
                     "*": "conv3x3_forward.conv3x3_relu_v5"},
    "conv3x3_relu_backward_input": {3: "conv3x3_backward_input.conv3x3_relu_backward_input_v6",
                                    512: "conv3x3_backward_input.conv3x3_relu_backward_input_v4",
                                    "*": "conv3x3_backward_input.conv3x3_relu_backward_input_v5"},
    "maxpool2x2": "maxpool2x2.maxpool2x2_v1",
    "maxpool2x2_backward": "maxpool2x2.maxpool2x2_backward_v1",
    "avgpool2x2": "maxpool2x2.avgpool2x2_v1",
    "avgpool2x2_backward": "maxpool2x2.avgpool2x2_backward_v1",
    "gram": "gram_style_loss.gram_v1",
    "content_loss_and_grad": "content_loss.content_loss_and_grad_v1",
    "style_loss_and_grad": "gram_style_loss.style_loss_and_grad_v2",
    "tv_loss_and_grad": "tv_loss.tv_loss_and_grad_v1",
    "temporal_loss_and_grad": "temporal_loss.temporal_loss_and_grad_v1",
    "adam_step": "adam_step.adam_step_v1",
}
CONV_OPS = ("conv3x3_relu", "conv3x3_relu_backward_input")


def kernel(qualname):
    # "module.function" -> the function in kernels/module.py
    module, func = qualname.split(".")
    return importlib.import_module(f"nst.kernels.{module}").KERNELS[func]


def chosen(op, in_channels=None):
    # the kernel CHOSEN names for `op` (for a conv op: for a layer with `in_channels` inputs)
    entry = CHOSEN[op]
    if isinstance(entry, dict):
        entry = entry.get(in_channels, entry["*"])
    return kernel(entry)


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer as prepared for this backend: its weights and its two chosen kernels."""
    weights: object                  # conv3x3_forward.ConvWeights, in the forms both kernels read
    forward: Callable                # (x I×H×W, weights, b O) -> a O×H×W
    backward: Callable               # (da O×H×W, a O×H×W, weights) -> dx I×H×W


def prepare_weights(w, b):
    # (w O×I×3×3, b O) -> (ConvLayer, b O float32)
    from nst.kernels.conv3x3_forward import ConvWeights
    i = np.shape(w)[1]
    fwd, bwd = (chosen(op, i) for op in CONV_OPS)
    weights = ConvWeights(w, keep=fwd.reads + bwd.reads)
    return ConvLayer(weights, fwd, bwd), np.ascontiguousarray(b, dtype=np.float32)


def conv3x3_relu(x, layer, b):
    # x I×H×W -> a O×H×W with the layer's chosen forward kernel
    return layer.forward(x, layer.weights, b)


def conv3x3_relu_backward_input(da, a, layer):
    # da, a O×H×W -> dx I×H×W with the layer's chosen backward kernel
    return layer.backward(da, a, layer.weights)


def load():
    try:
        import numba  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable("numba is not installed: pip install numba") from e
    from nst.kernels.cpu_memory import keep_freed_pages
    keep_freed_pages()                   # freed arrays keep their pages between evaluations
    pick = {op: kernel(name) for op, name in CHOSEN.items() if op not in CONV_OPS}
    return Backend(name="numba", xp=np, prepare_weights=prepare_weights,
                   conv3x3_relu=conv3x3_relu,
                   conv3x3_relu_backward_input=conv3x3_relu_backward_input, **pick)
