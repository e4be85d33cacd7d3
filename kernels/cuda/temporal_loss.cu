// temporal_loss.cu — the video temporal loss J_t = (1/D) Σ c·(x − ω)² and ∂J_t/∂x = 2c(x − ω)/D,
// D = H·W·3 (docs/maths.md "Video: the temporal loss"), one fused pass.
// Legend: H×W pixels; x, ω (target) H×W×3 interleaved (x[(i·W + j)·3 + ch]); c H×W the mask.
// Versions: v1 fused — grid-stride over the 3·H·W elements, each reads its pixel's mask
//   (c[e / 3]), writes its gradient and adds c·d² to a per-thread sum; block sum, one atomicAdd.
//   (baseline "cupy" in the launcher: the NumPy reference run by CuPy.)
// Bytes: reads 8n + 4n/3, writes 4n; FLOPs 5n: bandwidth-bound (n = 3·512² is 3 MiB).
#include "grid_stride.cuh"
#include "reduce.cuh"

// x, t n = 3·H·W, c H·W -> grad n, *loss += (1/D) Σ c·(x − t)²  (loss zeroed by the launcher)
extern "C" __global__ void temporal_loss_v1(const float* __restrict__ x, const float* __restrict__ t,
                                            const float* __restrict__ c, float* __restrict__ grad,
                                            float* __restrict__ loss, int n, float inv_d)
{
    float s = 0.0f;
    for (long long e64 = grid_start(); e64 < n; e64 += grid_stride()) {
        const int e = int(e64);
        const float m = c[e / 3], d = x[e] - t[e];
        grad[e] = 2.0f * inv_d * m * d;
        s = fmaf(m * d, d, s);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(loss, s * inv_d);
}
