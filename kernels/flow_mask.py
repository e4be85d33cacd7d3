"""Reliability mask of a flow pair (video), Numba CPU kernel (nst/flow.py `reliability_mask`).

Legend: H×W pixels of frame i, back H×W×2 the flow from frame i to i−1, fwd H×W×2 from i−1 to i;
c H×W float32, 1 where pixel x of frame i is reliably seen in frame i−1, else 0:
  inside:      x + back(x) in [0, W−1]×[0, H−1]
  consistent:  |back + ŵ|² ≤ 0.01·(|back|² + |ŵ|²) + 0.5,  ŵ = fwd(x + back(x)) bilinear
  no boundary: |∇u|² + |∇v|² ≤ 0.01·|back|² + 0.002  (central differences, clamped index)
(Ruder, Dosovitskiy & Brox 2016; docs/maths.md "Video: the temporal loss".)

Versions:
  mask_v1: prange over rows, one fused pass per pixel: the bilinear sample of fwd, the flow's
      gradient from its 4 neighbours and the three tests, in float64 (no fastmath: the tests
      compare against thresholds, so the reference's rounding is kept).
Napkin maths (512²): reads back 2 MiB (5 reads per element, cached) + fwd 2 MiB, writes 1 MiB.
"""
from . import cpu_threads  # noqa: F401  (starts Numba's pool with the OpenMP wait policy)
import numba
import numpy as np
from numba import prange

from .flow_warp import bilinear_corner

CONSISTENCY_REL, CONSISTENCY_ABS = 0.01, 0.5      # the values of nst/flow.py (a test checks they agree)
BOUNDARY_REL, BOUNDARY_ABS = 0.01, 0.002


@numba.njit(parallel=True, cache=True)
def _mask(back, fwd, out):
    h, w, _ = back.shape
    for i in prange(h):
        for j in range(w):
            u, v = np.float64(back[i, j, 0]), np.float64(back[i, j, 1])
            fx, fy = j + u, i + v
            ok = 0.0 <= fx <= w - 1.0 and 0.0 <= fy <= h - 1.0
            x0, y0, x1, y1, ax, ay = bilinear_corner(fx, fy, h, w)
            f = np.zeros(2)
            for ch in range(2):
                top = (1 - ax) * np.float64(fwd[y0, x0, ch]) + ax * np.float64(fwd[y0, x1, ch])
                bottom = (1 - ax) * np.float64(fwd[y1, x0, ch]) + ax * np.float64(fwd[y1, x1, ch])
                f[ch] = (1 - ay) * top + ay * bottom
            b2 = u * u + v * v
            f2 = f[0] * f[0] + f[1] * f[1]
            s2 = (u + f[0]) ** 2 + (v + f[1]) ** 2
            ok = ok and s2 <= CONSISTENCY_REL * (b2 + f2) + CONSISTENCY_ABS
            grad = 0.0
            jl, jr, iu, id_ = max(j - 1, 0), min(j + 1, w - 1), max(i - 1, 0), min(i + 1, h - 1)
            for ch in range(2):
                dx = (np.float64(back[i, jr, ch]) - np.float64(back[i, jl, ch])) / 2
                dy = (np.float64(back[id_, j, ch]) - np.float64(back[iu, j, ch])) / 2
                grad += dx * dx + dy * dy
            ok = ok and grad <= BOUNDARY_REL * b2 + BOUNDARY_ABS
            out[i, j] = 1.0 if ok else 0.0


def mask_v1(back, fwd):
    # back, fwd H×W×2 -> c H×W float32 in {0, 1}
    back = np.ascontiguousarray(back)
    out = np.empty(back.shape[:2], np.float32)
    _mask(back, np.ascontiguousarray(fwd), out)
    return out


# a video op (nst.kernels.VIDEO_OPS): not a Backend field; nst/video/flow.py names its version
VERSIONS = {"reliability_mask": {"v1": mask_v1}}
