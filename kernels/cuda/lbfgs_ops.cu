// lbfgs_ops.cu — the vector operations of L-BFGS's two-loop recursion, on the device.
// Legend: n elements (the flattened image). Scalars produced by one kernel (a dot product) are
// read by the next from device memory: chained, they need no host read between kernels.
//   dot:        *out += Σ x·y                                     (out zeroed by the launcher)
//   axpy_ratio: y = β·y + α·(num[0]/den[0])·x   (e.g. q −= (sᵢ·q / yᵢ·sᵢ)·yᵢ; r = γ q with β = 0)
// Versions: v1 — grid-stride loops; dot reduces per block and adds atomically.
// Bytes: dot reads 8n; axpy_ratio reads 8n (4n when β = 0), writes 4n.
#include "grid_stride.cuh"
#include "reduce.cuh"

// x, y n -> *out += x·y
extern "C" __global__ void dot_v1(const float* __restrict__ x, const float* __restrict__ y,
                                  float* __restrict__ out, int n)
{
    float s = 0.0f;
    for (long long e64 = grid_start(); e64 < n; e64 += grid_stride()) {
        const int e = int(e64);
        s = fmaf(x[e], y[e], s);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(out, s);
}

// x n, y n in place; num, den 1-element device scalars
extern "C" __global__ void axpy_ratio_v1(const float* __restrict__ x, float* __restrict__ y,
                                         const float* __restrict__ num, const float* __restrict__ den,
                                         float alpha, float beta, int n)
{
    const float c = alpha * (num[0] / den[0]);
    for (long long e64 = grid_start(); e64 < n; e64 += grid_stride()) {
        const int e = int(e64);
        y[e] = (beta == 0.0f) ? c * x[e] : fmaf(beta, y[e], c * x[e]);
    }
}
