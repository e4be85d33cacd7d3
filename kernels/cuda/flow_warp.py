"""Launchers for flow_warp.cu: (image H×W×K, back H×W×2) -> ω H×W×K, ω(x) = image(x + back(x)).

The backward warp of video, bilinear and clamped at the border (nst/flow.py `warp` is the
reference, kernels/flow_warp.py the Numba kernel; docs/maths.md "Video: the temporal loss"). Any
K ≥ 1 channels: images (3) and flows (2).
"""
from nst.flow import warp

from . import _common as K

CU = "flow_warp.cu"


def check_args(image, back):
    h, w, k = K.check("image", image, ndim=3)
    K.check("back", back, shape=(h, w, 2))
    return h, w, k


def v1(image, back):
    h, w, k = check_args(image, back)
    dev = K.device(image=image, back=back)
    out = dev.empty((h, w, k))
    dev.function(CU, "flow_warp_v1")(K.grid1d(h * w, 256, 2048), (256,), (image, back, out, *K.i32(h, w, k)))
    return out


cupy_baseline = K.reference_baseline(warp, check_args, ("image", "back"))


VERSIONS = {"warp": {"v1": v1, "cupy": cupy_baseline}}
KERNELS = ("flow_warp_v1",)
