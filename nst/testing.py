"""What tests, `nst gradcheck`, the runs' self-check and the benchmarks share: a tiny VGG19, random
images, the one comparison of a backend's whole objective with the float64 NumPy reference
(objective_agreement), and a backend's every op and whole objective as gradcheck rows (backend_rows).

    from nst.testing import objective_agreement
    print(objective_agreement("numba").message or "numba agrees with the reference")

Legend: J the objective α·J_c + β·J_s + γ·J_tv, ∂J/∂X its gradient (H×W×3), images H×W×3 RGB 0..255.
"""
from dataclasses import dataclass

import numpy as np

from . import losses, ops
from .tolerance import NETWORK, mismatch, rel_err, rule

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


@dataclass
class Row:
    """One row of the `nst gradcheck` table (nst.gradcheck's finite differences, backend_rows)."""
    backend: str         # "numpy" (finite differences) or the backend checked against numpy
    op: str              # what was checked
    shape: str           # the input shape(s), e.g. "3×5×7 → 4×5×7"
    error: float         # max |got − want| / max |want|  (nan for a skipped row)
    threshold: float
    status: str          # "PASS", "FAIL" or "SKIP"
    note: str = ""       # why a backend was skipped, or how many coordinates sat on a kink

    @property
    def passed(self):
        return self.status != "FAIL"


def fmt_shape(*shapes):
    return " → ".join("×".join(str(n) for n in s) for s in shapes)


# ---------------------------------------------------------------------------------------------
# A fast backend against the NumPy reference (float32 kernels, float64 reference)

def backend_rows(name, seed=0):
    # -> [Row] for backend `name` (any of nst.backends.NAMES): each op of its Backend table and the
    # whole objective against the float64 reference; one SKIP row if it is not available here
    from .backends import BackendUnavailable, get_backend
    try:
        be = get_backend(name)
    except BackendUnavailable as e:
        return [Row(name, "(backend unavailable)", "", float("nan"), 0.0, "SKIP", str(e))]
    r = np.random.default_rng(seed)
    dev = be.to_device

    def host(a):
        return np.asarray(be.to_host(a), np.float64)

    def f32(*shape):
        return r.standard_normal(shape).astype(np.float32)

    def d64(a):
        return np.asarray(a, np.float64)
    rows = []

    def add(op, shape, got, want, tol=rule()):
        # passes by nst.tolerance's elementwise rule; the error column shows max|Δ|/max|ref|
        got = host(got)
        ok = mismatch(got, want, **tol) is None
        rows.append(Row(name, op, shape, rel_err(got, want), tol["rtol"], "PASS" if ok else "FAIL"))

    for i, o, h, w in ((3, 8, 13, 11), (17, 13, 9, 10)):
        x, wt, b = f32(i, h, w), 0.3 * f32(o, i, 3, 3), 0.1 * f32(o)
        pw = be.prepare_weights(dev(wt), dev(b))
        a_ref = ops.conv3x3_relu(d64(x), d64(wt), d64(b))
        add("conv3x3_relu", fmt_shape(x.shape, a_ref.shape), be.conv3x3_relu(dev(x), *pw), a_ref)
        da, a = f32(o, h, w), np.maximum(f32(o, h, w), 0)
        add("conv3x3_relu_backward_input", fmt_shape(da.shape, x.shape),
            be.conv3x3_relu_backward_input(dev(da), dev(a), pw[0]),
            ops.conv3x3_relu_backward_input(d64(da), d64(a), d64(wt)))

    for kind in ("max", "avg"):
        fwd, bwd = getattr(ops, f"{kind}pool2x2"), getattr(ops, f"{kind}pool2x2_backward")
        x = f32(5, 13, 11)
        x[:, 0, 0] = x[:, 0, 1]                       # a tie: the first maximum must win
        dy = f32(5, 6, 5)
        add(f"{kind}pool2x2", fmt_shape(x.shape, dy.shape), getattr(be, f"{kind}pool2x2")(dev(x)), fwd(d64(x)))
        add(f"{kind}pool2x2_backward", fmt_shape(dy.shape, x.shape),
            getattr(be, f"{kind}pool2x2_backward")(dev(dy), dev(x)), bwd(d64(dy), d64(x)))

    a, s = np.maximum(f32(17, 13, 11), 0), np.maximum(f32(17, 7, 9), 0)
    add("gram", fmt_shape(a.shape), be.gram(dev(a)), losses.gram(d64(a)))
    target = losses.gram(d64(s))
    j, g = be.style_loss_and_grad(dev(a), dev(target.astype(np.float32)))
    j_ref, g_ref = losses.style_loss_and_grad(d64(a), target)
    add("style_loss_and_grad J", fmt_shape(a.shape), j, j_ref)
    add("style_loss_and_grad grad", fmt_shape(a.shape), g, g_ref)

    a, t = f32(17, 13, 11), f32(17, 13, 11)
    j, g = be.content_loss_and_grad(dev(a), dev(t))
    j_ref, g_ref = losses.content_loss_and_grad(d64(a), d64(t))
    add("content_loss_and_grad J", fmt_shape(a.shape), j, j_ref)
    add("content_loss_and_grad grad", fmt_shape(a.shape), g, g_ref)

    x = (255 * r.random((13, 11, 3))).astype(np.float32)
    j, g = be.tv_loss_and_grad(dev(x))
    j_ref, g_ref = losses.tv_loss_and_grad(d64(x))
    add("tv_loss_and_grad J", fmt_shape(x.shape), j, j_ref)
    add("tv_loss_and_grad grad", fmt_shape(x.shape), g, g_ref)

    t, c = (255 * r.random((13, 11, 3))).astype(np.float32), r.random((13, 11)).astype(np.float32)
    j, g = be.temporal_loss_and_grad(dev(x), dev(t), dev(c))
    j_ref, g_ref = losses.temporal_loss_and_grad(d64(x), d64(t), d64(c))
    add("temporal_loss_and_grad J", fmt_shape(x.shape), j, j_ref)
    add("temporal_loss_and_grad grad", fmt_shape(x.shape), g, g_ref)

    x, g, m, v = (255 * r.random(1001)).astype(np.float32), f32(1001), f32(1001), np.abs(f32(1001))
    want = [d64(a).copy() for a in (x, m, v)]
    ops.adam_step(want[0], d64(g), want[1], want[2], 3, 2.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
    xd, md, vd = dev(x), dev(m), dev(v)
    be.adam_step(xd, dev(g), md, vd, 3, 2.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
    for what, got, ref in zip("xmv", (xd, md, vd), want):
        add(f"adam_step {what}", fmt_shape(x.shape), got, ref)

    # the whole objective on this backend (float32) against the reference (float64)
    agree = objective_agreement(be, seed=seed, content=(33, 29), style=(27, 31), style_weight=1e2,
                                tv_weight=1e-2)
    shape = fmt_shape((33, 29, 3))
    for op, error, ok in (("objective J", agree.j_error, agree.j_ok),
                          ("objective ∂J/∂X", agree.grad_error, agree.grad_ok)):
        rows.append(Row(name, op, shape, error, agree.rtol, "PASS" if ok else "FAIL"))
    return rows
