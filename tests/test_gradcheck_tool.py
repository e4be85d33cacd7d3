"""`nst gradcheck` (nst/gradcheck.py, its command nst/cli/gradcheck.py): every row passes on the
reference, and a wrong backward is caught (a tool that cannot fail proves nothing). The backend
rows run for every backend in tests/test_ops.py."""
import argparse

import numpy as np
import pytest

from nst import gradcheck, losses
from nst.cli import gradcheck as command
from nst.testing import tiny_params


def parse(*argv):
    return command.add_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_table_all_pass():
    rows = gradcheck.gradcheck_table(seed=0)
    ops = [r.op for r in rows]
    for want in ("conv3x3 backward input", "relu backward", "conv3x3+relu backward input",
                 "maxpool2x2 backward", "avgpool2x2 backward", "style loss (Gram)", "content loss",
                 "tv loss", "temporal loss", "objective J (max pool)", "objective J (avg pool)"):
        assert want in ops
    bad = [r for r in rows if r.status != "PASS"]
    assert not bad, command.format_table(bad)
    assert all(r.error < r.threshold for r in rows)


def test_main_prints_table_and_returns_0(capsys):
    assert command.main(parse()) == 0
    out = capsys.readouterr().out
    assert "style loss (Gram)" in out and "FAIL" not in out
    assert "11/11 checks passed" in out


def test_broken_style_backward_is_reported(monkeypatch, capsys):
    right = losses.style_loss_and_grad

    def off_by_one_percent(a, target_gram):
        j, g = right(a, target_gram)
        return j, 1.01 * g

    monkeypatch.setattr(losses, "style_loss_and_grad", off_by_one_percent)
    rows = {r.op: r for r in gradcheck.gradcheck_table(seed=0)}
    assert rows["style loss (Gram)"].status == "FAIL"
    assert rows["style loss (Gram)"].error == pytest.approx(0.01, rel=1e-3)   # 1.01·g vs g, relative to g
    assert rows["content loss"].status == "PASS"
    assert command.main(parse("--seed", "0")) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "FAILED: style loss (Gram)" in out


def test_broken_pool_backward_is_reported(monkeypatch):
    from nst import ops
    # a classic bug: the gradient sent to every position of the window, not only to its maximum
    monkeypatch.setattr(ops, "maxpool2x2_backward", lambda dy, x: 4 * ops.avgpool2x2_backward(dy, x))
    rows = {r.op: r for r in gradcheck.gradcheck_table(seed=0)}
    assert rows["maxpool2x2 backward"].status == "FAIL"


def test_pool_bug_in_the_source_fails_the_objective_too(monkeypatch, capsys):
    # written into nst/ops.py the bug reaches the numpy backend's table as well (it takes ops' functions
    # at import): the whole objective's max-pool row fails with the op's (docs/maths.md "A FAIL row")
    import dataclasses

    from nst import ops
    from nst.backends import numpy_backend
    bug = lambda dy, x: 4 * ops.avgpool2x2_backward(dy, x)      # noqa: E731
    monkeypatch.setattr(ops, "maxpool2x2_backward", bug)
    monkeypatch.setattr(numpy_backend, "BACKEND", dataclasses.replace(numpy_backend.BACKEND, maxpool2x2_backward=bug))
    assert command.main(parse()) == 1
    out = capsys.readouterr().out
    assert out.rstrip().endswith("FAILED: maxpool2x2 backward, objective J (max pool)")


def test_numeric_grad_restores_input_and_takes_coords():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    before = x.copy()
    g = gradcheck.numeric_grad(lambda x: np.sum(x ** 2), x, coords=[1, 4])
    assert np.array_equal(x, before)
    assert g.flat[1] == pytest.approx(2.0) and g.flat[4] == pytest.approx(8.0)
    assert g.flat[0] == 0 and g.flat[5] == 0


def test_tiny_params_shapes():
    from nst.spec import CONV_LAYERS
    p = tiny_params(seed=0, dtype=np.float64)
    assert list(p) == [n for n, _, _ in CONV_LAYERS]
    assert p["block1_conv1"][0].shape == (4, 3, 3, 3) and p["block5_conv4"][0].shape == (7, 7, 3, 3)
    assert p["block1_conv1"][0].dtype == np.float64


def test_unavailable_backend_is_a_note_in_all_and_an_error_by_name(monkeypatch, capsys):
    # --backend all: a backend that cannot run is a SKIP row with its reason; asked for by name, it
    # is a one-line error (exit 2), not "0/0 checks passed"
    from nst import backends
    real = backends.get_backend

    def unavailable(name="auto"):
        if name == "cupy":
            raise backends.BackendUnavailable("cupy backend: no CUDA device answers (test)")
        return real(name)

    monkeypatch.setattr(backends, "get_backend", unavailable)
    monkeypatch.setattr(command, "NAMES", ("numpy", "cupy"))
    assert command.main(parse("--backend", "all")) == 0
    out = capsys.readouterr().out
    assert "SKIP" in out and "note: cupy: cupy backend: no CUDA device answers (test)" in out
    assert command.main(parse("--backend", "cupy")) == 2
    out, err = capsys.readouterr()
    assert err.strip() == "nst: error: --backend cupy: cupy backend: no CUDA device answers (test)" and not out


def test_backend_choices_are_the_backend_names():
    from nst.backends import NAMES
    assert command.BACKEND_CHOICES == (*NAMES, "all")
    assert parse("--backend", "cuda-cpu").backend == "cuda-cpu"
