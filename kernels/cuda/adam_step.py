"""Launcher for adam_step.cu: v1(x, g, m, v, t, lr, beta1, beta2, eps, lo, hi) updates x, m, v in
place, with exactly the signature of the reference nst.ops.adam_step (one signature on every backend).

m = β1 m + (1−β1) g;  v = β2 v + (1−β2) g²;  x ← clip(x − lr·m̂/(√v̂ + ε), lo, hi),
m̂ = m/(1−β1^t), v̂ = v/(1−β2^t); lo/hi may be ±inf (no clip). NaN propagates as in np.clip.
"""
from . import _common as K

CU = "adam_step.cu"


def check_args(x, g, m, v, t):
    shape = K.check_same(("x", "g", "m", "v"), (x, g, m, v))
    if int(t) < 1:
        raise K.KernelArgError(f"t: step number {t}, Adam counts steps from 1")
    return shape


def v1(x, g, m, v, t, lr, beta1, beta2, eps, lo, hi):
    check_args(x, g, m, v, t)
    dev = K.device(x=x, g=g, m=m, v=v)
    n = x.size
    bc1, bc2 = 1.0 - beta1 ** int(t), 1.0 - beta2 ** int(t)
    dev.function(CU, "adam_step_v1")(K.grid1d(n, 256, 4096), (256,),
                                     (x, g, m, v, *K.i32(n), *K.f32(lr, beta1, beta2, eps, bc1, bc2, lo, hi)))
    return x


VERSIONS = {"adam_step": {"v1": v1}}
KERNELS = ("adam_step_v1",)
