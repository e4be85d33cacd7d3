"""Fused in-place Adam update on flat float32 arrays, Numba CPU kernel.

Legend: N parameters; x, g, m, v all flat float32 of length N (g the gradient ∂J/∂x).

Versions:
  adam_step_v1: one parallel pass: m, v, x updated in place with bias correction and an optional
      clip of x to [lo, hi] (pass lo=-inf, hi=inf for none).
Napkin maths (512²×3 = 786k params): reads 4×3 MiB, writes 3×3 MiB, ~12 FLOPs/element:
bandwidth bound.

Signature: adam_step(x, g, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, lo=-inf, hi=inf)
  t is the 1-based step count (for the bias correction); returns None, x/m/v are updated in place.
  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  x ← clip(x − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε), lo, hi)
"""
from . import cpu_threads  # noqa: F401  (starts Numba's pool with the OpenMP wait policy)
import math

import numba
import numpy as np
from numba import prange


@numba.njit(parallel=True, fastmath=True, cache=True)
def _adam(x, g, m, v, lr, b1, b2, eps, c1, c2, lo, hi):
    for p in prange(x.size):
        gp = g[p]
        mp = b1 * m[p] + (1.0 - b1) * gp
        vp = b2 * v[p] + (1.0 - b2) * gp * gp
        m[p] = mp
        v[p] = vp
        xp = x[p] - lr * (mp * c1) / (math.sqrt(vp * c2) + eps)
        x[p] = min(max(xp, lo), hi)


def adam_step_v1(x, g, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, lo=-np.inf, hi=np.inf):
    # x, g, m, v flat float32 (N) -> None; m, v, x updated in place (formula in the module header)
    for name, arr in (("x", x), ("g", g), ("m", m), ("v", v)):
        if arr.dtype != np.float32 or arr.ndim != 1 or not arr.flags.c_contiguous:
            raise ValueError(f"adam_step: {name} must be a flat C-contiguous float32 array")
        if arr.size != x.size:
            raise ValueError(f"adam_step: {name} has {arr.size} elements, x has {x.size}")
    c1 = 1.0 / (1.0 - beta1 ** t)
    c2 = 1.0 / (1.0 - beta2 ** t)
    f = np.float32
    _adam(x, g, m, v, f(lr), f(beta1), f(beta2), f(eps), f(c1), f(c2), f(lo), f(hi))


VERSIONS = {"adam_step": {"v1": adam_step_v1}}
