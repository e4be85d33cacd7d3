"""Every version of every kernel against the NumPy reference, one test body per op (the way
tinygrad's test_ops.py runs one body over every backend). Each body runs over family × version ×
shape, the family one of
    numba     kernels/*.py, the Numba CPU kernels (nst.kernels.NUMBA)
    cuda-cpu  kernels/cuda's launchers on numpy arrays: the .cu compiled by g++ and run on the CPU
    gpu       the same launchers on cupy arrays (marked gpu; skipped with the reason without a GPU)
Results are float32 against the float64 reference computed from the same float32 inputs, by the
one rule of nst.tolerance (conftest.assert_close), looser only where the kernel module names a
rule for a version (Registry.tolerance). Shapes: odd sizes, 1×1, 1×W and H×1 images, few and many
channels, the Numba kernels' threaded paths, the CUDA kernels' partial tiles and split-K.

The video ops (nst.kernels.VIDEO_OPS: the warp and the reliability mask) have their bodies, over
the same families, in tests/test_video_kernels.py.

Then every backend by name (numpy, numba, cuda-cpu, cupy) on each op, known values, the whole
objective and a short run; then what is particular to each family (threads, Winograd transforms,
NaN propagation, launcher argument checks, tile and split-K paths).
"""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_close, random_image
from nst import losses, ops
from nst.backends import NAMES, BackendUnavailable, cupy_backend, get_backend, numba_backend
from nst.backends.backend import CONV_OPS, OPS, chosen_version
from nst.kernels import NUMBA, VIDEO_OPS, conv3x3_forward, cpu_threads
from nst.kernels import cuda as kc
from nst.kernels.cuda import CUDA
from nst.kernels.cuda import _common as K
from nst.testing import backend_rows
from nst.tolerance import rule


def _gpu_reason():
    # None when a GPU can run kernels, else the one-line reason to skip
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
        cupy.zeros(1, dtype=cupy.float32).sum().get()
        return None
    except Exception as e:  # noqa: BLE001 - ImportError, driver errors, anything: no GPU here
        first = (str(e).splitlines() or [""])[0][:120]
        return f"no usable GPU for cupy ({type(e).__name__}: {first})"


def _host_reason():
    # None when the cuda-cpu path can build (a C++ compiler), else the reason to skip
    from nst.kernels.cuda.host import build
    try:
        build.compiler()
        return None
    except build.HostCompilerMissing as e:
        return str(e)


GPU_REASON, HOST_REASON = _gpu_reason(), _host_reason()


class Family:
    """Where a kernel test runs: its registry, put(a) moves a numpy input there, get(a) brings a
    result back, weights(kernel, w) is a conv layer's weights as its backend passes them."""

    def __init__(self, name, registry, reason, marks=()):
        self.name, self.registry, self.reason = name, registry, reason
        self.marks = [*marks, pytest.mark.skipif(reason is not None, reason=reason or "")]

    def __repr__(self):
        return self.name

    def put(self, a):
        if self.name == "gpu":
            import cupy
            return cupy.asarray(a)
        return np.array(a, copy=True)

    def get(self, a):
        if self.name == "gpu":
            import cupy
            return cupy.asnumpy(a)
        return np.asarray(a)

    def weights(self, kernel, w):
        # the Numba backend prepares each layer's weight forms once (only those its kernels read)
        if self.registry is NUMBA:
            return conv3x3_forward.ConvWeights(w, keep=kernel.reads)
        return self.put(w)

    def tolerance(self, op, version):
        return rule(self.registry.tolerance(op, version))


NUMBA_CPU = Family("numba", NUMBA, None)
CUDA_CPU = Family("cuda-cpu", CUDA, HOST_REASON)
GPU = Family("gpu", CUDA, GPU_REASON, marks=[pytest.mark.gpu])
FAMILIES = (NUMBA_CPU, CUDA_CPU, GPU)
CUDA_FAMILIES = (CUDA_CPU, GPU)


class Only(tuple):
    """A shape that runs only on some families (the reason is written where it is listed)."""

    def __new__(cls, shape, *families):
        self = super().__new__(cls, shape)
        self.families = families
        return self


def cases(ops_, shapes, families=FAMILIES):
    # pytest params (op, family, version, shape): every op × family × its versions × shape
    params = []
    for op in ops_:
        for fam in families:
            for version in fam.registry.versions(op):
                for shape in shapes:
                    if isinstance(shape, Only) and fam not in shape.families:
                        continue
                    sid = "x".join(map(str, shape))
                    params.append(pytest.param(op, fam, version, tuple(shape), marks=fam.marks,
                                               id=f"{op}-{fam.name}-{version}-{sid}"))
    return params


SIGNATURE = "op,fam,version,shape"


@pytest.fixture(scope="module", autouse=True)
def _built():
    # the cuda-cpu libraries of every .cu, compiled in parallel once (then cached on disk)
    if HOST_REASON is None:
        from nst.kernels.cuda.host import build
        build.prebuild([kc.launcher(m).CU for m in kc.MODULES])


@pytest.fixture(autouse=True)
def two_sgemm_threads(monkeypatch):
    # the threaded matmul / gram paths of cpu_threads run even on a one-thread machine
    if cpu_threads._pool is None:
        monkeypatch.setattr(cpu_threads, "THREADS", 2)
        monkeypatch.setattr(cpu_threads, "_pool", ThreadPoolExecutor(2))


