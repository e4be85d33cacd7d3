"""3×3 convolution (stride 1, zero padding 1) with bias and ReLU fused, Numba + NumPy-sgemm CPU kernels.

Legend: I channels in, O channels out, H×W spatial, P = H·W pixels, w O×I×3×3, b O.
        t = 3·dy + dx the tap index, T the number of Winograd tiles, n×n a Winograd input tile.
Formula (SPEC.md "Each conv: 3×3, stride 1, zero padding 1, bias, then ReLU"):
        a[o,y,x] = max(0, b[o] + Σ_{i,dy,dx} w[o,i,dy,dx] · x[i, y+dy−1, x+dx−1])

Every version is a `core` that computes the "same" 3×3 correlation of x into a given `out`, with
optional fusions: an input mask (x·[mask > 0], the ReLU mask of the backward), a bias, a ReLU;
and `backward`, which computes rev(corr3x3(rev(x·[mask > 0]), wᵀ)) instead: the weights' channel
roles swapped (wᵀ[i,o] = w[o,i]) and x, mask, out read/written reversed along both spatial axes,
which is the backward to the input (conv3x3_backward_input.py). So the backward reads the very
weight forms the forward reads (ConvWeights): one prepared copy per layer.

Versions:
  v1 im2col: pack all 9 shifted copies into cols (9I×P, Numba, parallel over the 9I rows) and do
     one sgemm  W (O×9I) @ cols;  bias + ReLU in one Numba pass over the output. Simple; blocked
     over rows so the packing buffer (9× the input) stays bounded.
  v2 tap form, cheap shift: zero-pad the input once into a flat (H+2)·(W+2) row per channel; in
     that layout every tap's shifted image is a plain strided view (offset dy·(W+2)+dx), so the
     9 tap GEMMs  W_t (O×I) @ view_t  need no copy at all. The output is computed at padded width
     W+2 (2/W extra FLOPs) and cropped in the fused bias+ReLU pass. Done per block of rows so the
     accumulator stays in L2.
  v3 chunked flat-shift im2col: as v2's padded layout, but the 9 views of one row block are
     stacked by memcpy into one K=9I operand (cheap contiguous copies instead of v1's gather) and
     multiplied by one sgemm (O×9I); rows are blocked so cols stays in L2; crop+bias+ReLU fused.
  v4 Winograd F(2×2, 3×3): U = G g Gᵀ (16×O×I, once per weights), V = Bᵀ d B over 4×4 input tiles
     (Numba, parallel over (channel, tile row), 16×I×T), M = U @ V as 16 batched sgemms
     (O×I @ I×T), then Y = Aᵀ M A with bias + ReLU fused (Numba, parallel over (O, tile row)).
     2.25× fewer multiplies than direct. Blocked over rows of tiles so V and M stay in cache.
  v5 Winograd F(4×4, 3×3): the same driver with 6×6 tiles, 36 batched sgemms, 4× fewer
     multiplies; transforms are bigger and float32 error grows (entries up to 8 and 1/24).
  v6 direct: Numba loops, one job per (output row, block of 4 output channels), each row
     accumulated as a vector along W over the 9·I taps. For few channels (3 in or out), where
     sgemm with K = 27 or M = 3 is memory bound and Winograd's transforms dominate.
  v7 Winograd F(4×4), fused per thread: v5's three stages, but each of our threads takes its own
     tile rows and runs in-transform, 36 sgemms and out-transform on a chunk small enough
     (_L2_BYTES) that V and M stay in its core's caches; U is read once a chunk. For layers with few channels (U small)
     on large images; on 256+ channels v5 is faster (U, up to 36 MiB, read once a block).
  v8 v5 with its two transforms run on our own threads (v7's one-thread transforms, each call on a
     chunk of channels handed out as a thread is free) instead of Numba's parallel loops: no
     parallel-loop kernels of its own to compile, and a thread on a busy core takes fewer chunks;
     bit for bit v5's results, but up to 4 % slower than v5 a whole evaluation on a quiet host.
Which version runs for which layer is chosen in nst/backends/numba_backend.py (CHOSEN).
Workspace (padded input, cols, V, M) comes from per-thread buffers kept across calls (≤ about
_BLOCK_BYTES each): fresh pages cost the kernel time to zero, and every conv call wanted tens of
MB of them (bench/RESULTS.md has the numbers).
"""
from .cpu_threads import THREADS, matmul, on_threads  # first: starts Numba's pool with the thread policies
import threading

import numba
import numpy as np
from numba import prange

_JIT = dict(parallel=True, fastmath=True, cache=True)
_JIT_ONE_THREAD = dict(fastmath=True, cache=True, nogil=True)     # for v7's own threads
_BLOCK_BYTES = 1 << 25              # block working-set target (fits this machine's large L3)


