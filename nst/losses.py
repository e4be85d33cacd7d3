"""The losses of SPEC.md and their gradients, the readable NumPy reference.

Legend: C channels, H×W spatial, a = a^l(X) a layer's ReLU output laid out C×H×W.
Each *_loss_and_grad returns (J, ∂J/∂input): J a 0-d float64 array, summed in float64 (it stays
on the device for a GPU backend until someone reads it), the gradient in the input's shape and dtype.
"""
import numpy as np


def gram(a):
    # a C×H×W -> Ĝ C×C;  Ĝ = F Fᵀ / (h·w) with F = a reshaped C×(h·w)
    c = a.shape[0]
    f = a.reshape(c, -1)                                  # C×(h·w)
    return f @ f.T / f.shape[1]


def content_loss_and_grad(a, target):
    # a, target C×H×W;  J_c = ½ Σ (a − target)²,  ∂J_c/∂a = a − target
    diff = a - target
    return 0.5 * np.sum(diff * diff, dtype=np.float64), diff


def style_loss_and_grad(a, target_gram):
    # a C×H×W, target_gram Ĝ(S) C×C;  J_s^l = Σ (Ĝ(S) − Ĝ(X))² / C²
    # ∂J/∂Ĝ(X) = 2 (Ĝ(X) − Ĝ(S)) / C², and Ĝ = F Fᵀ/hw gives ∂J/∂F = 4 (Ĝ(X) − Ĝ(S)) F / (C² hw)
    c = a.shape[0]
    f = a.reshape(c, -1)                                  # C×(h·w)
    diff = f @ f.T / f.shape[1] - target_gram             # Ĝ(X) − Ĝ(S)
    loss = np.sum(diff * diff, dtype=np.float64) / c**2
    grad = (4.0 / (c**2 * f.shape[1])) * (diff @ f)
    return loss, grad.astype(a.dtype, copy=False).reshape(a.shape)


def tv_loss_and_grad(x):
    # x H×W×3 RGB pixels;  J_tv = Σ (x[i+1,j]−x[i,j])² + Σ (x[i,j+1]−x[i,j])²
    dv = x[1:, :] - x[:-1, :]                             # (H−1)×W×3
    dh = x[:, 1:] - x[:, :-1]                             # H×(W−1)×3
    grad = np.zeros_like(x)
    grad[1:, :] += 2 * dv
    grad[:-1, :] -= 2 * dv
    grad[:, 1:] += 2 * dh
    grad[:, :-1] -= 2 * dh
    return np.sum(dv * dv, dtype=np.float64) + np.sum(dh * dh, dtype=np.float64), grad


def temporal_loss_and_grad(x, target, mask):
    # x, target ω H×W×3 RGB pixels, mask c H×W in [0, 1];  J_t = (1/D) Σ c·(x − ω)², D = H·W·3
    # ∂J_t/∂x = 2 c (x − ω) / D  (c broadcast over the 3 channels; video: docs/maths.md)
    d = x.shape[0] * x.shape[1] * x.shape[2]
    diff = x - target
    cdiff = mask[..., None] * diff
    return np.sum(cdiff * diff, dtype=np.float64) / d, (2.0 / d) * cdiff.astype(x.dtype, copy=False)
