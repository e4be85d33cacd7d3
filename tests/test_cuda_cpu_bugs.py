"""Planted bugs: each is a one-line change to a copy of a kernels/cuda source, built for cuda-cpu;
the kernel tests of tests/test_ops.py and tests/test_video_kernels.py (the same test bodies CI
runs) must catch it.

A bug counts as caught when one of its tests fails: a mismatch against the NumPy reference
(NaN from poisoned memory included), or an error raised by the emulator.
"""
import numpy as np
import pytest

import test_ops as T
import test_video_kernels as V
from nst.kernels.cuda.host import build

pytestmark = pytest.mark.skipif(T.HOST_REASON is not None, reason=T.HOST_REASON or "")

CPU = T.CUDA_CPU
SHAPE = (65, 129, 17, 9)          # two tiles each way, partial ones
GRAM = (64, 100, 103)             # split-K over 40 blocks


def run(test, op, version, shape):
    # one case of a test_ops body on cuda-cpu
    return lambda rng: test(op, CPU, version, shape, rng)


def conv_fwd(version, shape=SHAPE):
    return run(T.test_conv3x3_relu, "conv3x3_relu", version, shape)


def conv_bwd(version, shape=SHAPE):
    return run(T.test_conv3x3_relu_backward_input, "conv3x3_relu_backward_input", version, shape)


def style(version, shape=GRAM):
    return run(T.test_style_loss_and_grad, "style_loss_and_grad", version, shape)


def gram(version, shape=GRAM):
    return run(T.test_gram, "gram", version, shape)


# (what, file, original text, planted text, tests of which one must fail)
BUGS = [
    ("tile loop: no barrier after the shared loads", "gemm_tile.cuh",
     "        }\n        __syncthreads();\n#pragma unroll\n        for (int k = 0;",
     "        }\n#pragma unroll\n        for (int k = 0;", [conv_fwd("v2_tiled")]),
    ("tile loop: no barrier before the next loads", "gemm_tile.cuh",
     "        }\n        __syncthreads();\n    }\n}", "        }\n    }\n}", [gram("v2_splitk")]),
    ("WMMA: the epilogue reads Cs before every warp stored", "gemm_wmma.cuh",
     "                                    wmma::mem_row_major);\n    __syncthreads();",
     "                                    wmma::mem_row_major);", [conv_fwd("v3_wmma_tf32")]),
    ("split-K: off by one in the finishing block's ticket", "gram_style_loss.cu",
     "if (ticket != gridDim.y - 1) return;", "if (ticket != gridDim.y - 2) return;",
     [gram("v2_splitk"), style("v2_fused")]),
    ("split-K: a split skips its first 16 columns", "gram_style_loss.cu",
     "const int k_begin = blockIdx.y * split_len,", "const int k_begin = blockIdx.y * split_len + 16,",
     [gram("v2_splitk")]),
    ("backward: filter not flipped", "conv3x3_backward_input.cu",
     "return w[(o * M + m) * 9 + 8 - (k - 9 * o)];", "return w[(o * M + m) * 9 + (k - 9 * o)];",
     [conv_bwd("v2_tiled")]),
    ("backward v1: ReLU mask on the input side", "conv3x3_backward_input.cu",
     "if (act[idx] > 0.0f) s = fmaf", "if (act[idx] >= 0.0f) s = fmaf", [conv_bwd("v1_naive")]),
    ("forward v1: padding off by one", "conv3x3_forward.cu",
     "if (xx >= 0 && xx < W) s = fmaf", "if (xx >= 0 && xx <= W) s = fmaf", [conv_fwd("v1_naive", (3, 5, 7, 9))]),
    ("block_sum: no barrier between the warp sums", "reduce.cuh",
     "    if (lane == 0) warp_sums[warp] = v;\n    __syncthreads();", "    if (lane == 0) warp_sums[warp] = v;",
     [run(T.test_content_loss_and_grad, "content_loss_and_grad", "v1_fused", (64, 33, 31))]),
    ("max pool backward: last maximum wins a tie", "maxpool2x2.cu",
     "(v[t] > v[first] || v[t] != v[t])", "(v[t] >= v[first] || v[t] != v[t])",
     [run(T.test_pool2x2_backward, "maxpool2x2_backward", "v1", (3, 7, 9))]),
    ("tv: a gradient term dropped at the last row", "tv_loss.cu",
     "if (i > 0)     g += 2.0f * (v - x[e - row]);", "if (i > 1)     g += 2.0f * (v - x[e - row]);",
     [run(T.test_tv_loss_and_grad, "tv_loss_and_grad", "v1_fused", (7, 9, 3))]),
    ("ReLU with fmaxf drops NaN", "conv3x3_forward.cu", "y[m * N + n] = max_nan(v + b[m], 0.0f);",
     "y[m * N + n] = fmaxf(v + b[m], 0.0f);",
     [run(T.test_conv3x3_relu_nan, "conv3x3_relu", "v2_tiled", (3, 70, 9, 11))]),
    ("max pool with fmaxf drops NaN", "maxpool2x2.cu", "max_nan(max_nan(p[0], p[1]), max_nan(p[W], p[W + 1]))",
     "fmaxf(fmaxf(p[0], p[1]), fmaxf(p[W], p[W + 1]))", [run(T.test_pool2x2_nan_inf, "maxpool2x2", "v1", (3, 9, 8))]),
    ("Adam clip with fminf/fmaxf drops NaN", "adam_step.cu", "min_nan(max_nan(xe, lo), hi)", "fminf(fmaxf(xe, lo), hi)",
     [run(T.test_adam_step_nan, "adam_step", "v1", (5, 7, 3))]),
    ("adam: second bias correction used for m", "adam_step.cu",
     "(me / bc1)", "(me / bc2)",
     [lambda rng: T.test_adam_step("adam_step", CPU, "v1", (1001,), rng, 0.0, 255.0, 1e-8)]),
    ("warp: the weights of the two rows swapped", "bilinear.cuh", "return dot2(1.0 - ay, top, ay, bottom);",
     "return dot2(ay, top, 1.0 - ay, bottom);", [run(V.test_warp, "warp", "v1", (13, 11, 3))]),
    ("mask: the inside test dropped", "flow_mask.cu", "c[p] = inside && consistent && smooth",
     "c[p] = consistent && smooth", [run(V.test_reliability_mask, "reliability_mask", "v1", (32, 30))]),
    ("mask: the motion boundary's threshold without the flow's length", "flow_mask.cu",
     "<= rmul(BOUNDARY_REL, b2) + BOUNDARY_ABS", "<= BOUNDARY_ABS",
     [run(V.test_reliability_mask, "reliability_mask", "v1", (32, 30))]),
]


def _caught(tests):
    for run in tests:
        try:
            run(np.random.default_rng(1234))
        except (pytest.fail.Exception, AssertionError, build.HostKernelError) as e:
            return type(e).__name__
    return None


@pytest.mark.parametrize("what,name,old,new,tests", BUGS, ids=[b[0] for b in BUGS])
def test_planted_bug_is_caught(what, name, old, new, tests):
    text = build.file_text(name)
    assert text.count(old) == 1, f"{name}: the planted change no longer applies ({old!r})"
    with build.patched({name: text.replace(old, new)}):
        assert _caught(tests), f"planted bug not caught: {what}"
