"""3×3 convolution (stride 1, zero padding 1) with bias and ReLU fused, Numba + NumPy-sgemm CPU kernels.

Legend: I channels in, O channels out, H×W spatial, P = H·W pixels, w O×I×3×3, b O.
        t = 3·dy + dx the tap index, T the number of Winograd tiles.
Formula (SPEC.md "Each conv: 3×3, stride 1, zero padding 1, bias, then ReLU"):
        a[o,y,x] = max(0, b[o] + Σ_{i,dy,dx} w[o,i,dy,dx] · x[i, y+dy−1, x+dx−1])

Every version is a `core` that computes the "same" 3×3 convolution with three optional fusions:
an input mask (x·[mask > 0], used by the backward where it is the ReLU mask), a bias and a ReLU on
the output. conv3x3_backward_input.py runs the same cores on flipped, transposed weights.

Versions:
  v1 im2col: pack all 9 shifted copies into cols (9I×P, Numba, parallel over the 9I rows) and do
     one sgemm  W (O×9I) @ cols;  bias + ReLU in one Numba pass over the output. Simple; the
     packing buffer is 9× the input.
  v2 tap form, cheap shift: zero-pad the input once into a flat (H+2)·(W+2) row per channel; in
     that layout every tap's shifted image is a plain strided view (offset dy·(W+2)+dx), so the
     9 tap GEMMs  W_t (O×I) @ view_t  need no copy at all. The output is computed at padded width
     W+2 (2/W extra FLOPs) and cropped in the fused bias+ReLU pass. Done per block of rows so the
     accumulator stays in L2.
  v3 chunked flat-shift im2col: as v2's padded layout, but the 9 views of one row block are
     stacked by memcpy into one K=9I operand (cheap contiguous copies instead of v1's gather) and
     multiplied by one sgemm (O×9I); rows are blocked so cols stays in L2; crop+bias+ReLU fused.
  v4 Winograd F(2×2, 3×3): U = G g Gᵀ (16×O×I, once per weights), V = Bᵀ d B over 4×4 input tiles
     (Numba, parallel over channels, 16×I×T), M = U @ V as 16 batched sgemms (O×I @ I×T), then
     Y = Aᵀ M A with bias + ReLU fused (Numba, parallel over O). 2.25× fewer multiplies than direct.
     Blocked over rows of tiles so V and M stay in cache.
  v5 Winograd F(4×4, 3×3): 6×6 tiles, 36 batched sgemms, 4× fewer multiplies; transforms are
     bigger and float32 error grows (the transform matrices hold values up to 8 and 1/24).
  v6 direct: Numba loops, one job per (output channel, row), each row accumulated as a vector
     along W over the 9·I taps. For few channels (I = 3 or O = 3) where sgemm with K = 27 is
     memory bound.
  best: picks a version by layer shape from BEST (measured in bench/bench_kernels_cpu.py).
"""
from .cpu_threads import matmul  # first: sets the thread policies before Numba's pool starts
import numba
import numpy as np
from numba import prange

_JIT = dict(parallel=True, fastmath=True, cache=True)
_BLOCK_BYTES = 1 << 25              # block working-set target (L3 is large here; measured)


class ConvWeights:
    """w O×I×3×3 and b O, with the repacked forms each version wants, computed once and cached.

    `flipped()` is the weights of the transposed convolution (the backward to the input):
    w'[i,o,dy,dx] = w[o,i,2−dy,2−dx], no bias.
    """

    def __init__(self, w, b=None):
        self.w = np.ascontiguousarray(w, dtype=np.float32)
        o = self.w.shape[0]
        self.b = np.zeros(o, np.float32) if b is None else np.ascontiguousarray(b, dtype=np.float32)
        self._cache = {}

    def get(self, kind):
        if kind not in self._cache:
            self._cache[kind] = _REPACK[kind](self.w)
        return self._cache[kind]

    def flipped(self):
        if "flipped" not in self._cache:
            wf = self.w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)                 # I×O×3×3
            self._cache["flipped"] = ConvWeights(np.ascontiguousarray(wf), None)
        return self._cache["flipped"]


def _as_weights(w, b):
    if isinstance(w, ConvWeights):
        return w
    return ConvWeights(w, b)


