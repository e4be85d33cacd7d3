"""Tiled evaluation (nst.tiled) gives the untiled J and ∂J/∂X, on every host backend, and on a Dask
cluster's workers (nst.batch.tiles, `nst transfer --tile N --scheduler ADDRESS`)."""
import re
from types import SimpleNamespace

import numpy as np
import pytest

from nst import optim, tiled
from nst.backends import BackendUnavailable, get_backend
from nst.batch import tiles as batch_tiles
from nst.io.image import load_image
from nst.testing import random_image, tiny_params
from nst.objective import Objective
from nst.tiled import TiledObjective, halo_for, plan, pools_before

J_RTOL, GRAD_RTOL_L2 = 1e-5, 1e-4      # issue #23's bar: J relative, ∂J/∂X relative L2
SHALLOW = dict(content_layers=("block2_conv2",), style_layers=("block1_conv1", "block2_conv1"))


def backend_or_skip(name):
    try:
        return get_backend(name)
    except BackendUnavailable as e:
        pytest.skip(str(e))


def pair(backend, h, w, tile, seed=0, **layers):
    # (untiled LossResult, tiled LossResult, tiles) for random C, S, X on the tiny VGG19
    r = np.random.default_rng(seed)
    c, x = random_image(r, h, w, np.float32), random_image(r, h, w, np.float32)
    s = random_image(r, h + 7, w - 5, np.float32)
    kw = dict(content_weight=1.0, style_weight=10.0, tv_weight=1e-3, weights=tiny_params(),
              backend=backend, style_layer_weights="auto", **layers)
    tiled = TiledObjective(c, s, tile=tile, **kw)
    return Objective(c, s, **kw)(x), tiled(x), tiled.tiles(h, w, tiled.content_layers + tiled.style_layers)


def assert_same(got, ref):
    assert abs(got.total - ref.total) <= J_RTOL * abs(ref.total), (got.total, ref.total)
    for k in ref.terms:
        assert abs(got.terms[k] - ref.terms[k]) <= J_RTOL * abs(ref.terms[k]) + 1e-30, k
    err = np.linalg.norm(got.grad - ref.grad) / np.linalg.norm(ref.grad)
    assert err <= GRAD_RTOL_L2, f"∂J/∂X relative L2 error {err:.3g}"


@pytest.mark.parametrize("backend", ["numpy", "numba", "cuda-cpu"])
def test_tiles_give_the_untiled_result(backend):
    # 9 tiles of ≤ 12 px with a 6 px halo: interior tiles have halos on all four sides
    backend_or_skip(backend)
    ref, got, tiles = pair(backend, 31, 29, 12, **SHALLOW)
    assert len(tiles) == 9 and any(t.ey0 > 0 and t.ey1 < 31 and t.ex0 > 0 and t.ex1 < 29 for t in tiles)
    assert_same(got, ref)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_default_layers_odd_sides(backend, pooling):
    # block5_conv1 (4 pools, halo 80 px) on odd sides: the floors at the picture's edge, slivers
    backend_or_skip(backend)
    r = np.random.default_rng(3)
    h, w = 197, 211
    c, x, s = (random_image(r, h, w, np.float32) for _ in range(3))
    kw = dict(content_weight=1.0, style_weight=10.0, tv_weight=1e-3, weights=tiny_params(),
              backend=backend, pooling=pooling)
    assert_same(TiledObjective(c, s, tile=48, **kw)(x), Objective(c, s, **kw)(x))


def test_exact_in_float64():
    # the same arithmetic on the same values: in float64 only the summation order differs
    r = np.random.default_rng(11)
    c, s, x = (random_image(r, 37, 45, np.float64) for _ in range(3))
    kw = dict(content_weight=1.0, style_weight=10.0, tv_weight=1e-3, weights=tiny_params(dtype=np.float64),
              backend="numpy", dtype=np.float64, **SHALLOW)
    j0, _, _, g0 = Objective(c, s, **kw).evaluate(x)
    j1, _, _, g1 = TiledObjective(c, s, tile=8, **kw).evaluate(x)
    assert abs(j1 - j0) <= 1e-12 * abs(j0)
    assert np.linalg.norm(g1 - g0) <= 1e-12 * np.linalg.norm(g0)


