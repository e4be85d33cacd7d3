"""The cuda-cpu backend end to end: checkpoint/resume and the `auto` self-check, with the CUDA
kernels run on the CPU (tiny VGG19: a few channels per layer). Its ops, whole objective and a short
run, as every backend's: tests/test_ops.py."""
import numpy as np
import pytest

from nst.backends import BackendUnavailable, get_backend
from nst.io.image import load_image
from test_runs import cli as cli_numpy, files, interrupt_at  # noqa: F401 - files is a fixture

try:
    get_backend("cuda-cpu")
    REASON = None
except BackendUnavailable as e:
    REASON = str(e)
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def cli(inputs, weights, out, *extra):
    return cli_numpy(inputs, weights, out, "--backend", "cuda-cpu", *extra)


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
    monkeypatch.setattr(selfcheck, "get_backend", lambda name, log=None: bad if name == "cupy" else get_backend(name))
    monkeypatch.setattr(cupy_backend, "device_key", lambda: "fake GPU")
    assert selfcheck.choose_backend("auto").name in ("numba", "numpy")
    messages = [str(w.message) for w in recwarn]
    assert any("failed nst's self-check" in m and "\n" not in m for m in messages), messages
