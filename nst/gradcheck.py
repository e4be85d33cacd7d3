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
import numpy as np

from . import losses, ops
from .library import counted
from .testing import Row, away_from_zero, backend_rows, fmt_shape, random_image, tiny_params
from .tolerance import rel_err

# Thresholds. float64 central differences with step eps have truncation error O(eps²·f''') and
# rounding error O(1e-16·|f|/eps): ~1e-9 for these sizes, so 1e-6 leaves room and still catches a
# gradient that is off by a factor 1.0001. The whole-network check takes a larger step (pixel
# units, 0..255) through 16 layers: 1e-5.
# float32 is offered only to show why the check runs in float64: its rounding (~6e-8 of |J|)
# divided by the step swamps the derivative, so only gross errors (> 10–50 %) show there.
FD_RTOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-1}
FD_RTOL_NETWORK = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 5e-1}
FD_EPS = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-2}    # step on N(0,1) inputs


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
    note = f"{skipped} of {counted(idx.size, 'coordinate')} at a kink or tie skipped" if skipped else ""
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

    # temporal loss (video): a mask in [0, 1], the target ω another image
    x, t, c = random_image(r, 5, 7, dtype), random_image(r, 5, 7, dtype), r.random((5, 7)).astype(dtype)
    rows.append(_fd_row("temporal loss", fmt_shape(x.shape), losses.temporal_loss_and_grad(x, t, c)[1],
                        lambda x: losses.temporal_loss_and_grad(x, t, c)[0], x, 1e3 * eps, tol))
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

def gradcheck_table(seed=0, dtype=np.float64, backends=("numpy",)):
    # -> [Row]: "numpy" = finite differences of the reference in `dtype` (float64: the meaningful
    # check; float32 runs with a larger step and looser thresholds); any other name = that
    # backend against the reference.
    rows = []
    for name in backends:
        rows += fd_rows(seed, dtype) if name == "numpy" else backend_rows(name, seed)
    return rows
