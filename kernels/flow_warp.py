"""Backward warp of an image by a dense flow, bilinear, Numba CPU kernel (nst/flow.py `warp`).

Legend: H×W pixels, image H×W×K (frame i−1), back H×W×2 the flow from frame i to frame i−1
(back[..., 0] along x, back[..., 1] along y); ω(x) = image(x + back(x)), clamped at the border.

Versions:
  warp_v1: prange over rows; each output pixel computes its four neighbours' bilinear weights
      once (float64) and gathers all K channels with them.
Napkin maths (512², K = 3): reads 2 MiB of flow + 4 neighbours × 3 MiB (mostly cached), writes 3 MiB.
"""
from . import cpu_threads  # noqa: F401  (starts Numba's pool with the OpenMP wait policy)
import numba
import numpy as np
from numba import prange


@numba.njit(cache=True, inline="always")
def bilinear_corner(fx, fy, h, w):
    # a coordinate -> (x0, y0, x1, y1, ax, ay): the cell and weights, coordinates clamped to the image
    fx = min(max(fx, 0.0), w - 1.0)
    fy = min(max(fy, 0.0), h - 1.0)
    x0 = min(int(np.floor(fx)), w - 2) if w > 1 else 0
    y0 = min(int(np.floor(fy)), h - 2) if h > 1 else 0
    return x0, y0, min(x0 + 1, w - 1), min(y0 + 1, h - 1), fx - x0, fy - y0


@numba.njit(parallel=True, cache=True)
def _warp(image, back, out):
    h, w, k = image.shape
    for i in prange(h):
        for j in range(w):
            x0, y0, x1, y1, ax, ay = bilinear_corner(j + np.float64(back[i, j, 0]),
                                                     i + np.float64(back[i, j, 1]), h, w)
            for ch in range(k):
                top = (1 - ax) * image[y0, x0, ch] + ax * image[y0, x1, ch]
                bottom = (1 - ax) * image[y1, x0, ch] + ax * image[y1, x1, ch]
                out[i, j, ch] = (1 - ay) * top + ay * bottom


def warp_v1(image, back):
    # image H×W×K, back H×W×2 -> ω H×W×K in image's dtype
    image = np.ascontiguousarray(image)
    out = np.empty_like(image)
    _warp(image, np.ascontiguousarray(back), out)
    return out


# a video op (nst.kernels.VIDEO_OPS): not a Backend field; nst/video/flow.py names its version
VERSIONS = {"warp": {"v1": warp_v1}}