def f32(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def d64(a):
    return np.asarray(a, np.float64)


# ---------------------------------------------------------------------------------------------
# One body per op: every family × version × shape against the reference
# ---------------------------------------------------------------------------------------------
# (I, O, H, W): odd sizes, 1×1, 1×W and H×1 images on every family; then each family's own paths.
# Numba: many channels, and ≥ cpu_threads.MIN_SPLIT outputs per sgemm (the threaded path).
# CUDA: full and partial 64-wide tiles in O and in H·W, a lone partial tile (test_paths_taken).
CONV_SHAPES = [(3, 5, 7, 9), (5, 4, 1, 1), (4, 6, 1, 9), (6, 3, 11, 1), (5, 17, 13, 11), (17, 3, 32, 30),
               Only((64, 64, 12, 10), NUMBA_CPU), Only((128, 64, 9, 8), NUMBA_CPU),
               Only((16, 24, 40, 44), NUMBA_CPU), Only((4, 70, 13, 11), *CUDA_FAMILIES),
               Only((67, 3, 5, 66), *CUDA_FAMILIES), Only((65, 129, 17, 9), *CUDA_FAMILIES)]


@pytest.mark.parametrize(SIGNATURE, cases(["conv3x3_relu"], CONV_SHAPES))
def test_conv3x3_relu(op, fam, version, shape, rng):
    i, o, h, w = shape
    x, wt, b = f32(rng, i, h, w), f32(rng, o, i, 3, 3, scale=(9 * i) ** -0.5), f32(rng, o, scale=0.1)
    kernel = fam.registry.get(op, version)
    got = fam.get(kernel(fam.put(x), fam.weights(kernel, wt), fam.put(b)))
    assert got.dtype == np.float32
    assert_close(got, ops.conv3x3_relu(d64(x), d64(wt), d64(b)), what=f"{op}.{version}{shape}",
                 **fam.tolerance(op, version))


@pytest.mark.parametrize(SIGNATURE, cases(["conv3x3_relu_backward_input"], CONV_SHAPES))
def test_conv3x3_relu_backward_input(op, fam, version, shape, rng):
    i, o, h, w = shape
    da, a = f32(rng, o, h, w), np.maximum(f32(rng, o, h, w), 0)       # a: a ReLU output, ~half 0
    wt = f32(rng, o, i, 3, 3, scale=(9 * o) ** -0.5)
    kernel = fam.registry.get(op, version)
    got = fam.get(kernel(fam.put(da), fam.put(a), fam.weights(kernel, wt)))
    assert got.dtype == np.float32
    assert_close(got, ops.conv3x3_relu_backward_input(d64(da), d64(a), d64(wt)),
                 what=f"{op}.{version}{shape}", **fam.tolerance(op, version))


# (C, H, W): odd sizes drop the last row / column; the CUDA launchers refuse pools under 2×2
# (KernelArgError, test_launchers_reject_bad_arrays), so those shapes are the Numba kernels' only
POOL_SHAPES = [(3, 7, 9), (5, 13, 11), (2, 8, 6), (1, 2, 3), (4, 2, 9), (5, 33, 17), (17, 32, 30),
               (64, 16, 16), Only((4, 1, 1), NUMBA_CPU), Only((4, 9, 1), NUMBA_CPU)]


@pytest.mark.parametrize(SIGNATURE, cases(["maxpool2x2", "avgpool2x2"], POOL_SHAPES))
def test_pool2x2(op, fam, version, shape, rng):
    x = rng.integers(0, 3, size=shape).astype(np.float32)                 # many ties: first max wins
    got = fam.get(fam.registry.get(op, version)(fam.put(x)))
    assert_close(got, getattr(ops, op)(d64(x)), what=f"{op}.{version}{shape}")


@pytest.mark.parametrize(SIGNATURE, cases(["maxpool2x2_backward", "avgpool2x2_backward"], POOL_SHAPES))
def test_pool2x2_backward(op, fam, version, shape, rng):
    x = rng.integers(0, 3, size=shape).astype(np.float32)                 # many ties: first max wins
    dy = f32(rng, shape[0], shape[1] // 2, shape[2] // 2) + 3.0          # never zero
    got = fam.get(fam.registry.get(op, version)(fam.put(dy), fam.put(x)))
    assert_close(got, getattr(ops, op)(d64(dy), d64(x)), what=f"{op}.{version}{shape}")


# (C, H, W). (70, …), (130, …), (64, 100, 103): partial tiles and split-K of the CUDA Gram
# (test_paths_taken). The Numba kernels' own: many channels, and C·hw ≥ MIN_SPLIT, their threaded
# Gram and grad (the CUDA kernels have no such path, and a C² thread grid is slow to emulate)
GRAM_SHAPES = [(3, 7, 9), (5, 13, 11), (4, 1, 1), (17, 32, 30), (70, 9, 11), (130, 33, 17),
               (64, 100, 103), Only((64, 16, 12), NUMBA_CPU), Only((128, 9, 8), NUMBA_CPU),
               Only((64, 32, 40), NUMBA_CPU), Only((32, 1, 2500), NUMBA_CPU)]


@pytest.mark.parametrize(SIGNATURE, cases(["gram"], GRAM_SHAPES))
def test_gram(op, fam, version, shape, rng):
    a = np.abs(f32(rng, *shape))
    got = fam.get(fam.registry.get(op, version)(fam.put(a)))
    assert_close(got, losses.gram(d64(a)), what=f"{op}.{version}{shape}")


@pytest.mark.parametrize(SIGNATURE, cases(["style_loss_and_grad"], GRAM_SHAPES))
def test_style_loss_and_grad(op, fam, version, shape, rng):
    a = np.abs(f32(rng, *shape))
    target = losses.gram(np.abs(f32(rng, shape[0], 6, 5, scale=1.5))).astype(np.float32)  # another size
    j_ref, g_ref = losses.style_loss_and_grad(d64(a), d64(target))
    j, g = fam.registry.get(op, version)(fam.put(a), fam.put(target))
    assert j.shape == () and g.shape == a.shape and fam.get(g).dtype == np.float32
    assert_close(fam.get(j), j_ref, what=f"{op}.{version}{shape} J")
    assert_close(fam.get(g), g_ref, what=f"{op}.{version}{shape} grad")


CONTENT_SHAPES = [(5, 7, 9), (3, 13, 11), (4, 1, 1), (17, 32, 30), (64, 33, 31)]


@pytest.mark.parametrize(SIGNATURE, cases(["content_loss_and_grad"], CONTENT_SHAPES))
def test_content_loss_and_grad(op, fam, version, shape, rng):
    a, t = f32(rng, *shape), f32(rng, *shape)
    j_ref, g_ref = losses.content_loss_and_grad(d64(a), d64(t))
    j, g = fam.registry.get(op, version)(fam.put(a), fam.put(t))
    assert j.shape == ()
    assert_close(fam.get(j), j_ref, what=f"{op}.{version}{shape} J")
    assert_close(fam.get(g), g_ref, what=f"{op}.{version}{shape} grad")


TV_SHAPES = [(7, 9, 3), (13, 11, 3), (1, 5, 3), (6, 1, 3), (32, 30, 3), (33, 65, 3)]


@pytest.mark.parametrize(SIGNATURE, cases(["tv_loss_and_grad"], TV_SHAPES))
def test_tv_loss_and_grad(op, fam, version, shape, rng):
    x = rng.uniform(0, 255, size=shape).astype(np.float32)
    j_ref, g_ref = losses.tv_loss_and_grad(d64(x))
    j, g = fam.registry.get(op, version)(fam.put(x))
    assert j.shape == ()
    assert_close(fam.get(j), j_ref, what=f"{op}.{version}{shape} J")
    assert_close(fam.get(g), g_ref, what=f"{op}.{version}{shape} grad")


@pytest.mark.parametrize(SIGNATURE, cases(["temporal_loss_and_grad"], [s[:2] for s in TV_SHAPES]))
def test_temporal_loss_and_grad(op, fam, version, shape, rng):
    # x, ω H×W×3 and a mask c H×W with zeros and fractions (video: J_t = Σ c·(x − ω)² / D)
    x, t = (rng.uniform(0, 255, size=(*shape, 3)).astype(np.float32) for _ in range(2))
    c = (rng.random(shape) * (rng.random(shape) > 0.3)).astype(np.float32)
    j_ref, g_ref = losses.temporal_loss_and_grad(d64(x), d64(t), d64(c))
    j, g = fam.registry.get(op, version)(fam.put(x), fam.put(t), fam.put(c))
    assert j.shape == ()
    assert_close(fam.get(j), j_ref, what=f"{op}.{version}{shape} J")
    assert_close(fam.get(g), g_ref, what=f"{op}.{version}{shape} grad")


@pytest.mark.parametrize("eps", [1e-8, 3.0], ids=["eps1e-8", "eps3"])
@pytest.mark.parametrize("lo,hi", [(-np.inf, np.inf), (0.0, 255.0)], ids=["noclip", "clip"])
@pytest.mark.parametrize(SIGNATURE, cases(["adam_step"], [(1001,)]))
def test_adam_step(op, fam, version, shape, rng, lo, hi, eps):
    # three steps in place, nst.ops.adam_step's arguments in its order (t counts from 1); ε = 3, of
    # √v̂'s size, shows where ε goes (outside the square root), which 1e-8 cannot
    x = rng.uniform(-5, 260, size=shape).astype(np.float32)
    m, v = f32(rng, *shape), np.abs(f32(rng, *shape))
    want = [d64(a).copy() for a in (x, m, v)]
    xd, md, vd = fam.put(x), fam.put(m), fam.put(v)
    for t in (1, 2, 7):
        g = f32(rng, *shape, scale=10.0)
        ops.adam_step(*want[:1], d64(g), *want[1:], t, 2.0, 0.9, 0.999, eps, lo, hi)
        fam.registry.get(op, version)(xd, fam.put(g), md, vd, t, 2.0, 0.9, 0.999, eps, lo, hi)
    for name, got, ref in zip("xmv", (xd, md, vd), want):
        assert_close(fam.get(got), ref, what=f"{op}.{version} {name}")


# ---------------------------------------------------------------------------------------------
# Every backend by name: each op, known values, the whole objective, a short run
# ---------------------------------------------------------------------------------------------
BACKENDS = [pytest.param(n, marks=[pytest.mark.gpu] if n == "cupy" else []) for n in NAMES]


def backend_or_skip(name):
    try:
        return get_backend(name)
    except BackendUnavailable as e:
        pytest.skip(f"{name}: {e}")


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_against_the_reference(name):
    # each op of the Backend table and the whole objective (tiny VGG19) on this backend against the
    # float64 reference: the rows `nst gradcheck --backend NAME` prints
    backend_or_skip(name)
    rows = backend_rows(name)
    bad = [r for r in rows if r.status != "PASS"]
    assert not bad, bad
    fields = set(OPS)
    assert {r.op.split()[0] for r in rows} >= fields | {"objective"}


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_known_values(name):
    # values worked out by hand, none of them 0: a kernel that returns zeros (or its input) fails
    be = backend_or_skip(name)
    dev, host = be.to_device, lambda a: np.asarray(be.to_host(a), np.float64)
    c, h, w = 5, 4, 6
    a = np.full((c, h, w), 2.0, np.float32)
    # Ĝ(a) = F Fᵀ/hw = 4; J_s against Ĝ(S) = 1 is Σ 3²/C² = 9, ∂J_s/∂a = 4·(3·C·2)/(C²·hw)
    assert_close(host(be.gram(dev(a))), np.full((c, c), 4.0), what="gram of 2s")
    j, g = be.style_loss_and_grad(dev(a), dev(np.ones((c, c), np.float32)))
    assert_close(host(j), 9.0, what="style J")
    assert_close(host(g), np.full(a.shape, 24.0 / (c * h * w)), what="style grad")
    # J_c of a against 0: ½·Σ 2² = 2·C·h·w, gradient a − 0 = 2
    j, g = be.content_loss_and_grad(dev(a), dev(np.zeros_like(a)))
    assert_close(host(j), 2.0 * a.size, what="content J")
    assert_close(host(g), a, what="content grad")
    # a ramp down the rows x[i, j] = i: J_tv = (h−1)·w·3; ∂J/∂x = −2 on the top row, +2 on the bottom
    x = np.repeat(np.arange(h, dtype=np.float32)[:, None, None], w * 3, axis=1).reshape(h, w, 3)
    j, g = be.tv_loss_and_grad(dev(x))
    assert_close(host(j), (h - 1) * w * 3.0, what="tv J")
    want = np.zeros((h, w, 3))
    want[0], want[-1] = -2.0, 2.0
    assert_close(host(g), want, what="tv grad")
    # and across the columns x[i, j] = j: J_tv = h·(w−1)·3; ∂J/∂x = −2 on the left column, +2 on the right
    x = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :, None], (h, w, 3)).copy()
    j, g = be.tv_loss_and_grad(dev(x))
    assert_close(host(j), h * (w - 1) * 3.0, what="tv J across")
    want = np.zeros((h, w, 3))
    want[:, 0], want[:, -1] = -2.0, 2.0
    assert_close(host(g), want, what="tv grad across")
    # conv of ones, weights ones, bias ½ over 2 channels: 2·9 + ½ inside, 2·4 + ½ at a corner
    layer = be.prepare_weights(dev(np.ones((3, 2, 3, 3), np.float32)), dev(np.full(3, 0.5, np.float32)))
    y = host(be.conv3x3_relu(dev(np.ones((2, h, w), np.float32)), *layer))
    assert y[0, 1, 1] == pytest.approx(18.5) and y[2, 0, 0] == pytest.approx(8.5) and y[1, 0, 2] == pytest.approx(12.5)
    # pools of 0..15 in a 4×4: the maxima 5, 7, 13, 15, the means 2.5, 4.5, 10.5, 12.5
    p = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    assert_close(host(be.maxpool2x2(dev(p))), [[[5, 7], [13, 15]]], what="maxpool")
    assert_close(host(be.avgpool2x2(dev(p))), [[[2.5, 4.5], [10.5, 12.5]]], what="avgpool")


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_short_run(name, optimizer, tiny_weights_h5, rng):
    # nst.stylize end to end on this backend: two scales (24 → 32 px), three iterations each
    import nst
    backend_or_skip(name)
    content, style = random_image(rng, 24, 32), random_image(rng, 20, 22)
    seen = []
    out = nst.stylize(content, style, size=32, scales=2, start_size=24, iterations=3,
                      optimizer=optimizer, backend=name, weights=str(tiny_weights_h5), progress=False,
                      log=lambda m: None, callback=lambda it, x, terms: seen.append(dict(terms)))
    assert out.shape == (24, 32, 3) and np.isfinite(out).all() and len(seen) == 6
    assert not np.allclose(out, content, atol=0.5), "the run did not move the image"
    if optimizer == "lbfgs":                          # L-BFGS's line search never lets J rise
        total = [t["content"] + 10.0 * t["style"] + 1e-3 * t["tv"] for t in seen]
        assert total[5] < total[3], total


