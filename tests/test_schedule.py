"""The iteration schedule (nst.run.schedule): explicit counts run in full, the automatic one stops a
scale once J's progress no longer pays for its cost; both through a real Run on the tiny VGG19."""
import numpy as np
import pytest

from nst.run import schedule
from nst.run.run import Run
from nst.run.schedule import iteration_caps, stops_paying
from nst.run.settings import DEFAULTS, Settings
from conftest import random_image


def test_caps_explicit_and_automatic():
    assert iteration_caps(3, 7) == [7, 7, 7]
    assert iteration_caps(1, 5) == [5]
    first, middle, finest = schedule.FIRST_CAP, schedule.MIDDLE_CAP, schedule.FINEST_CAP
    assert iteration_caps(1, "auto") == [first]            # one scale builds the style from the start
    assert iteration_caps(2, "auto") == [first, finest]
    assert iteration_caps(4, "auto") == [first, middle, middle, finest]


def geometric(rate, n, j0=1e6):
    # J after each iteration when every iteration lowers J by the fraction `rate`
    return list(j0 * (1 - rate) ** np.arange(1, n + 1))


def test_stops_paying_threshold_scales_with_cost():
    tol, w = 1e-3, 5
    assert not stops_paying(geometric(0.0, w), 512, 512, tol, w)          # too few iterations to judge
    assert stops_paying(geometric(0.5 * tol, w + 1), 512, 512, tol, w)    # slow at the finest scale: stop
    assert not stops_paying(geometric(2 * tol, w + 1), 512, 512, tol, w)  # fast enough: go on
    # at half the side an iteration costs a quarter: the same progress still pays there
    assert not stops_paying(geometric(0.5 * tol, w + 1), 256, 512, tol, w)
    assert stops_paying(geometric(0.2 * tol, w + 1), 256, 512, tol, w)
    # the margins above are 2×: the cost is the pixel ratio squared (¼, not ½), and the window's
    # decrease is measured over all w iterations (J[−w−1] to J[−1]), each side of the threshold by 10 %
    assert not stops_paying(geometric(0.35 * tol, w + 1), 256, 512, tol, w)
    assert not stops_paying(geometric(1.1 * tol, w + 1), 512, 512, tol, w)
    assert stops_paying(geometric(0.9 * tol, w + 1), 512, 512, tol, w)
    # only the last window counts: a fast start does not keep a stalled scale going
    assert stops_paying(geometric(0.5, 10) + [geometric(0.5, 10)[-1]] * 6, 512, 512, tol, w)


def run_counts(rng, weights, **settings):
    # -> iterations run at each scale of a tiny 3-scale run
    c, s = random_image(rng, 24, 32), random_image(rng, 24, 24)
    run = Run(c, s, Settings(size=64, start_size=32, scales=3, weights=weights, backend="numpy", **settings),
              log=lambda m: None)
    seen = []
    run.run(lambda r, it, terms: seen.append(r.scale))
    return [seen.count(k) for k in range(3)], run


def test_automatic_schedule_stops_each_scale_when_progress_is_too_slow(rng, tiny_weights, monkeypatch):
    monkeypatch.setattr(schedule, "AUTO_TOL", 1e9)        # no progress is enough: each scale stops
    counts, run = run_counts(rng, tiny_weights)            # as soon as the rule can judge it
    assert run.settings.iterations == "auto"
    assert counts == [schedule.WINDOW + 1] * 3


def test_automatic_schedule_runs_to_its_caps_while_progress_pays(rng, tiny_weights, monkeypatch):
    monkeypatch.setattr(schedule, "AUTO_TOL", 0.0)         # every decrease pays: the caps end the scales
    monkeypatch.setattr(schedule, "FIRST_CAP", 9)
    monkeypatch.setattr(schedule, "MIDDLE_CAP", 4)
    monkeypatch.setattr(schedule, "FINEST_CAP", 2)
    counts, run = run_counts(rng, tiny_weights)
    assert counts == [9, 4, 2] and run.caps == [9, 4, 2]


