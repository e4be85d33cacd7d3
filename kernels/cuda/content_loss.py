"""Launchers for content_loss.cu: (a, target C×H×W) -> (J_c 0-d, ∂J_c/∂a = a − target).

J_c = ½ Σ (a^l(X) − a^l(C))²  (SPEC.md); the loss stays on the device.
"""
from . import _common as K

CU = "content_loss.cu"


def check_args(a, target):
    return K.check_same(("a", "target"), (a, target))


def v1_fused(a, target):
    shape = check_args(a, target)
    dev = K.device(a=a, target=target)
    n = a.size
    diff = dev.empty(shape)
    loss = dev.zeros(1)
    dev.function(CU, "content_loss_v1")(K.grid1d(n, 256, 2048), (256,), (a, target, diff, loss, *K.i32(n)))
    return loss.reshape(()), diff


def cupy_baseline(a, target):
    check_args(a, target)
    dev = K.device(a=a, target=target)
    diff = a - target
    return dev.xp.sum(diff * diff) * K.f32(0.5)[0], diff


VERSIONS = {"content_loss_and_grad": {"v1_fused": v1_fused, "cupy": cupy_baseline}}
KERNELS = ("content_loss_v1",)
