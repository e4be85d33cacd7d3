// avgpool2x2.cu — 2×2 average pool, stride 2, floor for odd sizes, and its backward.
// Legend: C channels, H×W input, H2 = ⌊H/2⌋, W2 = ⌊W/2⌋.
//   y[c,i,j] = ¼ Σ x[c, 2i:2i+2, 2j:2j+2];   dx[c,p,q] = ¼ dy[c,p/2,q/2] (0 in a dropped row/column)
// Versions: v1 gather — one thread per output (forward) or per input pixel (backward).
// Bytes: forward reads 4·C·H2·W2 and writes C·H2·W2 floats; backward the reverse.
#include "grid_stride.cuh"

// x C×H×W -> y C×H2×W2
extern "C" __global__ void avgpool2x2_fwd_v1(const float* __restrict__ x, float* __restrict__ y,
                                             int C, int H, int W, int H2, int W2)
{
    const int total = C * H2 * W2;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int c = e / (H2 * W2), r = e - c * H2 * W2, i = r / W2, j = r - i * W2;
        const float* p = x + (c * H + 2 * i) * W + 2 * j;
        y[e] = ((p[0] + p[1]) + (p[W] + p[W + 1])) * 0.25f;
    }
}

// dy C×H2×W2 -> dx C×H×W
extern "C" __global__ void avgpool2x2_bwd_v1(const float* __restrict__ dy, float* __restrict__ dx,
                                             int C, int H, int W, int H2, int W2)
{
    const int total = C * H * W;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int c = e / (H * W), r = e - c * H * W, i = (r / W) >> 1, j = (r % W) >> 1;
        dx[e] = (i < H2 && j < W2) ? 0.25f * dy[(c * H2 + i) * W2 + j] : 0.0f;
    }
}
