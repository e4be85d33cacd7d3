"""The hand-written optimisers on problems with known answers."""
import numpy as np
import pytest

from nst import ops
from nst.lbfgs import PairHistory, two_loop
from nst.optim import LBFGS, Abandoned, Adam, GradientDescent, NonFiniteLoss, make_optimizer


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
    assert opt.iteration == 100 or opt.stopped     # runs every requested iteration, or says why not
    np.testing.assert_allclose(opt.x, t, rtol=1e-5)


def test_lbfgs_rosenbrock():
    opt = LBFGS(np.array([-1.2, 1.0]), history=5, lr=0.1)
    for _ in range(100):
        opt.step(rosenbrock)
    np.testing.assert_allclose(opt.x, [1, 1], atol=1e-5)


def test_lbfgs_never_increases_loss(rng):
    # every step an accepted iteration (Armijo: J strictly lower), not an optimiser that stopped at
    # once and returned the same J thirty times; Rosenbrock's J is 24.2 at the start
    opt = LBFGS(np.array([-1.2, 1.0]), history=3)
    values = [opt.step(rosenbrock) for _ in range(30)]
    assert opt.iteration == 30 and not opt.stopped, opt.stopped
    assert all(b < a for a, b in zip(values, values[1:])) and values[-1] < 0.1, values


def poison_newest(opt):
    # y ← −y for the newest pair, its products with it: negative curvature, so d may point uphill
    h = opt.pairs
    j = h.rows[-1]
    h.Y[j] *= -1
    h.sy[:, j] *= -1
    h.yy[:, j] *= -1
    h.yy[j, :] *= -1


def test_lbfgs_recovers_from_bad_history():
    logs = []
    opt = LBFGS(np.array([3.0, -2.0]), history=4, log=logs.append)
    fun = quadratic(np.array([1.0, 10.0]), np.zeros(2))
    opt.step(fun)
    poison_newest(opt)                             # poison the curvature: direction goes uphill
    for _ in range(20):
        opt.step(fun)
    assert any("history cleared" in m for m in logs)
    np.testing.assert_allclose(opt.x, 0, atol=1e-6)


def test_lbfgs_state_holds_its_history_without_copying_it(rng):
    # a checkpoint of a big picture must not stack the pairs into a second copy (+10 GiB at 8K):
    # state() hands over the optimiser's own rows; restore() takes them back into the same rows,
    # with the same products, and continues along the same steps bit for bit. An older checkpoint
    # (k×N stacks, no rows or products: recomputed) continues along them up to rounding, which the
    # line search's accept/halve decisions amplify to ~1e-7 here.
    fun = quadratic(np.logspace(0, 2, 30), rng.uniform(50, 200, 30))
    opt = LBFGS(np.full(30, 128.0), history=4)
    for _ in range(6):
        opt.step(fun)
    st = opt.state()
    assert len(opt.pairs) == 4 and list(opt.pairs.rows) != [0, 1, 2, 3]      # the ring has gone round
    assert all(np.shares_memory(st[f"pairs_s.{k}"], s) and np.shares_memory(st[f"pairs_y.{k}"], y)
               for k, (s, y) in enumerate(opt.pairs))
    older = {k: v for k, v in st.items() if not k.startswith("pairs_") or k == "pairs_rho"}
    older.update(pairs_s=np.stack([s for s, _ in opt.pairs]), pairs_y=np.stack([y for _, y in opt.pairs]),
                 pairs_rho=1.0 / np.array(opt.pairs.curvatures()))
    copies = []
    for state in (st, older):
        again = LBFGS(np.zeros(30), history=4)
        again.restore({k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in state.items()})
        copies.append(again)
    for _ in range(3):
        for o in (opt, *copies):
            o.step(fun)
    np.testing.assert_array_equal(copies[0].x, opt.x)
    np.testing.assert_allclose(copies[1].x, opt.x, rtol=1e-6)


