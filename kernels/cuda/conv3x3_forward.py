"""Launchers for conv3x3_forward.cu: a = relu(conv3x3(x, w) + b), one image, C×H×W float32.

Legend: I channels in, O channels out, H×W spatial. Every version has the signature
(x I×H×W, w O×I×3×3, b O) -> a O×H×W (cupy arrays), and checks its arguments with check_args
before anything touches the GPU.
"""
from . import _common as K

CU = "conv3x3_forward.cu"
TILE = 64                       # output tile of v2/v3 (TILE_M = TILE_N in the .cuh files)
COLS_LIMIT = 1 << 27            # baseline im2col buffer, floats per chunk (512 MiB)


def check_args(x, w, b):
    # -> (I, O, H, W)
    i, h, wd = K.check("x", x, ndim=3)
    o = K.check("w", w, shape=(None, i, 3, 3))[0]
    K.check("b", b, shape=(o,))
    K.check_size("output", o * h * wd)
    return i, o, h, wd


def _run(kernel, grid, threads, x, w, b, arch=0):
    i, o, h, wd = check_args(x, w, b)
    dev = K.device(x=x, w=w, b=b)
    if arch:
        K.require_arch(dev, arch, f"conv3x3_forward {kernel}")
    y = dev.empty((o, h, wd))
    dev.function(CU, kernel)(grid(o, h * wd), (threads,), (x, w, b, y, *K.i32(i, o, h, wd)))
    return y


def v1_naive(x, w, b):
    return _run("conv3x3_relu_fwd_v1", lambda o, n: K.grid1d(o * n, 256), 256, x, w, b)


def v2_tiled(x, w, b):
    return _run("conv3x3_relu_fwd_v2", lambda o, n: (K.cdiv(n, TILE), K.cdiv(o, TILE)), 256, x, w, b)


def v3_wmma_tf32(x, w, b):
    return _run("conv3x3_relu_fwd_v3_wmma", lambda o, n: (K.cdiv(n, TILE), K.cdiv(o, TILE)), 128, x, w, b, arch=80)


def im2col_cublas(x, w, b):
    # baseline: cols (I·9)×chunk = im2col(x); y[:, chunk] = Wm (O×I·9) @ cols; bias+ReLU in place
    i, o, h, wd = check_args(x, w, b)
    dev = K.device(x=x, w=w, b=b)
    n, k = h * wd, i * 9
    y = dev.empty((o, n))                    # O×N
    wm = w.reshape(o, k)                                      # O×(I·9)
    chunk = max(1, min(n, COLS_LIMIT // k))
    cols = dev.empty((k, chunk))
    im2col = dev.function(CU, "im2col3x3")
    for n0 in range(0, n, chunk):
        cnt = min(chunk, n - n0)
        c = cols[:, :cnt] if cnt == chunk else dev.empty((k, cnt))
        im2col(K.grid1d(k * cnt, 256, 1 << 20), (256,), (x, c, *K.i32(i, h, wd, n0, cnt)))
        y[:, n0:n0 + cnt] = dev.xp.matmul(wm, c)
    dev.function(CU, "bias_relu")(K.grid1d(o * n, 256, 1 << 20), (256,), (y, b, *K.i32(o, n)))
    return y.reshape(o, h, wd)


VERSIONS = {"conv3x3_relu": {"v1_naive": v1_naive, "v2_tiled": v2_tiled, "v3_wmma_tf32": v3_wmma_tf32,
                             "im2col_cublas": im2col_cublas}}
KERNELS = ("conv3x3_relu_fwd_v1", "conv3x3_relu_fwd_v2", "conv3x3_relu_fwd_v3_wmma", "im2col3x3", "bias_relu")
TOLERANCE = {"v3_wmma_tf32": "tf32"}      # looser rules of nst.tolerance (the rule says why)


def flops(i, o, h, w):
    return 2.0 * o * i * 9 * h * w

