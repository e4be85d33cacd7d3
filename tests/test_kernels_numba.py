"""Every version of every Numba CPU kernel (kernels/*.py) against the NumPy reference (nst/ops.py,
nst/losses.py), one test body per op, parametrized over versions × shapes, with conftest.assert_close.

The conv references run in float64 on the same float32 inputs, so the tolerance measures the
kernel's own float32 error only.
"""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba  # noqa: F401  (a core dependency: a missing numba fails here, it is not skipped)
import numpy as np
import pytest

from conftest import assert_close
from nst.ops import adam_step as adam_step_reference
from nst.kernels import (adam_step, content_loss, conv3x3_backward_input, conv3x3_forward,
                         cpu_threads, gram_style_loss, maxpool2x2, tv_loss)
from nst import losses, ops

# (I, O, H, W): odd sizes, 1×1 and 1×W / H×1 images, few and many channels; the last one is big
# enough (≥ cpu_threads.MIN_SPLIT outputs per sgemm) to take the threaded sgemm path.
CONV_SHAPES = [(3, 5, 7, 9), (5, 17, 13, 11), (17, 3, 32, 30), (64, 64, 12, 10), (128, 64, 9, 8),
               (5, 4, 1, 1), (4, 6, 1, 9), (6, 3, 11, 1), (16, 24, 40, 44)]
POOL_SHAPES = [(3, 7, 9), (5, 13, 11), (17, 32, 30), (64, 16, 16), (4, 1, 1), (4, 2, 9), (4, 9, 1)]
# the last two: C·hw ≥ MIN_SPLIT, the threaded Gram (partial syrks) and grad sgemm paths
CHANNEL_SHAPES = [(3, 7, 9), (5, 13, 11), (17, 32, 30), (64, 16, 12), (128, 9, 8), (4, 1, 1),
                  (64, 32, 40), (32, 1, 2500)]


@pytest.fixture(autouse=True)
def two_sgemm_threads(monkeypatch):
    # the threaded matmul / gram paths of cpu_threads run even on a one-thread machine
    if cpu_threads._pool is None:
        monkeypatch.setattr(cpu_threads, "THREADS", 2)
        monkeypatch.setattr(cpu_threads, "_pool", ThreadPoolExecutor(2))


def f32(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def conv_tolerance(name):
    # Winograd F(4×4,3×3) transforms hold entries up to 8 and 1/24, so float32 rounding in the
    # transformed domain grows ~10–30× (measured worst ≈ 5e-6 of max|ref| at 128 channels, 1e-5
    # at 512): atol_scale 1e-4 for v5. F(2×2) and the direct forms meet the default rule.
    return dict(atol_scale=1e-4) if name.endswith("_v5") else {}


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(conv3x3_forward.KERNELS))
def test_conv3x3_relu(name, shape, rng):
    i, o, h, w = shape
    x, wt, b = f32(rng, i, h, w), f32(rng, o, i, 3, 3, scale=0.2), f32(rng, o)
    ref = ops.conv3x3_relu(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64))
    got = conv3x3_forward.KERNELS[name](x, wt, b)
    assert got.dtype == np.float32
    assert_close(got, ref, what=name, **conv_tolerance(name))
    # the prepared-weights path (what the backend passes): only the forms the kernel reads
    cw = conv3x3_forward.ConvWeights(wt, keep=conv3x3_forward.KERNELS[name].reads)
    assert_close(conv3x3_forward.KERNELS[name](x, cw, b), ref, what=name + " (prepared)",
                 **conv_tolerance(name))


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(conv3x3_backward_input.KERNELS))
def test_conv3x3_relu_backward_input(name, shape, rng):
    i, o, h, w = shape
    wt, da = f32(rng, o, i, 3, 3, scale=0.2), f32(rng, o, h, w)
    a = np.maximum(f32(rng, o, h, w), 0)                  # a ReLU output: about half zeros
    ref = ops.conv3x3_relu_backward_input(da.astype(np.float64), a.astype(np.float64),
                                          wt.astype(np.float64))
    got = conv3x3_backward_input.KERNELS[name](da, a, wt)
    assert got.dtype == np.float32
    assert_close(got, ref, what=name, **conv_tolerance(name))
    cw = conv3x3_forward.ConvWeights(wt, keep=conv3x3_backward_input.KERNELS[name].reads)
    assert_close(conv3x3_backward_input.KERNELS[name](da, a, cw), ref, what=name + " (prepared)",
                 **conv_tolerance(name))


@pytest.mark.parametrize("version", sorted(conv3x3_forward.CORES))
def test_conv_row_blocks(version, rng, monkeypatch):
    # a tiny block budget: every version runs its row / tile-row blocking over many blocks
    monkeypatch.setattr(conv3x3_forward, "_BLOCK_BYTES", 4096)
    i, o, h, w = 6, 5, 23, 17
    x, wt, b = f32(rng, i, h, w), f32(rng, o, i, 3, 3, scale=0.2), f32(rng, o)
    da, a = f32(rng, o, h, w), np.maximum(f32(rng, o, h, w), 0)
    d64 = lambda t: t.astype(np.float64)                          # noqa: E731
    fwd = conv3x3_forward.KERNELS[f"conv3x3_relu_{version}"]
    bwd = conv3x3_backward_input.KERNELS[f"conv3x3_relu_backward_input_{version}"]
    assert_close(fwd(x, wt, b), ops.conv3x3_relu(d64(x), d64(wt), d64(b)), what=version,
                 **conv_tolerance(version))
    assert_close(bwd(da, a, wt), ops.conv3x3_relu_backward_input(d64(da), d64(a), d64(wt)),
                 what=version + " backward", **conv_tolerance(version))


