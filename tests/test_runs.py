"""Run controls (multi-scale, several styles, colours, averaging, 16-bit output) and runs that
survive faults (checkpoint/resume, Ctrl-C/SIGTERM, NaN, memory estimate), on the tiny VGG19."""
import json
import os
import signal
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

import nst
from nst import color
from nst.cli import main
from nst.io.image import load_image, save_image
from nst.objective import Objective
from nst.run.settings import scale_sizes
from conftest import random_image


@pytest.fixture
def files(tmp_path, rng):
    paths = {}
    for name, shape in (("content", (30, 40, 3)), ("style", (36, 28, 3)), ("style2", (20, 20, 3))):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(paths[name])
    return paths


def cli(files, weights, out, *extra, style=("style",)):
    return main(["transfer", str(files["content"]), *(str(files[s]) for s in style), "-o", str(out),
                 "--weights", str(weights), "--backend", "numpy", "--size", "32", "--iterations", "6",
                 *extra])


def test_scale_sizes():
    assert scale_sizes(512, None, 256) == [256, 362, 512]
    assert scale_sizes(512, 1, 256) == [512]
    assert scale_sizes(200, None, 256) == [200]
    assert scale_sizes(1024, 3, 256) == [256, 512, 1024]
    assert scale_sizes(64, 3, 256) == [32, 45, 64]            # never above --size
    assert scale_sizes(64, 2, 768) == [45, 64]
    assert scale_sizes(20, 3, 256) == [16, 18, 20]


def test_multiscale_run(rng, tiny_weights):
    c, s = random_image(rng, 30, 40), random_image(rng, 30, 30)
    seen = []
    out = nst.stylize(c, s, size=64, start_size=32, iterations=3, weights=tiny_weights, backend="numpy",
                      progress=False, callback=lambda it, x, t: seen.append(x.shape))
    assert seen == [(24, 32, 3)] * 3 + [(34, 45, 3)] * 3 + [(48, 64, 3)] * 3
    assert out.shape == (48, 64, 3)


class DeviceScalar(np.ndarray):
    """A 0-d array standing for one on a GPU: each float() of it is a device→host read (counted)."""
    reads = 0

    def __float__(self):
        DeviceScalar.reads += 1
        return float(np.asarray(self))


def test_an_iteration_reads_its_loss_terms_from_the_device_at_once(rng, tiny_weights, monkeypatch):
    # an iteration's terms (content, style, tv) and per-layer J_s^l (5) came to the host by a float()
    # each, eight reads that wait for a GPU; now one stacked read, the same values. (cuda-cpu's arrays
    # are NumPy's: its path here is this one.)
    from nst.run import run as run_module
    from nst.run.run import Run
    from nst.run.settings import Settings
    c, s = random_image(rng, 20, 20), random_image(rng, 20, 20)
    settings = Settings.from_dict({"size": None, "iterations": 3, "backend": "numpy", "weights": tiny_weights})
    plain = Run(c, s, settings)
    plain.run()
    evaluate, reads = Objective.evaluate, []

    def on_device(self, image):
        total, terms, layers, grad = evaluate(self, image)
        device = lambda d: {k: np.asarray(v).view(DeviceScalar) for k, v in d.items()}   # noqa: E731
        return total, device(terms), device(layers), grad
    monkeypatch.setattr(Objective, "evaluate", on_device)
    monkeypatch.setattr(run_module, "to_host", lambda a: reads.append(a.shape) or np.asarray(a))
    DeviceScalar.reads = 0
    run = Run(c, s, settings)
    run.run()
    assert DeviceScalar.reads == 0 and reads == [(8,)] * 3 + [(c.size,)] * 2     # + the output (x), twice
    assert run.history == plain.history and run.layer_history == plain.layer_history
    assert len(run.layer_history[0]) == 5


def test_too_small_for_the_net(rng, tiny_weights):
    c = random_image(rng, 15, 20)
    with pytest.raises(ValueError, match="too small for block5_conv1: it needs at least 16"):
        nst.loss_and_grad(c, c, c, content_weight=1, style_weight=1, tv_weight=0, weights=tiny_weights)


