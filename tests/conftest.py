"""Shared test helpers.

The one tolerance rule (STYLE.md): |a − ref| ≤ atol + rtol·|ref|, elementwise, with
atol = atol_scale · max|ref| so that it follows the array's magnitude. float32 kernels against the
float32/float64 reference use the defaults below; any looser entry states its reason where it is used.
"""
import numpy as np
import pytest

RTOL = 1e-4
ATOL_SCALE = 1e-5


def assert_close(a, ref, rtol=RTOL, atol_scale=ATOL_SCALE, what="array"):
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert a.shape == ref.shape, f"{what}: shape {a.shape} != reference {ref.shape}"
    assert np.all(np.isfinite(a)), f"{what}: non-finite values"
    atol = atol_scale * float(np.max(np.abs(ref))) if ref.size else 0.0
    err = np.abs(a - ref)
    bad = err > atol + rtol * np.abs(ref)
    if np.any(bad):
        worst = np.argsort(err, axis=None)[::-1][:5]
        rows = [f"  at {np.unravel_index(k, a.shape)}: got {a.flat[k]:.6g}, ref {ref.flat[k]:.6g}"
                for k in worst]
        pytest.fail(f"{what}: {int(bad.sum())}/{a.size} elements outside atol={atol:.3g} "
                    f"rtol={rtol:g}; worst:\n" + "\n".join(rows))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# The tiny VGG19 (the real 16-layer graph, a few channels per block) lives in nst.gradcheck.
from nst import gradcheck  # noqa: E402
from nst.gradcheck import tiny_params  # noqa: E402


@pytest.fixture
def tiny_weights():
    return tiny_params()


@pytest.fixture
def tiny_weights_h5(tmp_path):
    from nst.weights import keras_h5
    path = tmp_path / "tiny_vgg19.h5"
    keras_h5.write(path, tiny_params(), source="random test weights")
    return path


def random_image(rng, h, w):
    return gradcheck.random_image(rng, h, w, np.float32)