def _w_taps(w):
    # O×I×3×3 -> 9×O×I  (one O×I matrix per tap)
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(9, w.shape[0], w.shape[1]))


def _w_mat(w):
    # O×I×3×3 -> O×9I, column t·I + i  (matches cols row t·I + i)
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], 9 * w.shape[1]))


def _w_mat_t(w):
    # O×I×3×3 -> I×9O, column t·O + o: the transposed layer's "mat"
    return np.ascontiguousarray(w.transpose(1, 2, 3, 0).reshape(w.shape[1], 9 * w.shape[0]))


# Winograd F(m×m, 3×3) matrices (Lavin & Gray 2015): Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A; G builds U,
# Bᵀ and Aᵀ are written out as formulas in the transforms below
_G2 = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64)
_BT4 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64)
_G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64)
_AT4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], np.float64)


def _w_wino(g_mat):
    def repack(w):
        # O×I×3×3 -> (n·n)×O×I;  U = G g Gᵀ per (o, i), computed in float64 then rounded, in
        # blocks of 64 output channels (the float64 temporaries stay small)
        n, o, i = g_mat.shape[0], w.shape[0], w.shape[1]
        u = np.empty((n, n, o, i), np.float32)
        for k in range(0, o, 64):
            u[:, :, k:k + 64] = (g_mat @ w[k:k + 64].astype(np.float64) @ g_mat.T).transpose(2, 3, 0, 1)
        return u.reshape(n * n, o, i)
    return repack


FORMS = {"w": lambda w: w, "mat": _w_mat, "mat_t": _w_mat_t, "taps": _w_taps,
         "wino2": _w_wino(_G2), "wino4": _w_wino(_G4)}


class ConvWeights:
    """A layer's weights w O×I×3×3 in the forms its cores read (FORMS), each computed once.

    `keep`: the forms to compute now; the raw w is then dropped unless "w" is among them, so a
    prepared layer holds only what its chosen cores read (the backward reads the same forms,
    transposed). Without `keep`, every form is computed on first use.
    """

    def __init__(self, w, keep=None):
        w = np.ascontiguousarray(w, dtype=np.float32)
        if w.ndim != 4 or w.shape[2:] != (3, 3):
            raise ValueError(f"conv weights must be O×I×3×3, got shape {w.shape}")
        self.shape = w.shape
        self._forms = {"w": w}
        if keep is not None:
            for kind in keep:
                self.get(kind)
            if "w" not in keep:
                del self._forms["w"]

    def get(self, kind):
        if kind not in self._forms:
            if "w" not in self._forms:
                raise ValueError(f"conv weights were prepared as {sorted(self._forms)}, not {kind!r}")
            self._forms[kind] = FORMS[kind](self._forms["w"])
        return self._forms[kind]

    @property
    def nbytes(self):
        return sum(a.nbytes for a in self._forms.values())


def as_weights(w):
    return w if isinstance(w, ConvWeights) else ConvWeights(w)


_local = threading.local()


def _scratch(slot, shape):
    # float32 array of `shape` carved from this thread's buffer `slot`, grown on demand, kept
    n = int(np.prod(shape))
    bufs = _local.__dict__.setdefault("bufs", {})
    if slot not in bufs or bufs[slot].size < n:
        bufs.pop(slot, None)                                          # free before growing
        bufs[slot] = np.empty(n, np.float32)
    return bufs[slot][:n].reshape(shape)


_NO_BIAS = np.zeros(1, np.float32)


def _bias_args(b):
    return (_NO_BIAS, False) if b is None else (np.ascontiguousarray(b, dtype=np.float32), True)


def _mask_args(x, mask):
    return (x, False) if mask is None else (mask, True)


# ---------------------------------------------------------------------------------------------
# shared Numba pieces: reading x (mask, reversal), padding, im2col packing, the fused epilogue.
# rev: read x (and mask) and write out reversed along both spatial axes (the backward's rev(·)).

@numba.njit(inline="always")
def _ld(x, mask, use_mask, rev, i, y, q, h, w):
    # x[i, y, q] (0 outside the image) · [mask > 0], reversed coordinates when rev
    if y < 0 or y >= h or q < 0 or q >= w:
        return np.float32(0.0)
    if rev:
        y, q = h - 1 - y, w - 1 - q
    v = x[i, y, q]
    if use_mask and mask[i, y, q] <= 0:
        return np.float32(0.0)
    return v


