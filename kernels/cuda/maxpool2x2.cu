// maxpool2x2.cu — 2×2 max pool, stride 2, floor for odd sizes (SPEC.md), and its backward.
// Legend: C channels, H×W input, H2 = ⌊H/2⌋, W2 = ⌊W/2⌋.
//   y[c,i,j] = max of x[c, 2i:2i+2, 2j:2j+2]
//   dx[c,p,q] = dy[c,p/2,q/2] if (p,q) is its window's FIRST maximum in row-major order, else 0
//               (0 too in the dropped odd last row/column)
// Versions: v1 gather — one thread per output (forward) or per input pixel (backward: each pixel
// finds its window's first max itself, so no atomics and no zero-fill pass).
// Bytes: forward reads 4·C·H·W, writes C·H·W; backward reads 4·C·H·W + C·H2·W2, writes 4·C·H·W.
#include "grid_stride.cuh"
#include "nan_math.cuh"

// x C×H×W -> y C×H2×W2
extern "C" __global__ void maxpool2x2_fwd_v1(const float* __restrict__ x, float* __restrict__ y,
                                             int C, int H, int W, int H2, int W2)
{
    const int total = C * H2 * W2;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int c = e / (H2 * W2), r = e - c * H2 * W2, i = r / W2, j = r - i * W2;
        const float* p = x + (c * H + 2 * i) * W + 2 * j;
        y[e] = max_nan(max_nan(p[0], p[1]), max_nan(p[W], p[W + 1]));   // a NaN wins, as in np.max
    }
}

// dy C×H2×W2, x C×H×W -> dx C×H×W
extern "C" __global__ void maxpool2x2_bwd_v1(const float* __restrict__ dy, const float* __restrict__ x,
                                             float* __restrict__ dx, int C, int H, int W, int H2, int W2)
{
    const int total = C * H * W;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int c = e / (H * W), r = e - c * H * W, p = r / W, q = r - p * W;
        const int i = p >> 1, j = q >> 1;
        float g = 0.0f;
        if (i < H2 && j < W2) {
            const float* w = x + (c * H + 2 * i) * W + 2 * j;
            const float v[4] = {w[0], w[1], w[W], w[W + 1]};
            int first = 0;                                   // np.argmax: first max, or first NaN
            for (int t = 1; t < 4; ++t)
                if (v[first] == v[first] && (v[t] > v[first] || v[t] != v[t])) first = t;
            if (first == 2 * (p & 1) + (q & 1)) g = dy[(c * H2 + i) * W2 + j];
        }
        dx[e] = g;
    }
}
