"""`nst gradcheck`: convince yourself the maths is right (docs/maths.md derives every formula).

numpy (the default): every hand-written backward of the reference (nst/ops.py, nst/losses.py) and
the whole objective J = α·J_c + β·J_s + γ·J_tv through a tiny random-weight VGG19, against central
finite differences in float64 on small random inputs with odd shapes. For an op y = f(x) the check
uses the fake loss L(x) = Σ f(x)·dout, whose gradient is exactly the op's backward applied to dout.

numba, cuda-cpu, cupy: that backend's forward and backward kernels against the NumPy reference (float32
kernels, float64 reference on the same inputs), and the whole objective on that backend against
the float64 reference. A backend missing on this machine is skipped with a one-line note.

error = max |analytic − numeric| / max |numeric| over the array; a finite-difference row passes when
error < its threshold. A backend row passes by nst.tolerance's rule (|a − ref| ≤ atol + rtol·|ref|
elementwise, threshold = its rtol), and shows the same error column.

    from nst.gradcheck import gradcheck_table
    for row in gradcheck_table():
        print(row)

The command (`nst gradcheck`: options, the printed table) is nst/cli/gradcheck.py; the tiny
random-weight VGG19 and the random images come from nst/testing.py.

Legend: C channels, I/O channels in/out, H×W spatial; op inputs are C×H×W, images H×W×3.
"""
from dataclasses import dataclass

import numpy as np

from . import losses, ops
from .testing import away_from_zero, objective_agreement, random_image, tiny_params
from .tolerance import mismatch, rel_err, rule

# Thresholds. float64 central differences with step eps have truncation error O(eps²·f''') and
# rounding error O(1e-16·|f|/eps): ~1e-9 for these sizes, so 1e-6 leaves room and still catches a
# gradient that is off by a factor 1.0001. The whole-network check takes a larger step (pixel
# units, 0..255) through 16 layers: 1e-5.
# float32 is offered only to show why the check runs in float64: its rounding (~6e-8 of |J|)
# divided by the step swamps the derivative, so only gross errors (> 10–50 %) show there.
FD_RTOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-1}
FD_RTOL_NETWORK = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 5e-1}
FD_EPS = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-2}    # step on N(0,1) inputs


@dataclass
class Row:
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


# ---------------------------------------------------------------------------------------------
# Helpers

def numeric_grad(f, x, eps=1e-5, coords=None):
    # central differences of scalar f at x: g_k = (f(x + eps·e_k) − f(x − eps·e_k)) / 2eps,
    # at every coordinate (or only the given flat indices; the others stay 0). x is restored.
    g = np.zeros_like(x)
    idx = range(x.size) if coords is None else coords
    for k in idx:
        old = x.flat[k]
        x.flat[k] = old + eps
        fp = f(x)
        x.flat[k] = old - eps
        fm = f(x)
        x.flat[k] = old
        g.flat[k] = (fp - fm) / (2 * eps)
    return g


def fmt_shape(*shapes):
    return " → ".join("×".join(str(n) for n in s) for s in shapes)


# ---------------------------------------------------------------------------------------------
# Finite-difference checks of the reference (float64)

def smooth_numeric_grad(f, x, eps, coords=None, tol=1e-6):
    # -> (numeric gradient at coords, mask of the coords where f is smooth at the scale of eps).
    # ReLU kinks and max-pool ties make f piecewise smooth: where a ±eps step crosses one, the
    # central difference is meaningless. It shows as a disagreement between the steps eps and
    # eps/2 (for a smooth f they agree to O(eps²)); such coords are left out. The mask looks only
    # at f, never at the analytic gradient, so it cannot hide a wrong backward.
    idx = np.arange(x.size) if coords is None else np.asarray(coords)
    n1 = numeric_grad(f, x, eps, idx).flat[idx]
    n2 = numeric_grad(f, x, eps / 2, idx).flat[idx]
    return n1, np.abs(n1 - n2) <= tol * max(float(np.max(np.abs(n1))), 1e-30)