# ---------------------------------------------------------------------------------------------
# The registries and the CHOSEN tables
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("registry", [NUMBA, CUDA], ids=["numba", "cuda"])
def test_registry_lists_each_module_s_ops(registry):
    # each module's VERSIONS holds exactly the ops the registry sends to it, every version callable
    for module in set(registry.modules.values()):
        mod = registry.module(next(op for op, m in registry.modules.items() if m == module))
        assert set(mod.VERSIONS) == {op for op, m in registry.modules.items() if m == module}, module
        for op, versions in mod.VERSIONS.items():
            assert versions and all(callable(f) for f in versions.values()), op
            assert set(getattr(mod, "TOLERANCE", {})) <= set(versions), module
    with pytest.raises(KeyError, match="no version"):
        registry.get("conv3x3_relu", "v9")
    with pytest.raises(KeyError, match="no op"):
        registry.get("conv5x5", "v1")


@pytest.mark.parametrize("chosen,registry", [(numba_backend.CHOSEN, NUMBA), (cupy_backend.CHOSEN, CUDA)],
                         ids=["numba", "cupy"])
def test_chosen_names_a_version_for_every_backend_op(chosen, registry):
    fields = set(OPS)
    assert set(chosen) == fields == set(registry.ops) - set(VIDEO_OPS)       # video's: nst/video/flow.py
    for op, entry in chosen.items():
        for version in (entry.values() if isinstance(entry, dict) else [entry]):
            assert callable(registry.get(op, version)), (op, version)