def test_too_small_a_halo_is_wrong(monkeypatch):
    # the check can fail: one alignment step less halo spoils the interior and the result
    monkeypatch.setattr(tiled, "halo_for", lambda layers, deepest: halo_for(layers, deepest) - 2)
    ref, got, _ = pair("numpy", 31, 29, 10, **SHALLOW)
    err = np.linalg.norm(got.grad - ref.grad) / np.linalg.norm(ref.grad)
    assert err > 10 * GRAD_RTOL_L2


@pytest.mark.parametrize("h,w,tile", [(100, 37, 32), (16, 16, 16), (333, 250, 64), (50, 49, 7)])
def test_plan_partitions_every_layer(h, w, tile):
    # interiors tile the picture, start at multiples of 2^P, and at each layer tile its positions
    deepest = "block5_conv1"
    align = 2 ** pools_before(deepest)
    tiles = plan(h, w, max(align, tile // align * align), halo_for([deepest], deepest), align)
    cover = np.zeros((h, w), int)
    for t in tiles:
        cover[t.y0:t.y1, t.x0:t.x1] += 1
        assert t.y0 % align == 0 and t.x0 % align == 0 and t.ey0 % align == 0 and t.ex0 % align == 0
    assert np.all(cover == 1)
    for p in range(5):
        hl, wl = h >> p, w >> p
        cover = np.zeros((hl, wl), int)
        for t in tiles:
            cover[t.global_at(p)] += 1
        assert np.all(cover == 1)


def test_pieces_are_never_larger_than_the_tile():
    # every side cut by splits: pieces ≤ tile, as few as that allows (one fewer would not fit),
    # interior cuts at multiples of align; 5466 px in tiles of 2336 was one piece of 3074 before
    for align in (1, 16):
        for tile in range(align, 200, 3 * align):
            for n in range(1, 400, 7):
                bounds = tiled.splits(n, tile, align)
                sizes = np.diff(bounds)
                assert bounds[0] == 0 and bounds[-1] == n and np.all(sizes > 0)
                assert all(b % align == 0 for b in bounds[1:-1])
                assert sizes.max() <= tile, (n, tile, align, bounds)
                assert len(sizes) == 1 or (len(sizes) - 1) * tile < n, (n, tile, align, bounds)
    assert np.diff(tiled.splits(3074, 2336, 16)).max() <= 2336


def test_the_readmes_measured_plans_are_todays():
    # README "Any size", Cost: --tile 2000 at 3072×2304 was measured as two tiles (1536×2304, the plan
    # before pieces kept ≤ the tile); it makes the four of 1536×1152 that --tile 1536 makes
    from nst.spec import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
    layers = [*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS]
    plans = [[(t.y1 - t.y0, t.x1 - t.x0) for t in tiled.tile_plan(2304, 3072, tile, layers)] for tile in (2000, 1536)]
    assert plans[0] == plans[1] == [(1152, 1536)] * 4


# -- the command line: --tile N, --tile auto (the default) and the refusal ---------------------
@pytest.fixture
def files(tmp_path):
    from PIL import Image
    r, paths = np.random.default_rng(5), {}
    for name, shape in (("content", (30, 40, 3)), ("style", (36, 28, 3))):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(r.integers(0, 256, shape, dtype=np.uint8)).save(paths[name])
    return paths


def transfer(files, weights, out, *extra):
    from nst.cli import main
    return main(["transfer", str(files["content"]), str(files["style"]), "-o", str(out), "--weights",
                 str(weights), "--backend", "numpy", "--iterations", "3", "--scales", "1",
                 "--content-layers", "conv2_2", "--style-layers", "conv1_1,conv2_1", *extra])


def test_tiled_run_makes_the_same_picture(files, tiny_weights_h5, tmp_path, monkeypatch):
    # and the tiled run did evaluate in tiles: 48×36 px in 12 of 12 px (a --tile the run ignored
    # made the untiled picture, and passed)
    tiles_evaluated, pass2 = [], TiledObjective.pass2
    monkeypatch.setattr(TiledObjective, "pass2", lambda self, image, tiles, *a: tiles_evaluated.append(len(tiles))
                        or pass2(self, image, tiles, *a))
    assert transfer(files, tiny_weights_h5, tmp_path / "whole.png", "--size", "48", "--tile", "0") == 0
    assert tiles_evaluated == []
    assert transfer(files, tiny_weights_h5, tmp_path / "tiled.png", "--size", "48", "--tile", "12") == 0
    assert tiles_evaluated and set(tiles_evaluated) == {12}, tiles_evaluated
    whole, tiles = load_image(tmp_path / "whole.png"), load_image(tmp_path / "tiled.png")
    assert np.abs(whole - tiles).max() <= 1.0                # 8-bit PNGs: one level of rounding


def test_auto_tile_keeps_a_margin_for_the_estimates_error():
    # the largest aligned tile within AUTO_TILE_SHARE (95 %) of the free memory, not all of it
    from nst import memory
    assert memory.largest_fitting_tile(lambda t: t * t, 1000**2, 4096, 16) == 992
    assert memory.auto_tile(lambda t: t * t, 1000**2, 4096, 16) == 960        # 960² ≤ 0.95e6 < 976²
    assert memory.auto_tile(lambda t: t * t, 10**2, 4096, 16) == 0             # not even one block


def test_numba_estimate_counts_its_kept_heap_below_the_mmap_limit():
    # the numba backend keeps freed blocks below cpu_memory.LIMIT in the heap, which the backward
    # fragments: KEPT × the largest a^l there, none for a forward alone or an mmapped block 1
    from nst import memory
    from nst.kernels import cpu_memory
    assert memory.KEPT_LIMIT == cpu_memory.LIMIT
    block1 = lambda h, w: 64 * h * w * 4                                         # noqa: E731
    ws = memory.WORKSPACE["numba"]
    assert memory.network_bytes(768, 1024, "block5_conv1", "numba")[1] == int((ws + memory.KEPT["numba"])
                                                                               * block1(768, 1024))
    assert memory.network_bytes(768, 1024, "block5_conv1", "numba", backward=False)[1] == int(ws * block1(768, 1024))
    assert memory.network_bytes(2048, 2048, "block5_conv1", "numba")[1] == int(ws * block1(2048, 2048) + memory.KEPT[
        "numba"] * block1(1024, 1024) * 2)                                       # block 2: 128 channels at 1024²
    assert memory.network_bytes(768, 1024, "block5_conv1", "numpy")[1] == memory.WORKSPACE["numpy"] * block1(768, 1024)
    # a tiled evaluation (extents of several sizes) fragments it more: TILED_KEPT, for the run's tile extent
    assert memory.network_bytes(544, 672, "block5_conv1", "numba", tiled=True)[1] == int(
        (ws + memory.TILED_KEPT["numba"]) * block1(544, 672))
    layers = dict(deepest="block5_conv1", content_layers=["block4_conv2"], style_layers=["block1_conv1"],
                  optimizer="lbfgs", history=optim.HISTORY)
    parts = memory.estimate(1152, 1536, backend="numba", extent=(544, 672), **layers)
    assert parts["workspace"] == memory.network_bytes(544, 672, "block5_conv1", "numba", tiled=True)[1]


def test_estimate_takes_the_style_pass_when_it_needs_more():
    # a style image larger than the picture: its forward alone (no backward's workspace) is the peak
    from nst import memory
    layers = dict(deepest="block5_conv1", content_layers=["block4_conv2"], style_layers=["block1_conv1"],
                  optimizer="lbfgs", history=optim.HISTORY)
    parts = memory.estimate(341, 1024, style_hw=(640, 1024), backend="numba", **layers)
    assert (parts["activations"], parts["workspace"]) == memory.network_bytes(640, 1024, "block5_conv1", "numba",
                                                                              backward=False)
    parts = memory.estimate(768, 1024, style_hw=(200, 300), backend="numba", **layers)
    assert (parts["activations"], parts["workspace"]) == memory.network_bytes(768, 1024, "block5_conv1", "numba")


def test_auto_tiles_what_does_not_fit(files, tiny_weights_h5, tmp_path, monkeypatch, capsys):
    # a budget between the tiled and the untiled estimate: the dry run picks a tile, and says so
    from nst import memory
    from nst.cli import main  # noqa: F401
    args = ("--size", "3000", "--dry-run")
    monkeypatch.setattr(memory, "available", lambda backend: 2**40)
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", *args) == 0
    whole = float(capsys.readouterr().out.split("needs about ")[1].split(" GiB")[0]) * 2**30
    monkeypatch.setattr(memory, "available", lambda backend: 0.8 * whole)
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", *args) == 0
    out = capsys.readouterr().out
    assert "tiles of" in out and "fits" in out and "NOT" not in out
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", *args, "--tile", "0") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]          # the refusal (warnings come only when none)
    assert "--size" in err and "would fit" in err and "--tile" in err and "makes this size fit" in err
    assert int(err.split("--size ")[1].split(" would fit")[0]) < 3000          # smaller than asked


@pytest.mark.parametrize("size, tile, scales", [(4096, 512, 6), (7680, 1536, None), (2048, 256, 5)])
def test_coarser_scales_tile_only_what_would_not_fit_the_finest_scales_memory(size, tile, scales):
    # the finest scale keeps the run's tile; a coarser one runs whole when that fits in the memory the
    # finest was planned to need, else in the largest tile that fits there (never a smaller one).
    # Each case has a coarser scale that must tile (2048 px in 4 scales no longer does: the finest
    # scale's 20 L-BFGS pairs since FINEST_CAP 24 give the coarser ones room to run whole)
    from nst.run.run import Run
    from nst.run.settings import Settings
    r = np.random.default_rng(0)
    c, s = random_image(r, 48, 64, np.float32), random_image(r, 32, 32, np.float32)
    run = Run(c, s, Settings(size=size, tile=tile, backend="numba", **({"scales": scales} if scales else {})),
              log=lambda m: None)
    tiles = [run.scale_tile(k) for k in range(len(run.sizes))]
    budget = run.memory_estimate(tile=tile)[0]["total"]
    assert tiles[-1] == tile and tiles[0] is None and any(t and t > tile for t in tiles)
    for k, (side, t) in enumerate(zip(run.sizes[:-1], tiles)):
        pairs = min(run.settings.history, run.caps[k])
        assert run.memory_estimate(side, t, pairs)[0]["total"] <= budget
        if t:
            assert tile < t < side and run.memory_estimate(side, None, pairs)[0]["total"] > budget
            assert run.memory_estimate(side, t + run.tile_align(), pairs)[0]["total"] > budget


# -- the tiles on a Dask cluster (nst.batch.tiles) ---------------------------------------------
@pytest.fixture(scope="module")
def processes():
    # two worker processes: every task's arguments and results cross a process boundary
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


@pytest.mark.parametrize("backend, layers", [("numpy", SHALLOW), ("numba", {})])
def test_tiles_on_workers_give_the_local_tiled_and_untiled_result(processes, backend, layers):
    r = np.random.default_rng(3)
    h, w = (31, 29) if layers else (70, 52)
    c, x, s = (random_image(r, *hw, np.float32) for hw in ((h, w), (h, w), (h + 7, w - 5)))
    kw = dict(content_weight=1.0, style_weight=10.0, tv_weight=1e-3, weights=tiny_params(), backend=backend,
              style_layer_weights="auto", **layers)
    tile = 10 if layers else 32
    on_cluster = batch_tiles.ClusterTiles(processes, tiny_params()).objective(c, s, tile=tile, **kw)
    local = TiledObjective(c, s, tile=tile, **kw)
    n = len(local.tiles(h, w, local.content_layers + local.style_layers))
    assert n >= 4
    targets = [(on_cluster.style_targets, local.style_targets),     # Ĝ(S) from pass 1 on the workers
               (on_cluster.content_targets, local.content_targets)]  # a^l(C), tile by tile there
    for got_t, ref_t in targets:
        for k in ref_t:
            np.testing.assert_allclose(got_t[k], ref_t[k], rtol=1e-5, atol=1e-6 * np.abs(ref_t[k]).max())
    got = on_cluster(x)
    assert_same(got, local(x))
    assert_same(got, Objective(c, s, **kw)(x))


def test_a_stop_on_the_cluster_is_seen_before_each_tile(processes):
    # a Run's stop check (before_tile) runs before each tile's result is collected, as on this
    # machine: a stop asked during an evaluation ends it there (Abandoned), not after every tile
    from nst.optim import Abandoned
    r = np.random.default_rng(5)
    c, x, s = (random_image(r, 31, 29, np.float32) for _ in range(3))
    kw = dict(content_weight=1.0, style_weight=10.0, tv_weight=1e-3, weights=tiny_params(), backend="numpy",
              **SHALLOW)
    on_cluster = batch_tiles.ClusterTiles(processes, tiny_params()).objective(c, s, tile=10, **kw)
    checks = []

    def stop_at_the_third():
        checks.append(1)
        if len(checks) == 3:
            raise Abandoned
    on_cluster.before_tile = stop_at_the_third
    with pytest.raises(Abandoned):
        on_cluster(x)
    assert len(checks) == 3


def test_transfer_with_a_scheduler_makes_the_local_picture(files, tiny_weights_h5, tmp_path, shared_cluster, capsys):
    assert transfer(files, tiny_weights_h5, tmp_path / "here.png", "--size", "48", "--tile", "12") == 0
    assert transfer(files, tiny_weights_h5, tmp_path / "there.png", "--size", "48", "--tile", "12",
                    "--scheduler", shared_cluster) == 0
    assert "nst: tiles on 1 worker" in capsys.readouterr().err
    here, there = load_image(tmp_path / "here.png"), load_image(tmp_path / "there.png")
    assert np.abs(here - there).max() <= 1.0                # 8-bit PNGs: one level of rounding


def test_transfer_with_a_scheduler_reads_the_weights_once(files, tiny_weights_h5, tmp_path, shared_cluster,
                                                          monkeypatch):
    # the run read the weights file (ahead, for its objective) and the cluster's link read it again
    import nst.weights
    real, reads = nst.weights.keras_h5.read, []

    def reading(path, *a, **k):
        reads.append(str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(nst.weights.keras_h5, "read", reading)
    assert transfer(files, tiny_weights_h5, tmp_path / "there.png", "--size", "48", "--tile", "12",
                    "--scheduler", shared_cluster) == 0
    assert reads == [str(tiny_weights_h5)], reads


def test_scheduler_without_tiles_is_refused_before_any_work(files, tiny_weights_h5, tmp_path, shared_cluster, capsys):
    out = tmp_path / "o.png"
    assert transfer(files, tiny_weights_h5, out, "--size", "48", "--scheduler", shared_cluster) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scheduler" in err and "--tile N" in err and not out.exists()
    assert transfer(files, tiny_weights_h5, out, "--size", "48", "--tile", "12", "--scheduler", "localhost:1") == 2
    assert "localhost:1" in capsys.readouterr().err and not out.exists()


def test_a_tile_task_s_warnings_come_back_with_its_result(monkeypatch):
    # a tile task raising a Python warning on its worker: it went to the worker's stderr (or nowhere, on
    # a remote cluster), and its NumPy overflow warnings were said there though nst transfer says none.
    # It comes back with the result and the client says it in its command's scope, once
    import warnings

    from nst.run.warned import warning_scope

    def warning_grams(net, t, pixels, layers):
        np.full(2, 3e38, np.float32) * np.float32(10)               # overflow: not said
        warnings.warn("a tile warns")
        return {"block1_conv1": np.ones((2, 2))}, {"block1_conv1": 4}, None
    monkeypatch.setattr(batch_tiles, "worker_net", lambda spec, weights: None)
    monkeypatch.setattr(batch_tiles, "tile_grams", warning_grams)
    with warnings.catch_warnings(record=True) as shown:             # the worker's stderr
        warnings.simplefilter("always")
        value, warned = batch_tiles.grams_task(None, None, None, None, ("block1_conv1",))
    assert warned == ["a tile warns"] and not shown, [str(w.message) for w in shown]
    assert value[1] == {"block1_conv1": 4}
    said, done = [], SimpleNamespace(result=lambda: (value, warned), release=lambda: None)
    with warning_scope(said.append):
        assert batch_tiles.result(done) is value and batch_tiles.result(done) is value
    assert said == ["a tile warns"]                                 # once a command
    _, warned = batch_tiles.grams_task(None, None, None, None, ("block1_conv1",), debug=True)
    assert warned == ["overflow encountered in multiply", "a tile warns"]     # nst transfer --debug's


def test_transfer_debug_reaches_the_tile_tasks(files, tiny_weights_h5, tmp_path, shared_cluster, monkeypatch):
    # nst transfer --debug says NumPy's overflow warnings; its tile tasks on the cluster hid them whatever
    seen = []
    real = batch_tiles.ClusterTiles.__init__

    def init(self, client, weights, debug=False):
        seen.append(debug)
        real(self, client, weights, debug)
    monkeypatch.setattr(batch_tiles.ClusterTiles, "__init__", init)
    for debug in (False, True):
        assert transfer(files, tiny_weights_h5, tmp_path / f"o{debug}.png", "--size", "48", "--tile", "12",
                        "--scheduler", shared_cluster, *(["--debug"] if debug else [])) == 0
    assert seen == [False, True]


FAILING = {"calls": 0, "after": 2 * 12}     # module state: Dask pickles this module's functions by reference


def failing_gradient_task(*args, **kw):
    # pass 2 of a tile, failing from the third evaluation on (48×36 px in 12 tiles)
    FAILING["calls"] += 1
    if FAILING["calls"] > FAILING["after"]:
        raise MemoryError("the worker ran out of memory")
    return REAL_GRADIENT_TASK(*args, **kw)


REAL_GRADIENT_TASK = batch_tiles.gradient_task


def test_a_failing_worker_ends_the_run_keeping_its_last_image(files, tiny_weights_h5, tmp_path, shared_cluster,
                                                              monkeypatch, capsys):
    # one line, exit 1, and -o holds the last good image
    monkeypatch.setattr(batch_tiles, "gradient_task", failing_gradient_task)
    monkeypatch.setitem(FAILING, "calls", 0)
    out = tmp_path / "o.png"
    assert transfer(files, tiny_weights_h5, out, "--size", "48", "--tile", "12", "--scheduler", shared_cluster) == 1
    err = capsys.readouterr().err
    assert "a tile's evaluation failed on the Dask cluster (MemoryError: the worker ran out of memory)" in err
    assert FAILING["calls"] > FAILING["after"] and out.exists() and np.all(np.isfinite(load_image(out)))


def test_auto_tile_suggests_the_size_that_fits_in_tiles(files, tiny_weights_h5, tmp_path, monkeypatch, capsys):
    # under --tile auto (the default) the suggested --size is one that fits in tiles, larger than the
    # size that fits whole, and it does fit; when nothing fits, the message says what does not shrink
    from nst import memory
    args = ("--size", "6000", "--dry-run")
    monkeypatch.setattr(memory, "available", lambda backend: 2**40)
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", "1500", "--dry-run") == 0
    budget = float(capsys.readouterr().out.split("needs about ")[1].split(" GiB")[0]) * 2**30
    monkeypatch.setattr(memory, "available", lambda backend: budget)
    suggested = {}
    for tile in ("auto", "0"):
        assert transfer(files, tiny_weights_h5, tmp_path / "o.png", *args, "--tile", tile) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]      # the refusal (warnings come only when none)
        suggested[tile] = int(err.split("--size ")[1].split(" would fit")[0])
    assert suggested["auto"] > suggested["0"] >= 1400
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", str(suggested["auto"]), "--dry-run") == 0
    assert "(fits)" in capsys.readouterr().out
    monkeypatch.setattr(memory, "available", lambda backend: 2**20)
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", *args) == 2
    err = capsys.readouterr().err
    assert "no --size fits" in err and "no tile is small enough: even" in err


def test_refusal_names_a_huge_input_as_what_to_shrink(files, tiny_weights_h5, tmp_path, monkeypatch, capsys):
    # a 5000×3000 style at 32 px: no size and no tile helps; its decoded pixels (180 MB) are the
    # largest part and the message says so (it named the resampling's 48 MB before, no hint)
    from PIL import Image
    from nst import memory
    Image.new("RGB", (5000, 3000), (200, 40, 90)).save(files["style"])
    monkeypatch.setattr(memory, "available", lambda backend: 2**40)
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", "32", "--dry-run") == 0
    need = float(capsys.readouterr().out.split("needs about ")[1].split(" GiB")[0]) * 2**30
    monkeypatch.setattr(memory, "available", lambda backend: 0.9 * need)
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", "32", "--dry-run") == 2
    err = capsys.readouterr().err
    assert "the largest part inputs (" in err and "smaller input images" in err, err


def test_largest_extent_and_the_work_are_the_plans(rng):
    # per side, as tile_plan's largest extent over every tile (odd sizes, tiles below the alignment);
    # the work, 3 passes over every tile's extent against 2 over the picture
    from nst.tiled import largest_extent, tile_plan, work_factor
    for layers in (["block1_conv1", "block2_conv1"], ["block4_conv2", "block5_conv1"]):
        for _ in range(60):
            h, w, t = (int(v) for v in rng.integers(16, 700, 3))
            tiles = tile_plan(h, w, t // 3, layers)
            assert largest_extent(h, w, t // 3, layers) == (max(x.ey1 - x.ey0 for x in tiles),
                                                             max(x.ex1 - x.ex0 for x in tiles))
            area = sum((x.ey1 - x.ey0) * (x.ex1 - x.ex0) for x in tiles)
            assert work_factor(h, w, t // 3, layers) == pytest.approx(1.5 * area / (h * w))


def test_a_tile_whose_halos_multiply_the_work_is_warned_of(files, tiny_weights_h5, tmp_path, capsys):
    # --tile 4 at 40×30 with conv2_2 the deepest layer (6 px halos): each tile's extent 4× its
    # interior, said before the run with the factor; the run still goes (memory may leave no other
    # choice). Not said for --tile auto, --tile 0, 32 px tiles (about 2×) or a tile the picture fits in
    out = tmp_path / "o.png"
    assert transfer(files, tiny_weights_h5, out, "--size", "40", "--tile", "4", "--dry-run") == 0
    said = capsys.readouterr()
    assert re.search(r"warning: --tile 4 makes an evaluation about [\d.]+× the work of an untiled one",
                     said.out + said.err)
    for tile in ("auto", "0", "32", "64"):
        assert transfer(files, tiny_weights_h5, out, "--size", "40", "--tile", tile, "--dry-run") == 0
        assert "untiled one" not in "".join(capsys.readouterr())


def test_dry_run_names_the_tile_it_uses(files, tiny_weights_h5, tmp_path, capsys):
    # --tile 3 is rounded to the alignment (the deepest layer's stride): the dry run says which
    from nst.spec import min_side
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", "64", "--tile", "3", "--dry-run") == 0
    assert f"tiles of {min_side('block2_conv1')} px" in capsys.readouterr().out


def test_the_help_says_a_tile_is_rounded_down_to_the_stride(files, tiny_weights_h5, tmp_path, capsys):
    # --help promised "N×N px interiors"; --tile 200 runs in tiles of 192 px (README's example)
    from nst.cli.parser import build_parser
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["transfer"].format_help().split())
    assert "interiors of at most N×N px (N rounded down to the deepest layer's stride, 16 px" in text
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", "512", "--tile", "200", "--dry-run",
                    "--content-layers", "conv4_2", "--style-layers", "conv1_1,conv5_1") == 0
    assert "tiles of 192 px" in capsys.readouterr().out


def test_dry_run_per_scale_line_names_the_aligned_tile(files, tiny_weights_h5, tmp_path, capsys):
    # the "per scale" line gives the tile each scale really runs in: --tile 3 rounded to the
    # alignment, as in the header line (it printed "64 px in tiles of 3")
    from nst.spec import min_side
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", "64", "--scales", "2", "--tile", "3",
                    "--dry-run") == 0
    out = capsys.readouterr().out
    side = min_side('block2_conv1')
    assert f"64 px in {64 // side}×{48 // side} tiles of {side}×{side} px" in out and "tiles of 3" not in out


def test_dry_run_per_scale_line_names_the_pieces_run(files, tiny_weights_h5, tmp_path, capsys):
    # 64×48 px in --tile 48 runs as two pieces of 32×48 (tile_plan cuts equal pieces): the line
    # said "64 px in tiles of 48"
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", "64", "--scales", "2", "--tile", "48",
                    "--dry-run") == 0
    out = capsys.readouterr().out
    assert "64 px in 2×1 tiles of 32×48 px" in out and "in tiles of 48" not in out


def test_dry_run_of_one_scale_names_the_pieces_run(files, tiny_weights_h5, tmp_path, capsys):
    # one scale said only the --tile limit ("tiles of 48 px"), not the two pieces of 32×48 it runs in
    assert transfer(files, tiny_weights_h5, tmp_path / "o.png", "--size", "64", "--scales", "1", "--tile", "48",
                    "--dry-run") == 0
    assert "per scale   64 px in 2×1 tiles of 32×48 px" in capsys.readouterr().out


@pytest.mark.parametrize("tile", [0, -16, 15.5, "a", None, float("nan")])
def test_a_tile_that_is_no_whole_number_of_pixels_is_refused_by_name(tiny_weights, tile):
    # 0 and -16 ran as the smallest tile, 15.5 as 15; "a", None, NaN were int()'s errors
    c = np.random.default_rng(0).uniform(0, 255, (40, 44, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=f"^tile must be a whole number ≥ 1, got {re.escape(repr(tile))}$"):
        TiledObjective(c, c, tile=tile, content_weight=1.0, style_weight=1.0, tv_weight=0.0, weights=tiny_weights)
