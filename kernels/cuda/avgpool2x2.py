"""Launchers for avgpool2x2.cu (legend C channels, H×W input, C×⌊H/2⌋×⌊W/2⌋ output).

forward(x C×H×W) -> y;  backward(dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W) -> dx C×H×W (x gives only the shape).
"""
from . import _common as K
from .maxpool2x2 import check_backward, check_forward

CU = "avgpool2x2.cu"


def forward_v1(x):
    c, h, w, h2, w2 = check_forward(x)
    dev = K.device(x=x)
    y = dev.empty((c, h2, w2))
    dev.function(CU, "avgpool2x2_fwd_v1")(K.grid1d(c * h2 * w2, 256, 1 << 20), (256,),
                                        (x, y, *K.i32(c, h, w, h2, w2)))
    return y


def backward_v1(dy, x):
    c, h, w, h2, w2 = check_backward(dy, x)
    dev = K.device(dy=dy)
    dx = dev.empty((c, h, w))
    dev.function(CU, "avgpool2x2_bwd_v1")(K.grid1d(c * h * w, 256, 1 << 20), (256,),
                                        (dy, dx, *K.i32(c, h, w, h2, w2)))
    return dx


VERSIONS = {"avgpool2x2": {"v1": forward_v1}, "avgpool2x2_backward": {"v1": backward_v1}}
KERNELS = ("avgpool2x2_fwd_v1", "avgpool2x2_bwd_v1")
