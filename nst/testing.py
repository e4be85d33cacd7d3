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
    check = _OpCheck(name, be, np.random.default_rng(seed))
    for family in (check.conv, check.pools, check.style, check.pointwise_losses, check.adam):
        family()
    # the whole objective on this backend (float32) against the reference (float64)
    agree = objective_agreement(be, seed=seed, content=(33, 29), style=(27, 31), style_weight=1e2,
                                tv_weight=1e-2)
    shape = fmt_shape((33, 29, 3))
    for op, error, ok in (("objective J", agree.j_error, agree.j_ok),
                          ("objective ∂J/∂X", agree.grad_error, agree.grad_ok)):
        check.rows.append(Row(name, op, shape, error, agree.rtol, "PASS" if ok else "FAIL"))
    return check.rows


def _d64(a):
    return np.asarray(a, np.float64)


class _OpCheck:
    """backend_rows' op families: each runs the backend's op(s) on random float32 inputs (odd
    sizes) and the float64 reference's, and appends a Row per output."""

    def __init__(self, name, be, r):
        self.name, self.be, self.r, self.rows = name, be, r, []

    def f32(self, *shape):
        return self.r.standard_normal(shape).astype(np.float32)

    def pixels(self, *shape):
        return (255 * self.r.random(shape)).astype(np.float32)

    def add(self, op, shape, got, want, tol=rule()):
        # passes by nst.tolerance's elementwise rule; the error column shows max|Δ|/max|ref|
        got = np.asarray(self.be.to_host(got), np.float64)
        ok = mismatch(got, want, **tol) is None
        self.rows.append(Row(self.name, op, shape, rel_err(got, want), tol["rtol"], "PASS" if ok else "FAIL"))

    def add_loss(self, op, shape, got, want):
        # a loss op's (J, gradient) pair against the reference's: two rows
        self.add(f"{op} J", shape, got[0], want[0])
        self.add(f"{op} grad", shape, got[1], want[1])

    def conv(self):
        be, dev = self.be, self.be.to_device
        for i, o, h, w in ((3, 8, 13, 11), (17, 13, 9, 10)):
            x, wt, b = self.f32(i, h, w), 0.3 * self.f32(o, i, 3, 3), 0.1 * self.f32(o)
            pw = be.prepare_weights(dev(wt), dev(b))
            a_ref = ops.conv3x3_relu(_d64(x), _d64(wt), _d64(b))
            self.add("conv3x3_relu", fmt_shape(x.shape, a_ref.shape), be.conv3x3_relu(dev(x), *pw), a_ref)
            da, a = self.f32(o, h, w), np.maximum(self.f32(o, h, w), 0)
            self.add("conv3x3_relu_backward_input", fmt_shape(da.shape, x.shape),
                     be.conv3x3_relu_backward_input(dev(da), dev(a), pw[0]),
                     ops.conv3x3_relu_backward_input(_d64(da), _d64(a), _d64(wt)))

    def pools(self):
        dev = self.be.to_device
        for kind in ("max", "avg"):
            fwd, bwd = getattr(ops, f"{kind}pool2x2"), getattr(ops, f"{kind}pool2x2_backward")
            x = self.f32(5, 13, 11)
            x[:, 0, 0] = x[:, 0, 1]                       # a tie: the first maximum must win
            dy = self.f32(5, 6, 5)
            self.add(f"{kind}pool2x2", fmt_shape(x.shape, dy.shape),
                     getattr(self.be, f"{kind}pool2x2")(dev(x)), fwd(_d64(x)))
            self.add(f"{kind}pool2x2_backward", fmt_shape(dy.shape, x.shape),
                     getattr(self.be, f"{kind}pool2x2_backward")(dev(dy), dev(x)), bwd(_d64(dy), _d64(x)))

    def style(self):
        dev = self.be.to_device
        a, s = np.maximum(self.f32(17, 13, 11), 0), np.maximum(self.f32(17, 7, 9), 0)
        self.add("gram", fmt_shape(a.shape), self.be.gram(dev(a)), losses.gram(_d64(a)))
        target = losses.gram(_d64(s))
        self.add_loss("style_loss_and_grad", fmt_shape(a.shape),
                      self.be.style_loss_and_grad(dev(a), dev(target.astype(np.float32))),
                      losses.style_loss_and_grad(_d64(a), target))

    def pointwise_losses(self):
        be, dev = self.be, self.be.to_device
        a, t = self.f32(17, 13, 11), self.f32(17, 13, 11)
        self.add_loss("content_loss_and_grad", fmt_shape(a.shape), be.content_loss_and_grad(dev(a), dev(t)),
                      losses.content_loss_and_grad(_d64(a), _d64(t)))
        x = self.pixels(13, 11, 3)
        self.add_loss("tv_loss_and_grad", fmt_shape(x.shape), be.tv_loss_and_grad(dev(x)),
                      losses.tv_loss_and_grad(_d64(x)))
        t, c = self.pixels(13, 11, 3), self.r.random((13, 11)).astype(np.float32)
        self.add_loss("temporal_loss_and_grad", fmt_shape(x.shape), be.temporal_loss_and_grad(dev(x), dev(t), dev(c)),
                      losses.temporal_loss_and_grad(_d64(x), _d64(t), _d64(c)))

    def adam(self):
        dev = self.be.to_device
        x, g, m, v = self.pixels(1001), self.f32(1001), self.f32(1001), np.abs(self.f32(1001))
        want = [_d64(a).copy() for a in (x, m, v)]
        ops.adam_step(want[0], _d64(g), want[1], want[2], 3, 2.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
        xd, md, vd = dev(x), dev(m), dev(v)
        self.be.adam_step(xd, dev(g), md, vd, 3, 2.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
        for what, got, ref in zip("xmv", (xd, md, vd), want):
            self.add(f"adam_step {what}", fmt_shape(x.shape), got, ref)
