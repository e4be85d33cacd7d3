"""Hand-written CUDA kernels (CuPy RawModule), one op family per .cu file, each beside its launcher.

Every launcher module has VERSIONS ({op: {version: function}}, side by side, the idea of each
listed at the top of its .cu), KERNELS (the extern "C" names it launches) and CU (its .cu file).
CUDA is the registry of nst.kernels (op -> versions -> callable, the shape the Numba kernels
have): get("conv3x3_relu", "v2_tiled"); nst/backends/cupy_backend.py holds the one table of
choices. Importing this package does not import cupy.
"""
import importlib

from .. import Registry
from ._common import KernelArgError, cu_path

CUDA = Registry(__name__, {
    "conv3x3_relu": "conv3x3_forward",
    "conv3x3_relu_backward_input": "conv3x3_backward_input",
    "maxpool2x2": "maxpool2x2",
    "maxpool2x2_backward": "maxpool2x2",
    "avgpool2x2": "avgpool2x2",
    "avgpool2x2_backward": "avgpool2x2",
    "gram": "gram_style_loss",
    "style_loss_and_grad": "gram_style_loss",
    "content_loss_and_grad": "content_loss",
    "tv_loss_and_grad": "tv_loss",
    "temporal_loss_and_grad": "temporal_loss",
    "adam_step": "adam_step",
    "warp": "flow_warp",                         # VIDEO_OPS (nst.kernels): the video run's, no Backend field
    "reliability_mask": "flow_mask",
})
OPS = CUDA.ops
MODULES = tuple(dict.fromkeys(CUDA.modules.values()))      # the launcher files, each with its .cu


def launcher(module):
    # the launcher module kernels/cuda/<module>.py
    if module not in MODULES:
        raise KeyError(f"kernels.cuda: no launcher {module!r}; launchers are {', '.join(MODULES)}")
    return importlib.import_module(f"{__name__}.{module}")


def get(op, version):
    # op, version -> the launcher function
    return CUDA.get(op, version)


__all__ = ["CUDA", "OPS", "MODULES", "get", "launcher", "cu_path", "KernelArgError"]
