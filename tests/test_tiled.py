"""Tiled evaluation (nst.tiled) gives the untiled J and ∂J/∂X, on every host backend."""
import numpy as np
import pytest

from nst import tiled
from nst.backends import BackendUnavailable, get_backend
from nst.gradcheck import random_image, tiny_params
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
    tiled_obj = TiledObjective(c, s, tile=tile, **kw)
    return Objective(c, s, **kw)(x), tiled_obj(x), tiled_obj.tiles(h, w, tiled_obj.content_layers + tiled_obj.style_layers)


def assert_same(got, ref):
    assert abs(got.total - ref.total) <= J_RTOL * abs(ref.total), (got.total, ref.total)
    for k in ref.terms:
        assert abs(got.terms[k] - ref.terms[k]) <= J_RTOL * abs(ref.terms[k]) + 1e-30, k
    err = np.linalg.norm(got.grad - ref.grad) / np.linalg.norm(ref.grad)
    assert err <= GRAD_RTOL_L2, f"∂J/∂X relative L2 error {err:.3g}"


@pytest.mark.parametrize("backend", ["numpy", "numba", "cuda-cpu"])
def test_tiles_give_the_untiled_result(backend):
    # 9 tiles of ~10 px with a 6 px halo: interior tiles have halos on all four sides
    backend_or_skip(backend)
    ref, got, tiles = pair(backend, 31, 29, 10, **SHALLOW)
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
