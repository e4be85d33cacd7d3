"""Every backward of the reference against central finite differences, float64, tiny odd shapes.

For an op y = f(x) the check uses the fake loss L = Σ f(x)·dout, whose gradient is the op's
backward applied to dout. A relative error below 1e-6 means the maths is right (float64 FD with
these step sizes is good to ~1e-8; ReLU kinks and pool ties are avoided by random inputs).
"""
import numpy as np
import pytest

from nst import losses, ops
from nst.objective import Objective
from conftest import random_image, tiny_params
from nst.gradcheck import numeric_grad
from nst.tolerance import rel_err

GRAD_RTOL = 1e-6


@pytest.fixture
def r():
    return np.random.default_rng(7)


def test_conv3x3_backward_input(r):
    x, w = r.normal(size=(3, 5, 7)), r.normal(size=(4, 3, 3, 3))
    b, dout = r.normal(size=4), r.normal(size=(4, 5, 7))
    num = numeric_grad(lambda x: np.sum(ops.conv3x3(x, w, b) * dout), x)
    assert rel_err(ops.conv3x3_backward_input(dout, w), num) < GRAD_RTOL


def test_conv3x3_matches_direct_sum(r):
    # the 9-shifted-matmul form equals the textbook formula y[o,i,j] = b + Σ w·xpad
    x, w, b = r.normal(size=(2, 4, 5)), r.normal(size=(3, 2, 3, 3)), r.normal(size=3)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    direct = np.array([[[b[o] + np.sum(w[o] * xp[:, i:i + 3, j:j + 3]) for j in range(5)]
                        for i in range(4)] for o in range(3)])
    np.testing.assert_allclose(ops.conv3x3(x, w, b), direct, rtol=1e-12, atol=1e-12)


def test_conv3x3_relu_backward_input(r):
    x, w = r.normal(size=(2, 6, 5)), r.normal(size=(3, 2, 3, 3))
    b, dout = r.normal(size=3), r.normal(size=(3, 6, 5))
    a = ops.conv3x3_relu(x, w, b)
    assert 0 < np.mean(a > 0) < 1, "the test needs both active and inactive units"
    num = numeric_grad(lambda x: np.sum(ops.conv3x3_relu(x, w, b) * dout), x)
    assert rel_err(ops.conv3x3_relu_backward_input(dout, a, w), num) < GRAD_RTOL


@pytest.mark.parametrize("shape", [(2, 7, 9), (3, 6, 5), (1, 4, 4)])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pool_backward(r, shape, pool):
    fwd, bwd = {"max": (ops.maxpool2x2, ops.maxpool2x2_backward),
                "avg": (ops.avgpool2x2, ops.avgpool2x2_backward)}[pool]
    x = r.normal(size=shape)
    dout = r.normal(size=fwd(x).shape)
    num = numeric_grad(lambda x: np.sum(fwd(x) * dout), x)
    assert rel_err(bwd(dout, x), num) < GRAD_RTOL


def test_maxpool_tie_goes_to_first_maximum():
    x = np.ones((1, 2, 2))
    dx = ops.maxpool2x2_backward(np.array([[[5.0]]]), x)
    assert dx.tolist() == [[[5.0, 0.0], [0.0, 0.0]]]


def test_style_loss_grad(r):
    a = np.abs(r.normal(size=(5, 3, 7)))
    target = losses.gram(np.abs(r.normal(size=(5, 4, 4))))      # style of another size
    j, g = losses.style_loss_and_grad(a, target)
    num = numeric_grad(lambda a: losses.style_loss_and_grad(a, target)[0], a)
    assert rel_err(g, num) < GRAD_RTOL


def test_style_loss_is_spec_formula(r):
    # same sizes: Σ(Ĝ(S)−Ĝ(X))²/n_c² equals the talk's ‖G^S − G^X‖²_F / (h·w·n_c)²
    a, s = r.normal(size=(4, 3, 5)), r.normal(size=(4, 3, 5))
    fa, fs = a.reshape(4, -1), s.reshape(4, -1)
    talk = np.sum((fs @ fs.T - fa @ fa.T) ** 2) / (15 * 4) ** 2
    assert losses.style_loss_and_grad(a, losses.gram(s))[0] == pytest.approx(talk, rel=1e-12)


def test_content_loss_grad(r):
    a, t = r.normal(size=(3, 4, 5)), r.normal(size=(3, 4, 5))
    j, g = losses.content_loss_and_grad(a, t)
    assert j == pytest.approx(0.5 * np.sum((a - t) ** 2))
    num = numeric_grad(lambda a: losses.content_loss_and_grad(a, t)[0], a)
    assert rel_err(g, num) < GRAD_RTOL


def test_tv_loss_grad(r):
    x = r.uniform(0, 255, size=(5, 7, 3))
    j, g = losses.tv_loss_and_grad(x)
    assert j == pytest.approx(np.sum(np.diff(x, axis=0) ** 2) + np.sum(np.diff(x, axis=1) ** 2))
    num = numeric_grad(lambda x: losses.tv_loss_and_grad(x)[0], x, eps=1e-3)
    assert rel_err(g, num) < GRAD_RTOL


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_whole_objective_gradient(pooling):
    # J = α J_c + β J_s + γ J_tv through the whole tiny VGG19 (every layer to block5_conv1)
    r = np.random.default_rng(3)
    content, style, x = (random_image(r, 17, 19).astype(np.float64) for _ in range(3))
    style = random_image(r, 21, 16).astype(np.float64)
    obj = Objective(content, style, content_weight=1.0, style_weight=1e2, tv_weight=1e-2,
                    weights=tiny_params(seed=1, dtype=np.float64), dtype=np.float64, pooling=pooling)
    _, terms, _, grad = obj.evaluate(x)
    assert all(v > 0 for v in terms.values())
    f = lambda x: float(obj.evaluate(x)[0])
    coords = r.choice(x.size, 40, replace=False)
    num = numeric_grad(f, x, eps=1e-3, coords=coords)
    assert rel_err(grad.flat[coords], num.flat[coords]) < 1e-5
    d = r.normal(size=x.shape)                       # a directional derivative, all pixels at once
    dd = (f(x + 1e-3 * d) - f(x - 1e-3 * d)) / 2e-3
    assert np.sum(grad * d) == pytest.approx(dd, rel=1e-6)