def _w_taps(w):
    # O×I×3×3 -> 9×O×I  (one O×I matrix per tap)
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(9, w.shape[0], w.shape[1]))


def _w_mat(w):
    # O×I×3×3 -> O×9I, column t·I + i  (matches cols row t·I + i)
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], 9 * w.shape[1]))


# Winograd F(m×m, 3×3) matrices (Lavin & Gray 2015): Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A
_BT2 = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
_G2 = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64)
_AT2 = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)
_BT4 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64)
_G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64)
_AT4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], np.float64)


def _w_wino(g_mat):
    def repack(w):
        # O×I×3×3 -> (n·n)×O×I;  U = G g Gᵀ per (o, i), computed in float64 then rounded
        u = np.einsum("ak,oikl,bl->aboi", g_mat, w.astype(np.float64), g_mat)
        n = g_mat.shape[0]
        return np.ascontiguousarray(u.reshape(n * n, w.shape[0], w.shape[1]).astype(np.float32))
    return repack


_REPACK = {"taps": _w_taps, "mat": _w_mat, "wino2": _w_wino(_G2), "wino4": _w_wino(_G4)}


# ---------------------------------------------------------------------------------------------
# shared Numba pieces: padding (with the optional mask), im2col packing, the fused epilogue

@numba.njit(**_JIT)
def _pad_flat(x, mask, use_mask, xp):
    # x I×H×W -> xp I×((H+2)(W+2)+2) zero-padded rows, x·[mask>0] when use_mask
    c, h, w = x.shape
    wp = w + 2
    for i in prange(c):
        for q in range(wp):
            xp[i, q] = 0.0
            xp[i, (h + 1) * wp + q] = 0.0
        xp[i, (h + 2) * wp] = 0.0            # 2 slack zeros: the last tap's view runs 2 past the end
        xp[i, (h + 2) * wp + 1] = 0.0
        for y in range(h):
            r = (y + 1) * wp
            xp[i, r] = 0.0
            xp[i, r + w + 1] = 0.0
            if use_mask:
                for q in range(w):
                    xp[i, r + 1 + q] = x[i, y, q] if mask[i, y, q] > 0 else 0.0
            else:
                for q in range(w):
                    xp[i, r + 1 + q] = x[i, y, q]


