"""Launchers for temporal_loss.cu: (x, ω H×W×3, c H×W) -> (J_t 0-d, ∂J_t/∂x H×W×3).

J_t = (1/D) Σ c·(x − ω)², D = H·W·3 (video; docs/maths.md "Video: the temporal loss"); the loss
stays on the device.
"""
from nst.losses import temporal_loss_and_grad

from . import _common as K

CU = "temporal_loss.cu"


def check_args(x, target, mask):
    h, w, _ = K.check("x", x, shape=(None, None, 3))
    K.check("target", target, shape=(h, w, 3))
    K.check("mask", mask, shape=(h, w))
    return h, w


def v1_fused(x, target, mask):
    h, w = check_args(x, target, mask)
    dev = K.device(x=x, target=target, mask=mask)
    n = h * w * 3
    grad = dev.empty((h, w, 3))
    loss = dev.zeros(1)
    dev.function(CU, "temporal_loss_v1")(K.grid1d(n, 256, 2048), (256,),
                                         (x, target, mask, grad, loss, *K.i32(n), *K.f32(1.0 / n)))
    return loss.reshape(()), grad


cupy_baseline = K.reference_baseline(temporal_loss_and_grad, check_args, ("x", "target", "mask"))


VERSIONS = {"temporal_loss_and_grad": {"v1_fused": v1_fused, "cupy": cupy_baseline}}
KERNELS = ("temporal_loss_v1",)
