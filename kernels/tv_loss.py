"""Total-variation loss and its gradient in one pass, Numba CPU kernel.

Legend: H×W spatial, x H×W×3 RGB pixels (SPEC.md "Total variation").

Versions:
  tv_loss_and_grad_v1: prange over rows; each pixel reads its 4 neighbours and writes its own
      gradient (gather, no scatter), summing the forward differences (down, right) into a float64
      per-row partial sum.
Napkin maths (512², 3 channels): reads 3 MiB (neighbours from cache), writes 3 MiB: bandwidth bound.
"""
from . import cpu_threads  # noqa: F401  (starts Numba's pool with the OpenMP wait policy)
import numba
import numpy as np
from numba import prange


@numba.njit(parallel=True, fastmath=True, cache=True)
def _tv(x, g):
    h, w, c = x.shape
    part = np.zeros(h, dtype=np.float64)
    for i in prange(h):
        s = 0.0
        for j in range(w):
            for k in range(c):
                v = x[i, j, k]
                gv = 0.0
                if i + 1 < h:
                    d = x[i + 1, j, k] - v
                    s += np.float64(d) * d
                    gv -= 2.0 * d
                if i > 0:
                    gv += 2.0 * (v - x[i - 1, j, k])
                if j + 1 < w:
                    d = x[i, j + 1, k] - v
                    s += np.float64(d) * d
                    gv -= 2.0 * d
                if j > 0:
                    gv += 2.0 * (v - x[i, j - 1, k])
                g[i, j, k] = gv
        part[i] = s
    return part.sum()


def tv_loss_and_grad_v1(x):
    # x H×W×3;  J_tv = Σ (x[i+1,j]−x[i,j])² + Σ (x[i,j+1]−x[i,j])²
    # ∂J/∂x[i,j] = 2(x[i,j]−x[i−1,j]) − 2(x[i+1,j]−x[i,j]) + 2(x[i,j]−x[i,j−1]) − 2(x[i,j+1]−x[i,j])
    x = np.ascontiguousarray(x)
    g = np.empty_like(x)
    j = _tv(x, g)
    return np.asarray(j, dtype=np.float64), g            # J keeps its float64 accumulator


VERSIONS = {"tv_loss_and_grad": {"v1": tv_loss_and_grad_v1}}