@pytest.mark.parametrize("in_channels", [3, 64, 128, 256, 512])
def test_cuda_conv_layers_take_the_versions_chosen_for_their_input_channels(in_channels):
    # the cupy (and cuda-cpu) backend's prepare_weights picks each conv layer's two kernels from
    # CHOSEN by the layer's input channels, and the prepared layer computes the reference's conv
    be = backend_or_skip("cuda-cpu")
    rng = np.random.default_rng(in_channels)
    w = rng.standard_normal((4, in_channels, 3, 3)).astype(np.float32)
    layer, b = be.prepare_weights(w, np.zeros(4, np.float32))
    want = [CUDA.get(op, chosen_version(cupy_backend.CHOSEN, op, in_channels)) for op in CONV_OPS]
    assert [layer.forward, layer.backward] == want
    if in_channels >= 256:
        assert layer.forward is CUDA.get("conv3x3_relu", "im2col_cublas")
    x = rng.standard_normal((in_channels, 5, 4)).astype(np.float32)
    assert_close(be.conv3x3_relu(x, layer, b), ops.conv3x3_relu(d64(x), d64(w), d64(b)),
                 what=f"I={in_channels}", rtol=1e-4)


def test_the_im2col_backward_flips_each_weight_array_once(rng, monkeypatch):
    # the im2col_cublas backward turned its weights (a copy of O·I·9 floats) on every call; now once
    # per weight array, forgotten with it: a new array, whose id may be a freed one's, is turned anew
    import gc

    from nst.kernels.cuda import conv3x3_backward_input as bwd
    backend_or_skip("cuda-cpu")
    flip, flips, cached = bwd.flip, [], len(bwd._FLIPPED)
    monkeypatch.setattr(bwd, "flip", lambda xp, w: flips.append(w.shape) or flip(xp, w))
    i, o, h, wd = 5, 4, 6, 7
    da, a = f32(rng, o, h, wd), np.maximum(f32(rng, o, h, wd), 0)
    for k in range(3):
        w = f32(rng, o, i, 3, 3)
        for _ in range(2):
            assert_close(bwd.im2col_cublas(da, a, w), ops.conv3x3_relu_backward_input(d64(da), d64(a), d64(w)),
                         what=f"weights {k}")
        del w
        gc.collect()
    assert flips == [(o, i, 3, 3)] * 3 and len(bwd._FLIPPED) == cached


