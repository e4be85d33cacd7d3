"""The cuda-cpu backend end to end: the whole objective, the optimisers, multi-scale runs and
checkpoint/resume, with the CUDA kernels run on the CPU (tiny VGG19: a few channels per layer)."""
import numpy as np
import pytest

import nst
from conftest import assert_close, random_image
from nst.backends import BackendUnavailable, get_backend
from nst.io.image import load_image
from test_runs import cli as cli_numpy, files, interrupt_at  # noqa: F401 - files is a fixture

try:
    get_backend("cuda-cpu")
    REASON = None
except BackendUnavailable as e:
    REASON = str(e)
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def cli(files, weights, out, *extra):
    return cli_numpy(files, weights, out, "--backend", "cuda-cpu", *extra)


def test_loss_and_grad_matches_the_reference(rng, tiny_weights):
    c, s, x = random_image(rng, 21, 19), random_image(rng, 17, 23), random_image(rng, 21, 19)
    kw = dict(content_weight=1.0, style_weight=1e3, tv_weight=1e-3, weights=tiny_weights)
    ref = nst.loss_and_grad(c, s, x, backend="numpy", **kw)
    got = nst.loss_and_grad(c, s, x, backend="cuda-cpu", **kw)
    assert got.total == pytest.approx(ref.total, rel=1e-4)
    assert_close(got.grad, ref.grad, rtol=1e-3, atol_scale=1e-4, what="∂J/∂X cuda-cpu")   # float32 kernels


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "gd"])
def test_transfer_runs(files, tiny_weights_h5, tmp_path, optimizer):  # noqa: F811
    out = tmp_path / "out.png"
    assert cli(files, tiny_weights_h5, out, "--optimizer", optimizer, "--iterations", "3",
               "--scales", "2", "--start-size", "24") == 0
    assert load_image(out).shape[:2] == (24, 32)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_resume_matches_uninterrupted_run(files, tiny_weights_h5, tmp_path, monkeypatch, capsys,  # noqa: F811
                                          optimizer):
    args = ["--optimizer", optimizer, "--bits", "16"]
    assert cli(files, tiny_weights_h5, tmp_path / "full.png", *args) == 0
    ck = tmp_path / "ck.npz"
    with monkeypatch.context() as m:
        interrupt_at(m, 4, "ctrl-c")
        assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--checkpoint", str(ck), *args) == 130
    capsys.readouterr()
    assert cli(files, tiny_weights_h5, tmp_path / "part.png", "--checkpoint", str(ck), "--resume", str(ck), *args) == 0
    assert "resuming at iteration 4" in capsys.readouterr().err
    np.testing.assert_allclose(load_image(tmp_path / "part.png"), load_image(tmp_path / "full.png"), atol=0.02)


def test_auto_self_check_passes_and_is_cached(tmp_path, monkeypatch):
    from nst.run import selfcheck
    monkeypatch.setenv("NST_HOME", str(tmp_path))
    be = get_backend("cuda-cpu")
    assert selfcheck.passes(be, "emulated sm_80") == (True, "")
    monkeypatch.setattr(selfcheck, "_error", lambda be: pytest.fail("ran again: not cached"))
    assert selfcheck.passes(be, "emulated sm_80") == (True, "")


def test_auto_falls_back_when_the_gpu_fails_its_check(tmp_path, monkeypatch, recwarn):
    # a "GPU" whose conv kernel is wrong (×1.01): one warning line, and auto picks numba
    import dataclasses
    from nst.run import selfcheck
    from nst.backends import cupy_backend
    monkeypatch.setenv("NST_HOME", str(tmp_path))
    good = get_backend("cuda-cpu")
    bad = dataclasses.replace(good, name="cupy",
                              conv3x3_relu=lambda x, w, b: good.conv3x3_relu(x, w, b) * np.float32(1.01))
    monkeypatch.setattr(selfcheck, "get_backend", lambda name: bad if name == "cupy" else get_backend(name))
    monkeypatch.setattr(cupy_backend, "device_key", lambda: "fake GPU")
    assert selfcheck.choose_backend("auto").name in ("numba", "numpy")
    messages = [str(w.message) for w in recwarn]
    assert any("failed nst's self-check" in m and "\n" not in m for m in messages), messages


def test_gradcheck_table_passes():
    # what `nst gradcheck --backend cuda-cpu` prints: every kernel and the whole objective vs NumPy
    from nst import gradcheck
    rows = gradcheck.gradcheck_table(seed=0, backends=("cuda-cpu",))
    assert len(rows) > 10 and all(r.status == "PASS" for r in rows), gradcheck.format_table(rows)