def _fd_row(op, shape, analytic, f, x, eps, threshold, coords=None, n_max=None):
    # compare the analytic gradient with central differences at coords (default: all), at most
    # n_max of the smooth ones; fails if fewer than half the coords are smooth
    idx = np.arange(x.size) if coords is None else np.asarray(coords)
    num, smooth = smooth_numeric_grad(f, x, eps, idx, tol=threshold / 4)
    keep = np.flatnonzero(smooth)[:n_max]
    err = rel_err(np.asarray(analytic).flat[idx[keep]], num[keep]) if keep.size else float("inf")
    ok = err < threshold and np.sum(smooth) * 2 >= idx.size
    skipped = idx.size - int(np.sum(smooth))
    note = f"{skipped} of {idx.size} coordinates at a kink or tie skipped" if skipped else ""
    if n_max is not None:
        shape = f"{shape} ({keep.size} px)"
    return Row("numpy", op, shape, err, threshold, "PASS" if ok else "FAIL", note)


def _conv_inputs(r, i, o, h, w, dtype, eps):
    # x I×H×W, w O×I×3×3, b O such that a step of ±eps on any one input cannot move a
    # pre-activation across the ReLU kink (it moves each by at most eps·max|w|), with both signs
    # present (else the ReLU check would test nothing)
    for _ in range(1000):
        x, wt = r.normal(size=(i, h, w)).astype(dtype), r.normal(size=(o, i, 3, 3)).astype(dtype)
        b = r.normal(size=o).astype(dtype)
        z = ops.conv3x3(x, wt, b)
        if np.min(np.abs(z)) > 2 * eps * np.max(np.abs(wt)) and 0.2 < np.mean(z > 0) < 0.8:
            return x, wt, b
    raise RuntimeError("no conv inputs away from the ReLU kink found; use a smaller eps")


