// adam_step.cu — one Adam step in place on the image, fused, optional clip to [lo, hi].
// Legend: n elements (the H×W×3 image), t the step number from 1.
//   m = β1 m + (1−β1) g;  v = β2 v + (1−β2) g²;  x −= lr · (m/bc1) / (√(v/bc2) + ε);
//   x = clip(x, lo, hi) (±inf: no clip; a NaN stays NaN, as np.clip)
//   bc1 = 1 − β1^t, bc2 = 1 − β2^t computed once by the launcher.
// Versions: v1 — grid-stride, one element per thread per iteration.
// Bytes: reads 16n, writes 12n; ~12 FLOPs per element: bandwidth-bound.
#include "grid_stride.cuh"
#include "nan_math.cuh"

// x, m, v in place; g read (the argument order of nst.ops.adam_step)
extern "C" __global__ void adam_step_v1(float* __restrict__ x, const float* __restrict__ g, float* __restrict__ m,
                                        float* __restrict__ v, int n, float lr, float b1, float b2,
                                        float eps, float bc1, float bc2, float lo, float hi)
{
    for (long long e64 = grid_start(); e64 < n; e64 += grid_stride()) {
        const int e = int(e64);
        const float ge = g[e];
        const float me = fmaf(b1, m[e], (1.0f - b1) * ge);
        const float ve = fmaf(b2, v[e], (1.0f - b2) * ge * ge);
        m[e] = me;
        v[e] = ve;
        const float xe = x[e] - lr * (me / bc1) / (sqrtf(ve / bc2) + eps);
        x[e] = min_nan(max_nan(xe, lo), hi);
    }
}