def test_lbfgs_abandoned_iteration_leaves_the_state_of_the_last_whole_one(rng):
    # a stop asked inside a line search (fun raises Abandoned) drops the unfinished iteration, here
    # after a failed search had cleared the history: the state is the last whole iteration's, and
    # the next steps are those of an optimiser that was never stopped, bit for bit
    fun = quadratic(np.logspace(0, 2, 30), rng.uniform(50, 200, 30))
    opt, twin = (LBFGS(np.full(30, 128.0), history=4) for _ in range(2))
    for _ in range(5):
        opt.step(fun)
        twin.step(fun)
    before = opt.state()
    calls = []

    def failing(x):
        # 20 overshoots (the whole line search: history cleared), then a stop in the retry
        calls.append(1)
        if len(calls) > opt.max_backtracks:
            raise Abandoned
        raise NonFiniteLoss("overshot")
    with pytest.raises(Abandoned):
        opt.step(failing)
    assert opt.resets == 0 and len(opt.pairs) == 4 and len(calls) == opt.max_backtracks + 1
    after = opt.state()
    assert after.keys() == before.keys()
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v, err_msg=k)
    for _ in range(3):
        opt.step(fun)
        twin.step(fun)
    np.testing.assert_array_equal(opt.x, twin.x)


def test_lbfgs_resumed_stops_by_gtol_where_the_whole_run_does():
    # the gtol rule compares ‖g‖∞ with the first gradient's: a restored optimiser took the
    # resume point's gradient as its first and stopped later than the uninterrupted run
    fun = quadratic(np.logspace(0, 1, 12), np.linspace(0, 255, 12))

    def run_until_stopped(opt):
        while not opt.stopped and opt.iteration < 200:
            opt.step(fun)
        return opt.iteration, opt.stopped

    whole = run_until_stopped(LBFGS(np.full(12, 128.0), history=3, gtol=1e-3, ftol=0))
    first = LBFGS(np.full(12, 128.0), history=3, gtol=1e-3, ftol=0)
    for _ in range(3):
        first.step(fun)
    again = LBFGS(np.zeros(12), history=3, gtol=1e-3, ftol=0)
    again.restore(first.state())
    assert "first gradient" in whole[1] and run_until_stopped(again) == whole


def test_lbfgs_stop_message_counts_agree_with_their_nouns():
    # a stop at the first gradient (gtol 1: at once) said "after 0 iterations, 1 evaluations"
    logged = []
    opt = LBFGS(np.full(12, 128.0), gtol=1.0, log=logged.append)
    opt.step(quadratic(np.logspace(0, 1, 12), np.linspace(0, 255, 12)))
    assert opt.stopped and logged[0].startswith("L-BFGS stopped after 0 iterations, 1 evaluation: "), logged


def test_lbfgs_restore_refuses_rows_that_do_not_fit():
    opt = LBFGS(np.full(6, 1.0), history=4)
    for _ in range(3):
        opt.step(quadratic(np.arange(1.0, 7.0), np.zeros(6)))
    st = opt.state()
    k = len(opt.pairs)
    for bad in ({"pairs_rows": np.arange(1, k + 1)}, {"pairs_sy": np.zeros((k + 1, k + 1))}):
        with pytest.raises(ValueError, match="do not fit"):
            LBFGS(np.zeros(6), history=4).restore({**st, **bad})


@pytest.mark.parametrize("n, history, added", [(7, 3, 2), (7, 3, 5), (50, 20, 26), (1, 2, 3)])
def test_compact_direction_is_the_two_loop_recursion(rng, n, history, added):
    # PairHistory applies the H of the two-loop recursion, before and after its ring goes round,
    # and its gᵀd is d's; float64 throughout, so both agree to rounding
    h = PairHistory(history)
    for _ in range(added):
        s = rng.normal(size=n)
        y = s * rng.uniform(0.5, 4.0, n) + 0.1 * rng.normal(size=n) * (n > 1)
        h.add(s, y)
    pairs = [(s.copy(), y.copy()) for s, y in h]
    assert len(pairs) == min(history, added) and all(s @ y > 0 for s, y in pairs)
    g = rng.normal(size=n)
    d, gtd, g_max = h.direction(g)
    np.testing.assert_allclose(d, -two_loop(g, pairs), rtol=1e-9, atol=1e-12 * np.abs(d).max())
    assert np.isclose(gtd, g @ d, rtol=1e-9) and g_max == np.abs(g).max()