# ---------------------------------------------------------------------------------------------
# The Numba family: row blocks, threads, Winograd transforms, prepared weights, memory
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", sorted(conv3x3_forward.CORES))
def test_numba_conv_row_blocks(version, rng, monkeypatch):
    # a tiny block budget: every version runs its row / tile-row blocking over many blocks (counted:
    # a budget the kernels no longer read passed as one block; v7: chunks of _L2_BYTES, uncounted)
    monkeypatch.setattr(conv3x3_forward, "_BLOCK_BYTES", 4096)
    monkeypatch.setattr(conv3x3_forward, "_L2_BYTES", 4096)
    blocks, rows_per_block = [], conv3x3_forward._rows_per_block
    monkeypatch.setattr(conv3x3_forward, "_rows_per_block",
                        lambda bytes_per_row, h: blocks.append((rows_per_block(bytes_per_row, h), h)) or blocks[-1][0])
    i, o, h, w = 6, 5, 23, 17
    x, wt, b = f32(rng, i, h, w), f32(rng, o, i, 3, 3, scale=0.2), f32(rng, o)
    da, a = f32(rng, o, h, w), np.maximum(f32(rng, o, h, w), 0)
    tol = NUMBA_CPU.tolerance("conv3x3_relu", version)
    fwd, bwd = NUMBA.get("conv3x3_relu", version), NUMBA.get("conv3x3_relu_backward_input", version)
    assert_close(fwd(x, wt, b), ops.conv3x3_relu(d64(x), d64(wt), d64(b)), what=version, **tol)
    assert_close(bwd(da, a, wt), ops.conv3x3_relu_backward_input(d64(da), d64(a), d64(wt)),
                 what=version + " backward", **tol)
    assert version == "v7" or (blocks and all(rows < h for rows, h in blocks)), blocks


