"""Content loss and its gradient in one pass, Numba CPU kernel.

Legend: C channels, H×W spatial; a = a^l(X), target = a^l(C), both C×H×W.

Versions:
  content_loss_and_grad_v1: one parallel pass over the flat arrays: diff is written as the
      gradient while ½·diff² is summed (float64 accumulator) in the same sweep; J is returned
      in float64 (a float32 J ≈ 1e11 would round away the late iterations' decreases).
Napkin maths (C=512, 64²): reads 2×8 MiB, writes 8 MiB, 3 FLOPs/element: bandwidth bound.
"""
from . import cpu_threads  # noqa: F401  (sets the OpenMP wait policy before Numba's pool starts)
import numba
import numpy as np
from numba import prange


@numba.njit(parallel=True, fastmath=True, cache=True)
def _content(a, t, g):
    n = a.size
    nblk = 64                                # fixed blocks: a float64 partial sum per block
    step = (n + nblk - 1) // nblk
    part = np.zeros(nblk, dtype=np.float64)
    for k in prange(nblk):
        s = 0.0
        for p in range(k * step, min(n, (k + 1) * step)):
            d = a[p] - t[p]
            g[p] = d
            s += np.float64(d) * d
        part[k] = s
    return 0.5 * part.sum()


def content_loss_and_grad_v1(a, target):
    # a, target C×H×W;  J_c = ½ Σ (a − target)²,  ∂J_c/∂a = a − target
    g = np.empty_like(a)
    j = _content(np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(target).reshape(-1),
                 g.reshape(-1))
    return np.asarray(j, dtype=np.float64), g            # J keeps its float64 accumulator


VERSIONS = {"content_loss_and_grad": {"v1": content_loss_and_grad_v1}}
