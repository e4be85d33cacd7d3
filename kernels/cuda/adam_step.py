"""Launcher for adam_step.cu: adam_step(x, m, v, g, t, ...) updates x, m, v in place (cupy float32).

m = β1 m + (1−β1) g;  v = β2 v + (1−β2) g²;  x −= lr·m̂/(√v̂ + ε), m̂ = m/(1−β1^t), v̂ = v/(1−β2^t);
then x is clipped to clip = (lo, hi) when given (pixels kept in 0..255). The reference is
nst.ops.adam_step.
"""
import numpy as np

from . import _common as K

CU = "adam_step.cu"


def check_args(x, m, v, g, t):
    shape = K.check_same(("x", "m", "v", "g"), (x, m, v, g))
    if int(t) < 1:
        raise K.KernelArgError(f"t: step number {t}, Adam counts steps from 1")
    return shape


def _scalars(t, lr, b1, b2, eps, clip):
    lo, hi = clip if clip is not None else (0.0, 0.0)
    return (*K.f32(lr, b1, b2, eps, 1.0 - b1 ** int(t), 1.0 - b2 ** int(t)),
            *K.i32(clip is not None), *K.f32(lo, hi))


def v1(x, m, v, g, t, lr=1.0, b1=0.9, b2=0.999, eps=1e-8, clip=None):
    check_args(x, m, v, g, t)
    K.on_device(x=x, m=m, v=v, g=g)
    n = x.size
    K.function(CU, "adam_step_v1")(K.grid1d(n, 256, 4096), (256,),
                                   (x, m, v, g, *K.i32(n), *_scalars(t, lr, b1, b2, eps, clip)))
    return x


VERSIONS = {"v1": v1}
KERNELS = ("adam_step_v1",)
