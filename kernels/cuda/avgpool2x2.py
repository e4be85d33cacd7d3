"""Launchers for avgpool2x2.cu (legend C channels, H×W input, C×⌊H/2⌋×⌊W/2⌋ output).

forward(x C×H×W) -> y;  backward(dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W) -> dx C×H×W (x gives only the shape).
"""
from .maxpool2x2 import check_backward, check_forward, launch

CU = "avgpool2x2.cu"


def forward_v1(x):
    c, h, w, h2, w2 = check_forward(x)
    return launch(CU, "avgpool2x2_fwd_v1", (c, h2, w2), dict(x=x), (c, h, w, h2, w2))


def backward_v1(dy, x):
    c, h, w, h2, w2 = check_backward(dy, x)                 # x gives only the shape
    return launch(CU, "avgpool2x2_bwd_v1", (c, h, w), dict(dy=dy), (c, h, w, h2, w2))


VERSIONS = {"avgpool2x2": {"v1": forward_v1}, "avgpool2x2_backward": {"v1": backward_v1}}
KERNELS = ("avgpool2x2_fwd_v1", "avgpool2x2_bwd_v1")