def test_importing_the_kernels_leaves_the_environment_alone():
    # cpu_threads starts Numba's pool with OMP_WAIT_POLICY=PASSIVE and restores os.environ after
    code = ("import os, nst.kernels.conv3x3_forward as k; from numba import config; "
            "print(os.environ.get('OMP_WAIT_POLICY'), config.NUMBA_NUM_THREADS)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.split()[0] == "None", out.stdout


def test_threaded_sgemm_paths(rng):
    # cpu_threads.matmul splits ≥ MIN_SPLIT outputs over threads: by batch, or by columns
    a2, b2 = f32(rng, 70, 33), f32(rng, 33, 1001)                 # 70 070 outputs, column blocks
    a3, b3 = f32(rng, 5, 40, 17), f32(rng, 5, 17, 401)            # 80 200 outputs, batch split
    a1, b1 = f32(rng, 1, 40, 17), f32(rng, 1, 17, 2001)           # batch of 1: column blocks
    for a, b in ((a2, b2), (a3, b3), (a1, b1), (a3[:, :, :3], b3[:, :3, :])):
        out = np.empty(a.shape[:-1] + b.shape[-1:], np.float32)
        assert_close(cpu_threads.matmul(a, b, out), a.astype(np.float64) @ b, what=f"matmul {a.shape}")
    f = f32(rng, 30, 3001)                                        # 90 030 ≥ MIN_SPLIT: partial syrks
    assert_close(cpu_threads.gram(f), f.astype(np.float64) @ f.T.astype(np.float64), what="gram")


def test_winograd_formulas_are_the_matrices():
    # the F(4×4) transforms' written-out formulas (_bt6, _at6) are Bᵀ and Aᵀ of Lavin & Gray
    eye = np.eye(6)
    bt = np.array([conv3x3_forward._bt6.py_func(*col) for col in eye]).T    # column j = Bᵀ e_j
    at = np.array([conv3x3_forward._at6.py_func(*col) for col in eye]).T
    np.testing.assert_array_equal(bt, conv3x3_forward._BT4)
    np.testing.assert_array_equal(at, conv3x3_forward._AT4)


def test_prepared_weights_hold_only_what_the_kernels_read(rng):
    wt = f32(rng, 8, 5, 3, 3)
    cw = conv3x3_forward.ConvWeights(wt, keep=("wino4",))
    assert cw.nbytes == 36 * 8 * 5 * 4                            # U only: w was dropped
    with pytest.raises(ValueError, match="not 'mat'"):
        cw.get("mat")


@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool2x2(kind, shape, rng):
    x = f32(rng, *shape)
    if shape[2] > 1:
        x[:, 0, 0] = x[:, 0, 1]                           # a tie: the first maximum must win
    dy = f32(rng, shape[0], shape[1] // 2, shape[2] // 2)
    fwd = getattr(ops, f"{kind}pool2x2")
    bwd = getattr(ops, f"{kind}pool2x2_backward")
    for name, fn in maxpool2x2.KERNELS.items():
        if name.startswith(kind):
            ref = bwd(dy, x) if "backward" in name else fwd(x)
            got = fn(dy, x) if "backward" in name else fn(x)
            assert_close(got, ref, what=name)


@pytest.mark.parametrize("shape", CHANNEL_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(gram_style_loss.KERNELS))
def test_gram_style_loss(name, shape, rng):
    a = np.maximum(f32(rng, *shape), 0)
    s = np.maximum(f32(rng, shape[0], 5, 7), 0)            # the style image has its own size
    target = losses.gram(s.astype(np.float64))
    if name.startswith("gram"):
        assert_close(gram_style_loss.KERNELS[name](a), losses.gram(a.astype(np.float64)), what=name)
        return
    j_ref, g_ref = losses.style_loss_and_grad(a.astype(np.float64), target)
    j, g = gram_style_loss.KERNELS[name](a, target.astype(np.float32))
    assert g.dtype == np.float32
    assert_close(j, j_ref, what=name + " J")
    assert_close(g, g_ref, what=name + " grad")


@pytest.mark.parametrize("shape", CHANNEL_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(content_loss.KERNELS))
def test_content_loss(name, shape, rng):
    a, t = f32(rng, *shape), f32(rng, *shape)
    j_ref, g_ref = losses.content_loss_and_grad(a.astype(np.float64), t.astype(np.float64))
    j, g = content_loss.KERNELS[name](a, t)
    assert_close(j, j_ref, what=name + " J")
    assert_close(g, g_ref, what=name + " grad")


@pytest.mark.parametrize("hw", [(7, 9), (13, 11), (32, 30), (1, 5)], ids=str)
@pytest.mark.parametrize("name", sorted(tv_loss.KERNELS))
def test_tv_loss(name, hw, rng):
    x = (255 * rng.random((*hw, 3))).astype(np.float32)
    j_ref, g_ref = losses.tv_loss_and_grad(x.astype(np.float64))
    j, g = tv_loss.KERNELS[name](x)
    assert_close(j, j_ref, what=name + " J")
    assert_close(g, g_ref, what=name + " grad")


@pytest.mark.parametrize("clip", [None, (0.0, 255.0)])
@pytest.mark.parametrize("name", sorted(adam_step.KERNELS))
def test_adam_step(name, clip, rng):
    n = 1001
    x = (255 * rng.random(n)).astype(np.float32)
    m, v = f32(rng, n), np.abs(f32(rng, n))
    kw = dict(lo=clip[0], hi=clip[1]) if clip else {}
    want = [arr.astype(np.float64) for arr in (x, m, v)]
    for t in (1, 2, 7):
        g = f32(rng, n, scale=10.0)
        lo, hi = clip or (-np.inf, np.inf)
        adam_step_reference(want[0], g.astype(np.float64), want[1], want[2], t, 2.0, 0.9, 0.999, 1e-8, lo, hi)
        adam_step.KERNELS[name](x, g, m, v, t, 2.0, **kw)
    for got, ref, what in zip((x, m, v), want, "xmv"):
        assert_close(got, ref, what=f"{name} {what}")


def test_backend_table_names_every_kernel():
    # every CHOSEN entry resolves to a kernel; every Backend kernel field is filled from it
    from nst.backends import Backend, numba_backend
    for op, entry in numba_backend.CHOSEN.items():
        for name in (entry.values() if isinstance(entry, dict) else [entry]):
            assert callable(numba_backend.kernel(name)), name
    fields = set(Backend.__dataclass_fields__) - {"name", "xp", "prepare_weights"}
    assert set(numba_backend.CHOSEN) == fields


def test_backend_matches_numpy_on_a_vgg_like_chain(rng):
    # conv-conv-pool-conv, losses on the way, then the backward through the whole chain
    from nst.backends import get_backend
    ref_be, be = get_backend("numpy"), get_backend("numba")
    shapes = [(3, 8), (8, 16), (16, 32)]
    params = [(f32(rng, o, i, 3, 3, scale=0.3), f32(rng, o, scale=0.1)) for i, o in shapes]
    x = f32(rng, 3, 22, 18, scale=50.0)
    s = f32(rng, 3, 14, 16, scale=50.0)
    out = {}
    for tag, bk in (("ref", ref_be), ("numba", be)):
        pw = [bk.prepare_weights(w, b) for w, b in params]

        def net(img):
            a1 = bk.conv3x3_relu(img, *pw[0])
            a2 = bk.conv3x3_relu(a1, *pw[1])
            p = bk.maxpool2x2(a2)
            a3 = bk.conv3x3_relu(p, *pw[2])
            return a1, a2, p, a3

        a1, a2, p, a3 = net(x)
        t3 = net(s)[3]
        jc, g3 = bk.content_loss_and_grad(a3, np.ascontiguousarray(a3[:, ::-1]))
        js, g3s = bk.style_loss_and_grad(a3, bk.gram(t3))
        js1, g1 = bk.style_loss_and_grad(a1, bk.gram(net(s)[0]))
        dp = bk.conv3x3_relu_backward_input(g3 + g3s, a3, pw[2][0])
        da2 = bk.maxpool2x2_backward(dp, a2)
        da1 = bk.conv3x3_relu_backward_input(da2, a2, pw[1][0]) + g1
        dx = bk.conv3x3_relu_backward_input(da1, a1, pw[0][0])
        jtv, gtv = bk.tv_loss_and_grad(np.ascontiguousarray(x.transpose(1, 2, 0)))
        out[tag] = dict(a3=a3, jc=jc, js=js, js1=js1, dx=dx, jtv=jtv, gtv=gtv,
                        avg=bk.avgpool2x2_backward(bk.avgpool2x2(a2), a2))
    for key in out["ref"]:
        # float32 chains of 4 layers with different summation orders (sgemm blocking, Winograd):
        # rtol 1e-3 on the end-to-end results.
        assert_close(out["numba"][key], out["ref"][key], rtol=1e-3, atol_scale=1e-4, what=key)


def test_freed_arrays_keep_their_pages():
    # kernels/cpu_memory: a 64 MiB array freed and allocated again lands on pages already mapped
    # (glibc's default maps it afresh: 544 page faults measured here)
    import resource
    from nst.kernels.cpu_memory import keep_freed_pages
    if not keep_freed_pages():
        pytest.skip("no glibc mallopt here")
    a = np.ones(16 << 20, np.float32)
    del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b = np.ones(16 << 20, np.float32)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 8 and b[-1] == 1.0, f"{faults} page faults re-allocating a freed 64 MiB array"