@numba.njit(**_JIT)
def _im2col(x, mask, use_mask, r0, r1, cols):
    # x I×H×W rows [r0, r1) -> cols 9I×((r1−r0)·W), row t·I + i = x[i] shifted by tap t
    c, h, w = x.shape
    for ti in prange(9 * c):
        t = ti // c
        i = ti - t * c
        dy = t // 3 - 1
        dx = t - 3 * (t // 3) - 1
        for y in range(r0, r1):
            base = (y - r0) * w
            yy = y + dy
            if yy < 0 or yy >= h:
                for q in range(w):
                    cols[ti, base + q] = 0.0
                continue
            for q in range(w):
                xx = q + dx
                v = np.float32(0.0)
                if xx >= 0 and xx < w:
                    v = x[i, yy, xx]
                    if use_mask and mask[i, yy, xx] <= 0:
                        v = np.float32(0.0)
                cols[ti, base + q] = v


@numba.njit(**_JIT)
def _flat_cols(xp, wp, p0, n, cols):
    # xp I×((H+2)(W+2)) -> cols 9I×n: row t·I + i = xp[i, p0 + dy·wp + dx : … + n]  (memcpy)
    c = xp.shape[0]
    for ti in prange(9 * c):
        t = ti // c
        i = ti - t * c
        off = p0 + (t // 3) * wp + (t - 3 * (t // 3))
        cols[ti, :] = xp[i, off:off + n]


@numba.njit(**_JIT)
def _epilogue(acc, b, use_bias, relu, wacc, r0, out):
    # acc O×(rows·wacc) -> out[:, r0:r0+rows, :] (O×H×W): crop to W, + b, ReLU
    o, h, w = out.shape
    rows = acc.shape[1] // wacc
    for k in prange(o):
        bk = b[k] if use_bias else np.float32(0.0)
        for y in range(rows):
            for q in range(w):
                v = acc[k, y * wacc + q] + bk
                if relu and v < 0:
                    v = np.float32(0.0)
                out[k, r0 + y, q] = v


def _rows_per_block(bytes_per_row, h):
    return max(1, min(h, _BLOCK_BYTES // max(1, bytes_per_row)))


def _dummy_mask(x, mask):
    return (x, False) if mask is None else (np.ascontiguousarray(mask), True)


# ---------------------------------------------------------------------------------------------
# v1: im2col + one sgemm

def core_v1(x, cw, mask=None, bias=True, relu=True):
    # x I×H×W, cw ConvWeights (O×I×3×3) -> O×H×W
    i, h, w = x.shape
    wmat = cw.get("mat")                                              # O×9I
    m, use_mask = _dummy_mask(x, mask)
    cols = np.empty((9 * i, h * w), np.float32)                       # 9I×P
    _im2col(x, m, use_mask, 0, h, cols)
    acc = matmul(wmat, cols, np.empty((wmat.shape[0], h * w), np.float32))  # O×P
    out = np.empty((wmat.shape[0], h, w), np.float32)
    _epilogue(acc, cw.b, bias, relu, w, 0, out)
    return out


# v2: 9 tap GEMMs on shifted views of the flat padded input, blocked over rows

def core_v2(x, cw, mask=None, bias=True, relu=True):
    i, h, w = x.shape
    wt = cw.get("taps")                                               # 9×O×I
    o = wt.shape[1]
    wp = w + 2
    m, use_mask = _dummy_mask(x, mask)
    xp = np.empty((i, (h + 2) * wp + 2), np.float32)                      # I×(H+2)(W+2)
    _pad_flat(x, m, use_mask, xp)
    out = np.empty((o, h, w), np.float32)
    rows = _rows_per_block(2 * o * wp * 4, h)
    acc = np.empty((o, rows * wp), np.float32)
    tmp = np.empty((o, rows * wp), np.float32)
    for r0 in range(0, h, rows):
        n = (min(h, r0 + rows) - r0) * wp
        a, t_ = acc[:, :n], tmp[:, :n]
        for t in range(9):
            off = r0 * wp + (t // 3) * wp + t % 3
            view = xp[:, off:off + n]                                 # I×n, row stride (H+2)(W+2)
            if t == 0:
                matmul(wt[t], view, a)
            else:
                matmul(wt[t], view, t_)
                a += t_
        _epilogue(a, cw.b, bias, relu, wp, r0, out)
    return out


# v3: flat-shift im2col (memcpy) per row block + one K=9I sgemm

def core_v3(x, cw, mask=None, bias=True, relu=True):
    i, h, w = x.shape
    wmat = cw.get("mat")                                              # O×9I
    o = wmat.shape[0]
    wp = w + 2
    m, use_mask = _dummy_mask(x, mask)
    xp = np.empty((i, (h + 2) * wp + 2), np.float32)
    _pad_flat(x, m, use_mask, xp)
    out = np.empty((o, h, w), np.float32)
    rows = _rows_per_block((9 * i + o) * wp * 4, h)
    cols = np.empty((9 * i, rows * wp), np.float32)
    acc = np.empty((o, rows * wp), np.float32)
    for r0 in range(0, h, rows):
        n = (min(h, r0 + rows) - r0) * wp
        c_, a = cols[:, :n], acc[:, :n]
        _flat_cols(xp, wp, r0 * wp, n, c_)
        matmul(wmat, c_, a)
        _epilogue(a, cw.b, bias, relu, wp, r0, out)
    return out


# ---------------------------------------------------------------------------------------------
# v4: Winograd F(2×2, 3×3)

@numba.njit(inline="always")
def _ld(x, mask, use_mask, i, y, q, h, w):
    if y < 0 or y >= h or q < 0 or q >= w:
        return np.float32(0.0)
    v = x[i, y, q]
    if use_mask and mask[i, y, q] <= 0:
        return np.float32(0.0)
    return v


@numba.njit(**_JIT)
def _wino2_in(x, mask, use_mask, tr0, tr1, tw, v):
    # x I×H×W tile rows [tr0, tr1) -> v 16×I×Tb;  V = Bᵀ d B for each 4×4 tile d at (2ty−1, 2tx−1)
    # One job per (channel, tile row): the 4 input rows are copied once into a zero-padded strip
    # (mask applied there), Bᵀ is applied down the strip's columns (vectorises along W), then B
    # across each tile's 4 columns; no bounds checks in the inner loops.
    c, h, w = x.shape
    nb = tr1 - tr0
    wp = 2 * tw + 2
    for job in prange(c * nb):
        i = job // nb
        ty = tr0 + job - i * nb
        strip = np.zeros((4, wp), np.float32)
        for r in range(4):
            y = 2 * ty - 1 + r
            if y >= 0 and y < h:
                if use_mask:
                    for q in range(w):
                        strip[r, q + 1] = x[i, y, q] if mask[i, y, q] > 0 else 0.0
                else:
                    for q in range(w):
                        strip[r, q + 1] = x[i, y, q]
        e = np.empty((4, wp), np.float32)
        for q in range(wp):                                   # Bᵀ d down the columns
            d0, d1, d2, d3 = strip[0, q], strip[1, q], strip[2, q], strip[3, q]
            e[0, q] = d0 - d2
            e[1, q] = d1 + d2
            e[2, q] = d2 - d1
            e[3, q] = d1 - d3
        t0 = (ty - tr0) * tw
        for r in range(4):                                    # (Bᵀ d) B across each tile
            for tx in range(tw):
                q = 2 * tx
                e0, e1, e2, e3 = e[r, q], e[r, q + 1], e[r, q + 2], e[r, q + 3]
                v[4 * r + 0, i, t0 + tx] = e0 - e2
                v[4 * r + 1, i, t0 + tx] = e1 + e2
                v[4 * r + 2, i, t0 + tx] = e2 - e1
                v[4 * r + 3, i, t0 + tx] = e1 - e3


@numba.njit(**_JIT)
def _wino2_out(mm, b, use_bias, relu, tr0, tr1, tw, out):
    # mm 16×O×Tb -> out O×H×W tile rows [tr0, tr1);  Y = Aᵀ M A (2×2), + b, ReLU, cropped
    # One job per (output channel, tile row); M A is done plane-row by plane-row (contiguous in tx).
    o, h, w = out.shape
    nb = tr1 - tr0
    for job in prange(o * nb):
        k = job // nb
        ty = tr0 + job - k * nb
        t0 = (ty - tr0) * tw
        bk = b[k] if use_bias else np.float32(0.0)
        s = np.empty((8, tw), np.float32)                     # rows r: (m0+m1+m2, m1−m2−m3)
        for r in range(4):
            for tx in range(tw):
                m0, m1, m2, m3 = mm[4 * r, k, t0 + tx], mm[4 * r + 1, k, t0 + tx], \
                    mm[4 * r + 2, k, t0 + tx], mm[4 * r + 3, k, t0 + tx]
                s[2 * r, tx] = m0 + m1 + m2
                s[2 * r + 1, tx] = m1 - m2 - m3
        y = 2 * ty
        for tx in range(w // 2):
            y00 = s[0, tx] + s[2, tx] + s[4, tx] + bk
            y01 = s[1, tx] + s[3, tx] + s[5, tx] + bk
            if relu:
                y00, y01 = max(y00, 0.0), max(y01, 0.0)
            out[k, y, 2 * tx] = y00
            out[k, y, 2 * tx + 1] = y01
        if y + 1 < h:
            for tx in range(w // 2):
                y10 = s[2, tx] - s[4, tx] - s[6, tx] + bk
                y11 = s[3, tx] - s[5, tx] - s[7, tx] + bk
                if relu:
                    y10, y11 = max(y10, 0.0), max(y11, 0.0)
                out[k, y + 1, 2 * tx] = y10
                out[k, y + 1, 2 * tx + 1] = y11
        if w % 2 == 1:                                        # odd width: last tile's left column
            tx = tw - 1
            y00 = s[0, tx] + s[2, tx] + s[4, tx] + bk
            out[k, y, w - 1] = max(y00, 0.0) if relu else y00
            if y + 1 < h:
                y10 = s[2, tx] - s[4, tx] - s[6, tx] + bk
                out[k, y + 1, w - 1] = max(y10, 0.0) if relu else y10


def core_v4(x, cw, mask=None, bias=True, relu=True):
    i, h, w = x.shape
    u = cw.get("wino2")                                               # 16×O×I
    o = u.shape[1]
    m, use_mask = _dummy_mask(x, mask)
    th, tw = (h + 1) // 2, (w + 1) // 2
    out = np.empty((o, h, w), np.float32)
    trows = _rows_per_block(16 * (i + o) * tw * 4, th)
    v = np.empty((16, i, trows * tw), np.float32)
    mm = np.empty((16, o, trows * tw), np.float32)
    for tr0 in range(0, th, trows):
        tr1 = min(th, tr0 + trows)
        n = (tr1 - tr0) * tw
        vb, mb = v[:, :, :n], mm[:, :, :n]
        _wino2_in(x, m, use_mask, tr0, tr1, tw, vb)
        matmul(u, vb, mb)                                      # 16 × (O×I @ I×n)
        _wino2_out(mb, cw.b, bias, relu, tr0, tr1, tw, out)
    return out


# ---------------------------------------------------------------------------------------------
# v5: Winograd F(4×4, 3×3), transforms as small dense matrix products

_BT4_32 = _BT4.astype(np.float32)
_AT4_32 = _AT4.astype(np.float32)


@numba.njit(**_JIT)
def _wino4_in(x, mask, use_mask, tr0, tr1, tw, bt, v):
    # x I×H×W tile rows [tr0, tr1) -> v 36×I×Tb;  V = Bᵀ d B for each 6×6 tile at (4ty−1, 4tx−1)
    c, h, w = x.shape
    for i in prange(c):
        d = np.empty((6, 6), np.float32)
        e = np.empty((6, 6), np.float32)
        for ty in range(tr0, tr1):
            y0 = 4 * ty - 1
            for tx in range(tw):
                x0 = 4 * tx - 1
                t = (ty - tr0) * tw + tx
                for r in range(6):
                    for s in range(6):
                        d[r, s] = _ld(x, mask, use_mask, i, y0 + r, x0 + s, h, w)
                for r in range(6):                     # e = Bᵀ d
                    for s in range(6):
                        acc = np.float32(0.0)
                        for k in range(6):
                            acc += bt[r, k] * d[k, s]
                        e[r, s] = acc
                for r in range(6):                     # V = e B
                    for s in range(6):
                        acc = np.float32(0.0)
                        for k in range(6):
                            acc += e[r, k] * bt[s, k]
                        v[6 * r + s, i, t] = acc


@numba.njit(**_JIT)
def _wino4_out(mm, b, use_bias, relu, tr0, tr1, tw, at, out):
    # mm 36×O×Tb -> out O×H×W;  Y = Aᵀ M A (4×4), + b, ReLU, cropped
    o, h, w = out.shape
    for k in prange(o):
        bk = b[k] if use_bias else np.float32(0.0)
        e = np.empty((6, 4), np.float32)
        for ty in range(tr0, tr1):
            for tx in range(tw):
                t = (ty - tr0) * tw + tx
                for r in range(6):                     # e = M A
                    for s in range(4):
                        acc = np.float32(0.0)
                        for j in range(6):
                            acc += mm[6 * r + j, k, t] * at[s, j]
                        e[r, s] = acc
                for r in range(4):                     # Y = Aᵀ e
                    y = 4 * ty + r
                    if y >= h:
                        break
                    for s in range(4):
                        q = 4 * tx + s
                        if q >= w:
                            break
                        acc = bk
                        for j in range(6):
                            acc += at[r, j] * e[j, s]
                        if relu and acc < 0:
                            acc = np.float32(0.0)
                        out[k, y, q] = acc


def core_v5(x, cw, mask=None, bias=True, relu=True):
    i, h, w = x.shape
    u = cw.get("wino4")                                               # 36×O×I
    o = u.shape[1]
    m, use_mask = _dummy_mask(x, mask)
    th, tw = (h + 3) // 4, (w + 3) // 4
    out = np.empty((o, h, w), np.float32)
    trows = _rows_per_block(36 * (i + o) * tw * 4, th)
    v = np.empty((36, i, trows * tw), np.float32)
    mm = np.empty((36, o, trows * tw), np.float32)
    for tr0 in range(0, th, trows):
        tr1 = min(th, tr0 + trows)
        n = (tr1 - tr0) * tw
        vb, mb = v[:, :, :n], mm[:, :, :n]
        _wino4_in(x, m, use_mask, tr0, tr1, tw, _BT4_32, vb)
        matmul(u, vb, mb)                                      # 36 × (O×I @ I×n)
        _wino4_out(mb, cw.b, bias, relu, tr0, tr1, tw, _AT4_32, out)
    return out


# ---------------------------------------------------------------------------------------------
# v6: direct convolution in Numba, for few channels (the 3→64 first layer and its backward 64→3),
# where a GEMM with K = 9·3 = 27 is memory bound and sgemm is at its worst

@numba.njit(**_JIT)
def _direct(xp, wts, b, use_bias, relu, out):
    # xp I×((H+2)(W+2)+2) padded input, wts O×I×3×3 -> out O×H×W; one job per (o, output row),
    # the row accumulated as a vector along W (27·I fused multiply-adds per pixel)
    o, h, w = out.shape
    c = xp.shape[0]
    wp = w + 2
    for job in prange(o * h):
        k = job // h
        y = job - k * h
        acc = np.empty(w, np.float32)
        bk = b[k] if use_bias else np.float32(0.0)
        for q in range(w):
            acc[q] = bk
        for i in range(c):
            for dy in range(3):
                base = (y + dy) * wp
                for dx in range(3):
                    wv = wts[k, i, dy, dx]
                    for q in range(w):
                        acc[q] += wv * xp[i, base + dx + q]
        for q in range(w):
            v = acc[q]
            out[k, y, q] = max(v, np.float32(0.0)) if relu else v


def core_v6(x, cw, mask=None, bias=True, relu=True):
    i, h, w = x.shape
    o = cw.w.shape[0]
    m, use_mask = _dummy_mask(x, mask)
    xp = np.empty((i, (h + 2) * (w + 2) + 2), np.float32)
    _pad_flat(x, m, use_mask, xp)
    out = np.empty((o, h, w), np.float32)
    _direct(xp, cw.w, cw.b, bias, relu, out)
    return out


CORES = {"v1": core_v1, "v2": core_v2, "v3": core_v3, "v4": core_v4, "v5": core_v5, "v6": core_v6}
REPACKS = {"v1": ("mat",), "v2": ("taps",), "v3": ("mat",), "v4": ("wino2",), "v5": ("wino4",),
           "v6": ()}

# Winners by input channels (bench/bench_kernels_cpu.py; measurements on a shared, noisy 2-core
# machine: v1 for the K=27 first layer, Winograd F(2×2) v4 elsewhere). "best" dispatches on this.
BEST = {3: "v1"}
BEST_DEFAULT = "v4"


def best_core(i, o, h, w):
    return CORES[BEST.get(i, BEST_DEFAULT)]


def _make(core):
    def conv3x3_relu(x, w, b=None):
        # x I×H×W, w O×I×3×3 (or ConvWeights), b O -> a O×H×W;  a = max(0, b + conv3x3(x, w))
        cw = _as_weights(w, b)
        x = np.ascontiguousarray(x, dtype=np.float32)
        return core(x, cw)
    return conv3x3_relu


conv3x3_relu_v1 = _make(core_v1)
conv3x3_relu_v2 = _make(core_v2)
conv3x3_relu_v3 = _make(core_v3)
conv3x3_relu_v4 = _make(core_v4)
conv3x3_relu_v5 = _make(core_v5)
conv3x3_relu_v6 = _make(core_v6)


def conv3x3_relu_best(x, w, b=None):
    # x I×H×W -> O×H×W;  the version BEST picks for this layer shape
    cw = _as_weights(w, b)
    x = np.ascontiguousarray(x, dtype=np.float32)
    return best_core(x.shape[0], cw.w.shape[0], x.shape[1], x.shape[2])(x, cw)


KERNELS = {
    "conv3x3_relu_v1": conv3x3_relu_v1,
    "conv3x3_relu_v2": conv3x3_relu_v2,
    "conv3x3_relu_v3": conv3x3_relu_v3,
    "conv3x3_relu_v4": conv3x3_relu_v4,
    "conv3x3_relu_v5": conv3x3_relu_v5,
    "conv3x3_relu_v6": conv3x3_relu_v6,
    "conv3x3_relu_best": conv3x3_relu_best,
}
