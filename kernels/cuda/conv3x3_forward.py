"""Launchers for conv3x3_forward.cu: a = relu(conv3x3(x, w) + b), one image, C×H×W float32.

Legend: I channels in, O channels out, H×W spatial. Every version has the signature
(x I×H×W, w O×I×3×3, b O) -> a O×H×W (cupy arrays), and checks its arguments with check_args
before anything touches the GPU.
"""
from . import _common as K

CU = "conv3x3_forward.cu"


def check_args(x, w, b):
    # -> (I, O, H, W)
    i, h, wd = K.check("x", x, ndim=3)
    o = K.check("w", w, shape=(None, i, 3, 3))[0]
    K.check("b", b, shape=(o,))
    K.check_size("output", o * h * wd)
    return i, o, h, wd


# the direct versions: kernel in the .cu, grid over the O×(H·W) outputs, threads per block, arch
DIRECT = {"v1_naive": ("conv3x3_relu_fwd_v1", K.grid_per_output, 256, 0),
          "v2_tiled": ("conv3x3_relu_fwd_v2", K.grid_tiles, 256, 0),
          "v3_wmma_tf32": ("conv3x3_relu_fwd_v3_wmma", K.grid_tiles, 128, 80)}


def im2col_cublas(x, w, b):
    # baseline: cols (I·9)×chunk = im2col(x); y[:, chunk] = Wm (O×I·9) @ cols; bias+ReLU in place
    i, o, h, wd = check_args(x, w, b)
    dev = K.device(x=x, w=w, b=b)
    y = K.im2col_matmul(dev, dev.function(CU, "im2col3x3"), (x,), (i, h, wd), w.reshape(o, i * 9), h * wd)
    dev.function(CU, "bias_relu")(K.grid1d(o * h * wd, 256, 1 << 20), (256,), (y, b, *K.i32(o, h * wd)))
    return y.reshape(o, h, wd)


VERSIONS = {"conv3x3_relu": {
    **{v: K.conv_launcher(CU, *spec, check_args, ("x", "w", "b"), out=1) for v, spec in DIRECT.items()},
    "im2col_cublas": im2col_cublas}}
KERNELS = ("conv3x3_relu_fwd_v1", "conv3x3_relu_fwd_v2", "conv3x3_relu_fwd_v3_wmma", "im2col3x3", "bias_relu")
TOLERANCE = {"v3_wmma_tf32": "tf32"}      # looser rules of nst.tolerance (the rule says why)


def flops(i, o, h, w):
    return 2.0 * o * i * 9 * h * w

