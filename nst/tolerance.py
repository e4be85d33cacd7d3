"""The one tolerance rule for comparing a fast kernel with the reference.

    |a − ref| ≤ atol + rtol·|ref|  elementwise,  atol = atol_scale · max|ref|

atol follows the array's magnitude, so one rule serves activations (~1e3) and gradients (~1e-6).
float32 kernels against the float32/float64 reference meet the defaults; the few looser rules are
named in LOOSER with their reason, and a kernel module names the one a version needs in its
TOLERANCE table (nst.kernels.Registry.tolerance). Tests, `nst gradcheck`, the self-check and the
benchmarks' own validation all use this module. Bottom layer: imports only NumPy.
"""
import numpy as np

RTOL = 1e-4
ATOL_SCALE = 1e-5

LOOSER = {
    # Winograd F(4×4,3×3): its transforms hold entries up to 8 and 1/24, so float32 rounding in
    # the transformed domain grows an order of magnitude (bench/RESULTS.md has the numbers)
    "winograd4": dict(rtol=RTOL, atol_scale=1e-4),
    # TF32 tensor cores round both operands to a 10-bit mantissa (2^-11 relative each), summing in
    # float32: errors ~1e-3 of the output's scale
    "tf32": dict(rtol=5e-3, atol_scale=5e-3),
    # a whole float32 objective (16 conv layers, their sums in other orders) against float64
    "network": dict(rtol=1e-3, atol_scale=1e-4),
}
NETWORK = LOOSER["network"]


def rule(name=None):
    # -> dict(rtol=, atol_scale=): the default rule, or the looser rule called `name`
    return dict(rtol=RTOL, atol_scale=ATOL_SCALE) if name is None else dict(LOOSER[name])


def rel_err(a, ref):
    # max |a − ref| / max |ref|: one number per array, scaled by the reference's magnitude
    # (computed on the GPU when either is a CuPy array: one number comes to the host)
    on_gpu = any(type(v).__module__.startswith("cupy") for v in (a, ref))
    xp = __import__("cupy") if on_gpu else np
    a, ref = xp.asarray(a, dtype=xp.float64), xp.asarray(ref, dtype=xp.float64)
    return float(xp.max(xp.abs(a - ref)) / max(float(xp.max(xp.abs(ref))), 1e-30))


def mismatch(a, ref, rtol=RTOL, atol_scale=ATOL_SCALE, what="array"):
    # -> None when a meets the rule against ref, else a message naming the worst elements
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if a.shape != ref.shape:
        return f"{what}: shape {a.shape} != reference {ref.shape}"
    finite = np.isfinite(ref)
    if not np.array_equal(np.isfinite(a), finite) or not np.array_equal(a[~finite], ref[~finite], equal_nan=True):
        return f"{what}: non-finite values differ from the reference's"
    a, ref = np.where(finite, a, 0.0), np.where(finite, ref, 0.0)
    atol = atol_scale * float(np.max(np.abs(ref))) if ref.size else 0.0
    err = np.abs(a - ref)
    bad = err > atol + rtol * np.abs(ref)
    if not np.any(bad):
        return None
    worst = np.argsort(err, axis=None)[::-1][:5]
    rows = [f"  at {np.unravel_index(k, a.shape)}: got {a.flat[k]:.6g}, ref {ref.flat[k]:.6g}" for k in worst]
    return (f"{what}: {int(bad.sum())}/{a.size} elements outside atol={atol:.3g} rtol={rtol:g}; worst:\n"
            + "\n".join(rows))
