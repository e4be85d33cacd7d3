"""kernels/cuda: every version of every CUDA kernel against the NumPy reference, and the
launchers' argument checks and the backend's table of choices.

Each kernel test runs twice through the same launcher: on "cuda-cpu" (numpy arrays: the .cu
compiled by g++ against kernels/cuda/host, always) and on "gpu" (cupy arrays; marked `gpu`,
skipped with the reason when no GPU answers). Results are float32 against the float64 reference
computed from the same float32 inputs, through the one rule of conftest.assert_close. Shapes cross
the 64-wide tiles, the split-K boundaries and the "last block finishes the tile" branch
(test_paths_taken counts them).
"""
import re

import numpy as np
import pytest

from conftest import assert_close
from nst.kernels import cuda as kc
from nst.kernels.cuda import _common as K
from nst import losses, ops
from nst.backends import BackendUnavailable
from nst.backends.cupy_backend import ADAM_STEP, CHOSEN, EXTRAS
from nst.ops import adam_step


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


GPU_REASON = _gpu_reason()
HOST_REASON = _host_reason()
gpu = pytest.mark.skipif(GPU_REASON is not None, reason=GPU_REASON or "")
host = pytest.mark.skipif(HOST_REASON is not None, reason=HOST_REASON or "")


@pytest.fixture(scope="module", autouse=True)
def _built():
    # the cuda-cpu libraries of every .cu, compiled in parallel once (then cached on disk)
    if HOST_REASON is None:
        from nst.kernels.cuda.host import build
        build.prebuild([kc.launcher(op).CU for op in kc.OPS])


class On:
    """Where a kernel test runs: put(a) moves a numpy input there, get(a) brings a result back."""

    def __init__(self, name):
        self.name = name

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


@pytest.fixture(params=[pytest.param("cuda-cpu", marks=host),
                        pytest.param("gpu", marks=[pytest.mark.gpu, gpu])])
def on(request):
    return On(request.param)

# TF32 rounds both operands to a 10-bit mantissa (relative error 2^-11 each), accumulating in
# FP32: errors ~1e-3 of the output's scale, hence this looser entry for the *_wmma_tf32 versions.
TF32_TOL = dict(rtol=5e-3, atol_scale=5e-3)


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _tol(module, version):
    return TF32_TOL if version in getattr(module, "TF32", ()) else {}


# ---------------------------------------------------------------------------------------------
# Each version against the reference, on cuda-cpu and on the GPU
# ---------------------------------------------------------------------------------------------
CONV_SHAPES = [(3, 5, 7, 9), (2, 3, 1, 1), (4, 70, 13, 11), (67, 3, 5, 66), (65, 129, 17, 9)]
CONV_FWD, CONV_BWD = kc.launcher("conv3x3_forward"), kc.launcher("conv3x3_backward_input")


@pytest.mark.parametrize("version", list(CONV_FWD.VERSIONS))
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv3x3_forward(on, rng, version, shape):
    i, o, h, w = shape
    x, wt, b = _f32(rng, i, h, w), _f32(rng, o, i, 3, 3, scale=(9 * i) ** -0.5), _f32(rng, o, scale=0.1)
    ref = ops.conv3x3_relu(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64))
    got = CONV_FWD.VERSIONS[version](on.put(x), on.put(wt), on.put(b))
    assert_close(on.get(got), ref, what=f"conv3x3_forward.{version}{shape}", **_tol(CONV_FWD, version))


@pytest.mark.parametrize("version", list(CONV_BWD.VERSIONS))
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv3x3_backward_input(on, rng, version, shape):
    i, o, h, w = shape
    da, a = _f32(rng, o, h, w), np.maximum(_f32(rng, o, h, w), 0)       # a: ReLU output, ~half 0
    wt = _f32(rng, o, i, 3, 3, scale=(9 * o) ** -0.5)
    ref = ops.conv3x3_relu_backward_input(da.astype(np.float64), a.astype(np.float64), wt.astype(np.float64))
    got = CONV_BWD.VERSIONS[version](on.put(da), on.put(a), on.put(wt))
    assert_close(on.get(got), ref, what=f"conv3x3_backward_input.{version}{shape}", **_tol(CONV_BWD, version))


