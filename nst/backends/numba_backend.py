"""The Numba CPU backend: the kernels of kernels/*.py, picked by name from CHOSEN.

CHOSEN maps each Backend entry to "module.function" in kernels/; the benchmarks
(bench/bench_kernels_cpu.py) and tests (tests/test_kernels_numba.py) run the same functions by the
same names, so the code benchmarked is the code shipped; each kernels/ module's KERNELS lists
every version of its op.
prepare_weights returns (ConvWeights, b): ConvWeights carries w and the repacked forms (im2col
matrix, tap matrices, Winograd-transformed filters for the forward and for the backward), computed
once per layer.
"""
import importlib

from .backend import Backend, BackendUnavailable

CHOSEN = {
    "conv3x3_relu": "conv3x3_forward.conv3x3_relu_best",
    "conv3x3_relu_backward_input": "conv3x3_backward_input.conv3x3_relu_backward_input_best",
    "maxpool2x2": "maxpool2x2.maxpool2x2_v1",
    "maxpool2x2_backward": "maxpool2x2.maxpool2x2_backward_v1",
    "avgpool2x2": "maxpool2x2.avgpool2x2_v1",
    "avgpool2x2_backward": "maxpool2x2.avgpool2x2_backward_v1",
    "gram": "gram_style_loss.gram_v1",
    "content_loss_and_grad": "content_loss.content_loss_and_grad_v1",
    "style_loss_and_grad": "gram_style_loss.style_loss_and_grad_v1",
    "tv_loss_and_grad": "tv_loss.tv_loss_and_grad_v1",
    "adam_step": "adam_step.adam_step_v1",
}
MODULES = ("conv3x3_forward", "conv3x3_backward_input", "maxpool2x2", "gram_style_loss",
           "content_loss", "tv_loss", "adam_step")


def _import_kernels():
    try:
        import numba  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable("numba is not installed: pip install numba") from e
    return {name: importlib.import_module(f"nst.kernels.{name}") for name in MODULES}


def kernel(qualname):
    # "module.function" -> the function in kernels/module.py
    module, func = qualname.split(".")
    return _import_kernels()[module].KERNELS[func]


def load():
    mods = _import_kernels()
    fwd = mods["conv3x3_forward"]
    pick = {op: kernel(name) for op, name in CHOSEN.items()}

    def prepare_weights(w, b):
        # (w O×I×3×3, b O) -> (ConvWeights, b): repacks for the chosen forward and backward cores
        cw = fwd.ConvWeights(w, b)
        o, i = cw.w.shape[:2]
        for kind in fwd.REPACKS[fwd.BEST.get(i, fwd.BEST_DEFAULT)]:
            cw.get(kind)
        bwd = mods["conv3x3_backward_input"]
        for kind in fwd.REPACKS[bwd.BEST.get(i, bwd.BEST_DEFAULT)]:
            cw.flipped().get(kind)
        return cw, cw.b

    return Backend(
        name="numba",
        xp=__import__("numpy"),
        prepare_weights=prepare_weights,
        **pick,
    )
