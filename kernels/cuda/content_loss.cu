// content_loss.cu — J_c = ½ Σ (a − target)², ∂J_c/∂a = a − target  (SPEC.md), one fused pass.
// Legend: n = C·H·W elements of the layer.
// Versions: v1 fused — grid-stride diff written, Σ diff² reduced per block then atomically added.
//   (baseline "cupy" in the launcher: elementwise ops + cupy.sum.)
// Bytes: reads 8n, writes 4n; FLOPs 3n: bandwidth-bound (n = 512·128² is 33 MB, ~10 µs at 3 TB/s).
#include "grid_stride.cuh"
#include "reduce.cuh"

// a, t n -> diff n, *loss += ½ Σ diff²  (loss zeroed by the launcher)
extern "C" __global__ void content_loss_v1(const float* __restrict__ a, const float* __restrict__ t,
                                           float* __restrict__ diff, float* __restrict__ loss, int n)
{
    float s = 0.0f;
    for (long long e64 = grid_start(); e64 < n; e64 += grid_stride()) {
        const int e = int(e64);
        const float d = a[e] - t[e];
        diff[e] = d;
        s = fmaf(d, d, s);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(loss, 0.5f * s);
}