def _pool_inputs(rng, c, h, w):
    # x C×H×W as the pool sees it and worse: ReLU outputs (whole windows of 0), ties among 0..2,
    # ±0 mixed, NaN and ±inf scattered, plain normals
    relu = np.maximum(f32(rng, c, h, w), 0)
    ties = rng.integers(0, 3, size=(c, h, w)).astype(np.float32)
    zeros = np.where(rng.random((c, h, w)) < 0.5, np.float32(-0.0), np.float32(0.0))
    odd = f32(rng, c, h, w)
    some = rng.integers(0, odd.size, size=max(1, odd.size // 7))
    odd.flat[some] = rng.choice(np.float32([np.nan, np.inf, -np.inf]), size=some.size)
    return {"relu": relu, "ties": ties, "signed zeros": zeros, "nan/inf": odd, "normal": f32(rng, c, h, w)}


# widths: under, at and over one 16-wide AVX-512 vector of windows, odd; H and W of 1 and 2; v3's
# packed rows (under 48 windows) and v2's (48, 49 and 100 windows, an odd width)
@pytest.mark.parametrize("version", [v for v in NUMBA.versions("maxpool2x2_backward") if v != "v1"])
@pytest.mark.parametrize("shape", [(3, 7, 9), (2, 5, 33), (4, 6, 32), (3, 9, 67), (5, 1, 8), (4, 9, 1),
                                   (2, 2, 2), (1, 1, 1), (70, 4, 6), (2, 5, 96), (3, 4, 99), (2, 3, 200)],
                         ids=lambda s: "x".join(map(str, s)))
def test_numba_maxpool_backward_versions_are_v1_bit_for_bit(version, shape, rng):
    # each later max-pool backward gives v1's dx exactly, NaN (v1's comparison chain, not the
    # reference's argmax) and the sign of dy's zeros included
    fast, v1 = NUMBA.get("maxpool2x2_backward", version), NUMBA.get("maxpool2x2_backward", "v1")
    c, h, w = shape
    for kind, x in _pool_inputs(rng, c, h, w).items():
        dy = f32(rng, c, h // 2, w // 2)
        dy.flat[::5] = -0.0
        got, want = fast(dy, x), v1(dy, x)
        differ = np.argwhere(got.view(np.uint32) != want.view(np.uint32))[:5].tolist()
        assert not differ, f"{version} {kind} {shape}: bits differ from v1 at {differ}"


@pytest.mark.parametrize("version", list(NUMBA.versions("maxpool2x2_backward")))
def test_numba_maxpool_backward_window_of_zeros_goes_to_its_first_pixel(version, rng):
    # a ReLU output's all-zero window (±0 alike) sends dy to its top-left pixel, as np.argmax does
    x = np.zeros((3, 5, 7), np.float32)
    x[1, ::2] = -0.0
    dy = f32(rng, 3, 2, 3) + 3.0
    want = np.zeros_like(x)
    want[:, 0:4:2, 0:6:2] = dy
    np.testing.assert_array_equal(NUMBA.get("maxpool2x2_backward", version)(dy, x), want)


def test_importing_the_kernels_leaves_the_environment_alone():
    # cpu_threads starts Numba's pool with OMP_WAIT_POLICY=PASSIVE and restores os.environ after
    code = ("import os, nst.kernels.conv3x3_forward as k; from numba import config; "
            "print(os.environ.get('OMP_WAIT_POLICY'), config.NUMBA_NUM_THREADS)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.split()[0] == "None", out.stdout


def test_threaded_sgemm_paths(rng, monkeypatch):
    # cpu_threads.matmul splits ≥ MIN_SPLIT outputs over threads: by batch, or by columns; each
    # call here is split (counted: a split that never happened passed as one sgemm)
    split, on_threads = [], cpu_threads.on_threads
    monkeypatch.setattr(cpu_threads, "on_threads", lambda jobs: split.append(len(jobs)) or on_threads(jobs))
    a2, b2 = f32(rng, 70, 33), f32(rng, 33, 1001)                 # 70 070 outputs, column blocks
    a3, b3 = f32(rng, 5, 40, 17), f32(rng, 5, 17, 401)            # 80 200 outputs, batch split
    a1, b1 = f32(rng, 1, 40, 17), f32(rng, 1, 17, 2001)           # batch of 1: column blocks
    for a, b in ((a2, b2), (a3, b3), (a1, b1), (a3[:, :, :3], b3[:, :3, :])):
        out = np.empty(a.shape[:-1] + b.shape[-1:], np.float32)
        assert_close(cpu_threads.matmul(a, b, out), d64(a) @ b, what=f"matmul {a.shape}")
    f = f32(rng, 30, 3001)                                        # 90 030 ≥ MIN_SPLIT: partial syrks
    assert_close(cpu_threads.gram(f), d64(f) @ d64(f).T, what="gram")
    assert split == [cpu_threads.THREADS] * 5 and cpu_threads.THREADS > 1, split


def test_a_batch_of_gemms_goes_to_whichever_thread_is_free(rng, monkeypatch):
    # cpu_threads.matmul hands a batch's GEMMs out one at a time: a thread held up (its core busy)
    # takes fewer, where an even split would give each thread half
    import threading
    import time
    if cpu_threads._pool is None:
        pytest.skip("one thread here")
    took, matmul = [], np.matmul

    def slow_on_the_first_thread(a, b, out):
        took.append(threading.get_ident())
        if took[-1] == took[0]:                                   # the thread that took the first GEMM
            time.sleep(0.2)
        return matmul(a, b, out=out)
    a, b = f32(rng, 8, 64, 9), f32(rng, 8, 9, 128)                # 8 GEMMs, 65 536 outputs
    out = np.empty((8, 64, 128), np.float32)
    monkeypatch.setattr(cpu_threads.np, "matmul", slow_on_the_first_thread)
    cpu_threads.matmul(a, b, out)
    monkeypatch.undo()
    assert_close(out, d64(a) @ b, what="matmul, handed out")
    assert len(took) == 8 and took.count(took[0]) <= 2, took


@pytest.mark.parametrize("channels", [1, 3, 37, 512])
def test_channel_chunks_on_our_threads_cover_every_channel_once(channels):
    # v8's transforms: each channel in exactly one chunk, whichever thread takes it
    import threading
    seen, lock = [], threading.Lock()

    def kernel(arg, c0, c1):
        assert arg == "the kernel's arguments" and 0 <= c0 < c1 <= channels
        with lock:
            seen.extend(range(c0, c1))
    conv3x3_forward._on_channel_chunks(kernel, channels, "the kernel's arguments")
    assert sorted(seen) == list(range(channels))


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


def test_freed_arrays_keep_their_pages():
    # kernels/cpu_memory: a 64 MiB array freed and allocated again lands on pages already mapped
    # (glibc's default maps it afresh, a page fault per page)
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


HEAPS = """
import ctypes, ctypes.util, sys, tempfile, threading
import numpy as np
libc = ctypes.CDLL(ctypes.util.find_library("c"))
if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_info")):
    sys.exit(3)

def heaps():
    # glibc's arenas now: malloc_info's XML has one <heap> an arena
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("r") as f:
        fp = libc.fopen(f.name.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        return f.read().count("<heap nr=")
"""
THREADS_HOLDING = """
from nst.kernels.cpu_memory import keep_freed_pages
keep_freed_pages()
held, meet = [], threading.Barrier(5)
def hold():
    held.append(np.ones(1 << 18))
    meet.wait()
threads = [threading.Thread(target=hold) for _ in range(4)]
[t.start() for t in threads]
meet.wait()
print(heaps())
"""


def heaps_after(code, *argv):
    # glibc's arena count after `code` ran in a fresh process (HEAPS' heaps() defined; argv its sys.argv[1:])
    out = subprocess.run([sys.executable, "-c", HEAPS + code, *map(str, argv)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    if out.returncode == 3:
        pytest.skip("no glibc mallopt here")
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


def test_threads_allocate_in_one_heap():
    # kernels/cpu_memory: four threads holding arrays at once share glibc's one arena (by default
    # each takes its own, whose freed blocks the others cannot reuse: a higher, varying peak)
    assert heaps_after(THREADS_HOLDING) == 1


def test_a_numba_run_allocates_in_one_heap(tiny_weights_h5, tmp_path, rng):
    # the weights are read on a thread (nst.run.Run.read_weights_ahead), started after one_heap:
    # a thread started before it keeps an arena of its own
    for name in ("c.png", "s.png"):
        Image.fromarray(random_image(rng, 40, 48).astype(np.uint8)).save(tmp_path / name)
    run = ("from nst.cli import main\n"
           "assert main(['transfer', *sys.argv[1:3], '-o', sys.argv[3], '--weights', sys.argv[4],"
           " '--backend', 'numba', '--size', '32', '--scales', '1', '--iterations', '2']) == 0\n"
           "print(heaps())")
    assert heaps_after(run, tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png", tiny_weights_h5) == 1


# ---------------------------------------------------------------------------------------------
# The CUDA family: NaN propagation (the Numba kernels run with fastmath and do not promise it),
# grid-stride and tile paths, the launchers' argument checks, the .cu files
# ---------------------------------------------------------------------------------------------
def assert_same_nonfinite(got, ref, what):
    # NaN and ±inf exactly where the reference has them, the finite rest close
    got, ref = d64(got), d64(ref)
    for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        where = np.argwhere(test(got) != test(ref))[:5].tolist()
        assert not where, f"{what}: {name} differs from the reference's at {where}"
    finite = np.isfinite(ref)
    assert finite.any(), f"{what}: nothing finite left to compare"
    assert_close(got[finite], ref[finite], what=what, **rule("tf32"))


@pytest.mark.parametrize(SIGNATURE, cases(["conv3x3_relu"], [(3, 70, 9, 11)], CUDA_FAMILIES))
def test_conv3x3_relu_nan(op, fam, version, shape, rng):
    # a NaN pixel and a NaN bias stay NaN through the ReLU (np.maximum), as in the reference
    i, o, h, w = shape
    x, wt, b = f32(rng, i, h, w), f32(rng, o, i, 3, 3, scale=(9 * i) ** -0.5), f32(rng, o, scale=0.1)
    x[1, 4, 5], b[66] = np.nan, np.nan
    got = fam.registry.get(op, version)(fam.put(x), fam.put(wt), fam.put(b))
    assert_same_nonfinite(fam.get(got), ops.conv3x3_relu(d64(x), d64(wt), d64(b)), f"{op}.{version} with NaN")


@pytest.mark.parametrize(SIGNATURE, cases(["maxpool2x2", "avgpool2x2"], [(3, 9, 8)], CUDA_FAMILIES))
def test_pool2x2_nan_inf(op, fam, version, shape, rng):
    # NaN wins its window (np.max) and takes the gradient (np.argmax: first NaN); ±inf propagate
    x = f32(rng, *shape)
    x[0, 0, 1], x[1, 2, 2], x[1, 2, 3], x[2, 5, 5], x[2, 7, 0] = np.nan, np.nan, np.inf, -np.inf, np.inf
    y_ref = getattr(ops, op)(x)
    dy = f32(rng, *y_ref.shape) + 3.0
    fwd, bwd = fam.registry.get(op, version), fam.registry.get(op + "_backward", version)
    assert_same_nonfinite(fam.get(fwd(fam.put(x))), y_ref, f"{op} forward with NaN/inf")
    assert_same_nonfinite(fam.get(bwd(fam.put(dy), fam.put(x))), getattr(ops, op + "_backward")(dy, x),
                          f"{op} backward with NaN/inf")


@pytest.mark.parametrize(SIGNATURE, cases(["adam_step"], [(5, 7, 3)], CUDA_FAMILIES))
def test_adam_step_nan(op, fam, version, shape, rng):
    # a NaN gradient leaves x NaN through the clip, as np.clip does; the rest is clipped to 0..255
    x = rng.uniform(-5, 260, size=shape).astype(np.float32)
    m, v, g = f32(rng, *shape), np.abs(f32(rng, *shape)), f32(rng, *shape, scale=100.0)
    g[2, 3, 1], g[0, 0, 0] = np.nan, np.inf
    xd, md, vd = fam.put(x), fam.put(m), fam.put(v)
    fam.registry.get(op, version)(xd, fam.put(g), md, vd, 2, 50.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
    x64, m64, v64 = (d64(a).copy() for a in (x, m, v))
    with np.errstate(invalid="ignore"):
        ops.adam_step(x64, d64(g), m64, v64, 2, 50.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
    for name, got, ref in (("x", xd, x64), ("m", md, m64), ("v", vd, v64)):
        assert_same_nonfinite(fam.get(got), ref, f"adam {name} with NaN/inf")


GRID_STRIDE_SHAPE = (9, 256, 240)            # 552,960 elements: over content_loss's 2048×256 grid


@pytest.mark.parametrize("fam", [pytest.param(f, marks=f.marks, id=f.name) for f in CUDA_FAMILIES])
def test_grid_stride_goes_round(fam, rng):
    a, t = f32(rng, *GRID_STRIDE_SHAPE), f32(rng, *GRID_STRIDE_SHAPE)
    j_ref, g_ref = losses.content_loss_and_grad(d64(a), d64(t))
    j, g = CUDA.get("content_loss_and_grad", "v1_fused")(fam.put(a), fam.put(t))
    # a float32 sum of 553k terms in atomics: rtol 1e-3 on J alone
    assert_close(fam.get(j), j_ref, rtol=1e-3, what="content loss over a capped grid")
    assert_close(fam.get(g), g_ref, what="content grad over a capped grid")


def test_paths_taken():
    # the shapes above reach every code path of the tiled and split-K kernels (counted here):
    # full and partial 64-wide tiles in M and N, single-tile cases, several K steps, a split-K
    # with several splits (non-last blocks return, the last one finishes the tile), diagonal and
    # off-diagonal tile pairs, and a grid-stride loop that goes round more than once
    gsl = kc.launcher("gram_style_loss")

    def tiles(n):
        return n // 64, n % 64                                            # (full tiles, remainder)

    def on_cuda(shapes):
        return [s for s in shapes if CUDA_CPU in getattr(s, "families", FAMILIES)]

    conv = [(tiles(o), tiles(h * w), i * 9) for i, o, h, w in on_cuda(CONV_SHAPES)]
    assert any(full >= 1 and rest for (full, rest), _, _ in conv)         # O: a full + a partial tile
    assert any(full >= 1 and rest for _, (full, rest), _ in conv)         # N: the same
    assert any(full == 0 for (full, _), _, _ in conv)                     # a lone partial tile
    assert any(k > 16 and k % 16 for _, _, k in conv)                     # several K steps, ragged end
    plans = [gsl.split_plan(c, h * w) for c, h, w in on_cuda(GRAM_SHAPES)]
    assert any(splits >= 2 for _, splits, _ in plans)                     # the "last block" branch
    assert any(pairs >= 3 for pairs, splits, _ in plans if splits >= 2)   # off-diagonal pairs split
    assert any((h * w) % split_len for c, h, w in on_cuda(GRAM_SHAPES)
               for _, splits, split_len in [gsl.split_plan(c, h * w)] if splits >= 2)  # a short last split
    assert np.prod(GRID_STRIDE_SHAPE) > 2048 * 256                      # content_loss's grid cap


@pytest.mark.parametrize("c,hw", [(3, 35), (64, 1024), (64, 4 * 1024 * 1024), (512, 32 * 32), (130, 561)])
def test_gram_split_plan(c, hw):
    gsl = kc.launcher("gram_style_loss")
    pairs, splits, split_len = gsl.split_plan(c, hw)
    nt = -(-c // gsl.TILE)
    assert pairs == nt * (nt + 1) // 2
    assert split_len % gsl.TILE_K == 0 and splits >= 1
    assert (splits - 1) * split_len < hw <= splits * split_len          # no empty split, all covered
    assert splits <= 65535


def _z(*shape, dtype=np.float32):
    return np.ones(shape, dtype=dtype)


# op -> arguments of the right shapes (float32, host arrays are enough for the checks)
GOOD_ARGS = {
    "conv3x3_relu": lambda: (_z(3, 5, 7), _z(4, 3, 3, 3), _z(4)),
    "conv3x3_relu_backward_input": lambda: (_z(4, 5, 7), _z(4, 5, 7), _z(4, 3, 3, 3)),
    "maxpool2x2": lambda: (_z(3, 5, 7),),
    "maxpool2x2_backward": lambda: (_z(3, 2, 3), _z(3, 5, 7)),
    "avgpool2x2": lambda: (_z(3, 5, 7),),
    "avgpool2x2_backward": lambda: (_z(3, 2, 3), _z(3, 5, 7)),
    "gram": lambda: (_z(3, 5, 7),),
    "style_loss_and_grad": lambda: (_z(3, 5, 7), _z(3, 3)),
    "content_loss_and_grad": lambda: (_z(3, 5, 7), _z(3, 5, 7)),
    "tv_loss_and_grad": lambda: (_z(5, 7, 3),),
    "temporal_loss_and_grad": lambda: (_z(5, 7, 3), _z(5, 7, 3), _z(5, 7)),
    "adam_step": lambda: (_z(5, 7, 3), _z(5, 7, 3), _z(5, 7, 3), _z(5, 7, 3), 1, 1.0, 0.9, 0.999, 1e-8, 0.0, 255.0),
    "warp": lambda: (_z(5, 7, 3), _z(5, 7, 2)),
    "reliability_mask": lambda: (_z(5, 7, 2), _z(5, 7, 2)),
}


def _spoil(args, k, how, dim=0):
    args = list(args)
    a = args[k]
    if how == "dtype":
        args[k] = a.astype(np.float64)
    elif how == "layout":
        args[k] = np.ones(a.shape[:-1] + (2 * a.shape[-1],), np.float32)[..., ::2]     # a strided view
    elif how == "shape":                    # grow one dimension (channels, or tv's RGB axis)
        shape = list(a.shape)
        shape[dim] += 2
        args[k] = np.ones(shape, np.float32)
    return args


@pytest.mark.parametrize("how", ["dtype", "layout", "shape"])
@pytest.mark.parametrize("op,version", [(op, v) for op in CUDA.ops for v in CUDA.versions(op)])
def test_launchers_reject_bad_arrays(op, version, how):
    # every array argument spoilt in turn: a KernelArgError naming the problem, before any launch
    fn = CUDA.get(op, version)
    args = GOOD_ARGS[op]()
    arrays = [k for k, a in enumerate(args) if isinstance(a, np.ndarray)]
    for k in arrays:
        if how == "shape" and len(arrays) == 1 and op != "tv_loss_and_grad":
            continue                        # a lone array fixes the shapes itself: nothing to mismatch
        with pytest.raises(K.KernelArgError) as err:
            fn(*_spoil(args, k, how, dim=-1 if op == "tv_loss_and_grad" else 0))
        words = {"dtype": "dtype", "layout": "C-contiguous", "shape": "shape"}[how]
        assert words in str(err.value), str(err.value)


def test_check_messages():
    fwd, bwd = kc.launcher("conv3x3_forward"), kc.launcher("conv3x3_backward_input")
    with pytest.raises(K.KernelArgError, match=r"w: shape \(4, 2, 3, 3\), expected \*×3×3×3"):
        fwd.check_args(_z(3, 5, 7), _z(4, 2, 3, 3), _z(4))
    with pytest.raises(K.KernelArgError, match="b: shape"):
        fwd.check_args(_z(3, 5, 7), _z(4, 3, 3, 3), _z(5))
    with pytest.raises(K.KernelArgError, match="expected 3-d"):
        fwd.check_args(_z(1, 3, 5, 7), _z(4, 3, 3, 3), _z(4))
    with pytest.raises(K.KernelArgError, match="expected an array"):
        fwd.check_args([[1.0]], _z(4, 3, 3, 3), _z(4))
    with pytest.raises(K.KernelArgError, match="at least 2×2"):
        kc.launcher("maxpool2x2").check_forward(_z(3, 1, 7))
    with pytest.raises(K.KernelArgError, match="counts steps from 1"):
        kc.launcher("adam_step").check_args(*GOOD_ARGS["adam_step"]()[:4], 0)
    with pytest.raises(K.KernelArgError, match="different devices"):
        K.device(x=_z(3), y=object.__new__(type("ndarray", (), {"__module__": "cupy"})))
    assert fwd.check_args(_z(3, 5, 7), _z(4, 3, 3, 3), _z(4)) == (3, 4, 5, 7)
    assert bwd.check_args(_z(4, 5, 7), _z(4, 5, 7), _z(4, 3, 3, 3)) == (3, 4, 5, 7)


@pytest.mark.parametrize("module", kc.MODULES)
def test_cu_files_and_kernel_names(module):
    mod = kc.launcher(module)
    text = K.source(mod.CU)                                   # fails if a local include is missing
    declared = set(re.findall(r'extern "C" __global__ void (\w+)\(', text))
    assert declared == set(mod.KERNELS), f"{mod.CU}: declared {sorted(declared)} vs KERNELS {sorted(mod.KERNELS)}"
    assert "#include \"" not in text


def test_cupy_backend_unavailable_without_gpu():
    if GPU_REASON is None:
        pytest.skip("a GPU is present: the unavailable path cannot be exercised")
    with pytest.raises(BackendUnavailable, match="cupy backend"):
        cupy_backend.load()
