"""Video maths: the temporal loss, the warp and the reliability mask — the NumPy reference
(nst/losses.py, nst/flow.py) against finite differences and hand-made flows; every version of the
warp and the mask kernels (nst.kernels.VIDEO_OPS) against the reference, one test body per op
over the families of tests/test_ops.py (numba, cuda-cpu, and gpu when there is one): odd sizes,
1×5, flows that leave the frame, never NaN, the mask equal bit for bit. The temporal loss's
kernels have their body in tests/test_ops.py (with the other losses); here the objective with the
temporal term on every backend, and a video frame's temporal targets on cuda-cpu against Numba's
(nst/video/flow.py picks the family by the run's backend)."""
import re

import numpy as np
import pytest
from conftest import assert_close
from nst.kernels import flow_mask
from nst.kernels import cuda as kc
from nst.kernels.cuda import _common as K
from test_ops import CUDA_CPU, SIGNATURE, cases

from nst import flow, losses
from nst.gradcheck import numeric_grad

SHAPES = [(7, 9), (13, 11), (1, 5), (32, 30)]


def random_flow(rng, h, w, scale):
    # a smooth flow (mostly reliable) plus a block of other motion (boundaries), reaching past the frame
    gy, gx = np.mgrid[0:h, 0:w]
    # smooth: |∇w|² = 2·zoom² ≈ 0.01, over BOUNDARY_ABS, so the 0.01·|w|² term decides the boundary test
    zoom = 0.07 * scale / 3
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


def leaves_the_frame(back):
    # -> H×W: where x + back(x) lies outside [0, W−1]×[0, H−1]
    h, w = back.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w]
    fx, fy = gx + back[..., 0], gy + back[..., 1]
    return (fx < 0) | (fx > w - 1) | (fy < 0) | (fy > h - 1)


# (H, W, K): images (3 channels) and flows (2), every kernel takes any K
@pytest.mark.parametrize(SIGNATURE, cases(["warp"], [(*hw, k) for hw in SHAPES for k in (3, 2)]))
def test_warp(op, fam, version, shape, rng):
    h, w, k = shape
    image = (255 * rng.random(shape)).astype(np.float32)
    back = random_flow(rng, h, w, scale=4.0)
    assert leaves_the_frame(back).any()
    got = fam.get(fam.registry.get(op, version)(fam.put(image), fam.put(back)))
    assert got.dtype == np.float32 and got.shape == shape and np.isfinite(got).all()
    assert_close(got, flow.warp(image.astype(np.float64), back), what=f"{op}.{version}{shape}")


@pytest.mark.parametrize(SIGNATURE, cases(["reliability_mask"], SHAPES))
def test_reliability_mask(op, fam, version, shape, rng):
    back, fwd = mask_inputs(rng, *shape)
    want = flow.reliability_mask(back, fwd)
    got = fam.get(fam.registry.get(op, version)(fam.put(back), fam.put(fwd)))
    assert got.dtype == np.float32 and got.shape == shape and np.isfinite(got).all()
    assert np.array_equal(got, want), f"{np.sum(got != want)} of {got.size} pixels differ"
    if min(shape) > 5:                                      # each test rejects pixels of its own
        inside = ~leaves_the_frame(back)
        smooth = flow.flow_gradient_sq(back) <= flow.BOUNDARY_REL * (back.astype(np.float64) ** 2).sum(-1) \
            + flow.BOUNDARY_ABS
        assert want.any() and (~inside).any() and (inside & ~smooth).any() and (inside & smooth & (want == 0)).any()
        assert (want.astype(bool) & (flow.flow_gradient_sq(back) > flow.BOUNDARY_ABS)).any()   # the relative term


def test_warp_of_a_shift_is_the_shifted_image(rng):
    image = rng.random((6, 8, 3))
    back = np.zeros((6, 8, 2))
    back[..., 0] = 2.0                                      # frame i's pixel x came from x + 2
    assert np.allclose(flow.warp(image, back)[:, :6], image[:, 2:])
    assert np.allclose(flow.warp(image, back)[:, 6:], image[:, 7:8])    # past the edge: the border
    back[..., 0] = 0.5
    assert np.allclose(flow.warp(image, back)[:, :7], (image[:, :7] + image[:, 1:]) / 2)


