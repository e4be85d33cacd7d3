"""What tests, `nst gradcheck`, the runs' self-check and the benchmarks share: a tiny VGG19, random
images, and the one comparison of a backend's whole objective with the float64 NumPy reference.

    from nst.testing import objective_agreement
    print(objective_agreement("numba").message or "numba agrees with the reference")

Legend: J the objective α·J_c + β·J_s + γ·J_tv, ∂J/∂X its gradient (H×W×3), images H×W×3 RGB 0..255.
"""
from dataclasses import dataclass

import numpy as np

from .tolerance import NETWORK, mismatch, rel_err

# A tiny VGG19 in the Keras layout: the real 16-layer graph, a few channels per block.
TINY_WIDTHS = {"block1": 4, "block2": 5, "block3": 6, "block4": 7, "block5": 7}


def tiny_params(seed=0, dtype=np.float32, widths=None):
    # -> {layer: (W O×I×3×3, b O)}: VGG19's 16 conv layers with a few channels each (TINY_WIDTHS),
    # He-scaled random weights so activations neither vanish nor blow up through 16 layers.
    from .spec import CONV_NAMES
    widths = TINY_WIDTHS if widths is None else widths
    r = np.random.default_rng(seed)
    params, cin = {}, 3
    for name in CONV_NAMES:
        cout = widths[name.split("_")[0]]
        w = r.normal(0, np.sqrt(2.0 / (9 * cin)), (cout, cin, 3, 3))
        b = r.normal(0.05, 0.1, cout)
        params[name] = (w.astype(dtype), b.astype(dtype))
        cin = cout
    return params


def random_image(r, h, w, dtype=np.float64):
    # H×W×3 RGB pixels, uniform in 0..255
    return r.uniform(0, 255, (h, w, 3)).astype(dtype)


def away_from_zero(r, shape, dtype, margin=0.05):
    # N(0,1) values with |x| ≥ margin: no ReLU kink within a finite-difference step
    z = r.normal(size=shape)
    return (np.sign(z) * (margin + np.abs(z))).astype(dtype)


@dataclass(frozen=True)
class Agreement:
    """A backend's J and ∂J/∂X against the reference's, by one rule of nst.tolerance."""
    j_error: float               # |J − J_ref| / |J_ref|
    grad_error: float            # max|∂J/∂X − ref| / max|ref|
    j_ok: bool
    grad_ok: bool
    rtol: float                  # the rule's rtol (what a table shows as the threshold)

    @property
    def ok(self):
        return self.j_ok and self.grad_ok

    @property
    def message(self):
        # None when both agree, else one line saying by how much they differ
        if self.ok:
            return None
        return (f"J off by {self.j_error:.2g}, ∂J/∂X by {self.grad_error:.2g} "
                f"(relative; limit rtol {self.rtol:g})")


def agreement(total, grad, ref_total, ref_grad, tol=NETWORK):
    # J (a number or 0-d array) and ∂J/∂X of a backend (host or device arrays) against the
    # reference's, by nst.tolerance's elementwise rule `tol` (default: the whole-network rule)
    total = float(np.asarray(getattr(total, "get", lambda: total)()))
    grad = np.asarray(grad.get() if hasattr(grad, "get") else grad, np.float64)
    return Agreement(rel_err(total, ref_total), rel_err(grad, ref_grad),
                     mismatch(total, ref_total, **tol) is None, mismatch(grad, ref_grad, **tol) is None,
                     tol["rtol"])


def objective_agreement(backend, seed=0, content=(33, 29), style=(21, 27), weights=None,
                        content_weight=1.0, style_weight=1e3, tv_weight=1e-3, tol=NETWORK):
    # the whole objective (tiny VGG19 unless `weights`) on `backend` (a name or a Backend, float32)
    # against the float64 NumPy reference, on random images of the given sizes (X has the content's)
    from .objective import Objective
    r = np.random.default_rng(seed)
    c, s, x = (random_image(r, h, w, np.float32) for h, w in (content, style, content))
    kw = dict(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
              weights=tiny_params(seed=seed) if weights is None else weights)
    ref = Objective(c, s, backend="numpy", dtype=np.float64, **kw)(x.astype(np.float64))
    got = Objective(c, s, backend=backend, **kw)(x)
    return agreement(got.total, got.grad, ref.total, ref.grad, tol)
