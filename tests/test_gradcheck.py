"""The reference maths (nst/ops.py, nst/losses.py, nst/objective.py), float64, tiny odd shapes.

Every backward against central finite differences is nst.gradcheck.fd_rows (one row per op and
the whole objective, run here on other seeds; tests/test_gradcheck_tool.py runs the table as
`nst gradcheck` prints it). The forward values are checked against their textbook formulas.
"""
import numpy as np
import pytest

from nst import gradcheck, losses, ops
from nst.objective import Objective, grad_to_image, preprocess
from nst.testing import random_image, tiny_params


@pytest.fixture
def r():
    return np.random.default_rng(7)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_backward_matches_finite_differences(seed):
    # every op's backward and the whole objective's ∂J/∂X (tests/test_gradcheck_tool.py: seed 0)
    rows = gradcheck.fd_rows(seed=seed)
    bad = [row for row in rows if row.status != "PASS" or not row.error < row.threshold]
    assert len(rows) == 11 and "temporal loss" in {row.op for row in rows} and not bad, bad


def test_conv3x3_matches_direct_sum(r):
    # the 9-shifted-matmul form equals the textbook formula y[o,i,j] = b + Σ w·xpad
    x, w, b = r.normal(size=(2, 4, 5)), r.normal(size=(3, 2, 3, 3)), r.normal(size=3)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    direct = np.array([[[b[o] + np.sum(w[o] * xp[:, i:i + 3, j:j + 3]) for j in range(5)]
                        for i in range(4)] for o in range(3)])
    np.testing.assert_allclose(ops.conv3x3(x, w, b), direct, rtol=1e-12, atol=1e-12)


def test_maxpool_tie_goes_to_first_maximum():
    x = np.ones((1, 2, 2))
    dx = ops.maxpool2x2_backward(np.array([[[5.0]]]), x)
    assert dx.tolist() == [[[5.0, 0.0], [0.0, 0.0]]]


def test_style_loss_is_spec_formula(r):
    # same sizes: Σ(Ĝ(S)−Ĝ(X))²/n_c² equals the talk's ‖G^S − G^X‖²_F / (h·w·n_c)²
    a, s = r.normal(size=(4, 3, 5)), r.normal(size=(4, 3, 5))
    fa, fs = a.reshape(4, -1), s.reshape(4, -1)
    talk = np.sum((fs @ fs.T - fa @ fa.T) ** 2) / (15 * 4) ** 2
    assert talk > 0
    assert losses.style_loss_and_grad(a, losses.gram(s))[0] == pytest.approx(talk, rel=1e-12)


def test_content_and_tv_loss_are_spec_formulas(r):
    a, t = r.normal(size=(3, 4, 5)), r.normal(size=(3, 4, 5))
    assert losses.content_loss_and_grad(a, t)[0] == pytest.approx(0.5 * np.sum((a - t) ** 2), rel=1e-12)
    x = r.uniform(0, 255, size=(5, 7, 3))
    tv = np.sum(np.diff(x, axis=0) ** 2) + np.sum(np.diff(x, axis=1) ** 2)
    assert losses.tv_loss_and_grad(x)[0] == pytest.approx(tv, rel=1e-12)


def test_preprocess_is_bgr_minus_the_caffe_mean():
    # p(x): RGB → BGR minus SPEC's [103.939, 116.779, 123.68] (BGR), 3×H×W; ∂J/∂p flips back to RGB.
    # A consistent slip on both sides (no flip, the mean in RGB order) keeps every gradient check
    x = np.array([[[10.0, 20.0, 30.0]]])                         # one pixel: R 10, G 20, B 30
    np.testing.assert_allclose(preprocess(np, x, np.float64)[:, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68],
                               rtol=1e-12)
    g = np.arange(6.0).reshape(3, 1, 2)                          # ∂J/∂p: planes B [0 1], G [2 3], R [4 5]
    np.testing.assert_array_equal(grad_to_image(np, g)[0, 1], [5.0, 3.0, 1.0])


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_whole_objective_directional_derivative(pooling):
    # ∂J/∂X · d against one central difference along d: every pixel at once (fd_rows samples 40)
    r = np.random.default_rng(3)
    content, x = random_image(r, 17, 19), random_image(r, 17, 19)
    style = random_image(r, 21, 16)
    # α = 0.5, not 1: with α = 1 a content gradient missing its weight matched J all the same
    obj = Objective(content, style, content_weight=0.5, style_weight=1e2, tv_weight=1e-2,
                    weights=tiny_params(seed=1, dtype=np.float64), dtype=np.float64, pooling=pooling)
    _, terms, _, grad = obj.evaluate(x)
    assert all(v > 0 for v in terms.values())
    d = r.normal(size=x.shape)
    dd = (float(obj.evaluate(x + 1e-3 * d)[0]) - float(obj.evaluate(x - 1e-3 * d)[0])) / 2e-3
    assert np.sum(grad * d) == pytest.approx(dd, rel=1e-6)