def fd_rows(seed=0, dtype=np.float64):
    # -> [Row]: every backward of nst/ops.py and nst/losses.py, then the whole objective
    dtype = np.dtype(dtype)
    if dtype not in FD_EPS:
        raise ValueError(f"gradcheck dtype {dtype} is not supported: use float64 (or float32)")
    r = np.random.default_rng(seed)
    eps, tol = FD_EPS[dtype], FD_RTOL[dtype]
    rows = []

    # conv3x3, backward to the input: the transposed correlation
    x, w, b = _conv_inputs(r, 3, 4, 5, 7, dtype, eps)
    dout = r.normal(size=(4, 5, 7)).astype(dtype)
    rows.append(_fd_row("conv3x3 backward input", fmt_shape(x.shape, dout.shape),
                        ops.conv3x3_backward_input(dout, w),
                        lambda x: np.sum(ops.conv3x3(x, w, b) * dout), x, eps, tol))

    # ReLU: da · [a > 0]
    x = away_from_zero(r, (3, 5, 7), dtype)
    dout = r.normal(size=x.shape).astype(dtype)
    rows.append(_fd_row("relu backward", fmt_shape(x.shape), ops.relu_backward(dout, ops.relu(x)),
                        lambda x: np.sum(ops.relu(x) * dout), x, eps, tol))

    # conv3x3 + ReLU (the mask comes from the saved output a)
    x, w, b = _conv_inputs(r, 2, 3, 6, 5, dtype, eps)
    a = ops.conv3x3_relu(x, w, b)
    dout = r.normal(size=a.shape).astype(dtype)
    rows.append(_fd_row("conv3x3+relu backward input", fmt_shape(x.shape, a.shape),
                        ops.conv3x3_relu_backward_input(dout, a, w),
                        lambda x: np.sum(ops.conv3x3_relu(x, w, b) * dout), x, eps, tol))

    # 2×2 pools, odd sizes (the last row and column are dropped and get zero gradient)
    for name, fwd, bwd in (("maxpool2x2 backward", ops.maxpool2x2, ops.maxpool2x2_backward),
                           ("avgpool2x2 backward", ops.avgpool2x2, ops.avgpool2x2_backward)):
        x = r.normal(size=(3, 7, 9)).astype(dtype)
        dout = r.normal(size=fwd(x).shape).astype(dtype)
        rows.append(_fd_row(name, fmt_shape(x.shape, dout.shape), bwd(dout, x),
                            lambda x, fwd=fwd: np.sum(fwd(x) * dout), x, eps, tol))

    # Gram matrix + style loss, the style image of another size than X
    a = np.abs(r.normal(size=(5, 3, 7))).astype(dtype)
    target = losses.gram(np.abs(r.normal(size=(5, 4, 4))).astype(dtype))
    rows.append(_fd_row("style loss (Gram)", fmt_shape(a.shape),
                        losses.style_loss_and_grad(a, target)[1],
                        lambda a: losses.style_loss_and_grad(a, target)[0], a, eps, tol))

    # content loss
    a, t = r.normal(size=(3, 4, 5)).astype(dtype), r.normal(size=(3, 4, 5)).astype(dtype)
    rows.append(_fd_row("content loss", fmt_shape(a.shape), losses.content_loss_and_grad(a, t)[1],
                        lambda a: losses.content_loss_and_grad(a, t)[0], a, eps, tol))

    # total variation, on pixels 0..255: a larger step (the loss is quadratic, so exact anyway)
    x = random_image(r, 5, 7, dtype)
    rows.append(_fd_row("tv loss", fmt_shape(x.shape), losses.tv_loss_and_grad(x)[1],
                        lambda x: losses.tv_loss_and_grad(x)[0], x, 1e3 * eps, tol))

    for pooling in ("max", "avg"):
        rows.append(objective_fd_row(r, dtype, pooling))
    return rows


def objective_fd_row(r, dtype, pooling, n_coords=40):
    # J = α J_c + β J_s + γ J_tv through the whole tiny VGG19 (every layer down to block5_conv1),
    # through p(x) (BGR flip, mean): ∂J/∂X at n_coords random pixels against central differences.
    from .objective import Objective
    dtype = np.dtype(dtype)
    content, x = random_image(r, 17, 19, dtype), random_image(r, 17, 19, dtype)
    style = random_image(r, 21, 16, dtype)
    obj = Objective(content, style, content_weight=1.0, style_weight=1e2, tv_weight=1e-2,
                    weights=tiny_params(seed=int(r.integers(1 << 31)), dtype=dtype), dtype=dtype,
                    pooling=pooling, backend="numpy")
    grad = obj.evaluate(x)[3]
    candidates = r.choice(x.size, 3 * n_coords // 2, replace=False)     # spares for kinks
    return _fd_row(f"objective J ({pooling} pool)", fmt_shape(x.shape), grad,
                   lambda x: float(obj.evaluate(x)[0]), x, 1e2 * FD_EPS[dtype],
                   FD_RTOL_NETWORK[dtype], coords=candidates, n_max=n_coords)


# ---------------------------------------------------------------------------------------------
# A fast backend against the NumPy reference (float32 kernels, float64 reference)

def backend_rows(name, seed=0):
    # -> [Row] for backend `name` ("numba", "cupy"); one SKIP row if it is not available here
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


# ---------------------------------------------------------------------------------------------

def gradcheck_table(seed=0, dtype=np.float64, backends=("numpy",)):
    # -> [Row]: "numpy" = finite differences of the reference in `dtype` (float64: the meaningful
    # check; float32 runs with a larger step and looser thresholds); any other name = that
    # backend against the reference.
    rows = []
    for name in backends:
        rows += fd_rows(seed, dtype) if name == "numpy" else backend_rows(name, seed)
    return rows
