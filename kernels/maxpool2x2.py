"""2×2 stride-2 pooling (max and average), forward and backward, Numba CPU kernels.

Legend: C channels, H×W input spatial, h2×w2 = ⌊H/2⌋×⌊W/2⌋ output spatial (floor: an odd last
row/column is dropped and gets zero gradient).

Versions:
  maxpool2x2_v1 / maxpool2x2_backward_v1: one pass, prange over channels. The backward is the
      gather form: each window is visited once and writes its own four input pixels (the window's
      first maximum in row-major order gets dy, the others 0), so no two iterations touch the
      same pixel and nothing races.
  avgpool2x2_v1 / avgpool2x2_backward_v1: same loop structure, mean / dy/4.
Napkin maths (C=64, 512²): forward reads 64 MiB, writes 16 MiB, 3 compares per output: bandwidth
bound. Backward reads x (64 MiB) + dy (16 MiB), writes dx (64 MiB).
"""
from . import cpu_threads  # noqa: F401  (starts Numba's pool with the OpenMP wait policy)
import numba
import numpy as np
from numba import prange

_JIT = dict(parallel=True, fastmath=True, cache=True)


@numba.njit(**_JIT)
def _maxpool_fwd(x, y):
    c, h2, w2 = y.shape
    for k in prange(c):
        for i in range(h2):
            for j in range(w2):
                a = x[k, 2 * i, 2 * j]
                b = x[k, 2 * i, 2 * j + 1]
                d = x[k, 2 * i + 1, 2 * j]
                e = x[k, 2 * i + 1, 2 * j + 1]
                y[k, i, j] = max(max(a, b), max(d, e))


def maxpool2x2_v1(x):
    # x C×H×W -> C×⌊H/2⌋×⌊W/2⌋;  y[c,i,j] = max of the 2×2 window at (2i, 2j)
    c, h, w = x.shape
    y = np.empty((c, h // 2, w // 2), dtype=x.dtype)
    _maxpool_fwd(np.ascontiguousarray(x), y)
    return y


# fastmath is off here: the "first maximum" choice is a strict comparison chain that must not be
# reassociated, and there is no arithmetic to speed up.
@numba.njit(parallel=True, cache=True)
def _maxpool_bwd(dy, x, dx):
    c, h, w = x.shape
    h2, w2 = dy.shape[1], dy.shape[2]
    for k in prange(c):
        for i in range(h2):
            for j in range(w2):
                a = x[k, 2 * i, 2 * j]
                b = x[k, 2 * i, 2 * j + 1]
                d = x[k, 2 * i + 1, 2 * j]
                e = x[k, 2 * i + 1, 2 * j + 1]
                # index of the first maximum in row-major order (a, b, d, e), as np.argmax
                best, m = 0, a
                if b > m:
                    best, m = 1, b
                if d > m:
                    best, m = 2, d
                if e > m:
                    best, m = 3, e
                g = dy[k, i, j]
                dx[k, 2 * i, 2 * j] = g if best == 0 else 0.0
                dx[k, 2 * i, 2 * j + 1] = g if best == 1 else 0.0
                dx[k, 2 * i + 1, 2 * j] = g if best == 2 else 0.0
                dx[k, 2 * i + 1, 2 * j + 1] = g if best == 3 else 0.0
        if h > 2 * h2:                       # odd height: the dropped last row gets no gradient
            for jj in range(w):
                dx[k, h - 1, jj] = 0.0
        if w > 2 * w2:                       # odd width: the dropped last column
            for ii in range(h):
                dx[k, ii, w - 1] = 0.0


def maxpool2x2_backward_v1(dy, x):
    # dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W -> dx C×H×W;  each window's gradient goes to its first maximum
    dx = np.empty_like(x)
    _maxpool_bwd(np.ascontiguousarray(dy), np.ascontiguousarray(x), dx)
    return dx


@numba.njit(**_JIT)
def _avgpool_fwd(x, y):
    c, h2, w2 = y.shape
    for k in prange(c):
        for i in range(h2):
            for j in range(w2):
                y[k, i, j] = 0.25 * (x[k, 2 * i, 2 * j] + x[k, 2 * i, 2 * j + 1]
                                     + x[k, 2 * i + 1, 2 * j] + x[k, 2 * i + 1, 2 * j + 1])


def avgpool2x2_v1(x):
    # x C×H×W -> C×⌊H/2⌋×⌊W/2⌋;  y = mean of each 2×2 window
    c, h, w = x.shape
    y = np.empty((c, h // 2, w // 2), dtype=x.dtype)
    _avgpool_fwd(np.ascontiguousarray(x), y)
    return y


@numba.njit(**_JIT)
def _avgpool_bwd(dy, dx):
    c, h, w = dx.shape
    h2, w2 = dy.shape[1], dy.shape[2]
    for k in prange(c):
        for i in range(h2):
            for j in range(w2):
                g = 0.25 * dy[k, i, j]
                dx[k, 2 * i, 2 * j] = g
                dx[k, 2 * i, 2 * j + 1] = g
                dx[k, 2 * i + 1, 2 * j] = g
                dx[k, 2 * i + 1, 2 * j + 1] = g
        if h > 2 * h2:
            for jj in range(w):
                dx[k, h - 1, jj] = 0.0
        if w > 2 * w2:
            for ii in range(h):
                dx[k, ii, w - 1] = 0.0


def avgpool2x2_backward_v1(dy, x):
    # dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W -> dx C×H×W;  dx = dy/4 spread over each window
    dx = np.empty_like(x)
    _avgpool_bwd(np.ascontiguousarray(dy), dx)
    return dx


VERSIONS = {
    "maxpool2x2": {"v1": maxpool2x2_v1},
    "maxpool2x2_backward": {"v1": maxpool2x2_backward_v1},
    "avgpool2x2": {"v1": avgpool2x2_v1},
    "avgpool2x2_backward": {"v1": avgpool2x2_backward_v1},
}