def test_explicit_iterations_ignore_the_progress_rule(rng, tiny_weights, monkeypatch):
    monkeypatch.setattr(schedule, "AUTO_TOL", 1e9)
    counts, _ = run_counts(rng, tiny_weights, iterations=8)
    assert counts == [8, 8, 8]


@pytest.mark.parametrize("text, value", [("auto", "auto"), ("12", 12)])
def test_iterations_option(text, value):
    from nst.cli.parser import build_parser
    args = build_parser().parse_args(["transfer", "c.png", "s.png", "-o", "o.png", "--iterations", text])
    assert args.iterations == value


def test_default_is_automatic():
    assert DEFAULTS.iterations == "auto"


@pytest.mark.parametrize("emphasis", [{}, {"block4_conv1": 3.0}, {"block1_conv1": 0.5, "block5_conv1": 2.0}])
def test_auto_layer_weights_share_the_style_weight_by_emphasis(rng, monkeypatch, emphasis):
    # λ_l·E_s^l = E_c·m_l/Σm: each layer's relative error weighs m_l/Σm of β, whatever the targets' scale
    from nst import objective
    monkeypatch.setattr(objective, "AUTO_EMPHASIS", emphasis)
    monkeypatch.setattr(objective, "AUTO_PULL", 0.0)              # the pair's balance: next test
    content = {"block4_conv2": rng.normal(size=(8, 3, 4)).astype(np.float32)}
    layers = ["block1_conv1", "block2_conv1", "block4_conv1", "block5_conv1"]
    style = {n: (10.0 ** k * rng.normal(size=(c, c))).astype(np.float32)
             for k, (n, c) in enumerate(zip(layers, (4, 6, 8, 8)))}
    lam = objective.auto_layer_weights(content, style)
    e_c = float((content["block4_conv2"].astype(np.float64) ** 2).sum())
    e_s = [float((g.astype(np.float64) ** 2).sum()) / g.shape[0] ** 2 for g in style.values()]
    m = np.array([emphasis.get(n, 1.0) for n in layers])
    np.testing.assert_allclose(np.array(lam) * e_s, e_c * m / m.sum(), rtol=1e-6)


@pytest.mark.parametrize("pull", [0.25, 1.0])
def test_auto_layer_weights_lean_towards_jcjohnsons_balance(rng, monkeypatch, pull):
    # Σ_l λ_l·E_s^l / E_c = (R/R₀)^pull, R = Σ_l (N_c/C_l²)·E_s^l / E_c: at pull 1 and R₀ = 1 the
    # style weighs in total what jcjohnson's λ_l = N_c/C_l² give it (5·MSE content, 100·MSE style)
    from nst import objective
    monkeypatch.setattr(objective, "AUTO_EMPHASIS", {})
    monkeypatch.setattr(objective, "AUTO_PULL", pull)
    content = {"block4_conv2": 30 * rng.random((16, 3, 5)).astype(np.float32)}
    style = {n: (10.0 ** k * rng.normal(size=(c, c))).astype(np.float32)
             for k, (n, c) in enumerate(zip(["block1_conv1", "block3_conv1", "block5_conv1"], (4, 8, 16)))}
    e_c = float((content["block4_conv2"].astype(np.float64) ** 2).sum())
    e_s = np.array([float((g.astype(np.float64) ** 2).sum()) / g.shape[0] ** 2 for g in style.values()])
    his = np.array([240 / c ** 2 for c in (4, 8, 16)])                 # N_c / C_l², N_c = 16·3·5
    r = float((his * e_s).sum()) / e_c
    lam = np.array(objective.auto_layer_weights(content, style))
    np.testing.assert_allclose((lam * e_s).sum() / e_c, (r / objective.AUTO_R0) ** pull, rtol=1e-6)
    np.testing.assert_allclose(lam * e_s, lam[0] * e_s[0], rtol=1e-6)        # shared evenly, m_l = 1
    assert objective.pair_balance(1.0, 0, list(e_s), [4, 8, 16]) == objective.AUTO_R0      # no content


