"""Launchers for tv_loss.cu: x H×W×3 RGB (cupy float32) -> (J_tv 0-d, ∂J_tv/∂x H×W×3).

J_tv = Σ (x[i+1,j]−x[i,j])² + Σ (x[i,j+1]−x[i,j])²  over all channels (SPEC.md).
"""
from nst.losses import tv_loss_and_grad

from . import _common as K

CU = "tv_loss.cu"


def check_args(x):
    return K.check("x", x, shape=(None, None, 3))


def v1_fused(x):
    h, w, _ = check_args(x)
    dev = K.device(x=x)
    grad = dev.empty((h, w, 3))
    loss = dev.zeros(1)
    dev.function(CU, "tv_loss_v1")(K.grid1d(h * w * 3, 256, 2048), (256,), (x, grad, loss, *K.i32(h, w)))
    return loss.reshape(()), grad


cupy_baseline = K.reference_baseline(tv_loss_and_grad, check_args, ("x",))


VERSIONS = {"tv_loss_and_grad": {"v1_fused": v1_fused, "cupy": cupy_baseline}}
KERNELS = ("tv_loss_v1",)
