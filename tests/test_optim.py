"""The hand-written optimisers on problems with known answers."""
import numpy as np
import pytest

from nst.optim import LBFGS, Adam, GradientDescent, make_optimizer


def quadratic(a, target):
    # J = ½ Σ a_i (x_i − t_i)², minimum J = 0 at x = t
    def fun(x):
        d = x - target
        return 0.5 * float(np.sum(a * d * d)), a * d
    return fun


def rosenbrock(x):
    # the classic curved valley; minimum 0 at (1, 1)
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
    return f, g


def test_lbfgs_solves_ill_conditioned_quadratic(rng):
    a = np.logspace(0, 2, 20)                      # condition number 100
    t = rng.uniform(50, 200, 20)
    opt = LBFGS(np.full(20, 128.0), history=10)
    for _ in range(100):
        opt.step(quadratic(a, t))
    assert opt.iteration == 100                    # runs every requested iteration
    np.testing.assert_allclose(opt.x, t, rtol=1e-5)


def test_lbfgs_rosenbrock():
    opt = LBFGS(np.array([-1.2, 1.0]), history=5, lr=0.1)
    for _ in range(100):
        opt.step(rosenbrock)
    np.testing.assert_allclose(opt.x, [1, 1], atol=1e-5)


def test_lbfgs_never_increases_loss(rng):
    opt = LBFGS(np.array([-1.2, 1.0]), history=3)
    values = [opt.step(rosenbrock) for _ in range(30)]
    assert all(b <= a for a, b in zip(values, values[1:]))


def test_lbfgs_recovers_from_bad_history():
    logs = []
    opt = LBFGS(np.array([3.0, -2.0]), history=4, log=logs.append)
    fun = quadratic(np.array([1.0, 10.0]), np.zeros(2))
    opt.step(fun)
    s, y, rho = opt.pairs[-1]
    opt.pairs[-1] = (s, -y, -rho)                  # poison the curvature: direction goes uphill
    for _ in range(20):
        opt.step(fun)
    assert any("history cleared" in m for m in logs)
    np.testing.assert_allclose(opt.x, 0, atol=1e-6)


def test_adam_converges_and_clips(rng):
    t = rng.uniform(20, 230, 30)
    opt = Adam(np.full(30, 128.0), lr=2.0)
    for _ in range(400):
        opt.step(quadratic(np.ones(30), t))
    np.testing.assert_allclose(opt.x, t, atol=0.5)
    opt = Adam(np.full(3, 250.0), lr=50.0)
    opt.step(quadratic(np.ones(3), np.full(3, 900.0)))  # pulled above 255: clipped
    assert np.all(opt.x <= 255)


def test_gradient_descent_step_is_exact():
    opt = GradientDescent(np.array([10.0, 20.0]), lr=0.25)
    opt.step(lambda x: (0.0, np.array([4.0, -8.0])))
    assert opt.x.tolist() == [9.0, 22.0]


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("sgd", np.zeros(2))


def test_lbfgs_backs_off_from_non_finite_trials():
    # J is "NaN" beyond |x| > 50: the line search must shrink the step instead of stopping
    from nst.optim import NonFiniteLoss
    base = quadratic(np.ones(3), np.full(3, 40.0))

    def fun(x):
        if np.max(np.abs(x)) > 50:
            raise NonFiniteLoss("overflow")
        return base(x)
    opt = LBFGS(np.zeros(3), history=5, lr=10.0)        # first Polyak step lands at x = 400
    for _ in range(20):
        opt.step(fun)
    np.testing.assert_allclose(opt.x, 40.0, rtol=1e-6)