@numba.njit(inline="always")
def _copy_row(x, mask, use_mask, rev, i, y, dst):
    # dst[0 : W] = row y of channel i of x·[mask > 0] (of rev(x) when rev). Both values are
    # loaded before the select, so it compiles to a blend, not a branch on the mask's sign. Callers
    # pass a view starting where the row goes: an offset added here (dst[d0 + q]) ran the copy
    # 1.5× slower (not vectorised), an input transform's whole job 1.46 → 0.99 µs (bench/RESULTS.md).
    h, w = x.shape[1], x.shape[2]
    zero = np.float32(0.0)
    ys = h - 1 - y if rev else y
    xr, mr = x[i, ys], mask[i, ys]
    if rev:                                               # forward loads, reversed stores
        if use_mask:
            for q in range(w):
                a, m = xr[q], mr[q]
                dst[w - 1 - q] = a if m > 0 else zero
        else:
            for q in range(w):
                dst[w - 1 - q] = xr[q]
    elif use_mask:
        for q in range(w):
            a, m = xr[q], mr[q]
            dst[q] = a if m > 0 else zero
    else:
        for q in range(w):
            dst[q] = xr[q]


@numba.njit(inline="always")
def _put_row(row, bk, relu, rev, k, y, out):
    # out[k, y, :] = max(0, row[:W] + bk) (ReLU when relu), into rev(out) when rev
    h, w = out.shape[1], out.shape[2]
    if rev:
        yr = h - 1 - y
        for q in range(w):
            v = row[w - 1 - q] + bk
            out[k, yr, q] = max(v, np.float32(0.0)) if relu else v
    else:
        for q in range(w):
            v = row[q] + bk
            out[k, y, q] = max(v, np.float32(0.0)) if relu else v


@numba.njit(**_JIT)
def _pad_flat(x, mask, use_mask, rev, r0, r1, xp):
    # x I×H×W rows [r0−1, r1] -> xp I×((r1−r0+2)(W+2)+2): zero-padded rows (zero outside the image,
    # 2 slack zeros at the end: the last tap's view runs 2 past), x·[mask>0] when use_mask
    c, h, w = x.shape
    wp = w + 2
    n = r1 - r0 + 2
    for i in prange(c):
        xp[i, n * wp] = 0.0
        xp[i, n * wp + 1] = 0.0
        for j in range(n):
            y = r0 - 1 + j
            r = j * wp
            if y < 0 or y >= h:
                for q in range(wp):
                    xp[i, r + q] = 0.0
            else:
                xp[i, r] = 0.0
                xp[i, r + w + 1] = 0.0
                _copy_row(x, mask, use_mask, rev, i, y, xp[i, r + 1:])


@numba.njit(**_JIT)
def _im2col(x, mask, use_mask, rev, r0, r1, cols):
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
                cols[ti, base + q] = _ld(x, mask, use_mask, rev, i, yy, q + dx, h, w)


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
def _epilogue(acc, b, use_bias, relu, wacc, r0, rev, out):
    # acc O×(rows·wacc) -> out[:, r0:r0+rows, :] (O×H×W): crop to W, + b, ReLU
    o, h, w = out.shape
    rows = acc.shape[1] // wacc
    for k in prange(o):
        bk = b[k] if use_bias else np.float32(0.0)
        for y in range(rows):
            _put_row(acc[k, y * wacc:y * wacc + w], bk, relu, rev, k, r0 + y, out)


