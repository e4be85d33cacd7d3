// tv_loss.cu — total variation of the H×W×3 RGB image and its gradient (SPEC.md), one pass.
// Legend: H×W pixels, 3 channels interleaved (x[(i·W + j)·3 + ch]).
//   J_tv = Σ (x[i+1,j]−x[i,j])² + Σ (x[i,j+1]−x[i,j])²
//   ∂J/∂x[i,j] = 2(x[i,j]−x[i−1,j])·[i>0] − 2(x[i+1,j]−x[i,j])·[i<H−1]  + the same along j
// Versions: v1 gather — one thread per element computes its own gradient from its 4 neighbours
// and adds the forward differences it owns (down, right) to the loss; no atomics on the gradient.
// (baseline "cupy" in the launcher: slicing as nst/losses.py.)  Bytes: ~5 reads (cached), 1 write.
#include "grid_stride.cuh"
#include "reduce.cuh"

// x H×W×3 -> grad H×W×3, *loss += J_tv  (loss zeroed by the launcher)
extern "C" __global__ void tv_loss_v1(const float* __restrict__ x, float* __restrict__ grad,
                                      float* __restrict__ loss, int H, int W)
{
    const int total = H * W * 3, row = W * 3;
    float s = 0.0f;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int i = e / row, j = (e - i * row) / 3;
        const float v = x[e];
        float g = 0.0f;
        if (i > 0)     g += 2.0f * (v - x[e - row]);
        if (j > 0)     g += 2.0f * (v - x[e - 3]);
        if (i < H - 1) { const float d = x[e + row] - v; g -= 2.0f * d; s = fmaf(d, d, s); }
        if (j < W - 1) { const float d = x[e + 3] - v;   g -= 2.0f * d; s = fmaf(d, d, s); }
        grad[e] = g;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(loss, s);
}
