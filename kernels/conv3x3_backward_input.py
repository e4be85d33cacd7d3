"""3×3 convolution backward to the input with the ReLU mask fused, CPU kernels.

Legend: I channels in, O channels out, H×W spatial; w O×I×3×3; a O×H×W the layer's ReLU output.
Formula (the transposed convolution of conv3x3_forward.py, through the ReLU):
        dx[i,y,x] = Σ_{o,ty,tx} w[o,i,ty,tx] · (da·[a>0])[o, y+1−ty, x+1−tx]
which is a "same" 3×3 convolution of da·[a>0] with w'[i,o,dy,dx] = w[o,i,2−dy,2−dx], no bias, no
ReLU. So every forward core (conv3x3_forward.CORES) serves here, with the ReLU mask applied while
the input is packed/transformed (no separate masked copy of da is written):

Versions (same ideas as the forward, see conv3x3_forward.py):
  v1 im2col + sgemm; v2 9 tap GEMMs on shifted flat views; v3 flat-shift im2col per row block;
  v4 Winograd F(2×2,3×3); v5 Winograd F(4×4,3×3); v6 direct (few channels); best: by layer shape from BEST.
"""
import numpy as np

from .conv3x3_forward import CORES, ConvWeights

# Measured winners by output channels of the backward (= the forward's input channels I): v4 on
# every layer, 3→64 included (bench/RESULTS.md: 24 vs v6's 12 GFLOP/s at 256²).
BEST = {}
BEST_DEFAULT = "v4"


def _as_weights(w):
    return w if isinstance(w, ConvWeights) else ConvWeights(w, None)


def _make(core):
    def conv3x3_relu_backward_input(da, a, w):
        # da, a O×H×W, w O×I×3×3 (or ConvWeights) -> dx I×H×W
        cw = _as_weights(w).flipped()
        da = np.ascontiguousarray(da, dtype=np.float32)
        return core(da, cw, mask=np.ascontiguousarray(a), bias=False, relu=False)
    return conv3x3_relu_backward_input


conv3x3_relu_backward_input_v1 = _make(CORES["v1"])
conv3x3_relu_backward_input_v2 = _make(CORES["v2"])
conv3x3_relu_backward_input_v3 = _make(CORES["v3"])
conv3x3_relu_backward_input_v4 = _make(CORES["v4"])
conv3x3_relu_backward_input_v5 = _make(CORES["v5"])
conv3x3_relu_backward_input_v6 = _make(CORES["v6"])


def conv3x3_relu_backward_input_best(da, a, w):
    # da, a O×H×W -> dx I×H×W;  the version BEST picks for this layer shape
    cw = _as_weights(w).flipped()
    i = cw.w.shape[0]
    core = CORES[BEST.get(i, BEST_DEFAULT)]
    da = np.ascontiguousarray(da, dtype=np.float32)
    return core(da, cw, mask=np.ascontiguousarray(a), bias=False, relu=False)


KERNELS = {
    "conv3x3_relu_backward_input_v1": conv3x3_relu_backward_input_v1,
    "conv3x3_relu_backward_input_v2": conv3x3_relu_backward_input_v2,
    "conv3x3_relu_backward_input_v3": conv3x3_relu_backward_input_v3,
    "conv3x3_relu_backward_input_v4": conv3x3_relu_backward_input_v4,
    "conv3x3_relu_backward_input_v5": conv3x3_relu_backward_input_v5,
    "conv3x3_relu_backward_input_v6": conv3x3_relu_backward_input_v6,
    "conv3x3_relu_backward_input_best": conv3x3_relu_backward_input_best,
}
