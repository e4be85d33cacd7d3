"""Video maths: the temporal loss, the warp and the reliability mask — the NumPy reference
(nst/losses.py, nst/flow.py) against finite differences and hand-made flows, and the Numba
kernels against the reference (odd sizes, flows that leave the frame, never NaN). The CUDA
temporal loss (cuda-cpu, and a GPU when present) is tested with the other CUDA kernels in
tests/test_kernels_cuda.py; the objective with the temporal term on every backend here."""
import numpy as np
import pytest
from conftest import assert_close
from nst.kernels import flow_mask, flow_warp, temporal_loss

from nst import flow, losses
from nst.gradcheck import numeric_grad

SHAPES = [(7, 9), (13, 11), (1, 5), (32, 30)]


def random_flow(rng, h, w, scale):
    # a smooth flow (mostly reliable) plus a block of other motion (boundaries), reaching past the frame
    gy, gx = np.mgrid[0:h, 0:w]
    zoom = 0.02 * scale / 3                                  # smooth: |∇w|² below the boundary test
    f = np.stack([zoom * (gx - w / 2) + 0.7 * scale, zoom * (gy - h / 2) - 0.5 * scale], -1)
    f[h // 3: 2 * h // 3 + 1, w // 3: 2 * w // 3 + 1] += rng.normal(size=2) * scale
    return f.astype(np.float32)


def mask_inputs(rng, h, w, scale=3.0):
    back = random_flow(rng, h, w, scale)
    fwd = -flow.warp(back, back) + rng.normal(scale=0.3, size=back.shape).astype(np.float32)
    return back, fwd.astype(np.float32)


def test_temporal_loss_fd_gradcheck_float64(rng):
    x, t = 255 * rng.random((5, 7, 3)), 255 * rng.random((5, 7, 3))
    c = rng.random((5, 7))
    j, g = losses.temporal_loss_and_grad(x, t, c)
    num = numeric_grad(lambda x: losses.temporal_loss_and_grad(x, t, c)[0], x, eps=1e-3)
    assert np.max(np.abs(g - num)) / np.max(np.abs(num)) < 1e-6
    assert j == pytest.approx(np.sum(c[..., None] * (x - t) ** 2) / x.size)


@pytest.mark.parametrize("hw", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(temporal_loss.VERSIONS["temporal_loss_and_grad"]))
def test_temporal_loss_numba(name, hw, rng):
    x, t = (255 * rng.random((*hw, 3))).astype(np.float32), (255 * rng.random((*hw, 3))).astype(np.float32)
    c = (rng.random(hw) > 0.3).astype(np.float32) * rng.random(hw).astype(np.float32)
    j_ref, g_ref = losses.temporal_loss_and_grad(x.astype(np.float64), t.astype(np.float64), c.astype(np.float64))
    j, g = temporal_loss.VERSIONS["temporal_loss_and_grad"][name](x, t, c)
    assert_close(j, j_ref, what=name + " J")
    assert_close(g, g_ref, what=name + " grad")


@pytest.mark.parametrize("hw", SHAPES, ids=str)
@pytest.mark.parametrize("k", [3, 2])
def test_warp_numba_matches_reference(hw, k, rng):
    image = (255 * rng.random((*hw, k))).astype(np.float32)
    back = random_flow(rng, *hw, scale=4.0)               # reaches past every border
    want = flow.warp(image.astype(np.float64), back)
    got = flow_warp.warp_v1(image, back)
    assert np.isfinite(got).all()
    assert_close(got, want, what="warp")


def test_warp_of_a_shift_is_the_shifted_image(rng):
    image = rng.random((6, 8, 3))
    back = np.zeros((6, 8, 2))
    back[..., 0] = 2.0                                      # frame i's pixel x came from x + 2
    assert np.allclose(flow.warp(image, back)[:, :6], image[:, 2:])
    assert np.allclose(flow.warp(image, back)[:, 6:], image[:, 7:8])    # past the edge: the border
    back[..., 0] = 0.5
    assert np.allclose(flow.warp(image, back)[:, :7], (image[:, :7] + image[:, 1:]) / 2)


@pytest.mark.parametrize("hw", SHAPES, ids=str)
def test_mask_numba_matches_reference(hw, rng):
    back, fwd = mask_inputs(rng, *hw)
    want = flow.reliability_mask(back, fwd)
    got = flow_mask.mask_v1(back, fwd)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert np.array_equal(got, want), f"{np.sum(got != want)} of {got.size} pixels differ"
    if min(hw) > 5:
        assert 0 < want.mean() < 1                          # every branch is exercised


def test_mask_constants_agree():
    assert (flow_mask.CONSISTENCY_REL, flow_mask.CONSISTENCY_ABS, flow_mask.BOUNDARY_REL, flow_mask.BOUNDARY_ABS) \
        == (flow.CONSISTENCY_REL, flow.CONSISTENCY_ABS, flow.BOUNDARY_REL, flow.BOUNDARY_ABS)


def test_mask_of_known_motion():
    # a pan by 3 px: reliable except the 3 columns whose source left the frame
    h, w = 9, 12
    back, fwd = np.zeros((h, w, 2), np.float32), np.zeros((h, w, 2), np.float32)
    back[..., 0], fwd[..., 0] = 3.0, -3.0
    c = flow.reliability_mask(back, fwd)
    assert c[:, :w - 3].all() and not c[:, w - 3:].any()
    # the forward flow disagrees (an occlusion) in one spot: only there
    fwd[4, 6] = (5.0, 5.0)
    c = flow.reliability_mask(back, fwd)
    assert c[4, 3] == 0 and c[:, :w - 3].sum() == h * (w - 3) - 1
    # a motion boundary: a square moving against the still background
    back, fwd = np.zeros((h, w, 2), np.float32), np.zeros((h, w, 2), np.float32)
    back[3:6, 4:8, 1] = 2.0
    c = flow.reliability_mask(back, -flow.warp(back, back) * 0)       # fwd 0: inconsistent inside
    assert not c[3:6, 4:8].any() and c[0].all() and c[:, 0].all()
    assert flow_mask.mask_v1(back, fwd).tolist() == flow.reliability_mask(back, fwd).tolist()


def test_long_term_masks_closest_first():
    a = np.array([[1, 0, 0, 1]], np.float32)
    b = np.array([[1, 1, 0, 0]], np.float32)
    c = np.array([[1, 1, 1, 0]], np.float32)
    la, lb, lc = flow.long_term_masks([a, b, c])
    assert la.tolist() == a.tolist() and lb.tolist() == [[0, 1, 0, 0]] and lc.tolist() == [[0, 0, 1, 0]]


@pytest.mark.parametrize("backend", ["numpy", "numba", "cuda-cpu"])
def test_objective_with_temporal_terms(backend, rng):
    # J + τ Σ_k J_t(X; ω_k, c_k) through the tiny VGG19: the term adds exactly τ·J_t and τ·∂J_t/∂X
    from nst.gradcheck import random_image, tiny_params
    from nst.objective import Objective
    content, style, x = (random_image(rng, h, w, np.float32) for h, w in ((17, 19), (21, 16), (17, 19)))
    kw = dict(content_weight=1.0, style_weight=10.0, tv_weight=1e-3, weights=tiny_params(dtype=np.float32),
              style_layer_weights="auto", backend=backend)
    plain = Objective(content, style, **kw)(x)
    obj = Objective(content, style, **kw)
    targets = [(random_image(rng, 17, 19, np.float32), rng.random((17, 19)).astype(np.float32)) for _ in range(2)]
    obj.temporal_weight, obj.temporal = 3.0, targets
    tied = obj(x)
    parts = [losses.temporal_loss_and_grad(x.astype(np.float64), t, c) for t, c in targets]
    assert tied.terms["temporal"] == pytest.approx(sum(j for j, _ in parts), rel=1e-5)
    assert tied.total == pytest.approx(plain.total + 3.0 * tied.terms["temporal"], rel=1e-6)
    assert_close(tied.grad, plain.grad + 3.0 * sum(g for _, g in parts), what="∂J/∂X with the temporal terms")
