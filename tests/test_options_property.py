"""Property: whatever option values a user types, `nst transfer` runs or refuses in one line,
never a traceback (issue 9). Mostly --dry-run (all the checks, no optimisation); a few tiny real
runs on the tiny random-weight VGG19."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from test_cli import cli
from nst.testing import tiny_params
from nst.spec import CONV_NAMES
from nst.weights import keras_h5

def floats(lo, hi):
    return st.floats(lo, hi).map(lambda v: f"{v:.4g}")


LAYERS = st.lists(st.sampled_from([*CONV_NAMES, "conv4_2", "relu1_1"]), min_size=1, max_size=4).map(",".join)
WEIGHTS = st.lists(floats(0, 5), min_size=1, max_size=4).map(",".join)
# values a user could mean: nst runs, or refuses options that disagree (counts, sizes) in one line
VALID = {
    "--size": st.integers(16, 48).map(str), "--iterations": st.integers(1, 2).map(str),
    "--scales": st.integers(1, 3).map(str), "--start-size": st.integers(16, 40).map(str),
    "--optimizer": st.sampled_from(["lbfgs", "adam", "gd"]), "--lr": floats(1e-9, 100),
    "--history": st.integers(1, 30).map(str), "--content-weight": floats(0, 1e4),
    "--style-weight": floats(0, 1e6), "--tv-weight": floats(0, 10),
    "--content-layers": LAYERS, "--style-layers": LAYERS,
    "--style-layer-weights": WEIGHTS, "--style-blend": WEIGHTS, "--style-scale": floats(0.3, 3),
    "--average": floats(0, 0.99), "--seed": st.integers(0, 2**32 - 1).map(str),
    "--save-every": st.integers(0, 3).map(str), "--checkpoint-every": st.integers(1, 3).map(str),
    "--pooling": st.sampled_from(["max", "avg"]), "--init": st.sampled_from(["content", "random", "style"]),
}
# values no option takes: each refused by its own check
BAD_NUMBER = st.one_of(st.sampled_from(["nan", "inf", "-inf", "-1", "abc", "", "1,2", "1e999"]),
                       st.floats(-1e6, -1e-6).map(repr))
BAD_INTEGER = st.one_of(st.sampled_from(["3.5", "x", "", "-1", "99999999999", "1e3"]), st.integers(-100, -1).map(str))
BAD_LIST = st.sampled_from(["", ",", "conv9_9", "pool1", "block1_conv1,nope", "1,-1", "0,0", "nan", "a,b"])
BAD = {k: (BAD_LIST if k.endswith(("layers", "weights", "blend")) else
           BAD_INTEGER if k in ("--size", "--iterations", "--scales", "--start-size", "--history", "--seed",
                                "--save-every", "--checkpoint-every") else
           st.sampled_from(["sgd", "min", "missing.png", ""]) if k in ("--optimizer", "--pooling", "--init") else
           BAD_NUMBER)
       for k in VALID}
OPTIONS = st.tuples(st.fixed_dictionaries({}, optional=VALID),
                    st.one_of(st.none(), st.sampled_from(sorted(BAD)).flatmap(
                        lambda k: st.tuples(st.just(k), BAD[k])))).map(
    lambda vb: {**vb[0], **({vb[1][0]: vb[1][1]} if vb[1] else {})})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("prop")
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(d / "c.png")
    Image.fromarray(rng.integers(0, 256, (36, 28, 3), dtype=np.uint8)).save(d / "s.png")
    keras_h5.write(d / "w.h5", tiny_params(), source="random test weights")
    return d


def check(files, capsys, options, extra):
    with tempfile.TemporaryDirectory() as out:
        argv = ["transfer", str(files / "c.png"), str(files / "s.png"), "-o", str(Path(out) / "o.png"),
                "--weights", str(files / "w.h5"), "--backend", "numpy", *extra]
        for k, v in options.items():
            argv.append(f"{k}={v}")
        capsys.readouterr()
        status = cli(argv)                       # an uncaught exception fails the test
        err = capsys.readouterr().err
        assert status in (0, 1, 2), (argv, status, err)
        if status:
            lines = err.strip().splitlines()
            assert lines and lines[-1].startswith("nst: error: "), (argv, err)
            assert "Traceback" not in err
            if status == 2:
                assert len(lines) == 1, (argv, err)   # refused before the run: one line only
        elif "--dry-run" not in extra:
            assert (Path(out) / "o.png").exists()
    return status


def test_dry_run_runs_or_refuses_in_one_line(files, capsys):
    # and some of the cases run (27 of the 150): a check refusing every value in one line passed it
    statuses = []

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(OPTIONS)
    def each(options):
        statuses.append(check(files, capsys, options, ["--dry-run"]))
    each()
    assert statuses.count(0) >= len(statuses) // 10, statuses


def test_tiny_runs_run_or_refuse_in_one_line(files, capsys):
    statuses = []

    @settings(max_examples=12, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.fixed_dictionaries({"--size": st.integers(16, 36).map(str), "--iterations": st.integers(1, 2).map(str),
                                  "--scales": st.sampled_from(["1", "2"]), "--start-size": st.just("24")},
                                 optional={k: VALID[k] for k in ("--optimizer", "--lr", "--style-weight", "--tv-weight",
                                                                 "--style-layers", "--average", "--init",
                                                                 "--pooling")}))
    def each(options):
        statuses.append(check(files, capsys, options, []))
    each()
    assert statuses.count(0) >= len(statuses) // 10, statuses


def test_a_found_case_huge_iterations_with_save_every(files, capsys):
    # hypothesis found it: --iterations 99999999999 --save-every 1 listed 1e11 snapshot paths
    with tempfile.TemporaryDirectory() as out:
        status = cli(["transfer", str(files / "c.png"), str(files / "s.png"), "-o", str(Path(out) / "o.png"),
                      "--weights", str(files / "w.h5"), "--iterations", "99999999999", "--save-every", "1",
                      "--dry-run"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "--save-every 1" in err[0] and "at most 10000" in err[0], err
