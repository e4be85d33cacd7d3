"""Launchers for maxpool2x2.cu (legend C channels, H×W input, C×⌊H/2⌋×⌊W/2⌋ output).

forward(x C×H×W) -> y;  backward(dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W) -> dx C×H×W (first max gets it).
"""
from . import _common as K

CU = "maxpool2x2.cu"


def check_forward(x):
    # -> (C, H, W, H2, W2)
    c, h, w = K.check("x", x, ndim=3)
    if h < 2 or w < 2:
        raise K.KernelArgError(f"x: spatial size {h}×{w}, a 2×2 pool needs at least 2×2")
    return c, h, w, h // 2, w // 2


def check_backward(dy, x):
    c, h, w, h2, w2 = check_forward(x)
    K.check("dy", dy, shape=(c, h2, w2))
    return c, h, w, h2, w2


def launch(cu, kernel, out_shape, inputs, dims):
    # a pool kernel (one thread per output element, grid-stride) over `inputs` into a new output
    dev = K.device(**inputs)
    out = dev.empty(out_shape)
    dev.function(cu, kernel)(K.grid1d(out.size, 256, 1 << 20), (256,), (*inputs.values(), out, *K.i32(*dims)))
    return out


def forward_v1(x):
    c, h, w, h2, w2 = check_forward(x)
    return launch(CU, "maxpool2x2_fwd_v1", (c, h2, w2), dict(x=x), (c, h, w, h2, w2))


def backward_v1(dy, x):
    c, h, w, h2, w2 = check_backward(dy, x)
    return launch(CU, "maxpool2x2_bwd_v1", (c, h, w), dict(dy=dy, x=x), (c, h, w, h2, w2))


VERSIONS = {"maxpool2x2": {"v1": forward_v1}, "maxpool2x2_backward": {"v1": backward_v1}}
KERNELS = ("maxpool2x2_fwd_v1", "maxpool2x2_bwd_v1")