THRESHOLDS = ("CONSISTENCY_REL", "CONSISTENCY_ABS", "BOUNDARY_REL", "BOUNDARY_ABS")


def test_mask_constants_agree():
    # nst/flow.py's thresholds, the Numba kernel's and flow_mask.cu's constexpr doubles
    want = {name: getattr(flow, name) for name in THRESHOLDS}
    assert {name: getattr(flow_mask, name) for name in THRESHOLDS} == want
    text = K.source(kc.launcher("flow_mask").CU)
    declared = [pair for line in re.findall(r"^constexpr double (.*);$", text, re.M)
                for pair in re.findall(r"(\w+) = ([\d.eE+-]+)", line)]
    assert {name: float(value) for name, value in declared} == want, declared


@pytest.mark.parametrize("op,args", [("warp", ((5, 7, 3), (5, 6, 2))), ("warp", ((5, 7), (5, 7, 2))),
                                     ("reliability_mask", ((5, 7, 3), (5, 7, 2))),
                                     ("reliability_mask", ((5, 7, 2), (5, 7, 3)))])
def test_cuda_launchers_name_the_bad_shape(op, args):
    # the warp takes any channel count but back must be H×W×2 of the image's H×W; the mask two H×W×2
    with pytest.raises(K.KernelArgError, match="shape|expected 3-d"):
        kc.get(op, "v1")(*(np.ones(s, np.float32) for s in args))


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


on_cuda_cpu = pytest.mark.skipif(CUDA_CPU.reason is not None, reason=CUDA_CPU.reason or "")


@on_cuda_cpu
def test_video_frame_targets_on_cuda_cpu_equal_numba(rng):
    # frame 2 of the test clip against frames 1 and 0 (OpenCV's flows): the masks, the temporal
    # targets (ω_k, c'_k) and the warped start, with the CUDA kernels on the host and with Numba's
    import video_clip
    from nst.video import flow as video_flow
    from nst.video.task import flows_task
    frames = video_clip.frames(3)
    earlier = [rng.integers(0, 256, frames[0].shape, dtype=np.uint8) for _ in range(2)]
    got = {}
    for backend in ("numba", "cuda-cpu"):
        pairs = [flows_task(frames[2], frames[k], backend)[:2] for k in (1, 0)]
        got[backend] = (pairs, video_flow.temporal_targets(earlier, pairs, backend),
                        video_flow.start_image(earlier[0], pairs[0], frames[2], backend))
    (pairs, targets, start), (pairs_c, targets_c, start_c) = got["numba"], got["cuda-cpu"]
    for (back, c), (back_c, c_c) in zip(pairs, pairs_c):
        assert np.array_equal(back, back_c) and np.array_equal(c, c_c) and 0 < c.mean() < 1
    for (omega, m), (omega_c, m_c) in zip(targets, targets_c):
        assert np.array_equal(m, m_c)
        assert_close(omega_c, omega, what="ω on cuda-cpu")
    assert_close(start_c, start, what="the warped start on cuda-cpu")


@on_cuda_cpu
def test_a_cuda_cpu_frame_warps_and_masks_with_the_cuda_kernels(tiny_weights, monkeypatch):
    # frame_task and flows_task with --backend cuda-cpu call the CUDA versions (counted)
    import video_clip
    from nst.kernels.cuda import flow_mask as cuda_mask
    from nst.kernels.cuda import flow_warp as cuda_warp
    from nst.run.settings import Settings
    from nst.video.task import flows_task, frame_task
    calls = []
    for module, op in ((cuda_warp, "warp"), (cuda_mask, "reliability_mask")):
        real = module.VERSIONS[op]["v1"]
        monkeypatch.setitem(module.VERSIONS[op], "v1", lambda *a, real=real, op=op: calls.append(op) or real(*a))
    frames = video_clip.frames(2, h=20, w=24)
    settings = Settings(size=24, scales=1, iterations=1, backend="cuda-cpu", weights=tiny_weights)
    flows = [flows_task(frames[1], frames[0], settings.backend)]
    video = {"temporal_weight": 1.0, "later_iterations": 1, "long_term": False}
    r = frame_task(frames[1], [frames[0]], settings, video, [frames[0]], flows)
    assert r["status"] == "done", r
    assert calls == ["reliability_mask", "warp", "warp"]             # the mask; the target, the start