def test_pair_without_curvature_is_not_kept():
    h = PairHistory(3)
    assert h.add(np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    assert not h.add(np.array([1.0, 0.0]), np.array([-1.0, 1.0]))       # yᵀs < 0
    assert len(h) == 1 and h.curvatures() == [1.0]
    d, gtd, _ = PairHistory(3).direction(np.array([3.0, -4.0]))           # no pairs: d = −g
    assert d.tolist() == [-3.0, 4.0] and gtd == -25.0
    assert not PairHistory(0).add(np.array([1.0, 0.0]), np.array([1.0, 1.0]))   # no room: steepest descent



def test_pair_with_zero_curvature_is_not_kept():
    # yᵀs = 0 exactly (s ⟂ y): H would divide by it, so the pair is refused, not only yᵀs < 0
    h = PairHistory(3)
    assert not h.add(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert not h.add(np.array([1.0, 0.0]), np.array([1e-12, 1.0]))      # yᵀs ≤ 1e-10·yᵀy: refused too
    assert len(h) == 0


def test_lbfgs_first_trial_step_is_lr_times_the_polyak_step():
    # no curvature known yet: the first trial point is x − lr·(J/‖g‖²)·g (the --lr option scales it)
    fun, seen = quadratic(np.ones(3), np.zeros(3)), []
    x0 = np.array([4.0, -2.0, 1.0])
    opt = LBFGS(x0.copy(), lr=0.1)
    opt.step(lambda x: (seen.append(x.copy()), fun(x))[1])
    j, g = fun(x0)
    np.testing.assert_allclose(seen[1], x0 - 0.1 * j / (g @ g) * g, rtol=1e-12)


def test_adam_step_is_kingma_and_ba_by_hand():
    # nst.ops.adam_step, the reference every Adam kernel is checked against, from m = v = 0: both
    # bias corrections and ε outside the square root (ε = 1, so its place shows), worked by hand
    x, m, v = np.array([100.0, 100.0]), np.zeros(2), np.zeros(2)
    g1, g2 = np.array([3.0, -0.5]), np.array([1.0, 2.0])
    ops.adam_step(x, g1, m, v, 1, 2.0, 0.9, 0.999, 1.0, -np.inf, np.inf)
    np.testing.assert_allclose(x, 100.0 - 2.0 * g1 / (np.abs(g1) + 1.0), rtol=1e-12)   # m̂ = g, v̂ = g²
    want = x - 2.0 * ((0.09 * g1 + 0.1 * g2) / 0.19) / (np.sqrt((0.000999 * g1**2 + 0.001 * g2**2) / 0.001999) + 1.0)
    ops.adam_step(x, g2, m, v, 2, 2.0, 0.9, 0.999, 1.0, -np.inf, np.inf)
    np.testing.assert_allclose(x, want, rtol=1e-12)


def test_adam_defaults_are_kingma_and_ba():
    # β1 = 0.9, β2 = 0.999, ε = 1e-8: a first step of a tiny gradient still moves by lr (|g| ≫ ε),
    # and three steps are ops.adam_step's with those constants
    opt = Adam(np.full(2, 100.0), lr=1.0)
    opt.step(lambda x: (0.0, np.array([1e-4, -1e-4])))
    np.testing.assert_allclose(opt.x, [99.0, 101.0], rtol=0, atol=1e-3)
    x, m, v = np.full(2, 100.0), np.zeros(2), np.zeros(2)
    for t, g in enumerate(([1e-4, -1e-4], [1.0, -3.0], [0.5, 2.0]), start=1):
        ops.adam_step(x, np.array(g), m, v, t, 1.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
        if t > 1:
            opt.step(lambda _, g=g: (0.0, np.array(g)))
    np.testing.assert_allclose(opt.x, x, rtol=1e-12)


def test_gradient_descent_clips_into_the_pixel_range():
    # x ← clip(x − lr·g, 0, 255): a step past either end stops there
    opt = GradientDescent(np.array([10.0, 250.0, 128.0]), lr=1.0)
    opt.step(lambda x: (0.0, np.array([20.0, -20.0, 1.0])))
    assert opt.x.tolist() == [0.0, 255.0, 127.0]


def test_adam_converges_and_clips(rng):
    t = rng.uniform(20, 230, 30)
    opt = Adam(np.full(30, 128.0), lr=2.0)
    for _ in range(400):
        opt.step(quadratic(np.ones(30), t))
    np.testing.assert_allclose(opt.x, t, atol=0.5)
    opt = Adam(np.full(3, 250.0), lr=50.0)
    opt.step(quadratic(np.ones(3), np.full(3, 900.0)))  # pulled above 255 (a first step of lr): clipped there
    assert opt.x.tolist() == [255.0] * 3


def test_gradient_descent_step_is_exact():
    opt = GradientDescent(np.array([10.0, 20.0]), lr=0.25)
    opt.step(lambda x: (0.0, np.array([4.0, -8.0])))
    assert opt.x.tolist() == [9.0, 22.0]


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="^unknown optimizer 'sgd': use lbfgs, adam or gd$"):
        make_optimizer("sgd", np.zeros(2))


def test_the_optimisers_are_listed_once(monkeypatch):
    # nst.optim.OPTIMIZERS is the one list: --optimizer's choices are its names, and make_optimizer
    # makes what it names (its own if-chain of names was a third list)
    from nst import optim
    from nst.cli.parser import build_parser
    from nst.run import settings
    transfer = build_parser()._subparsers._group_actions[0].choices["transfer"]
    choices = next(a.choices for a in transfer._actions if a.dest == "optimizer")
    assert settings.OPTIMIZERS == tuple(choices) == tuple(optim.OPTIMIZERS) == ("lbfgs", "adam", "gd")
    monkeypatch.setitem(optim.OPTIMIZERS, "plain", optim.GradientDescent)
    assert isinstance(make_optimizer("plain", np.zeros(2), lr=0.5), optim.GradientDescent)
    with pytest.raises(ValueError, match="^unknown optimizer 'sgd': use lbfgs, adam, gd or plain$"):
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


def float32_quadratic(rng, n, offset=1e6):
    # J ≈ 1e6 summed in float32, as a real objective's elements are: changes below ~1e-7·J are lost
    a = np.linspace(1, 10, n).astype(np.float32)
    t = rng.uniform(50, 200, n).astype(np.float32)

    def fun(x):
        d = (x - t).astype(np.float32)
        return float(np.float32(offset) + np.sum(np.float32(0.5) * a * d * d, dtype=np.float32)), a * d
    return fun, t


def test_lbfgs_stops_when_float32_j_stops_decreasing(rng):
    # the spin this guards against: iterations of ~18 evaluations each with J unchanged
    fun, t = float32_quadratic(rng, 50)
    logs = []
    opt = LBFGS(np.full(50, 128.0, np.float32), history=10, log=logs.append)
    for _ in range(300):
        opt.step(fun)
    assert opt.stopped and opt.iteration < 300
    assert opt.evaluations <= 2 * opt.iteration + 25, (opt.evaluations, opt.iteration)
    assert any("stopped" in m for m in logs)
    assert opt.f - 1e6 < 10                               # within ~1e-5·J of the minimum: ftol's 1e-6·J per step


def test_lbfgs_stops_on_relative_decrease():
    logs = []
    opt = LBFGS(np.array([3.0, -2.0]), history=4, ftol=1e-3, log=logs.append)
    fun = quadratic(np.array([1.0, 10.0]), np.zeros(2))
    fun_plus = lambda x: (fun(x)[0] + 1e3, fun(x)[1])     # noqa: E731  J bounded below by 1e3
    for _ in range(50):
        opt.step(fun_plus)
    assert opt.stopped and "decreased by" in opt.stopped
    assert opt.iteration < 50 and logs[-1].startswith("L-BFGS stopped")


def test_lbfgs_stops_on_gradient_norm():
    opt = LBFGS(np.array([3.0, -2.0]), history=4, gtol=1e-6)
    for _ in range(50):
        opt.step(quadratic(np.array([1.0, 10.0]), np.zeros(2)))
    assert opt.stopped and "‖g‖" in opt.stopped


def test_lbfgs_failed_line_search_is_reported_not_counted():
    # J flat (float32 cannot see the change) but the gradient says otherwise: no step can decrease J
    logs = []
    opt = LBFGS(np.zeros(4), log=logs.append)
    j = opt.step(lambda x: (1e6, np.ones(4)))
    assert j == 1e6 and opt.iteration == 0                # not counted as an iteration
    assert "line search found no decrease" in opt.stopped and opt.stopped in logs[-1]
    assert opt.evaluations <= 21                          # stops backtracking, does not spin
    before = opt.evaluations
    opt.step(lambda x: (1e6, np.ones(4)))                 # once stopped, a step evaluates nothing
    assert opt.evaluations == before


def test_lbfgs_logs_cleared_history_once():
    logs = []
    opt = LBFGS(np.array([3.0, -2.0]), history=4, log=logs.append)
    fun = quadratic(np.array([1.0, 10.0]), np.zeros(2))
    opt.step(fun)
    for _ in range(5):                                    # poison the curvature before every step
        poison_newest(opt)
        opt.step(fun)
    assert opt.resets == 5 and opt.iteration == 6
    assert sum("history cleared" in m for m in logs) == 1


def test_loss_totals_accumulate_in_float64(rng, tiny_weights):
    # what L-BFGS compares: J as a float64 sum (a float32 J ≈ 1e11 rounds away a 1e4 decrease)
    from nst.kernels import NUMBA
    from nst.objective import Objective
    a = rng.uniform(0, 2000, (8, 33, 35)).astype(np.float32)
    t = rng.uniform(0, 2000, (8, 33, 35)).astype(np.float32)
    d = (a - t).astype(np.float64)                        # the float32 differences, exactly
    for name, kernel in NUMBA.versions("content_loss_and_grad").items():
        j, _ = kernel(a, t)
        assert j.dtype == np.float64, name
        assert abs(float(j) - 0.5 * np.sum(d * d)) <= 1e-12 * 0.5 * np.sum(d * d), name
    content, image = rng.uniform(0, 255, (2, 21, 19, 3)).astype(np.float32)
    obj = Objective(content, content[::-1], content_weight=1.0, style_weight=1e3, tv_weight=1e-3,
                    weights=tiny_weights, log=lambda m: None)
    total, terms, per_layer, _ = obj.evaluate(image)
    assert np.asarray(total).dtype == np.float64
    assert all(np.asarray(v).dtype == np.float64 for v in [*terms.values(), *per_layer.values()])


@pytest.mark.parametrize("name", ["lbfgs", "adam", "gd"])
@pytest.mark.parametrize("lr", [0, -1.0, float("nan"), "fast"])
def test_a_step_size_that_cannot_work_is_refused_by_name(name, lr):
    # from a script: lr 0 never moved, a negative one climbed J, NaN poisoned x; each was accepted
    with pytest.raises(ValueError, match=f"^lr must be a finite number > 0, got {lr!r}$"):
        make_optimizer(name, np.full(6, 128.0), lr=lr)


@pytest.mark.parametrize("history", [0, 2.5, None])
def test_lbfgs_refuses_a_history_it_cannot_hold(history):
    with pytest.raises(ValueError, match="^history must be a whole number ≥ 1"):
        LBFGS(np.zeros(6), history=history)


@pytest.mark.parametrize("name", ["lbfgs", "adam", "gd"])
@pytest.mark.parametrize("x, error, needle", [
    ([100.0, 20.0], TypeError, r"^x must be a NumPy or CuPy array of floats \(the image, flattened\), got list$"),
    (np.array([100, 20, 3]), TypeError, r"^x must be an array of floats \(float32 or float64\), got int64$"),
    (np.zeros(0), ValueError, r"^x is empty: there is nothing to optimise$"),
])
def test_an_x_that_is_no_float_array_is_refused_by_name(name, x, error, needle):
    # a list was "can't multiply sequence by non-int" (L-BFGS, GD) or "No module named 'cupy'" (Adam);
    # integers failed inside Adam's update with a casting error
    with pytest.raises(error, match=needle):
        make_optimizer(name, x)


@pytest.mark.parametrize("kwargs, needle", [
    ({"beta1": 1.0}, r"^beta1 must be a number in \[0, 1\), got 1.0$"),       # ZeroDivisionError
    ({"beta1": 2.0}, r"^beta1 must be a number in \[0, 1\), got 2.0$"),       # accepted
    ({"beta2": -0.5}, r"^beta2 must be a number in \[0, 1\), got -0.5$"),
    ({"eps": 0}, r"^eps must be a finite number > 0, got 0$"),
    ({"eps": float("nan")}, r"^eps must be a finite number > 0, got nan$"),
])
def test_adam_refuses_moments_that_cannot_work(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        Adam(np.full(3, 128.0), lr=1.0, **kwargs)


@pytest.mark.parametrize("kwargs, needle", [
    ({"c1": 2.0}, r"^c1 must be a number in \(0, 1\), got 2.0$"),             # accepted: no step met it
    ({"c1": 0}, r"^c1 must be a number in \(0, 1\), got 0$"),
    ({"max_backtracks": 0}, r"^max_backtracks must be a whole number ≥ 1, got 0$"),   # stopped at once
    ({"ftol": -1e-6}, r"^ftol must be a finite number ≥ 0, got -1e-06$"),
    ({"gtol": float("nan")}, r"^gtol must be a finite number ≥ 0, got nan$"),
])
def test_lbfgs_refuses_line_search_settings_that_cannot_work(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        LBFGS(np.full(3, 128.0), **kwargs)


def test_lbfgs_says_when_j_is_not_finite_where_it_starts():
    # it stopped as if converged ("J is as low as float32 resolves"), x unchanged and no error
    opt = LBFGS(np.full(3, 128.0))
    with pytest.raises(NonFiniteLoss, match=r"^J is nan at the starting point: L-BFGS needs a finite J there$"):
        opt.step(lambda x: (float("nan"), x.copy()))
    assert not opt.stopped


def test_every_loss_kernel_keeps_its_float64_sum(rng):
    # the style and TV kernels summed in float64 and then returned J as float32 (content's and the
    # reference's J stay float64): up to 6e-8 of J rounded away, 2.8e-8 of J_tv here
    from nst.kernels import NUMBA
    x = rng.uniform(0, 255, (33, 35, 3)).astype(np.float32)
    dv, dh = (np.diff(x, axis=k).astype(np.float64) for k in (0, 1))   # the float32 differences, exactly
    want = np.sum(dv * dv) + np.sum(dh * dh)
    for name, kernel in NUMBA.versions("tv_loss_and_grad").items():
        j, _ = kernel(x)
        assert j.dtype == np.float64 and abs(float(j) - want) <= 1e-12 * want, (name, float(j) - want)
    a = rng.uniform(0, 20, (8, 33, 35)).astype(np.float32)
    target = rng.uniform(0, 20, (8, 8)).astype(np.float32)
    for name, kernel in NUMBA.versions("style_loss_and_grad").items():
        assert kernel(a, target)[0].dtype == np.float64, name


def test_lbfgs_says_when_the_gradient_is_not_finite():
    # a NaN gradient with a finite J stopped it as if converged ("not a descent direction along
    # steepest descent: J is as low as float32 resolves"), x unchanged and no error
    opt = LBFGS(np.full(3, 128.0))
    with pytest.raises(NonFiniteLoss, match=r"^∂J/∂x holds NaN or inf at iteration 1's start: L-BFGS cannot step$"):
        opt.step(lambda x: (1.0, np.array([1.0, np.nan, 0.0])))
    assert not opt.stopped


def test_the_default_lbfgs_history_is_written_once():
    # nst.optim.HISTORY is every default's source: LBFGS's, make_optimizer's and --history's
    # (Settings); the memory estimate takes the run's value, it has no default of its own
    import inspect

    from nst import memory, optim
    from nst.run.settings import Settings
    assert inspect.signature(optim.LBFGS).parameters["history"].default is optim.HISTORY
    assert inspect.signature(optim.make_optimizer).parameters["history"].default is optim.HISTORY
    assert Settings().history is optim.HISTORY
    assert inspect.signature(memory.estimate).parameters["history"].default is inspect.Parameter.empty