POOL_SHAPES = [(3, 7, 9), (2, 8, 6), (1, 2, 3), (5, 33, 17)]


@pytest.mark.parametrize("op", ["maxpool2x2", "avgpool2x2"])
@pytest.mark.parametrize("shape", POOL_SHAPES)
def test_pool2x2(on, rng, op, shape):
    mod = kc.launcher(op)
    fwd, bwd = getattr(ops, op), getattr(ops, op + "_backward")
    x = rng.integers(0, 3, size=shape).astype(np.float32)                 # many ties: first max wins
    y_ref = fwd(x)
    dy = _f32(rng, *y_ref.shape) + 3.0                                    # never zero
    assert_close(on.get(mod.forward_v1(on.put(x))), y_ref, what=f"{op}.forward_v1{shape}")
    assert_close(on.get(mod.backward_v1(on.put(dy), on.put(x))), bwd(dy, x), what=f"{op}.backward_v1{shape}")


GRAM_SHAPES = [(3, 5, 7), (70, 9, 11), (130, 33, 17), (64, 100, 103)]
GSL = kc.launcher("gram_style_loss")


@pytest.mark.parametrize("version", [v for v in GSL.VERSIONS if v.startswith("gram")])
@pytest.mark.parametrize("shape", GRAM_SHAPES)
def test_gram(on, rng, version, shape):
    a = np.abs(_f32(rng, *shape))
    got = GSL.VERSIONS[version](on.put(a))
    assert_close(on.get(got), losses.gram(a.astype(np.float64)), what=f"gram_style_loss.{version}{shape}")


@pytest.mark.parametrize("version", [v for v in GSL.VERSIONS if v.startswith("style")])
@pytest.mark.parametrize("shape", GRAM_SHAPES)
def test_style_loss(on, rng, version, shape):
    a = np.abs(_f32(rng, *shape))
    target = losses.gram(np.abs(_f32(rng, shape[0], 6, 5, scale=1.5))).astype(np.float32)
    j_ref, g_ref = losses.style_loss_and_grad(a.astype(np.float64), target.astype(np.float64))
    j, g = GSL.VERSIONS[version](on.put(a), on.put(target))
    assert j.shape == () and g.shape == a.shape
    assert_close(on.get(j), j_ref, what=f"style loss {version}{shape}")
    assert_close(on.get(g), g_ref, what=f"style grad {version}{shape}")


def assert_same_nonfinite(got, ref, what):
    # NaN and ±inf exactly where the reference has them, the finite rest close
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        assert np.array_equal(test(got), test(ref)), f"{what}: {name} at {np.argwhere(test(got) != test(ref))[:5].tolist()}"
    finite = np.isfinite(ref)
    assert finite.any(), f"{what}: nothing finite left to compare"
    assert_close(got[finite], ref[finite], what=what, **TF32_TOL)


@pytest.mark.parametrize("version", list(CONV_FWD.VERSIONS))
def test_conv3x3_forward_nan(on, rng, version):
    # a NaN pixel and a NaN bias stay NaN through the ReLU (np.maximum), as in the reference
    i, o, h, w = 3, 70, 9, 11
    x, wt, b = _f32(rng, i, h, w), _f32(rng, o, i, 3, 3, scale=(9 * i) ** -0.5), _f32(rng, o, scale=0.1)
    x[1, 4, 5], b[66] = np.nan, np.nan
    ref = ops.conv3x3_relu(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64))
    got = CONV_FWD.VERSIONS[version](on.put(x), on.put(wt), on.put(b))
    assert_same_nonfinite(on.get(got), ref, f"conv3x3_forward.{version} with NaN")


