"""L-BFGS's memory: the last `history` pairs (s, y), and d = −H g from them.

H is the BFGS inverse-Hessian approximation that starts from H₀ = h₀·I (h₀ = sᵀy / yᵀy of the
newest pair) and takes one update per pair, oldest first (docs/maths.md "Optimisers"). `two_loop`
applies it the textbook way (Nocedal & Wright, Alg. 7.4): four vector operations per pair (two dot
products, two axpys), 80 for 20 pairs, which on a GPU are ~160 small kernel launches with the scalars
brought to the host, 3–4 ms of host time per iteration. `PairHistory`
applies the same H in the compact form of Byrd, Nocedal & Schnabel (1994), their representation of
the inverse H:

    H g = h₀ g + S q − h₀ Y p,     p = R⁻¹ Sᵀg,     q = R⁻ᵀ((D + h₀ YᵀY) p − h₀ Yᵀg)

with S, Y the pairs as N × k matrices of columns (oldest first; N&W's notation), R the upper
triangle of SᵀY (R_ij = s_iᵀ y_j, i ≤ j) and D its diagonal. The arrays store the pairs as rows
(k × N), so `Sᵀg` is `self.S[:k] @ g` here; docs/maths.md writes the same formula with rows.
That is two matrix–vector products with the history × N arrays, k×k algebra on the host
(k ≤ history), and two more products. The rows are a ring: once full, a new pair takes the
oldest's row. The k×k products SᵀY and YᵀY are kept on the host, one new column per pair.
"""
from collections import deque

import numpy as np

from .backends.backend import to_host, xp_of


def two_loop(g, pairs):
    # g N, pairs [(s, y)] oldest first, at least one -> H g by the two-loop recursion (the reference PairHistory
    # is checked against; tests/test_optim.py, docs/maths.md)
    q, sigmas = g.copy(), []
    for s, y in reversed(pairs):
        sigmas.append((s @ q) / (y @ s))
        q -= sigmas[-1] * y
    s, y = pairs[-1]
    r = (s @ y) / (y @ y) * q
    for (s, y), sigma in zip(pairs, reversed(sigmas)):
        r += (sigma - (y @ r) / (y @ s)) * s
    return r


class PairHistory:
    """The last `capacity` pairs with yᵀs > 0, as rows of S and Y (capacity × N, allocated at the
    first pair; rows 0..k−1 are in use), `rows` their order (oldest first), and on the host, in
    float64, sy[a, b] = s_aᵀ y_b (kept for a's pair older than or as old as b's) and yy[a, b] = y_aᵀ y_b."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.S = self.Y = None
        self.rows = deque()
        self.sy, self.yy = np.zeros((capacity, capacity)), np.zeros((capacity, capacity))

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        # the pairs (s, y), oldest first: views of the rows (flat)
        return ((self.S[r], self.Y[r]) for r in self.rows)

    def curvatures(self):
        # yᵀs of each pair, oldest first
        return [float(self.sy[r, r]) for r in self.rows]

    def clear(self):
        self.rows.clear()

    def add(self, s, y):
        # keeps (s, y) when yᵀs > 1e-10·yᵀy, the oldest pair making room -> whether it did. One
        # read: yᵀs, yᵀy, and y against every stored s and y (the new column of sy and yy).
        xp, k = xp_of(s), len(self.rows)
        v = to_host(xp.concatenate([xp.stack([xp.vdot(y, s), xp.vdot(y, y)]), *self._products(y)]))
        ys, yy = (float(a) for a in v[:2])
        if not (ys > 1e-10 * yy and self.capacity):
            return False
        if self.S is None:
            self.S, self.Y = (xp.zeros((self.capacity, s.size), s.dtype) for _ in range(2))
        j = self.rows.popleft() if k == self.capacity else k
        self.S[j], self.Y[j] = s.reshape(-1), y.reshape(-1)
        self.sy[:k, j], self.yy[:k, j], self.yy[j, :k] = v[2:2 + k], v[2 + k:], v[2 + k:]
        self.sy[j, j], self.yy[j, j] = ys, yy
        self.rows.append(j)
        return True

    def direction(self, g):
        # g N -> (d = −H g, gᵀd, ‖g‖∞) with one read; d = −g while no pair is stored
        xp, k = xp_of(g), len(self.rows)
        v = to_host(xp.concatenate([xp.stack([xp.vdot(g, g), xp.max(xp.abs(g))]), *self._products(g)]))
        gg, g_max = (float(a) for a in v[:2])
        if not k:
            return -g, -gg, g_max
        order = list(self.rows)
        u, w = v[2:2 + k].astype(np.float64)[order], v[2 + k:].astype(np.float64)[order]   # Sᵀg, Yᵀg
        sy, yy = self.sy[np.ix_(order, order)], self.yy[np.ix_(order, order)]
        h0 = float(sy[-1, -1] / yy[-1, -1])                # a Python float: numpy scalars upcast float32
        r = np.triu(sy)
        p = np.linalg.solve(r, u)
        q = np.linalg.solve(r.T, np.diag(sy) * p + h0 * (yy @ p) - h0 * w)
        coef = np.zeros((2, k))                           # d = −h₀ g − S q + h₀ Y p, rows in S's order
        coef[0, order], coef[1, order] = -q, h0 * p
        c = xp.asarray(coef, dtype=g.dtype)
        d = c[0] @ self.S[:k]
        d += c[1] @ self.Y[:k]
        d = d.reshape(g.shape)
        d -= h0 * g
        return d, float(-(h0 * gg + q @ u - h0 * (p @ w))), g_max

    def state(self):
        # -> {pairs_s.k, pairs_y.k: the rows themselves (host views on the CPU), oldest first;
        # pairs_rows: each pair's row; pairs_sy, pairs_yy: the k×k products by row}
        if not self.rows:
            return {}
        out = {}
        for k, (s, y) in enumerate(self):
            out[f"pairs_s.{k}"], out[f"pairs_y.{k}"] = to_host(s), to_host(y)
        k = len(self.rows)
        out.update(pairs_rows=np.array(self.rows), pairs_sy=self.sy[:k, :k].copy(),
                   pairs_yy=self.yy[:k, :k].copy())
        return out

    def load(self, s_list, y_list, rows, sy, yy, xp):
        # puts back what state() wrote: the same rows and products, so the run continues bit for bit
        k, rows = len(s_list), [int(r) for r in rows]
        if k > self.capacity or sorted(rows) != list(range(k)) or np.shape(sy) != (k, k) or np.shape(yy) != (k, k):
            raise ValueError(f"{k} pairs in rows {rows} with {np.shape(sy)} products do not fit "
                             f"a history of {self.capacity}")
        self.rows = deque(rows)
        if k:
            first = np.asarray(s_list[0])
            self.S, self.Y = (xp.zeros((self.capacity, first.size), first.dtype) for _ in range(2))
            for r, s, y in zip(rows, s_list, y_list):
                self.S[r], self.Y[r] = xp.asarray(s).reshape(-1), xp.asarray(y).reshape(-1)
        self.sy[:k, :k], self.yy[:k, :k] = sy, yy

    def _products(self, v):
        # [S v, Y v] over the rows in use (none while empty)
        k = len(self.rows)
        return [self.S[:k] @ v.reshape(-1), self.Y[:k] @ v.reshape(-1)] if k else []
