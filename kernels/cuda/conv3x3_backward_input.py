"""Launchers for conv3x3_backward_input.cu: dx of conv3x3+ReLU, the ReLU mask fused.

Legend: I channels in, O channels out, H×W spatial. Every version has the signature
(da O×H×W, a O×H×W the saved ReLU output, w O×I×3×3) -> dx I×H×W (cupy arrays);
dx = conv3x3_backward_input(da·[a>0], w) of nst/ops.py.
"""
import weakref

from . import _common as K

CU = "conv3x3_backward_input.cu"


def check_args(da, a, w):
    # -> (I, O, H, W)
    o, h, wd = K.check("da", da, ndim=3)
    K.check("a", a, shape=(o, h, wd))
    i = K.check("w", w, shape=(o, None, 3, 3))[1]
    K.check_size("output", i * h * wd)
    return i, o, h, wd


# the direct versions: kernel in the .cu, grid over the I×(H·W) outputs, threads per block, arch
DIRECT = {"v1_naive": ("conv3x3_relu_bwd_v1", K.grid_per_output, 256, 0),
          "v2_tiled": ("conv3x3_relu_bwd_v2", K.grid_tiles, 256, 0),
          "v3_wmma_tf32": ("conv3x3_relu_bwd_v3_wmma", K.grid_tiles, 128, 80)}


def flip(xp, w):
    # w O×I×3×3 -> Wflip I×(O·9): in and out swapped, each filter turned 180° (one copy kernel:
    # reads and writes O·I·9 floats, 9 MiB for a 512-channel layer)
    o, i = w.shape[:2]
    return xp.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]).reshape(i, o * 9)


_FLIPPED = {}          # id(w) -> flip(w) while that w lives (weakref.finalize drops it, as its id may be reused)


def flipped(xp, w):
    # flip(w), once per weight array: a run's layers keep their w (nst never writes into one). A copy
    # on every call was one more CuPy operation per layer (8 of them from 256 channels, each
    # evaluation), and a GPU evaluation is bound by the host's time to enqueue its operations
    # (bench/RESULTS.md "What is left": ~20–25 µs of host time for a small CuPy operation)
    key = id(w)
    if key not in _FLIPPED:
        _FLIPPED[key] = flip(xp, w)
        weakref.finalize(w, _FLIPPED.pop, key, None)
    return _FLIPPED[key]


def im2col_cublas(da, a, w):
    # baseline: cols (O·9)×chunk = im2col(da·[a>0]); dx[:, chunk] = Wflip (I×O·9) @ cols
    i, o, h, wd = check_args(da, a, w)
    dev = K.device(da=da, a=a, w=w)
    dx = K.im2col_matmul(dev, dev.function(CU, "im2col3x3_masked"), (da, a), (o, h, wd), flipped(dev.xp, w), h * wd)
    return dx.reshape(i, h, wd)


VERSIONS = {"conv3x3_relu_backward_input": {
    **{v: K.conv_launcher(CU, *spec, check_args, ("da", "a", "w"), out=0) for v, spec in DIRECT.items()},
    "im2col_cublas": im2col_cublas}}
KERNELS = ("conv3x3_relu_bwd_v1", "conv3x3_relu_bwd_v2", "conv3x3_relu_bwd_v3_wmma", "im2col3x3_masked")
TOLERANCE = {"v3_wmma_tf32": "tf32"}      # looser rules of nst.tolerance (the rule says why)


def flops(i, o, h, w):
    return 2.0 * o * i * 9 * h * w
