"""Launchers for lbfgs_ops.cu: device-side vector ops for L-BFGS (cupy float32, any shape).

dot(x, y) -> 0-d array x·y;  axpy(alpha, x, y, num=None, den=None, beta=1.0): in place
y = β·y + α·(num/den)·x, num/den 0-d or 1-element device arrays (a dot's result) or None (= 1).
"""
from . import _common as K

CU = "lbfgs_ops.cu"


def check_args(x, y):
    return K.check_same(("x", "y"), (x, y))


def check_scalar(name, s):
    if s is not None:
        K.check(name, s.reshape(1) if hasattr(s, "reshape") else s, shape=(1,))


def dot_v1(x, y):
    check_args(x, y)
    dev = K.device(x=x, y=y)
    out = dev.zeros(1)
    dev.function(CU, "dot_v1")(K.grid1d(x.size, 256, 1024), (256,), (x, y, out, *K.i32(x.size)))
    return out.reshape(())


def axpy_v1(alpha, x, y, num=None, den=None, beta=1.0):
    check_args(x, y)
    check_scalar("num", num)
    check_scalar("den", den)
    dev = K.device(x=x, y=y, **{k: s for k, s in (("num", num), ("den", den)) if s is not None})
    if num is None or den is None:                       # a missing ratio term is 1
        one = dev.xp.ones(1, dtype=dev.xp.float32)
        num, den = (one if s is None else s for s in (num, den))
    dev.function(CU, "axpy_ratio_v1")(K.grid1d(x.size, 256, 4096), (256,),
                                    (x, y, num, den, *K.f32(alpha, beta), *K.i32(x.size)))
    return y


VERSIONS = {"dot_v1": dot_v1, "axpy_v1": axpy_v1}
KERNELS = ("dot_v1", "axpy_ratio_v1")
