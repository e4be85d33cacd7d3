"""3×3 convolution backward to the input with the ReLU mask fused, CPU kernels.

Legend: I channels in, O channels out, H×W spatial; w O×I×3×3; a O×H×W the layer's ReLU output;
        rev(t) = t reversed along both spatial axes.
Formula (the transposed convolution of conv3x3_forward.py, through the ReLU):
        dx[i,y,x] = Σ_{o,ty,tx} w[o,i,ty,tx] · (da·[a>0])[o, y+1−ty, x+1−tx]
that is a "same" 3×3 correlation of da·[a>0] with the flipped, transposed w'[i,o,dy,dx] =
w[o,i,2−dy,2−dx]. Flipping the taps is the same as reversing the image before and after:
        dx = rev(corr3x3(rev(da·[a>0]), wᵀ)),   wᵀ[i,o,dy,dx] = w[o,i,dy,dx]
so every forward core (conv3x3_forward.CORES) serves here with backward=True: the reversal is
done by index while the input is packed/transformed (where the ReLU mask is applied too: no
masked copy of da is written) and while the output is written, and the cores read the very
forms of w the forward reads (the Winograd U, the tap matrices, w itself; v1 and v3 read their
own I×9O matrix).

Versions (same ideas as the forward, see conv3x3_forward.py):
  v1 im2col + sgemm; v2 9 tap GEMMs on shifted flat views; v3 flat-shift im2col per row block;
  v4 Winograd F(2×2,3×3); v5 Winograd F(4×4,3×3); v6 direct (few channels); v7 v5 fused
  per thread (few channels, large images).
"""
import numpy as np

from .conv3x3_forward import CORES, READS, TOLERANCE, as_weights  # noqa: F401 (TOLERANCE: same cores, same rule)


def _make(version):
    core = CORES[version]

    def conv3x3_relu_backward_input(da, a, w):
        # da, a O×H×W, w O×I×3×3 (or ConvWeights) -> dx I×H×W;  dx = rev(corr(rev(da·[a>0]), wᵀ))
        cw = as_weights(w)
        da = np.ascontiguousarray(da, dtype=np.float32)
        dx = np.empty((cw.shape[1], *da.shape[1:]), np.float32)
        core(da, cw, None, np.ascontiguousarray(a), False, True, dx)
        return dx
    conv3x3_relu_backward_input.reads = READS[version][1:]
    return conv3x3_relu_backward_input


VERSIONS = {"conv3x3_relu_backward_input": {v: _make(v) for v in CORES}}