def test_style_blend_target(rng, tiny_weights):
    c, s1, s2 = random_image(rng, 20, 20), random_image(rng, 22, 18), random_image(rng, 20, 24)
    kw = dict(content_weight=1, style_weight=1, tv_weight=0, weights=tiny_weights, backend="numpy")
    blended = Objective(c, [s1, s2], style_blend=[0.7, 0.3], **kw)
    one, two = Objective(c, s1, **kw), Objective(c, s2, **kw)
    for n in blended.style_layers:
        np.testing.assert_allclose(blended.style_targets[n],
                                   0.7 * one.style_targets[n] + 0.3 * two.style_targets[n], rtol=1e-5)
    shares = Objective(c, [s1, s2], style_blend=[7, 3], **kw)              # shares: [7, 3] is [0.7, 0.3]
    for n in blended.style_layers:
        np.testing.assert_allclose(shares.style_targets[n], blended.style_targets[n], rtol=1e-6)
    huge, equal = Objective(c, [s1, s2], style_blend=[1e308, 1e308], **kw), Objective(c, [s1, s2], **kw)
    for n in blended.style_layers:                     # Σ overflowed to inf: the targets were 0, J NaN
        np.testing.assert_allclose(huge.style_targets[n], equal.style_targets[n], rtol=1e-6)
    with pytest.raises(ValueError, match="^2 blend weights for 1 style image$"):   # one image, not "images"
        Objective(c, s1, style_blend=[0.5, 0.5], **kw)
    with pytest.raises(ValueError, match="^1 blend weight for 2 style images$"):
        Objective(c, [s1, s2], style_blend=[1.0], **kw)


def test_luminance_transfer_keeps_content_colour(rng):
    out, content = random_image(rng, 8, 9), random_image(rng, 8, 9)
    mixed = color.luminance_transfer(out, np.full_like(content, 128.0))
    yiq = mixed @ color.RGB_TO_YIQ.T
    np.testing.assert_allclose(yiq[..., 0], (out @ color.RGB_TO_YIQ.T)[..., 0], atol=0.6)  # clipping
    np.testing.assert_allclose(yiq[..., 1:], 0, atol=1e-3)                                  # gray's IQ


def test_match_color_statistics(rng):
    style = rng.uniform(0, 120, (30, 30, 3)).astype(np.float32)
    content = (rng.normal(size=(40, 40, 3)) @ np.array([[20, 5, 0], [0, 15, 3], [2, 0, 10]]) + 130)
    content = np.clip(content, 0, 255).astype(np.float32)
    m = color.match_color(style, content).reshape(-1, 3)
    np.testing.assert_allclose(m.mean(0), content.reshape(-1, 3).mean(0), atol=0.5)
    np.testing.assert_allclose(np.cov(m, rowvar=False), np.cov(content.reshape(-1, 3), rowvar=False),
                               rtol=0.05, atol=2)



def test_luminance_is_ntsc_y():
    # the output's NTSC Y with the content's I and Q, by the standard's numbers (a typo in the matrix
    # would be undone by its own inverse, so the tests above cannot see it)
    yiq = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])
    out, content = np.full((1, 2, 3), 100.0), np.array([[[150.0, 90.0, 60.0], [60.0, 120.0, 140.0]]])
    mixed = color.luminance_transfer(out, content).astype(np.float64) @ yiq.T
    np.testing.assert_allclose(mixed[..., 0], 100.0, atol=1e-3)
    np.testing.assert_allclose(mixed[..., 1:], (content @ yiq.T)[..., 1:], atol=1e-3)


def test_match_color_of_a_nearly_flat_style(rng):
    # a style of small spread (σ ≈ 1–3 levels) still takes the content's covariance: Σ_S's small
    # eigenvalues are inverted, not floored away
    style = (100 + rng.normal(size=(40, 40, 3)) * [1.0, 3.0, 2.0]).astype(np.float32)
    content = np.clip(rng.normal(size=(40, 40, 3)) @ np.array([[20, 5, 0], [0, 15, 3], [2, 0, 10]]) + 130,
                      0, 255).astype(np.float32)
    m = color.match_color(style, content).reshape(-1, 3)
    np.testing.assert_allclose(np.cov(m, rowvar=False), np.cov(content.reshape(-1, 3), rowvar=False),
                               rtol=0.02, atol=0.5)

