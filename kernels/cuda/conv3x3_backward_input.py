"""Launchers for conv3x3_backward_input.cu: dx of conv3x3+ReLU, the ReLU mask fused.

Legend: I channels in, O channels out, H×W spatial. Every version has the signature
(da O×H×W, a O×H×W the saved ReLU output, w O×I×3×3) -> dx I×H×W (cupy arrays);
dx = conv3x3_backward_input(da·[a>0], w) of nst/ops.py.
"""
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


def im2col_cublas(da, a, w):
    # baseline: cols (O·9)×chunk = im2col(da·[a>0]); dx[:, chunk] = Wflip (I×O·9) @ cols
    i, o, h, wd = check_args(da, a, w)
    dev = K.device(da=da, a=a, w=w)
    wflip = dev.xp.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]).reshape(i, o * 9)  # I×(O·9)
    dx = K.im2col_matmul(dev, dev.function(CU, "im2col3x3_masked"), (da, a), (o, h, wd), wflip, h * wd)
    return dx.reshape(i, h, wd)


VERSIONS = {"conv3x3_relu_backward_input": {
    **{v: K.conv_launcher(CU, *spec, check_args, ("da", "a", "w"), out=0) for v, spec in DIRECT.items()},
    "im2col_cublas": im2col_cublas}}
KERNELS = ("conv3x3_relu_bwd_v1", "conv3x3_relu_bwd_v2", "conv3x3_relu_bwd_v3_wmma", "im2col3x3_masked")
TOLERANCE = {"v3_wmma_tf32": "tf32"}      # looser rules of nst.tolerance (the rule says why)


def flops(i, o, h, w):
    return 2.0 * o * i * 9 * h * w
