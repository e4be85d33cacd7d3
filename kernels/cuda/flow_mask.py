"""Launchers for flow_mask.cu: (back, fwd H×W×2) -> c H×W float32 in {0, 1}, the reliability mask.

c(x) = 1 where x + back(x) is inside the frame, the two flows agree there and back has no motion
boundary at x (nst/flow.py `reliability_mask` is the reference, kernels/flow_mask.py the Numba
kernel; docs/maths.md "Video: the temporal loss"). Computed in double: equal to the reference.
"""
from nst.flow import reliability_mask

from . import _common as K

CU = "flow_mask.cu"


def check_args(back, fwd):
    h, w, _ = K.check("back", back, shape=(None, None, 2))
    K.check("fwd", fwd, shape=(h, w, 2))
    return h, w


def v1(back, fwd):
    h, w = check_args(back, fwd)
    dev = K.device(back=back, fwd=fwd)
    c = dev.empty((h, w))
    dev.function(CU, "flow_mask_v1")(K.grid1d(h * w, 256, 2048), (256,), (back, fwd, c, *K.i32(h, w)))
    return c


cupy_baseline = K.reference_baseline(reliability_mask, check_args, ("back", "fwd"))


VERSIONS = {"reliability_mask": {"v1": v1, "cupy": cupy_baseline}}
KERNELS = ("flow_mask_v1",)