def test_recolored_init_is_the_photo_in_the_paintings_colours(rng):
    # init "recolored" (the default): the photo, mapped affinely to the style's mean and covariance
    from nst.run.run import initial_image
    from nst.run.settings import DEFAULTS
    photo = np.clip(rng.normal(size=(24, 31, 3)) @ np.array([[30, 5, 0], [0, 20, 3], [2, 0, 9]]) + 120, 0, 255)
    painting = np.clip(rng.normal(size=(19, 17, 3)) * [10, 25, 40] + [60, 90, 170], 0, 255)
    x = initial_image("recolored", photo.astype(np.float32), painting.astype(np.float32), seed=0)
    assert DEFAULTS.init == "recolored" and x.shape == photo.shape and x.dtype == np.float32
    flat, target = x.reshape(-1, 3), painting.reshape(-1, 3)
    np.testing.assert_allclose(flat.mean(0), target.mean(0), atol=1.0)
    np.testing.assert_allclose(np.cov(flat, rowvar=False), np.cov(target, rowvar=False), rtol=0.05, atol=3)
    assert np.corrcoef(x[..., 0].ravel(), photo[..., 0].ravel())[0, 1] > 0.9        # the photo's structure


def test_average_bias_corrected(rng, tiny_weights):
    c, s = random_image(rng, 20, 20), random_image(rng, 20, 20)
    kw = dict(size=None, iterations=1, weights=tiny_weights, backend="numpy", progress=False)
    np.testing.assert_allclose(nst.stylize(c, s, average=0.9, **kw), nst.stylize(c, s, **kw), atol=1e-3)
    kw["iterations"] = 5
    assert not np.allclose(nst.stylize(c, s, average=0.9, **kw), nst.stylize(c, s, **kw), atol=1e-2)


def test_16bit_png(tmp_path, rng):
    img = rng.uniform(0, 255, (5, 7, 3)).astype(np.float32)
    path = save_image(img, tmp_path / "a.png", bits=16)
    data = path.read_bytes()
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    assert (w, h, depth, ctype) == (7, 5, 16, 2)
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(5, 1 + 7 * 6)[:, 1:]
    got = rows.copy().view(">u2").reshape(5, 7, 3)
    np.testing.assert_array_equal(got, np.rint(img * 257).astype(np.uint16))
    np.testing.assert_allclose(load_image(path), img, atol=1.0)          # Pillow reads it


def interrupt_at(monkeypatch, at, how="ctrl-c"):
    # make the progress bar raise Ctrl-C (or send SIGTERM) when iteration `at` completes
    from nst.run.progress import Progress
    original = Progress.update

    def update(self, done, *a, **k):
        original(self, done, *a, **k)
        if done == at:                 # the handler asks the run to stop at the iteration's end
            os.kill(os.getpid(), signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)
    monkeypatch.setattr(Progress, "update", update)


@pytest.mark.parametrize("optimizer, extra", [("lbfgs", []), ("adam", ["--average", "0.5"]),
                                              ("lbfgs", ["--scales", "2", "--start-size", "24"])])
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_resume_matches_uninterrupted_run(files, tiny_weights_h5, tmp_path, monkeypatch, capsys,
                                          optimizer, extra, how):
    args = ["--optimizer", optimizer, *extra]
    stop, total = (8, 12) if "--scales" in extra else (4, 6)
    assert cli(files, tiny_weights_h5, tmp_path / "full.png", "--bits", "16", *args) == 0
    ck = tmp_path / "ck.npz"
    with monkeypatch.context() as m:
        interrupt_at(m, stop, how)
        assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--bits", "16", "--checkpoint", str(ck), *args) == 130
    assert ck.exists() and (tmp_path / "part.png").exists()      # state and image saved on stop
    capsys.readouterr()
    assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--bits", "16", "--checkpoint", str(ck),
               "--resume", str(ck), *args) == 0
    err = capsys.readouterr().err                                  # it went on from `stop`
    assert f"resuming at iteration {stop}" in err and f" {stop + 1}/{total} " in err and f" {stop}/{total} " not in err
    np.testing.assert_allclose(load_image(tmp_path / "part.png"), load_image(tmp_path / "full.png"), atol=0.02)


