"""A picture's tiles on a Dask cluster (nst.batch.tiles, `nst transfer --tile N --scheduler ADDRESS`):
the numbers of a local tiled evaluation, from worker processes; the command line's refusals."""
import numpy as np
import pytest
from PIL import Image

from nst.batch import tiles as cluster_tiles
from nst.cli import main
from nst.io.image import load_image
from nst.objective import Objective
from nst.testing import random_image, tiny_params
from nst.tiled import TiledObjective
from test_tiled import SHALLOW, assert_same

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def processes():
    # two worker processes: every task's arguments and results cross a process boundary
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def threads():
    # one in-process worker: what its tasks call can be replaced by monkeypatch
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler.address


@pytest.mark.parametrize("backend, layers", [("numpy", SHALLOW), ("numba", {})])
def test_tiles_on_workers_give_the_local_tiled_and_untiled_result(processes, backend, layers):
    r = np.random.default_rng(3)
    h, w = (31, 29) if layers else (70, 52)
    c, x, s = (random_image(r, *hw, np.float32) for hw in ((h, w), (h, w), (h + 7, w - 5)))
    kw = dict(content_weight=1.0, style_weight=10.0, tv_weight=1e-3, weights=tiny_params(), backend=backend,
              style_layer_weights="auto", **layers)
    tile = 10 if layers else 32
    on_cluster = cluster_tiles.ClusterTiles(processes, tiny_params()).objective(c, s, tile=tile, **kw)
    local = TiledObjective(c, s, tile=tile, **kw)
    n = len(local.tiles(h, w, local.content_layers + local.style_layers))
    assert n >= 4
    for n_style in local.style_layers:                     # Ĝ(S) from pass 1 on the workers
        np.testing.assert_allclose(on_cluster.style_targets[n_style], local.style_targets[n_style], rtol=1e-5,
                                   atol=1e-6 * np.abs(local.style_targets[n_style]).max())
    got = on_cluster(x)
    assert_same(got, local(x))
    assert_same(got, Objective(c, s, **kw)(x))


@pytest.fixture
def files(tmp_path):
    r, paths = np.random.default_rng(5), {}
    for name, shape in (("content", (30, 40, 3)), ("style", (36, 28, 3))):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(r.integers(0, 256, shape, dtype=np.uint8)).save(paths[name])
    return paths


def transfer(files, weights, out, *extra):
    return main(["transfer", str(files["content"]), str(files["style"]), "-o", str(out), "--weights",
                 str(weights), "--backend", "numpy", "--iterations", "3", "--scales", "1",
                 "--content-layers", "conv2_2", "--style-layers", "conv1_1,conv2_1", "--size", "48", *extra])


def test_transfer_with_a_scheduler_makes_the_local_picture(files, tiny_weights_h5, tmp_path, threads, capsys):
    assert transfer(files, tiny_weights_h5, tmp_path / "here.png", "--tile", "12") == 0
    assert transfer(files, tiny_weights_h5, tmp_path / "there.png", "--tile", "12", "--scheduler", threads) == 0
    assert "nst: tiles on 1 worker" in capsys.readouterr().err
    here, there = load_image(tmp_path / "here.png"), load_image(tmp_path / "there.png")
    assert np.abs(here - there).max() <= 1.0                # 8-bit PNGs: one level of rounding


def test_scheduler_without_tiles_is_refused_before_any_work(files, tiny_weights_h5, tmp_path, threads, capsys):
    out = tmp_path / "o.png"
    assert transfer(files, tiny_weights_h5, out, "--scheduler", threads) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scheduler" in err and "--tile N" in err and not out.exists()
    assert transfer(files, tiny_weights_h5, out, "--tile", "12", "--scheduler", "localhost:1") == 2
    assert "localhost:1" in capsys.readouterr().err and not out.exists()


FAILING = {"calls": 0, "after": 2 * 12}     # module state: Dask pickles this module's functions by reference


def failing_gradient_task(*args):
    # pass 2 of a tile, failing from the third evaluation on (48×36 px in 12 tiles)
    FAILING["calls"] += 1
    if FAILING["calls"] > FAILING["after"]:
        raise MemoryError("the worker ran out of memory")
    return REAL_GRADIENT_TASK(*args)


REAL_GRADIENT_TASK = cluster_tiles.gradient_task


def test_a_failing_worker_ends_the_run_keeping_its_last_image(files, tiny_weights_h5, tmp_path, threads,
                                                              monkeypatch, capsys):
    # one line, exit 1, and -o holds the last good image
    monkeypatch.setattr(cluster_tiles, "gradient_task", failing_gradient_task)
    monkeypatch.setitem(FAILING, "calls", 0)
    out = tmp_path / "o.png"
    assert transfer(files, tiny_weights_h5, out, "--tile", "12", "--scheduler", threads) == 1
    err = capsys.readouterr().err
    assert "a tile's evaluation failed on the Dask cluster (MemoryError: the worker ran out of memory)" in err
    assert FAILING["calls"] > FAILING["after"] and out.exists() and np.all(np.isfinite(load_image(out)))