@pytest.mark.parametrize("op", ["maxpool2x2", "avgpool2x2"])
def test_pool2x2_nan_inf(on, rng, op):
    # NaN wins its window (np.max) and takes the gradient (np.argmax: first NaN); ±inf propagate
    mod = kc.launcher(op)
    fwd, bwd = getattr(ops, op), getattr(ops, op + "_backward")
    x = _f32(rng, 3, 9, 8)
    x[0, 0, 1], x[1, 2, 2], x[1, 2, 3], x[2, 5, 5], x[2, 7, 0] = np.nan, np.nan, np.inf, -np.inf, np.inf
    y_ref = fwd(x)
    dy = _f32(rng, *y_ref.shape) + 3.0
    assert_same_nonfinite(on.get(mod.forward_v1(on.put(x))), y_ref, f"{op} forward with NaN/inf")
    assert_same_nonfinite(on.get(mod.backward_v1(on.put(dy), on.put(x))), bwd(dy, x), f"{op} backward with NaN/inf")


def test_adam_step_nan(on, rng):
    # a NaN gradient leaves x NaN through the clip, as np.clip does; the rest is clipped to 0..255
    x = rng.uniform(-5, 260, size=(5, 7, 3)).astype(np.float32)
    m, v, g = _f32(rng, 5, 7, 3), np.abs(_f32(rng, 5, 7, 3)), _f32(rng, 5, 7, 3) * 100
    g[2, 3, 1], g[0, 0, 0] = np.nan, np.inf
    xd, md, vd = on.put(x), on.put(m), on.put(v)
    kc.get("adam_step.v1")(xd, on.put(g), md, vd, 2, 50.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
    x64, m64, v64 = (a.astype(np.float64) for a in (x, m, v))
    with np.errstate(invalid="ignore"):
        adam_step(x64, g.astype(np.float64), m64, v64, 2, 50.0, 0.9, 0.999, 1e-8, 0.0, 255.0)
    for name, got, ref in (("x", xd, x64), ("m", md, m64), ("v", vd, v64)):
        assert_same_nonfinite(on.get(got), ref, f"adam {name} with NaN/inf")


@pytest.mark.parametrize("version", list(kc.launcher("content_loss").VERSIONS))
@pytest.mark.parametrize("shape", [(5, 7, 9), (64, 33, 31)])
def test_content_loss(on, rng, version, shape):
    a, t = _f32(rng, *shape), _f32(rng, *shape)
    j_ref, g_ref = losses.content_loss_and_grad(a.astype(np.float64), t.astype(np.float64))
    j, g = kc.get(f"content_loss.{version}")(on.put(a), on.put(t))
    assert j.shape == ()
    assert_close(on.get(j), j_ref, what=f"content loss {version}")
    assert_close(on.get(g), g_ref, what=f"content grad {version}")


@pytest.mark.parametrize("version", list(kc.launcher("tv_loss").VERSIONS))
@pytest.mark.parametrize("shape", [(7, 9, 3), (1, 5, 3), (33, 65, 3)])
def test_tv_loss(on, rng, version, shape):
    x = rng.uniform(0, 255, size=shape).astype(np.float32)
    j_ref, g_ref = losses.tv_loss_and_grad(x.astype(np.float64))
    j, g = kc.get(f"tv_loss.{version}")(on.put(x))
    assert j.shape == ()
    assert_close(on.get(j), j_ref, what=f"tv loss {version}")
    assert_close(on.get(g), g_ref, what=f"tv grad {version}")


@pytest.mark.parametrize("version", list(kc.launcher("temporal_loss").VERSIONS))
@pytest.mark.parametrize("shape", [(7, 9), (1, 5), (33, 65)])
def test_temporal_loss(on, rng, version, shape):
    x, t = (rng.uniform(0, 255, size=(*shape, 3)).astype(np.float32) for _ in range(2))
    c = (rng.random(shape) * (rng.random(shape) > 0.3)).astype(np.float32)      # zeros and fractions
    j_ref, g_ref = losses.temporal_loss_and_grad(x.astype(np.float64), t.astype(np.float64), c.astype(np.float64))
    j, g = kc.get(f"temporal_loss.{version}")(on.put(x), on.put(t), on.put(c))
    assert j.shape == ()
    assert_close(on.get(j), j_ref, rtol=1e-4, what=f"temporal loss {version} (float32 sums over blocks)")
    assert_close(on.get(g), g_ref, what=f"temporal grad {version}")


@pytest.mark.parametrize("lo,hi", [(-np.inf, np.inf), (0.0, 255.0)])
def test_adam_step(on, rng, lo, hi):
    # the launcher takes nst.ops.adam_step's arguments, in its order
    mod = kc.launcher("adam_step")
    x = rng.uniform(-5, 260, size=(13, 17, 3)).astype(np.float32)
    m, v, g = _f32(rng, 13, 17, 3), np.abs(_f32(rng, 13, 17, 3)), _f32(rng, 13, 17, 3)
    xd, md, vd = on.put(x), on.put(m), on.put(v)
    mod.v1(xd, on.put(g), md, vd, 3, 2.0, 0.9, 0.999, 1e-8, lo, hi)
    x64, m64, v64 = (a.astype(np.float64) for a in (x, m, v))
    adam_step(x64, g.astype(np.float64), m64, v64, 3, 2.0, 0.9, 0.999, 1e-8, lo, hi)
    for name, got, ref in (("x", xd, x64), ("m", md, m64), ("v", vd, v64)):
        assert_close(on.get(got), ref, what=f"adam {name}")


def test_lbfgs_ops(on, rng):
    mod = kc.launcher("lbfgs_ops")
    x, y, z = _f32(rng, 11, 13, 3), _f32(rng, 11, 13, 3), _f32(rng, 11, 13, 3)
    xd, yd, zd = on.put(x), on.put(y), on.put(z)
    num, den = mod.dot_v1(xd, yd), mod.dot_v1(yd, yd)
    x64, y64, z64 = (a.astype(np.float64) for a in (x, y, z))
    assert_close(on.get(num), x64.ravel() @ y64.ravel(), what="dot")
    mod.axpy_v1(-1.5, xd, zd, num=num, den=den)                          # z −= 1.5 (x·y / y·y) x
    ref = z64 - 1.5 * (x64.ravel() @ y64.ravel()) / (y64.ravel() @ y64.ravel()) * x64
    assert_close(on.get(zd), ref, what="axpy ratio")
    mod.axpy_v1(2.0, xd, yd, beta=0.0)                                   # y = 2x
    assert_close(on.get(yd), 2 * x64, what="axpy beta=0")


@pytest.mark.parametrize("name", [pytest.param("cuda-cpu", marks=host),
                                  pytest.param("cupy", marks=[pytest.mark.gpu, gpu])])
def test_backend_loads_and_runs(rng, name):
    from nst.backends import get_backend
    be = get_backend(name)
    x = _f32(rng, 3, 10, 12)
    w, b = be.prepare_weights(_f32(rng, 8, 3, 3, 3), _f32(rng, 8))
    a = be.conv3x3_relu(be.to_device(x), w, b)
    j, g = be.style_loss_and_grad(a, be.gram(a))
    assert float(be.to_host(j)) == pytest.approx(0.0, abs=1e-6)


def test_paths_taken():
    # the shapes above reach every code path of the tiled and split-K kernels (counted here):
    # full and partial 64-wide tiles in M and N, single-tile cases, several K steps, a split-K
    # with several splits (non-last blocks return, the last one finishes the tile), diagonal and
    # off-diagonal tile pairs, and a grid-stride loop that goes round more than once
    tiles = lambda n: (n // 64, n % 64)                                   # (full tiles, remainder)
    conv = [(tiles(o), tiles(h * w), i * 9) for i, o, h, w in CONV_SHAPES]
    assert any(full >= 1 and rest for (full, rest), _, _ in conv)         # O: a full + a partial tile
    assert any(full >= 1 and rest for _, (full, rest), _ in conv)         # N: the same
    assert any(full == 0 for (full, _), _, _ in conv)                     # a lone partial tile
    assert any(k > 16 and k % 16 for _, _, k in conv)                     # several K steps, ragged end
    plans = [GSL.split_plan(c, h * w) for c, h, w in GRAM_SHAPES]
    assert any(splits >= 2 for _, splits, _ in plans)                     # the "last block" branch
    assert any(pairs >= 3 for pairs, splits, _ in plans if splits >= 2)   # off-diagonal pairs split
    assert any((h * w) % split_len for c, h, w in GRAM_SHAPES
               for _, splits, split_len in [GSL.split_plan(c, h * w)] if splits >= 2)  # a short last split
    # grid-stride: content_loss caps its grid at 2048 blocks of 256, GRID_STRIDE_SHAPE exceeds it
    assert np.prod(GRID_STRIDE_SHAPE) > 2048 * 256


GRID_STRIDE_SHAPE = (9, 256, 240)            # 552,960 elements: over content_loss's 2048×256 grid


def test_grid_stride_goes_round(on, rng):
    a, t = _f32(rng, *GRID_STRIDE_SHAPE), _f32(rng, *GRID_STRIDE_SHAPE)
    j_ref, g_ref = losses.content_loss_and_grad(a.astype(np.float64), t.astype(np.float64))
    j, g = kc.get("content_loss.v1_fused")(on.put(a), on.put(t))
    assert_close(on.get(j), j_ref, rtol=1e-3, what="content loss over a capped grid")   # 553k-term sum
    assert_close(on.get(g), g_ref, what="content grad over a capped grid")


# ---------------------------------------------------------------------------------------------
# CPU: argument checks (pure, before anything touches the GPU) and the table
# ---------------------------------------------------------------------------------------------
def _z(*shape, dtype=np.float32):
    return np.ones(shape, dtype=dtype)


# op.version -> arguments of the right shapes (float32, host arrays are enough for the checks)
GOOD_ARGS = {
    "conv3x3_forward": lambda: (_z(3, 5, 7), _z(4, 3, 3, 3), _z(4)),
    "conv3x3_backward_input": lambda: (_z(4, 5, 7), _z(4, 5, 7), _z(4, 3, 3, 3)),
    "maxpool2x2.forward": lambda: (_z(3, 5, 7),),
    "maxpool2x2.backward": lambda: (_z(3, 2, 3), _z(3, 5, 7)),
    "avgpool2x2.forward": lambda: (_z(3, 5, 7),),
    "avgpool2x2.backward": lambda: (_z(3, 2, 3), _z(3, 5, 7)),
    "gram_style_loss.gram": lambda: (_z(3, 5, 7),),
    "gram_style_loss.style": lambda: (_z(3, 5, 7), _z(3, 3)),
    "content_loss": lambda: (_z(3, 5, 7), _z(3, 5, 7)),
    "tv_loss": lambda: (_z(5, 7, 3),),
    "temporal_loss": lambda: (_z(5, 7, 3), _z(5, 7, 3), _z(5, 7)),
    "adam_step": lambda: (_z(5, 7, 3), _z(5, 7, 3), _z(5, 7, 3), _z(5, 7, 3), 1, 1.0, 0.9, 0.999, 1e-8, 0.0, 255.0),
    "lbfgs_ops.dot": lambda: (_z(5, 7, 3), _z(5, 7, 3)),
    "lbfgs_ops.axpy": lambda: (1.0, _z(5, 7, 3), _z(5, 7, 3)),
}


def _good_args(op, version):
    for key in (f"{op}.{version.split('_')[0]}", op):
        if key in GOOD_ARGS:
            return GOOD_ARGS[key]()
    raise KeyError(f"no GOOD_ARGS entry for {op}.{version}")


ALL_VERSIONS = [(op, v) for op in kc.OPS for v in kc.launcher(op).VERSIONS]


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
@pytest.mark.parametrize("op,version", ALL_VERSIONS)
def test_launchers_reject_bad_arrays_before_the_gpu(op, version, how):
    # every array argument spoilt in turn: a KernelArgError naming the problem, with no GPU used
    fn = kc.launcher(op).VERSIONS[version]
    args = _good_args(op, version)
    arrays = [k for k, a in enumerate(args) if isinstance(a, np.ndarray)]
    for k in arrays:
        if how == "shape" and len(arrays) == 1 and op != "tv_loss":
            continue                        # a lone array fixes the shapes itself: nothing to mismatch
        with pytest.raises(K.KernelArgError) as err:
            fn(*_spoil(args, k, how, dim=-1 if op == "tv_loss" else 0))
        words = {"dtype": "dtype", "layout": "C-contiguous", "shape": "shape"}[how]
        assert words in str(err.value), str(err.value)


def test_check_messages():
    with pytest.raises(K.KernelArgError, match=r"w: shape \(4, 2, 3, 3\), expected \*×3×3×3"):
        CONV_FWD.check_args(_z(3, 5, 7), _z(4, 2, 3, 3), _z(4))
    with pytest.raises(K.KernelArgError, match="b: shape"):
        CONV_FWD.check_args(_z(3, 5, 7), _z(4, 3, 3, 3), _z(5))
    with pytest.raises(K.KernelArgError, match="expected 3-d"):
        CONV_FWD.check_args(_z(1, 3, 5, 7), _z(4, 3, 3, 3), _z(4))
    with pytest.raises(K.KernelArgError, match="expected an array"):
        CONV_FWD.check_args([[1.0]], _z(4, 3, 3, 3), _z(4))
    with pytest.raises(K.KernelArgError, match="at least 2×2"):
        kc.launcher("maxpool2x2").check_forward(_z(3, 1, 7))
    with pytest.raises(K.KernelArgError, match="counts steps from 1"):
        kc.launcher("adam_step").check_args(*GOOD_ARGS["adam_step"]()[:4], 0)
    with pytest.raises(K.KernelArgError, match="different devices"):
        K.device(x=_z(3), y=object.__new__(type("ndarray", (), {"__module__": "cupy"})))
    assert CONV_FWD.check_args(_z(3, 5, 7), _z(4, 3, 3, 3), _z(4)) == (3, 4, 5, 7)
    assert CONV_BWD.check_args(_z(4, 5, 7), _z(4, 5, 7), _z(4, 3, 3, 3)) == (3, 4, 5, 7)


@pytest.mark.parametrize("c,hw", [(3, 35), (64, 1024), (64, 4 * 1024 * 1024), (512, 32 * 32), (130, 561)])
def test_gram_split_plan(c, hw):
    pairs, splits, split_len = GSL.split_plan(c, hw)
    nt = -(-c // GSL.TILE)
    assert pairs == nt * (nt + 1) // 2
    assert split_len % GSL.TILE_K == 0 and splits >= 1
    assert (splits - 1) * split_len < hw <= splits * split_len          # no empty split, all covered
    assert splits <= 65535


def test_table_names_existing_versions():
    for field, qualname in {**CHOSEN, **EXTRAS, "adam_step": ADAM_STEP}.items():
        assert callable(kc.get(qualname)), f"{field} -> {qualname}"
    from nst.backends import Backend
    fields = set(Backend.__dataclass_fields__) - {"name", "xp", "prepare_weights", "adam_step"}
    assert set(CHOSEN) == fields, "CHOSEN must fill every kernel field of Backend"
    with pytest.raises(KeyError, match="no version"):
        kc.get("conv3x3_forward.v9")


@pytest.mark.parametrize("op", kc.OPS)
def test_cu_files_and_kernel_names(op):
    mod = kc.launcher(op)
    text = K.source(mod.CU)                                   # fails if a local include is missing
    declared = set(re.findall(r'extern "C" __global__ void (\w+)\(', text))
    assert declared == set(mod.KERNELS), f"{mod.CU}: declared {sorted(declared)} vs KERNELS {sorted(mod.KERNELS)}"
    assert "#include \"" not in text
    for tf32 in getattr(mod, "TF32", ()):
        assert tf32 in mod.VERSIONS


def test_backend_unavailable_without_gpu():
    if GPU_REASON is None:
        pytest.skip("a GPU is present: the unavailable path cannot be exercised")
    from nst.backends.cupy_backend import load
    with pytest.raises(BackendUnavailable, match="cupy backend"):
        load()