def sigterm_during_evaluation(monkeypatch, n, tiled):
    # SIGTERM while the run's n-th evaluation of J is under way (in its first tile when tiled)
    # -> the tiles computed after the signal
    from nst import optim, tiled as tiled_module
    real_eval, real_evaluate, real_tile = optim.LBFGS._eval, Objective.evaluate, tiled_module.tile_grams
    count, sent, after = [0], [], []

    def counted(self, fun, x):
        count[0] += 1
        return real_eval(self, fun, x)

    def evaluate(self, image):
        if count[0] == n and not tiled:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_evaluate(self, image)

    def tile_grams(*a, **k):
        if count[0] == n and tiled and not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))
        elif sent:
            after.append(1)
        return real_tile(*a, **k)
    monkeypatch.setattr(optim.LBFGS, "_eval", counted)
    monkeypatch.setattr(Objective, "evaluate", evaluate)
    monkeypatch.setattr(tiled_module, "tile_grams", tile_grams)
    return after


@pytest.mark.parametrize("tile", [[], ["--tile", "16"]])
def test_stop_inside_a_line_search_resumes_bit_for_bit(files, tiny_weights_h5, tmp_path, monkeypatch, capsys, tile):
    # --lr 30 makes the second scale's first step overshoot: its line search halves the step five
    # times (evaluations 10..14 are rejected). SIGTERM during evaluation 11 stops at the next
    # evaluation (tiled: at the next tile), drops the unfinished iteration, and the checkpoint
    # continues to the same picture as an uninterrupted run, bit for bit
    args = ["--scales", "2", "--start-size", "24", "--lr", "30", "--bits", "16", *tile]
    assert cli(files, tiny_weights_h5, tmp_path / "full.png", *args) == 0
    ck = tmp_path / "ck.npz"
    with monkeypatch.context() as m:
        after = sigterm_during_evaluation(m, 11, bool(tile))
        assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--checkpoint", str(ck), *args) == 130
    err = capsys.readouterr().err
    assert "iteration 7 left unfinished; keeping iteration 6" in err and after == []
    assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--checkpoint", str(ck), "--resume", str(ck),
               *args) == 0
    assert "resuming at iteration 6" in capsys.readouterr().err
    np.testing.assert_array_equal(load_image(tmp_path / "part.png"), load_image(tmp_path / "full.png"))


