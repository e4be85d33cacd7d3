"""2×2 stride-2 pooling (max and average), forward and backward, Numba CPU kernels.

Legend: C channels, H×W input spatial, h2×w2 = ⌊H/2⌋×⌊W/2⌋ output spatial (floor: an odd last
row/column is dropped and gets zero gradient).

Versions:
  maxpool2x2_v1 / maxpool2x2_backward_v1: one pass, prange over channels. The backward is the
      gather form: each window is visited once and writes its own four input pixels (the window's
      first maximum in row-major order gets dy, the others 0), so no two iterations touch the
      same pixel and nothing races.
  maxpool2x2_backward_v2: the same winners, branchless and vectorised, prange over channels. A
      channel goes pair of input rows by pair of rows; the window's first maximum is v1's
      comparison chain as selects over 1-D row views, which LLVM turns into AVX-512 de-interleaving
      permutes. The top output row is written in one pass and the bottom row in a second that
      recomputes the winners from the two input rows, now in L1: writing both rows in one pass
      (two write streams interleaved with two read streams) ran at v1's speed, 2–5× slower than the
      memory bound; jobs of (channel, row pairs) were slower than whole channels at every VGG19
      shape (bench/RESULTS.md, "The max-pool backward").
  maxpool2x2_backward_v3: v2, but a channel whose rows hold fewer than PACK_BELOW windows first
      packs its even rows into one long row and its odd rows into another (its dy plane is one
      already), runs v2's pair of passes once over them and unpacks. LLVM's vector loop needs about
      40 windows a row on AVX2 (16 on AVX-512): below that v2 ran its scalar remainder, two passes
      a row pair, slower than v1 (block3_conv4's 64² and block4_conv4's 32² pools at 256²: 0.6× v1's
      speed on Zen 3). The copies stay in L1 (a 64² plane is 16 KiB).
  avgpool2x2_v1 / avgpool2x2_backward_v1: same loop structure, mean / dy/4.
Napkin maths (C=64, 256²): forward reads 16 MiB, writes 4 MiB, 3 compares per output: bandwidth
bound. Backward reads x (16 MiB) + dy (4 MiB), writes dx (16 MiB): 36 MiB, ≈ 1 ms at the 36 GB/s
a plain read-x-write-dx loop gets on the 2-core Zen 4 host; measured side by side there, v1 2.0–4.6
ms, v2 1.0–1.6 ms (busy host; bench/bench_pool_versions.py).
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


_ZERO = np.float32(0.0)


@numba.njit(inline="always")
def _winners(a, b, d, e):
    # (a wins, b wins, d wins, e wins): the first maximum of the window (a, b, d, e), by v1's chain
    b_over = b > a
    m = b if b_over else a
    d_over = d > m
    m = d if d_over else m
    e_over = e > m
    return ~(b_over | d_over | e_over), b_over & ~(d_over | e_over), d_over & ~e_over, e_over


@numba.njit(inline="always")
def _maxpool_bwd_pair(x0, x1, g, top, bottom):
    # one pair of input rows x0, x1 (W) and their dy row g (⌊W/2⌋) -> dx rows top, bottom (W): the
    # top row in one pass, the bottom in a second that recomputes the winners from x0, x1 (in L1)
    w, w2 = x0.shape[0], g.shape[0]
    for j in range(w2):
        to_a, to_b, to_d, to_e = _winners(x0[2 * j], x0[2 * j + 1], x1[2 * j], x1[2 * j + 1])
        top[2 * j] = g[j] if to_a else _ZERO
        top[2 * j + 1] = g[j] if to_b else _ZERO
    for j in range(w2):
        to_a, to_b, to_d, to_e = _winners(x0[2 * j], x0[2 * j + 1], x1[2 * j], x1[2 * j + 1])
        bottom[2 * j] = g[j] if to_d else _ZERO
        bottom[2 * j + 1] = g[j] if to_e else _ZERO
    if w > 2 * w2:                           # odd width: the dropped last column
        top[w - 1] = _ZERO
        bottom[w - 1] = _ZERO


# fastmath off, as in v1: the comparison chain's order is the semantics
@numba.njit(parallel=True, cache=True)
def _maxpool_bwd_rows(dy, x, dx):
    c, h, w = x.shape
    h2 = dy.shape[1]
    for k in prange(c):
        for i in range(h2):
            _maxpool_bwd_pair(x[k, 2 * i], x[k, 2 * i + 1], dy[k, i], dx[k, 2 * i], dx[k, 2 * i + 1])
        if h > 2 * h2:                       # odd height: the dropped last row gets no gradient
            last = dx[k, h - 1]
            for jj in range(w):
                last[jj] = _ZERO


def maxpool2x2_backward_v2(dy, x):
    # as v1, bit for bit: dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W -> dx C×H×W
    dx = np.empty_like(x)
    _maxpool_bwd_rows(np.ascontiguousarray(dy), np.ascontiguousarray(x), dx)
    return dx


PACK_BELOW = 48      # windows a row under which v3 packs a channel's rows (v2's vector loop runs from ≈ 40)


# fastmath off, as in v1 and v2
@numba.njit(parallel=True, cache=True)
def _maxpool_bwd_packed(dy, x, dx):
    c, h, w = x.shape
    h2, w2 = dy.shape[1], dy.shape[2]
    row, n = 2 * w2, h2 * 2 * w2
    for k in prange(c):
        even, odd = np.empty(n, np.float32), np.empty(n, np.float32)
        top, bottom = np.empty(n, np.float32), np.empty(n, np.float32)
        for i in range(h2):
            even[i * row:(i + 1) * row] = x[k, 2 * i, :row]
            odd[i * row:(i + 1) * row] = x[k, 2 * i + 1, :row]
        _maxpool_bwd_pair(even, odd, dy[k].ravel(), top, bottom)
        for i in range(h2):
            dx[k, 2 * i, :row] = top[i * row:(i + 1) * row]
            dx[k, 2 * i + 1, :row] = bottom[i * row:(i + 1) * row]
        for ii in range(2 * h2, h):          # odd height: the dropped last row gets no gradient
            dx[k, ii, :] = _ZERO
        if w > row:                          # odd width: the dropped last column
            dx[k, :, w - 1] = _ZERO


def maxpool2x2_backward_v3(dy, x):
    # as v1, bit for bit: dy C×⌊H/2⌋×⌊W/2⌋, x C×H×W -> dx C×H×W; narrow rows packed (module doc)
    dx = np.empty_like(x)
    kernel = _maxpool_bwd_packed if dy.shape[2] < PACK_BELOW else _maxpool_bwd_rows
    kernel(np.ascontiguousarray(dy), np.ascontiguousarray(x), dx)
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
    "maxpool2x2_backward": {"v1": maxpool2x2_backward_v1, "v2": maxpool2x2_backward_v2,
                            "v3": maxpool2x2_backward_v3},
    "avgpool2x2": {"v1": avgpool2x2_v1},
    "avgpool2x2_backward": {"v1": avgpool2x2_backward_v1},
}
