"""Hand-written CUDA kernels (CuPy RawModule), one op per .cu file, each beside its launcher.

Every launcher module has VERSIONS (name -> function, side by side, the idea of each listed at the
top of its .cu), KERNELS (the extern "C" names it launches) and CU (its .cu file). A kernel is
chosen by "module.version", e.g. get("conv3x3_forward.v2_tiled"); nst/backends/cupy_backend.py
holds the one table of choices. Importing this package does not import cupy.
"""
import importlib

from ._common import KernelArgError, cu_path

OPS = ("conv3x3_forward", "conv3x3_backward_input", "maxpool2x2", "avgpool2x2",
       "gram_style_loss", "content_loss", "tv_loss", "temporal_loss", "adam_step", "lbfgs_ops")


def launcher(op):
    if op not in OPS:
        raise KeyError(f"kernels.cuda: no op {op!r}; ops are {', '.join(OPS)}")
    return importlib.import_module(f"{__name__}.{op}")


def get(qualname):
    # "op.version" -> the launcher function
    op, _, version = qualname.partition(".")
    mod = launcher(op)
    if version not in mod.VERSIONS:
        raise KeyError(f"kernels.cuda.{op}: no version {version!r}; versions are {', '.join(mod.VERSIONS)}")
    return mod.VERSIONS[version]


__all__ = ["OPS", "get", "launcher", "cu_path", "KernelArgError"]