def _rows_per_block(bytes_per_row, h):
    return max(1, min(h, _BLOCK_BYTES // max(1, bytes_per_row)))


# ---------------------------------------------------------------------------------------------
# the cores: core(x I×H×W, cw, b O or None, mask None or I×H×W, relu, backward, out O×H×W)
# backward: out = rev(corr3x3(rev(x·[mask>0]), wᵀ)) (conv3x3_backward_input.py); x, mask, out C-contiguous

def core_v1(x, cw, b, mask, relu, backward, out):
    # im2col + one sgemm per block of rows: out = W (O×9I) @ cols (9I×P)
    i, h, w = x.shape
    wmat = cw.get("mat_t" if backward else "mat")                   # O×9I
    o = wmat.shape[0]
    m, use_mask = _mask_args(x, mask)
    rows = _rows_per_block((9 * i + o) * w * 4, h)
    cols, acc = _scratch("in", (9 * i, rows * w)), _scratch("acc", (o, rows * w))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        c_, a = cols[:, :(r1 - r0) * w], acc[:, :(r1 - r0) * w]
        _im2col(x, m, use_mask, backward, r0, r1, c_)                # 9I×(rows·W)
        matmul(wmat, c_, a)                                           # O×(rows·W)
        _epilogue(a, *_bias_args(b), relu, w, r0, backward, out)


def core_v2(x, cw, b, mask, relu, backward, out):
    # 9 tap GEMMs on shifted views of the flat padded input, blocked over rows
    i, h, w = x.shape
    wt = cw.get("taps")                                               # 9×O×I
    if backward:
        wt = wt.transpose(0, 2, 1)                                    # 9×I×O view
    o, wp = wt.shape[1], w + 2
    m, use_mask = _mask_args(x, mask)
    xp = _scratch("pad", (i, (h + 2) * wp + 2))                      # I×(H+2)(W+2)
    _pad_flat(x, m, use_mask, backward, 0, h, xp)
    rows = _rows_per_block(2 * o * wp * 4, h)
    acc, tmp = _scratch("acc", (o, rows * wp)), _scratch("tmp", (o, rows * wp))
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
        _epilogue(a, *_bias_args(b), relu, wp, r0, backward, out)


def core_v3(x, cw, b, mask, relu, backward, out):
    # flat-shift im2col (memcpy) per row block + one K=9I sgemm
    i, h, w = x.shape
    wmat = cw.get("mat_t" if backward else "mat")                   # O×9I
    o, wp = wmat.shape[0], w + 2
    m, use_mask = _mask_args(x, mask)
    xp = _scratch("pad", (i, (h + 2) * wp + 2))
    _pad_flat(x, m, use_mask, backward, 0, h, xp)
    rows = _rows_per_block((9 * i + o) * wp * 4, h)
    cols, acc = _scratch("in", (9 * i, rows * wp)), _scratch("acc", (o, rows * wp))
    for r0 in range(0, h, rows):
        n = (min(h, r0 + rows) - r0) * wp
        c_, a = cols[:, :n], acc[:, :n]
        _flat_cols(xp, wp, r0 * wp, n, c_)
        matmul(wmat, c_, a)
        _epilogue(a, *_bias_args(b), relu, wp, r0, backward, out)


# ---------------------------------------------------------------------------------------------
# v4: Winograd F(2×2, 3×3)

@numba.njit(**_JIT)
def _wino2_in(x, mask, use_mask, rev, tr0, tr1, tw, v):
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
                _copy_row(x, mask, use_mask, rev, i, y, strip[r, 1:])
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
def _wino2_out(mm, b, use_bias, relu, rev, tr0, tr1, tw, out):
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
        row = np.empty(2 * tw, np.float32)
        for tx in range(tw):                                  # output row y
            row[2 * tx] = s[0, tx] + s[2, tx] + s[4, tx]
            row[2 * tx + 1] = s[1, tx] + s[3, tx] + s[5, tx]
        _put_row(row, bk, relu, rev, k, y, out)
        if y + 1 < h:                                         # output row y + 1
            for tx in range(tw):
                row[2 * tx] = s[2, tx] - s[4, tx] - s[6, tx]
                row[2 * tx + 1] = s[3, tx] - s[5, tx] - s[7, tx]
            _put_row(row, bk, relu, rev, k, y + 1, out)


# v5: Winograd F(4×4, 3×3), the same strip scheme with 6×6 tiles at stride 4; _bt6 and _at6
# write out _BT4 and _AT4 (tests/test_ops.py checks them against the matrices)

_2, _4, _5, _8 = (np.float32(c) for c in (2, 4, 5, 8))    # float32: Numba types int × float32 as float64


@numba.njit(inline="always")
def _bt6(d0, d1, d2, d3, d4, d5):
    # Bᵀ d for one column d of 6
    return (_4 * d0 - _5 * d2 + d4, d3 + d4 - _4 * (d1 + d2), _4 * (d1 - d2) - d3 + d4,
            _2 * (d3 - d1) - d2 + d4, _2 * (d1 - d3) - d2 + d4, _4 * d1 - _5 * d3 + d5)


@numba.njit(inline="always")
def _at6(m0, m1, m2, m3, m4, m5):
    # Aᵀ m for one column m of 6 -> 4
    p, q = m1 + m2, m1 - m2
    r, t = m3 + m4, m3 - m4
    return m0 + p + r, q + _2 * t, p + _4 * r, q + _8 * t + m5


@numba.njit(**_JIT)
def _wino4_in(x, mask, use_mask, rev, tr0, tr1, tw, v):
    # x I×H×W tile rows [tr0, tr1) -> v 36×I×Tb;  V = Bᵀ d B for each 6×6 tile d at (4ty−1, 4tx−1)
    # of x·[mask>0] (of rev(x·[mask>0]) when rev). One job per (channel, tile row): the strip's 6
    # rows are copied and zero padded, Bᵀ runs down them as vectors along the row (1-D row views:
    # 3-D indexing in these loops does not vectorise), B across each tile's 6 columns (from the row
    # split by column phase: contiguous reads, no gathers).
    # When rev, tile (ty, tx) of rev(x) is x's rows h−4ty−r and columns from w−4tx down; it is
    # stored at tile row tr1−1−ty, column tw−1−tx: V then holds the tiles in x's own order, every
    # array is read and written upwards (a downward walk is slower: bench/RESULTS.md), and only
    # each tile's 6 rows and columns, and its output's 4 (_wino4_out), are taken in reverse order.
    nb = tr1 - tr0
    for i in prange(x.shape[0]):                              # scratch once a channel (per job: 2–5 % slower)
        d, e, p = _wino4_in_scratch(tw)
        for job in range(i * nb, (i + 1) * nb):
            _wino4_in_job(x, mask, use_mask, rev, tr0, tr1, tw, v, job, d, e, p)


@numba.njit(**_JIT_ONE_THREAD)
def _wino4_in_one_thread(x, mask, use_mask, rev, tr0, tr1, tw, v, c0, c1):
    # _wino4_in for input channels [c0, c1) on the calling thread alone (v7 and v8 run one per
    # thread of their own), its strips made once
    d, e, p = _wino4_in_scratch(tw)
    for job in range(c0 * (tr1 - tr0), c1 * (tr1 - tr0)):
        _wino4_in_job(x, mask, use_mask, rev, tr0, tr1, tw, v, job, d, e, p)


@numba.njit(inline="always")
def _wino4_in_scratch(tw):
    # a job's scratch: d 6×(4tw+2) the strip, e 6×(4tw+4) Bᵀ d, p 4×(tw+1) a row of e by column phase
    n = 4 * tw + 2
    return np.empty((6, n), np.float32), np.empty((6, n + 2), np.float32), np.empty((4, tw + 1), np.float32)


@numba.njit(inline="always")
def _wino4_in_job(x, mask, use_mask, rev, tr0, tr1, tw, v, job, d, e, p):
    # _wino4_in's job number `job`: channel i = job // (tr1 − tr0), V's tile row job mod (tr1 − tr0);
    # d, e, p: _wino4_in_scratch
    h, w = x.shape[1], x.shape[2]
    nb = tr1 - tr0
    n = 4 * tw + 2                                            # strip columns
    at = 4 * tw + 1 - w if rev else 1                         # x column q sits at at + q
    i = job // nb
    slot = job - i * nb                                   # V's tile row: rev(x)'s tile row
    ty = tr1 - 1 - slot if rev else tr0 + slot            # tr1−1−slot, so x is read upwards
    d[:, :] = 0
    for rr in range(6):
        r = 5 - rr if rev else rr
        y = h - 4 * ty - r if rev else 4 * ty - 1 + r
        if y >= 0 and y < h:
            _copy_row(x, mask, use_mask, False, i, y, d[r, at:])
    d0, d1, d2, d3, d4, d5 = d[0], d[1], d[2], d[3], d[4], d[5]
    e0, e1, e2, e3, e4, e5 = e[0], e[1], e[2], e[3], e[4], e[5]
    for q in range(n):                                    # Bᵀ d down the columns
        e0[q], e1[q], e2[q], e3[q], e4[q], e5[q] = _bt6(d0[q], d1[q], d2[q], d3[q], d4[q], d5[q])
    t0 = slot * tw
    p0, p1, p2, p3 = p[0], p[1], p[2], p[3]
    for r in range(6):                                    # (Bᵀ d) B across each tile
        er = e[r]
        for t in range(tw + 1):                           # by column phase, p_k[t] = er[4t + k],
            p0[t], p1[t], p2[t], p3[t] = er[4 * t], er[4 * t + 1], er[4 * t + 2], er[4 * t + 3]
        v0, v1, v2 = v[6 * r, i, t0:t0 + tw], v[6 * r + 1, i, t0:t0 + tw], v[6 * r + 2, i, t0:t0 + tw]
        v3, v4, v5 = v[6 * r + 3, i, t0:t0 + tw], v[6 * r + 4, i, t0:t0 + tw], v[6 * r + 5, i, t0:t0 + tw]
        if rev:                                           # so B reads contiguously (no gathers)
            for tx in range(tw):
                v0[tx], v1[tx], v2[tx], v3[tx], v4[tx], v5[tx] = _bt6(
                    p1[tx + 1], p0[tx + 1], p3[tx], p2[tx], p1[tx], p0[tx])
        else:
            for tx in range(tw):
                v0[tx], v1[tx], v2[tx], v3[tx], v4[tx], v5[tx] = _bt6(
                    p0[tx], p1[tx], p2[tx], p3[tx], p0[tx + 1], p1[tx + 1])


@numba.njit(**_JIT)
def _wino4_out(mm, b, use_bias, relu, rev, tr0, tr1, tw, out):
    # mm 36×O×Tb -> out O×H×W tile rows [tr0, tr1);  Y = Aᵀ M A (4×4), + b, ReLU, cropped
    # One job per (output channel, tile row); both products run as vector loops over tiles on
    # 1-D row views, and the 4 columns of each tile are interleaved into the output row at the
    # end. When rev, M holds rev(out)'s tiles in out's own order (_wino4_in): tile row tr1−1−ty,
    # column tw−1−tx; their rows go to out rows h−1−(4ty+d) and their 4 columns in reverse order,
    # so each row is again written forward, from column 4tw−w on.
    nb = tr1 - tr0
    for k in prange(out.shape[0]):                            # scratch once a channel, as _wino4_in
        s, y, row = _wino4_out_scratch(tw)
        for job in range(k * nb, (k + 1) * nb):
            _wino4_out_job(mm, b, use_bias, relu, rev, tr0, tr1, tw, out, job, s, y, row)


@numba.njit(**_JIT_ONE_THREAD)
def _wino4_out_one_thread(mm, b, use_bias, relu, rev, tr0, tr1, tw, out, k0, k1):
    # _wino4_out for output channels [k0, k1) on the calling thread alone (v7, v8), its scratch made once
    s, y, row = _wino4_out_scratch(tw)
    for job in range(k0 * (tr1 - tr0), k1 * (tr1 - tr0)):
        _wino4_out_job(mm, b, use_bias, relu, rev, tr0, tr1, tw, out, job, s, y, row)


@numba.njit(inline="always")
def _wino4_out_scratch(tw):
    # a job's scratch: s 6×4×tw (M A), y 4×4×tw (Aᵀ M A), row 4tw (one output row)
    return np.empty((6, 4, tw), np.float32), np.empty((4, 4, tw), np.float32), np.empty(4 * tw, np.float32)


@numba.njit(inline="always")
def _wino4_out_job(mm, b, use_bias, relu, rev, tr0, tr1, tw, out, job, s, y, row):
    # _wino4_out's job number `job`: output channel k = job // (tr1 − tr0), M's tile row job mod
    # (tr1 − tr0); s, y, row: _wino4_out_scratch
    h, w = out.shape[1], out.shape[2]
    nb = tr1 - tr0
    skip = 4 * tw - w if rev else 0
    k = job // nb
    slot = job - k * nb                                   # as _wino4_in
    ty = tr1 - 1 - slot if rev else tr0 + slot
    t0 = slot * tw
    bk = b[k] if use_bias else np.float32(0.0)
    # s: M A, s[r, column c, tile]
    for r in range(6):
        m0, m1, m2 = mm[6 * r, k, t0:t0 + tw], mm[6 * r + 1, k, t0:t0 + tw], mm[6 * r + 2, k, t0:t0 + tw]
        m3, m4, m5 = mm[6 * r + 3, k, t0:t0 + tw], mm[6 * r + 4, k, t0:t0 + tw], mm[6 * r + 5, k, t0:t0 + tw]
        s0, s1, s2, s3 = s[r, 0], s[r, 1], s[r, 2], s[r, 3]
        for tx in range(tw):
            s0[tx], s1[tx], s2[tx], s3[tx] = _at6(m0[tx], m1[tx], m2[tx], m3[tx], m4[tx], m5[tx])
    # y: Aᵀ (M A), y[row d, column c, tile]
    for cc in range(4):
        a0, a1, a2, a3, a4, a5 = s[0, cc], s[1, cc], s[2, cc], s[3, cc], s[4, cc], s[5, cc]
        y0, y1, y2, y3 = y[0, cc], y[1, cc], y[2, cc], y[3, cc]
        for tx in range(tw):
            y0[tx], y1[tx], y2[tx], y3[tx] = _at6(a0[tx], a1[tx], a2[tx], a3[tx], a4[tx], a5[tx])
    rows = min(4, h - 4 * ty)
    for d in range(rows):
        dd = rows - 1 - d if rev else d                   # out's rows written upwards
        c0, c1, c2, c3 = y[dd, 0], y[dd, 1], y[dd, 2], y[dd, 3]
        if rev:
            c0, c1, c2, c3 = c3, c2, c1, c0
        for tx in range(tw):
            row[4 * tx], row[4 * tx + 1], row[4 * tx + 2], row[4 * tx + 3] = c0[tx], c1[tx], c2[tx], c3[tx]
        yo = h - 1 - 4 * ty - dd if rev else 4 * ty + dd
        _put_row(row[skip:], bk, relu, False, k, yo, out)


def _on_channel_chunks(kernel, channels, *args):
    # kernel(*args, c0, c1) over the channels [0, channels) in chunks handed out to our threads one
    # at a time, as each is free (a thread on a busy core takes fewer)
    step = max(1, -(-channels // (4 * THREADS)))
    chunks = iter(range(0, channels, step))

    def work():
        for c0 in chunks:
            kernel(*args, c0, min(channels, c0 + step))
    on_threads([work] * min(THREADS, -(-channels // step)))


def _wino4_in_chunked(x, mask, use_mask, rev, tr0, tr1, tw, v):
    # as _wino4_in, run by our own threads over chunks of input channels (v8)
    _on_channel_chunks(_wino4_in_one_thread, x.shape[0], x, mask, use_mask, rev, tr0, tr1, tw, v)


def _wino4_out_chunked(mm, b, use_bias, relu, rev, tr0, tr1, tw, out):
    # as _wino4_out, run by our own threads over chunks of output channels (v8)
    _on_channel_chunks(_wino4_out_one_thread, out.shape[0], mm, b, use_bias, relu, rev, tr0, tr1, tw, out)


_WINOGRAD = {2: (_wino2_in, _wino2_out), 4: (_wino4_in, _wino4_out)}    # m -> transforms (Numba's threads)


def _core_winograd(m, x, cw, b, mask, relu, backward, out, transforms=None):
    # F(m×m, 3×3) over blocks of tile rows: V = Bᵀ d B, M = U @ V (n² sgemms), Y = Aᵀ M A;
    # transforms: (input, output) in place of _WINOGRAD[m]'s
    i, h, w = x.shape
    u = cw.get(f"wino{m}")                                           # n²×O×I
    if backward:
        u = u.transpose(0, 2, 1)                                      # n²×I×O view
    nn, o = u.shape[0], u.shape[1]
    tile_in, tile_out = transforms or _WINOGRAD[m]
    msk, use_mask = _mask_args(x, mask)
    bias, use_bias = _bias_args(b)
    th, tw = -(-h // m), -(-w // m)
    trows = _rows_per_block(nn * (i + o) * tw * 4, th)
    v, mm = _scratch("in", (nn, i, trows * tw)), _scratch("acc", (nn, o, trows * tw))
    for tr0 in range(0, th, trows):
        tr1 = min(th, tr0 + trows)
        n = (tr1 - tr0) * tw
        vb, mb = v[:, :, :n], mm[:, :, :n]
        tile_in(x, msk, use_mask, backward, tr0, tr1, tw, vb)
        matmul(u, vb, mb)                                             # n² × (O×I @ I×n)
        tile_out(mb, bias, use_bias, relu, backward, tr0, tr1, tw, out)


def core_v4(x, cw, b, mask, relu, backward, out):
    _core_winograd(2, x, cw, b, mask, relu, backward, out)


def core_v5(x, cw, b, mask, relu, backward, out):
    _core_winograd(4, x, cw, b, mask, relu, backward, out)


def core_v8(x, cw, b, mask, relu, backward, out):
    # v5 with its two transforms run by our own threads, channel chunks handed out as each is free
    _core_winograd(4, x, cw, b, mask, relu, backward, out, (_wino4_in_chunked, _wino4_out_chunked))


# v7: Winograd F(4×4) fused per thread. v5 runs each stage over a whole block on both threads
# (V and M, up to _BLOCK_BYTES, leave the cores' caches between stages); here each thread takes
# its own share of tile rows and runs all three stages on a chunk of V and M of about _L2_BYTES
# before the next, so they stay in that core's caches. U is read once a chunk instead of once a
# block: the version for layers whose U is small (few channels) and whose images are large.

_L2_BYTES = 1 << 21    # V + M a chunk: of 1, 2 and 4 MiB the fastest on Zen 4 (1 MiB L2 a core, 32 MiB L3)


def core_v7(x, cw, b, mask, relu, backward, out):
    # as v5 (x I×H×W -> out O×H×W, the same V = Bᵀ d B, M = U @ V, Y = Aᵀ M A); chunks of tile rows
    # shared out among our threads, each running the three stages on one chunk after another
    i, h, w = x.shape
    u = cw.get("wino4")                                              # 36×O×I
    if backward:
        u = u.transpose(0, 2, 1)                                      # 36×I×O view
    o = u.shape[1]
    msk, use_mask = _mask_args(x, mask)
    bias, use_bias = _bias_args(b)
    th, tw = -(-h // 4), -(-w // 4)
    chunk = max(1, min(-(-th // THREADS), _L2_BYTES // (36 * (i + o) * tw * 4)))   # tile rows
    # one iterator shared by the threads (next() is atomic under the GIL): each takes the next chunk
    # when done with its last, so a thread on a busy core takes fewer
    chunks = iter(range(0, th, chunk))

    def rows():
        v, mm = _scratch("in", (36, i, chunk * tw)), _scratch("acc", (36, o, chunk * tw))
        for tr0 in chunks:
            tr1 = min(th, tr0 + chunk)
            vb, mb = v[:, :, :(tr1 - tr0) * tw], mm[:, :, :(tr1 - tr0) * tw]
            _wino4_in_one_thread(x, msk, use_mask, backward, tr0, tr1, tw, vb, 0, i)
            np.matmul(u, vb, out=mb)                                  # 36 × (O×I @ I×n)
            _wino4_out_one_thread(mb, bias, use_bias, relu, backward, tr0, tr1, tw, out, 0, o)
    on_threads([rows] * min(THREADS, -(-th // chunk)))


# ---------------------------------------------------------------------------------------------
# v6: direct convolution in Numba, for few channels (the 3→64 first layer and its backward 64→3),
# where a GEMM with K = 9·3 = 27 is memory bound and sgemm is at its worst

@numba.njit(**_JIT)
def _direct(xp, wts, b, use_bias, relu, y0, out):
    # xp I×((R+2)(W+2)+2) padded input rows y0−1 … y0+R, wts O×I×3×3 (any strides) -> out rows
    # [y0, y0+R) of O×H×W. One job per (output row, block of ≤ 4 output channels): each padded
    # input row segment is loaded once per block and feeds 4 row accumulators (vectors along W).
    o, h, w = out.shape
    c = xp.shape[0]
    wp = w + 2
    rows = (xp.shape[1] - 2) // wp - 2
    nkb = (o + 3) // 4
    for job in prange(nkb * rows):
        kb = job // rows
        yl = job - kb * rows
        k0 = 4 * kb
        nk = min(4, o - k0)
        acc = np.zeros((4, w), np.float32)
        for i in range(c):
            for dy in range(3):
                for dx in range(3):
                    src = xp[i, (yl + dy) * wp + dx:(yl + dy) * wp + dx + w]
                    for kk in range(nk):
                        wv = wts[k0 + kk, i, dy, dx]
                        for q in range(w):
                            acc[kk, q] += wv * src[q]
        for kk in range(nk):
            bk = b[k0 + kk] if use_bias else np.float32(0.0)
            _put_row(acc[kk], bk, relu, False, k0 + kk, y0 + yl, out)


def core_v6(x, cw, b, mask, relu, backward, out):
    # direct loops over blocks of rows (the padded block stays small). The backward needs no
    # reversed data: rev(corr3x3(rev(x), wᵀ)) = corr3x3(x, wᵀ with its taps flipped), a view.
    i, h, w = x.shape
    wts = cw.get("w")                                                 # O×I×3×3
    if backward:
        wts = wts.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]             # I×O×3×3 view, flipped taps
    m, use_mask = _mask_args(x, mask)
    rows = _rows_per_block(i * (w + 2) * 4, h)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        xp = _scratch("pad", (i, (r1 - r0 + 2) * (w + 2) + 2))       # I×(rows+2)(W+2)
        _pad_flat(x, m, use_mask, False, r0, r1, xp)
        _direct(xp, wts, *_bias_args(b), relu, r0, out)


CORES = {"v1": core_v1, "v2": core_v2, "v3": core_v3, "v4": core_v4, "v5": core_v5, "v6": core_v6,
         "v7": core_v7, "v8": core_v8}
# the weight forms each core reads, forward and transposed (the backward)
READS = {"v1": ("mat", "mat_t"), "v2": ("taps", "taps"), "v3": ("mat", "mat_t"),
         "v4": ("wino2", "wino2"), "v5": ("wino4", "wino4"), "v6": ("w", "w"), "v7": ("wino4", "wino4"),
         "v8": ("wino4", "wino4")}
# versions that need a looser rule of nst.tolerance than the default (the rule says why)
TOLERANCE = {"v5": "winograd4", "v7": "winograd4", "v8": "winograd4"}


def _make(version):
    core = CORES[version]

    def conv3x3_relu(x, w, b=None):
        # x I×H×W, w O×I×3×3 (or ConvWeights), b O -> a O×H×W;  a = max(0, b + conv3x3(x, w))
        cw = as_weights(w)
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((cw.shape[0], *x.shape[1:]), np.float32)
        core(x, cw, b, None, True, False, out)
        return out
    conv3x3_relu.reads = READS[version][:1]
    return conv3x3_relu


VERSIONS = {"conv3x3_relu": {v: _make(v) for v in CORES}}