@pytest.mark.parametrize("settings, pairs", [({}, min(Settings().history, schedule.FINEST_CAP)),
                                             ({"iterations": 200}, 20), ({"scales": 1}, 20), ({"iterations": 7}, 7),
                                             ({"history": 5}, 5)])
def test_memory_estimate_counts_the_lbfgs_pairs_the_finest_scale_can_hold(rng, settings, pairs):
    # one pair per iteration, at most `history`: the default schedule's finest scale holds
    # min(history, FINEST_CAP)
    c, s = random_image(rng, 48, 64), random_image(rng, 32, 32)
    run = Run(c, s, Settings(size=512, backend="numpy", **settings), log=lambda m: None)
    parts, (h, w) = run.memory_estimate()
    assert run.stored_pairs(512) == pairs
    assert parts["optimiser"] == (2 * pairs + 4) * 3 * h * w * 4


def test_memory_estimate_counts_resizing_a_huge_style_at_a_small_size():
    # an 8000×6000 style at 256 px: resampling it (two of its planes beside it) needs more than the
    # evaluation's arrays, which do not exist yet; the estimate's total holds it
    from nst import memory
    c, s = np.zeros((48, 64, 3), np.float32), np.zeros((6000, 8000, 3), np.float32)
    parts, _ = Run(c, s, Settings(size=256, scales=1, backend="numba"), log=lambda m: None).memory_estimate()
    setup = parts["runtime"] + parts["weights"] + memory.resize_bytes(6000, 8000)
    assert parts["resizing"] > 0 and parts["total"] >= setup
    assert parts["total"] == sum(v for k, v in parts.items() if k != "total")


@pytest.mark.parametrize("as_file", [True, False])
def test_memory_estimate_counts_decoding_and_resizing_a_huge_init(tmp_path, as_file):
    # an 8000×6000 --init at 256 px is decoded and resampled at the run's start: the estimate
    # counted the content's and the styles' resampling, not the init's. A file's size is read from
    # its header (this one declares it and holds nothing)
    from nst import memory
    from test_safety import png_header_only
    c, s = np.zeros((48, 64, 3), np.float32), np.zeros((32, 32, 3), np.float32)
    init = str(png_header_only(tmp_path / "init.png", 8000, 6000)) if as_file else \
        np.broadcast_to(np.zeros(3, np.uint8), (6000, 8000, 3))
    estimate = lambda init: Run(c, s, Settings(size=256, scales=1, backend="numba", init=init),     # noqa: E731
                                log=lambda m: None).memory_estimate()[0]
    plain, huge = estimate("content"), estimate(init)
    assert huge["total"] >= plain["runtime"] + plain["weights"] + memory.init_bytes(6000, 8000)
    assert huge["total"] - plain["total"] == huge["resizing"] - plain["resizing"] > 0


def test_a_finer_scale_starts_from_the_coarse_result_plus_the_photos_detail(rng):
    # start = up(X_prev) + C − up(down(C)): a coarse result equal to the coarse photo starts the
    # finer scale at the photo itself, detail included (plain upsampling would blur it)
    from nst.io.image import resize
    c, s = random_image(rng, 48, 64), random_image(rng, 32, 32)
    run = Run(c, s, Settings(size=64, backend="numpy"), log=lambda m: None)
    coarse = resize(c, 24, 32)
    start = run.start_image(c, [s], coarse)
    np.testing.assert_allclose(start, c, atol=1e-3)
    assert np.abs(resize(coarse, 48, 64) - c).max() > 20           # the detail plain upsampling loses
    shifted = run.start_image(c, [s], np.clip(coarse - 40, 0, 255))
    assert start.dtype == np.float32 and 0 <= shifted.min() and shifted.max() <= 255
