"""Launchers for conv3x3_backward_input.cu: dx of conv3x3+ReLU, the ReLU mask fused.

Legend: I channels in, O channels out, H×W spatial. Every version has the signature
(da O×H×W, a O×H×W the saved ReLU output, w O×I×3×3) -> dx I×H×W (cupy arrays);
dx = conv3x3_backward_input(da·[a>0], w) of nst/ops.py.
"""
from . import _common as K

CU = "conv3x3_backward_input.cu"
TILE = 64
COLS_LIMIT = 1 << 27


def check_args(da, a, w):
    # -> (I, O, H, W)
    o, h, wd = K.check("da", da, ndim=3)
    K.check("a", a, shape=(o, h, wd))
    i = K.check("w", w, shape=(o, None, 3, 3))[1]
    K.check_size("output", i * h * wd)
    return i, o, h, wd


def _run(kernel, grid, threads, da, a, w, arch=0):
    i, o, h, wd = check_args(da, a, w)
    dev = K.device(da=da, a=a, w=w)
    if arch:
        K.require_arch(dev, arch, f"conv3x3_backward_input {kernel}")
    dx = dev.empty((i, h, wd))
    dev.function(CU, kernel)(grid(i, h * wd), (threads,), (da, a, w, dx, *K.i32(i, o, h, wd)))
    return dx


def v1_naive(da, a, w):
    return _run("conv3x3_relu_bwd_v1", lambda i, n: K.grid1d(i * n, 256), 256, da, a, w)


def v2_tiled(da, a, w):
    return _run("conv3x3_relu_bwd_v2", lambda i, n: (K.cdiv(n, TILE), K.cdiv(i, TILE)), 256, da, a, w)


def v3_wmma_tf32(da, a, w):
    return _run("conv3x3_relu_bwd_v3_wmma", lambda i, n: (K.cdiv(n, TILE), K.cdiv(i, TILE)), 128, da, a, w, arch=80)


def im2col_cublas(da, a, w):
    # baseline: cols (O·9)×chunk = im2col(da·[a>0]); dx[:, chunk] = Wflip (I×O·9) @ cols
    i, o, h, wd = check_args(da, a, w)
    dev = K.device(da=da, a=a, w=w)
    n, k = h * wd, o * 9
    wflip = dev.xp.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]).reshape(i, k)  # I×(O·9)
    dx = dev.empty((i, n))
    chunk = max(1, min(n, COLS_LIMIT // k))
    cols = dev.empty((k, chunk))
    im2col = dev.function(CU, "im2col3x3_masked")
    for n0 in range(0, n, chunk):
        cnt = min(chunk, n - n0)
        c = cols[:, :cnt] if cnt == chunk else dev.empty((k, cnt))
        im2col(K.grid1d(k * cnt, 256, 1 << 20), (256,), (da, a, c, *K.i32(o, h, wd, n0, cnt)))
        dx[:, n0:n0 + cnt] = dev.xp.matmul(wflip, c)
    return dx.reshape(i, h, wd)


VERSIONS = {"conv3x3_relu_backward_input": {"v1_naive": v1_naive, "v2_tiled": v2_tiled,
                                            "v3_wmma_tf32": v3_wmma_tf32, "im2col_cublas": im2col_cublas}}
KERNELS = ("conv3x3_relu_bwd_v1", "conv3x3_relu_bwd_v2", "conv3x3_relu_bwd_v3_wmma", "im2col3x3_masked")
TOLERANCE = {"v3_wmma_tf32": "tf32"}      # looser rules of nst.tolerance (the rule says why)


def flops(i, o, h, w):
    return 2.0 * o * i * 9 * h * w