def test_resume_refuses_other_settings(files, tiny_weights_h5, tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    assert cli(files, tiny_weights_h5, tmp_path / "o.png", "--checkpoint", str(ck)) == 0
    assert cli(files, tiny_weights_h5, tmp_path / "o.png", "--resume", str(ck), "--style-weight", "5") == 2
    assert "style_weight" in capsys.readouterr().err


@pytest.mark.parametrize("change", ["emphasis", "pull", "schedule"])
def test_resume_refuses_a_checkpoint_made_under_other_automatic_rules(files, tiny_weights_h5, tmp_path,
                                                                      monkeypatch, capsys, change):
    # the constants behind "auto" λ_l and "auto" iterations decide the picture as settings do: a
    # checkpoint made before a newer nst changed them must not continue under the new ones
    from nst import objective
    from nst.run import schedule
    ck = tmp_path / "ck.npz"
    assert cli(files, tiny_weights_h5, tmp_path / "o.png", "--iterations", "auto", "--checkpoint", str(ck)) == 0
    if change == "emphasis":
        monkeypatch.setitem(objective.AUTO_EMPHASIS, "block4_conv1", 3.0)
    elif change == "pull":
        monkeypatch.setattr(objective, "AUTO_PULL", 0.5)
    else:
        monkeypatch.setattr(schedule, "FINEST_CAP", schedule.FINEST_CAP + 1)
    capsys.readouterr()
    assert cli(files, tiny_weights_h5, tmp_path / "o2.png", "--iterations", "auto", "--resume", str(ck)) == 2
    assert "automatic rules" in capsys.readouterr().err
    assert not (tmp_path / "o2.png").exists()


def test_explicit_settings_resume_whatever_the_automatic_rules(files, tiny_weights_h5, tmp_path, monkeypatch, capsys):
    # with --iterations N and --style-layer-weights given, no automatic rule is in effect
    from nst import objective
    ck, lam = tmp_path / "ck.npz", ["--style-layer-weights", "0.2,0.2,0.2,0.2,0.2"]
    assert cli(files, tiny_weights_h5, tmp_path / "o.png", *lam, "--checkpoint", str(ck)) == 0
    monkeypatch.setitem(objective.AUTO_EMPHASIS, "block4_conv1", 3.0)
    assert cli(files, tiny_weights_h5, tmp_path / "o2.png", *lam, "--resume", str(ck)) == 0
    assert "resuming at iteration" in capsys.readouterr().err


def test_resumed_state_is_not_counted_against_the_free_memory(files, tiny_weights_h5, tmp_path, monkeypatch, capsys):
    # the estimate counts the optimiser's state, so the memory is checked before a resume loads it:
    # here the free memory falls by the state's bytes once the checkpoint is read, as a real one does
    from nst.io import checkpoint
    from nst.run.run import Run
    ck = tmp_path / "ck.npz"
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        assert cli(files, tiny_weights_h5, tmp_path / "o.png", "--checkpoint", str(ck)) == 130
    opt = checkpoint.load(ck)[1]["optimizer"]
    held = sum(v.nbytes for k, v in opt.items() if k == "x" or k.startswith("pairs_s") or k.startswith("pairs_y"))
    assert held >= 5 * opt["x"].nbytes                           # x and two history pairs at least
    real, real_load, loaded = Run.memory_estimate, checkpoint.load, [0]
    fixed = lambda *a, **k: ({**real(*a, **k)[0], "total": 10**9}, real(*a, **k)[1])     # noqa: E731
    monkeypatch.setattr(Run, "memory_estimate", fixed)
    monkeypatch.setattr(checkpoint, "load", lambda path: (loaded.__setitem__(0, held), real_load(path))[1])
    monkeypatch.setattr("nst.memory.images_bytes", lambda images: 0)
    monkeypatch.setattr(Run, "weights_read_bytes", lambda self: 0)   # `available` below is all the free memory
    monkeypatch.setattr("nst.memory.available", lambda backend: 10**9 - loaded[0])
    assert cli(files, tiny_weights_h5, tmp_path / "o.png", "--checkpoint", str(ck), "--resume", str(ck)) == 0
    monkeypatch.setattr("nst.memory.available", lambda backend: 10**9 - 1)
    assert cli(files, tiny_weights_h5, tmp_path / "fresh.png") == 2          # the limit is live
    assert "needs about" in capsys.readouterr().err and not (tmp_path / "fresh.png").exists()


def test_nan_stops_with_last_good_image(files, tiny_weights_h5, tmp_path, monkeypatch, capsys):
    real = Objective.evaluate
    calls = []

    def flaky(self, image):
        calls.append(1)
        total, terms, per, grad = real(self, image)
        return (total * np.nan if len(calls) > 4 else total), terms, per, grad
    monkeypatch.setattr(Objective, "evaluate", flaky)
    out = tmp_path / "o.png"
    assert cli(files, tiny_weights_h5, out, "--optimizer", "adam") == 1
    assert "NaN" in capsys.readouterr().err
    assert np.all(np.isfinite(load_image(out)))


def test_dry_run_and_memory_limit(files, tiny_weights_h5, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o.png"
    assert cli(files, tiny_weights_h5, out, "--dry-run") == 0
    assert "needs about" in capsys.readouterr().out and not out.exists()
    monkeypatch.setattr("nst.memory.available", lambda backend: 400 * 2**20)
    assert main(["transfer", str(files["content"]), str(files["style"]), "-o", str(out), "--weights",
                 str(tiny_weights_h5), "--backend", "numpy", "--size", "8000"]) == 2
    err = capsys.readouterr().err
    assert "would fit" in err and "--size" in err and not out.exists()


def test_dry_run_checks_the_weights_file(files, tiny_weights_h5, tmp_path, capsys):
    # --dry-run reads the --weights file as the run would: a missing, non-HDF5 or damaged one is refused
    import h5py
    nan_weights = tmp_path / "nan.h5"
    nan_weights.write_bytes(tiny_weights_h5.read_bytes())
    with h5py.File(nan_weights, "r+") as f:
        f["block2_conv1/block2_conv1_b_1:0"][0] = np.nan
    for weights, said in ((tmp_path / "none.h5", "does not exist"), (files["content"], "not an HDF5 file"),
                          (nan_weights, "block2_conv1 holds NaN")):
        assert cli(files, weights, tmp_path / "o.png", "--dry-run") == 2
        assert said in capsys.readouterr().err


def test_report_and_several_styles(files, tiny_weights_h5, tmp_path):
    rep = tmp_path / "rep"
    assert cli(files, tiny_weights_h5, tmp_path / "o.png", "--report", str(rep), "--style-blend", "0.6,0.4",
               "--keep-colors", "match", style=("style", "style2")) == 0
    settings = json.loads((rep / "settings.json").read_text())
    assert settings["style_blend"] == [0.6, 0.4] and settings["inputs"]["style"][1].endswith("style2.png")
    assert len(json.loads((rep / "losses.json").read_text())) == 6
    assert Image.open(rep / "losses.png").size == (640, 400)
    assert Image.open(rep / "strip.png").height == 160


def test_weights_are_read_ahead_once_and_change_nothing(files, tiny_weights_h5, tmp_path, monkeypatch):
    # Job.prepare starts reading the weights in a thread; the run takes them at its first scale,
    # reads them once for all scales, and paints the same picture as without the read ahead
    import nst.weights
    from nst.run.run import Run
    reads, real_load = [], nst.weights.load
    monkeypatch.setattr(nst.weights, "load", lambda *a, **k: (reads.append(threading.current_thread().name),
                                                               real_load(*a, **k))[1])
    args = ("--scales", "2", "--start-size", "24", "--bits", "16")
    assert cli(files, tiny_weights_h5, tmp_path / "ahead.png", *args) == 0
    assert len(reads) == 1 and reads[0].startswith("nst-weights")
    monkeypatch.setattr(Run, "read_weights_ahead", lambda self: None)
    assert cli(files, tiny_weights_h5, tmp_path / "plain.png", *args) == 0
    assert len(reads) == 2 and not reads[1].startswith("nst-weights")
    np.testing.assert_array_equal(load_image(tmp_path / "ahead.png"), load_image(tmp_path / "plain.png"))


def test_a_numba_run_holds_blas_at_one_thread(rng, tiny_weights):
    # OpenBLAS's own threads spin after each call (L-BFGS's products with its history), taking a
    # core from the next evaluation: a numba run holds BLAS at one thread, and gives it back after
    from threadpoolctl import threadpool_info, threadpool_limits
    blas_threads = lambda: {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    seen = []
    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        nst.stylize(random_image(rng, 30, 40), random_image(rng, 30, 30), size=32, iterations=2,
                    weights=tiny_weights, backend="numba", progress=False,
                    callback=lambda it, x, terms: seen.append(blas_threads()))
        after = blas_threads()
    assert before == after == {2} and seen and all(s == {1} for s in seen)


def test_overlapping_runs_give_blas_its_threads_back(tiny_weights):
    # two runs in one process (threads of a Dask worker, an API user's threads) end in the other
    # order than they began: BLAS is at one thread while either runs, and back at two after both
    from threadpoolctl import OpenBLASController, threadpool_info, threadpool_limits
    from nst.kernels.cpu_threads import one_blas_thread, one_blas_thread_for_a_run
    blas_threads = lambda: {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with one_blas_thread_for_a_run():
            first_in.set()
            second_in.wait(10)
        seen.append(blas_threads())            # the second still runs
        first_out.set()

    def second():
        first_in.wait(10)
        with one_blas_thread_for_a_run():
            second_in.set()
            first_out.wait(10)
            with one_blas_thread():              # an op's own hold inside a run
                seen.append(blas_threads())
            seen.append(blas_threads())
    two = threadpool_limits(2, user_api="blas")       # as on a 2-core machine, whatever this one has;
    OpenBLASController.clear_controlling_thread()     # the test's thread lets go, as a with-block would
    try:
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert seen == [{1}, {1}, {1}] and blas_threads() == {2}
    finally:
        two.restore_original_limits()
        OpenBLASController.clear_controlling_thread()


def test_a_resumed_reports_strip_keeps_the_images_before_the_stop(files, tiny_weights_h5, tmp_path, monkeypatch,
                                                                  capsys):
    # the strip of a run stopped and resumed showed only the iterations after the resume (found by
    # stopping a --report run at 7 of 16: 4 images where the uninterrupted run has 8); the
    # checkpoint now keeps the strip's snapshots taken so far
    assert cli(files, tiny_weights_h5, tmp_path / "full.png", "--report", str(tmp_path / "full")) == 0
    ck, rep = tmp_path / "ck.npz", ["--report", str(tmp_path / "part"), "--checkpoint", str(tmp_path / "ck.npz")]
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        assert cli(files, tiny_weights_h5, tmp_path / "part.png", *rep) == 130
    assert cli(files, tiny_weights_h5, tmp_path / "part.png", *rep, "--resume", str(ck)) == 0
    assert (tmp_path / "part" / "strip.png").read_bytes() == (tmp_path / "full" / "strip.png").read_bytes()


def test_a_checkpoint_resumes_on_another_backend_and_says_so(files, tiny_weights_h5, tmp_path, monkeypatch, capsys):
    # --backend was part of a checkpoint's identity: a run stopped on one machine could not go on
    # on another with another backend ("other settings (backend)"), while --backend auto took any
    # (found resuming a numba run with --backend numpy). The backend changes the picture only by
    # float rounding: it resumes, and a warning says the backend changed (as a batch task's says it,
    # back with its result: test_batch)
    assert cli(files, tiny_weights_h5, tmp_path / "full.png", "--bits", "16") == 0
    ck = tmp_path / "ck.npz"
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--checkpoint", str(ck), "--bits", "16") == 130
    capsys.readouterr()
    assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--bits", "16", "--resume", str(ck),
               "--backend", "numba") == 0
    assert f"nst: warning: --resume {ck} was made on the numpy backend and goes on on numba" in capsys.readouterr().err
    np.testing.assert_allclose(load_image(tmp_path / "part.png"), load_image(tmp_path / "full.png"), atol=0.5)


@pytest.mark.parametrize("tile_then, tile_now, note", [
    ("16", "0", "was made running 32 px in 2×2 tiles of about 16×16 px and goes on running 32 px whole: the "   # as
     "picture may differ"),                                            # --dry-run says it (it said "in tiles of 16")
    ("16", "16", None),
])
def test_a_checkpoint_resumed_in_other_tiles_says_so(files, tiny_weights_h5, tmp_path, monkeypatch, capsys,
                                                    tile_then, tile_now, note):
    # a run stopped in tiles and resumed whole (or in other tiles) went on without a word, though its
    # picture then differs from an uninterrupted run's by float rounding, as on another backend
    ck = tmp_path / "ck.npz"
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--checkpoint", str(ck), "--tile", tile_then) == 130
    capsys.readouterr()
    assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--resume", str(ck), "--tile", tile_now) == 0
    err = capsys.readouterr().err
    assert (note in err) if note else "float rounding" not in err, err


@pytest.mark.parametrize("tiles", [["x"], [16.5], [True], [0]])
def test_a_checkpoint_s_malformed_tiles_record_resumes_without_a_note(files, tiny_weights_h5, tmp_path, monkeypatch,
                                                                      capsys, tiles):
    # the note names each scale's pieces from the checkpoint's record: one no tile sizes gives none
    from test_safety import rewrite_meta
    ck = tmp_path / "ck.npz"
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--checkpoint", str(ck), "--tile", "16") == 130
    rewrite_meta(ck, lambda meta: meta.update(tiles=tiles))
    capsys.readouterr()
    assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--resume", str(ck), "--tile", "0") == 0
    assert "float rounding" not in capsys.readouterr().err


def test_progress_says_each_unit_once_and_counts_agree():
    # "0.19 s/frame" (was "s/frames": the unit passed as a plural); the count agrees with its total
    import io

    from nst.library import counted
    from nst.run.progress import Progress
    assert (counted(1, "frame"), counted(0, "frame"), counted(3, "task")) == ("1 frame", "0 frames", "3 tasks")
    assert (counted(2, "worker process", "worker processes"), counted(1, "worker process", "worker processes")) \
        == ("2 worker processes", "1 worker process")
    for done, total, unit, shown in [(3, 10, "frame", "3/10 frames"), (1, 1, "task", "1/1 task"), (3, 5, "", "3/5 |")]:
        stream = io.StringIO()
        Progress(total, unit=unit, stream=stream).update(done)
        line = stream.getvalue()
        assert shown in line and f" s/{unit or 'it'} |" in line, line


def test_init_file_is_the_file_an_init_names(tmp_path):
    # one answer to "is --init a file?": a str or a Path that is no keyword; keywords and arrays are not
    from nst.run.settings import Settings, init_file
    picture = tmp_path / "start.png"
    assert init_file(str(picture)) == str(picture) and init_file(picture) == picture
    assert all(init_file(v) is None for v in ("random", "recolored", None, np.zeros((4, 4, 3))))
    assert Settings(init=picture).init_file == picture and Settings().init_file is None


def test_a_missing_init_given_as_a_path_is_refused_as_its_text_is(tmp_path):
    from nst.run.checks import check_options
    from nst.run.settings import Settings, SettingsError
    for missing in (tmp_path / "missing.png", str(tmp_path / "missing.png")):
        with pytest.raises(SettingsError, match="^--init .*missing.png: no such file"):
            check_options(Settings(init=missing), 1)


def test_a_resumed_run_remembers_where_lbfgs_ended_its_earlier_scales(rng, tiny_weights, tmp_path):
    # the early-stop notes (the pages' "L-BFGS stopped early, …") were not in the checkpoint: a run
    # resumed at its second scale forgot that its first had ended early
    from nst.io import checkpoint
    from nst.run.run import Run
    from nst.run.settings import Settings
    c, s = random_image(rng, 24, 32), random_image(rng, 24, 32)
    settings = Settings(size=32, scales=2, start_size=24, iterations=300, tv_weight=1e3, backend="numpy",
                        weights=tiny_weights)        # a heavy J_tv: L-BFGS ends each scale well before 300
    run = Run(c, s, settings, log=lambda m: None)
    run.run(lambda r, it, terms: r.scale == 1)       # stopped after the second scale's first iteration
    assert run.scale == 1 and len(run.early_stops) == 1
    assert run.early_stop_note().startswith("L-BFGS stopped early, 24 px")
    path = tmp_path / "ck.npz"
    checkpoint.save(path, run, {})

    def resumed(state):
        again = Run(c, s, settings, log=lambda m: None)
        checkpoint.check_fits(path, state, again)
        again.restore(state)
        return again
    state = checkpoint.load(path)[1]
    assert resumed(state).early_stop_note() == run.early_stop_note()
    state.pop("early_stops")                          # a checkpoint from before them: none
    assert resumed(state).early_stops == []
    with pytest.raises(checkpoint.CheckpointError, match="its early-stop notes are malformed"):
        resumed({**state, "early_stops": [[24, "x"]]})


@pytest.mark.parametrize("advice", ["start the run again without --resume", None])
def test_a_checkpoint_error_keeps_its_reason_and_advice_through_pickle(advice):
    # a Dask task's error comes back pickled: rebuilt from its message alone it would add the advice twice
    import pickle
    from nst.io.checkpoint import CheckpointError
    e = pickle.loads(pickle.dumps(CheckpointError("checkpoint ck.npz lacks part of a run's state", advice)))
    assert (str(e), e.reason) == ((f"checkpoint ck.npz lacks part of a run's state; {advice}" if advice else
                                   "checkpoint ck.npz lacks part of a run's state"),
                                  "checkpoint ck.npz lacks part of a run's state")
