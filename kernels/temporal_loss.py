"""Temporal loss (video) and its gradient in one pass, Numba CPU kernel.

Legend: H×W pixels, x and ω (the previous output warped into this frame) H×W×3 RGB, c H×W the
reliability mask in [0, 1] (docs/maths.md "Video: the temporal loss").

Versions:
  temporal_loss_and_grad_v1: prange over rows; each pixel reads its mask once and, per channel,
      writes 2c(x − ω)/D while c(x − ω)² is summed into a float64 per-row partial sum.
Napkin maths (512², 3 channels): reads 2×3 MiB + 1 MiB, writes 3 MiB, 4 FLOPs/element: bandwidth bound.
"""
from . import cpu_threads  # noqa: F401  (starts Numba's pool with the OpenMP wait policy)
import numba
import numpy as np
from numba import prange


@numba.njit(parallel=True, fastmath=True, cache=True)
def _temporal(x, t, c, g, scale):
    h, w, k = x.shape
    part = np.zeros(h, dtype=np.float64)
    for i in prange(h):
        s = 0.0
        for j in range(w):
            m = c[i, j]
            for ch in range(k):
                d = x[i, j, ch] - t[i, j, ch]
                g[i, j, ch] = scale * m * d
                s += np.float64(m) * d * d
        part[i] = s
    return part.sum()


def temporal_loss_and_grad_v1(x, target, mask):
    # x, target H×W×3, mask H×W;  J_t = (1/D) Σ c (x − ω)²,  ∂J_t/∂x = 2 c (x − ω) / D,  D = H·W·3
    x = np.ascontiguousarray(x)
    d = x.size
    g = np.empty_like(x)
    j = _temporal(x, np.ascontiguousarray(target, dtype=x.dtype), np.ascontiguousarray(mask, dtype=x.dtype),
                  g, x.dtype.type(2.0 / d))
    return np.asarray(j / d, dtype=np.float64), g


VERSIONS = {"temporal_loss_and_grad": {"v1": temporal_loss_and_grad_v1}}
