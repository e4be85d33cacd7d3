"""The Numba CPU backend: the kernels of kernels/*.py, picked by name from one table, CHOSEN.

CHOSEN maps each Backend field (an op of nst.kernels.NUMBA) to a version of it; the benchmarks
(bench/bench_kernels_cpu.py) and tests (tests/test_ops.py) run the same functions through the same
registry, so the code benchmarked is the code shipped. A conv op may choose per layer: its entry
is then a dict from a layer's input channels I to a version ("*": every other layer). The choice is
made once, in prepare_weights, which returns (layer, b): `layer` holds the layer's two chosen
kernels and its weights in the one form both read (conv3x3_forward.ConvWeights; the raw w is not
kept), and b is the bias the forward adds.
"""
import numpy as np

from .backend import (CONV_OPS, Backend, BackendUnavailable, ConvLayer, chosen_version, conv3x3_relu,
                      conv3x3_relu_backward_input)

# Each choice was measured side by side, single-threaded (bench/bench_kernels_cpu.py; the numbers
# are in bench/RESULTS.md, "Measurements formerly in code comments"). Winograd F(4×4) from 64
# channels up: fused per thread (v7) for the 64- and 128-input layers, whose U is small and whose
# images are large (a whole evaluation 0.93× at 256², 0.92× at 512², 2026-12-05), the
# two-stage v5 from 256 channels up (U up to 36 MiB, read once a block). v8 (v5's transforms on
# our own threads, two kernels fewer to compile) computes the same evaluation bit for bit, but on a
# quiet host v8 / v5 was 1.039 and 0.983 at 256², 1.037 at 512² (2026-12-06): not taken. F(2×2) (v4) was there for the
# 512-input layers until 2026-12-03: it holds 16/9 of the weights instead of 36/9, 74 MiB less,
# and rounds less, but a whole evaluation is 2 % / 7.5 % / 6 % slower with it at 256² / 512² /
# 1024². The 3-channel first layer: flat-shift im2col (v3) forward, direct loops (v6) backward
# (v7 there: 2 % faster at 256², none at 512², and the image's gradient 1e-3 off: not taken).
# Forward and backward of a layer read one weight form, so a layer takes one Winograd size for
# both. Style loss: v2 (sgemms on our own threads), which stays fast on a busy machine where
# OpenBLAS's own threads spin. Max-pool backward: v3 (v2, vectorised one output row a pass, with
# a channel's narrow rows packed into one long pair), the same dx as v1 bit for bit: v2 was 2.6–4×
# faster than v1 at every VGG19 pool shape on Zen 4 (an evaluation's pool backwards 8.2 → 3.8 ms
# at 256², 2026-12-05) but 0.6× v1 at the 64² and 32² pools on AVX2, where LLVM's vector loop
# needs longer rows; v3 is 3.1–5.8× v1 at every shape there (Zen 3, 2026-12-06: 5.5 → 3.5 ms an
# evaluation at 256²; bench/bench_pool_versions.py).
CHOSEN = {
    "conv3x3_relu": {3: "v3", 64: "v7", 128: "v7", "*": "v5"},
    "conv3x3_relu_backward_input": {3: "v6", 64: "v7", 128: "v7", "*": "v5"},
    "maxpool2x2": "v1",
    "maxpool2x2_backward": "v3",
    "avgpool2x2": "v1",
    "avgpool2x2_backward": "v1",
    "gram": "v1",
    "content_loss_and_grad": "v1",
    "style_loss_and_grad": "v2",
    "tv_loss_and_grad": "v1",
    "temporal_loss_and_grad": "v1",
    "adam_step": "v1",
}


def chosen(op, in_channels=None):
    # the kernel CHOSEN names for `op` (for a conv op: for a layer with `in_channels` inputs)
    from nst.kernels import NUMBA
    return NUMBA.get(op, chosen_version(CHOSEN, op, in_channels))


def prepare_weights(w, b):
    # (w O×I×3×3, b O) -> (ConvLayer, b O float32)
    from nst.kernels.conv3x3_forward import ConvWeights
    i = np.shape(w)[1]
    fwd, bwd = (chosen(op, i) for op in CONV_OPS)
    weights = ConvWeights(w, keep=fwd.reads + bwd.reads)
    return ConvLayer(weights, fwd, bwd), np.ascontiguousarray(b, dtype=np.float32)


def load():
    try:
        import numba  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable("numba is not installed: pip install numba") from e
    from nst.kernels.cpu_memory import keep_freed_pages
    keep_freed_pages()                   # freed arrays keep their pages, one heap for every thread:
    from nst.kernels.cpu_threads import one_blas_thread_for_a_run    # before the threads start
    pick = {op: chosen(op) for op in CHOSEN if op not in CONV_OPS}
    # while_running: a run's own BLAS calls (L-BFGS's products with its history, colour matching)
    # at one thread too: OpenBLAS's threads spin for ~0.1 s after each call, taking a core from the
    # next evaluation (the default 512 px picture ~10 % slower; bench/RESULTS.md)
    return Backend(name="numba", xp=np, prepare_weights=prepare_weights,
                   conv3x3_relu=conv3x3_relu,
                   conv3x3_relu_backward_input=conv3x3_relu_backward_input,
                   while_running=one_blas_thread_for_a_run, **pick)
