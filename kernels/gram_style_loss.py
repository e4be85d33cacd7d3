"""Gram matrix and the fused style loss + gradient, CPU (NumPy sgemm + Numba).

Legend: C channels, H×W spatial, hw = H·W, F = a reshaped C×hw (a = a^l(X), C×H×W);
Ĝ(S) the style target Gram, C×C.

Versions:
  style_loss_and_grad_v1: two sgemms and one tiny fused pass between them:
      1. G = F Fᵀ (sgemm; NumPy calls syrk for a product with its own transpose, so only one
         triangle is computed);
      2. one Numba pass over the C×C matrix: D = G/hw − Ĝ(S), J = Σ D²/C² (float64 sum), and D is
         pre-scaled by 4/(C²·hw) in place;
      3. grad = D F (sgemm) is already the final gradient: no extra C×hw scaling pass, no cast.
  style_loss_and_grad_v2: as v1, but both sgemms split over our own threads with BLAS at one
      thread each (kernels/cpu_threads.py, as the conv kernels do): the version the Numba backend
      ships, since OpenBLAS's own threads spin on a busy machine (v1 stays to measure against).
  gram_v1: F Fᵀ (cpu_threads.gram: partial syrks over column blocks on our threads, summed)
      then one Numba scaling pass by 1/hw.
Napkin maths (C=64, 256²): F is 16 MiB, read twice (two GEMMs) + grad 16 MiB written; FLOPs
2·C²·hw (Gram, half with syrk) + 2·C²·hw (grad) = 1.07 GFLOP.
"""
from .cpu_threads import gram, matmul  # first: starts Numba's pool with the thread policies
import numba
import numpy as np


# serial on purpose: ≤ 512² elements; waking a thread pool next to OpenBLAS's costs more (bench/RESULTS.md)
@numba.njit(fastmath=True, cache=True)
def _diff_scale(g, target, inv_hw, gscale):
    # g C×C (F Fᵀ, overwritten by the pre-scaled difference) -> Σ (g/hw − target)²
    c = g.shape[0]
    part = np.zeros(c, dtype=np.float64)
    for i in range(c):
        s = 0.0
        for j in range(c):
            d = g[i, j] * inv_hw - target[i, j]
            s += np.float64(d) * d
            g[i, j] = d * gscale
        part[i] = s
    return part.sum()


def style_loss_and_grad_v1(a, target_gram):
    # a C×H×W, target_gram Ĝ(S) C×C -> (J_s^l 0-d, ∂J/∂a C×H×W)
    # J_s^l = Σ (Ĝ(S) − Ĝ(X))² / C²;  ∂J/∂F = 4 (Ĝ(X) − Ĝ(S)) F / (C² hw)
    c = a.shape[0]
    f = np.ascontiguousarray(a).reshape(c, -1)                        # C×hw
    hw = f.shape[1]
    g = f @ f.T                                                       # C×C, syrk
    ss = _diff_scale(g, np.ascontiguousarray(target_gram, dtype=np.float32),
                     np.float32(1.0 / hw), np.float32(4.0 / (c * c * hw)))
    grad = g @ f                                                      # C×hw, already scaled
    return np.asarray(ss / (c * c), dtype=np.float64), grad.reshape(a.shape)      # J keeps its float64 sum


def style_loss_and_grad_v2(a, target_gram):
    # as v1, with both sgemms split over our own threads at one BLAS thread each (cpu_threads)
    c = a.shape[0]
    f = np.ascontiguousarray(a).reshape(c, -1)                        # C×hw
    hw = f.shape[1]
    g = gram(f)                                                       # C×C, syrks
    ss = _diff_scale(g, np.ascontiguousarray(target_gram, dtype=np.float32),
                     np.float32(1.0 / hw), np.float32(4.0 / (c * c * hw)))
    grad = matmul(g, f, np.empty_like(f))                             # C×hw, already scaled
    return np.asarray(ss / (c * c), dtype=np.float64), grad.reshape(a.shape)      # J keeps its float64 sum


@numba.njit(fastmath=True, cache=True)
def _scale(g, s):
    c = g.shape[0]
    for i in range(c):
        for j in range(c):
            g[i, j] *= s


def gram_v1(a):
    # a C×H×W -> Ĝ C×C;  Ĝ = F Fᵀ / (h·w)
    c = a.shape[0]
    f = np.ascontiguousarray(a).reshape(c, -1)                        # C×hw
    g = gram(f)
    _scale(g, np.float32(1.0 / f.shape[1]))
    return g


VERSIONS = {
    "gram": {"v1": gram_v1},
    "style_loss_and_grad": {"v1": style_loss_and_grad_v1, "v2": style_loss_and_grad_v2},
}
