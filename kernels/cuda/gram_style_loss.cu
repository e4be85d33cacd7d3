// gram_style_loss.cu — Gram matrix and the fused style loss + gradient of one layer (SPEC.md).
// Legend: C channels, hw = h·w pixels, F = a^l(X) laid out C×hw, T = Ĝ(S) the target (C×C).
//   Ĝ = F Fᵀ / hw;   J_s^l = Σ (Ĝ − T)² / C²;   ∂J/∂F = 4 (Ĝ − T) F / (C² hw)
//
// Versions:
//   v1 plain     gram_v1: one block per Ĝ element, a block-wide dot product over hw;
//                style_diff_v1: diff = Ĝ − T and the loss; style_grad_v1: one thread per output.
//   v2 fused     gram_v2_splitk: only the upper-triangle 64×64 tiles (Ĝ is symmetric), hw split
//                over gridDim.y blocks that atomically add into an accumulator; the LAST block to
//                finish a tile (a ticket counter) runs the epilogue: scale by 1/hw, write both
//                halves of Ĝ — or of diff = Ĝ − T with the tile's Σ diff² added into the loss —
//                so one pass over F gives the loss. style_grad_v2: one tiled GEMM diff·F (2nd pass).
//   cublas       (baseline, in the launcher) cupy.matmul for F Fᵀ and diff·F, cupy for the rest.
// FLOPs: Gram 2·C²·hw (v2 computes ≈ half of that plus the diagonal tiles), gradient 2·C²·hw.
#include "grid_stride.cuh"
#include "gemm_tile.cuh"
#include "reduce.cuh"

// a(m,k) = F[m,k], b(k,n) = F[n,k]: F Fᵀ
struct GramLoad {
    const float* F; int M, N, HW;
    static constexpr bool B_K_FAST = true;
    __device__ float a(int m, int k) const { return F[m * HW + k]; }
    __device__ float b(int k, int n) const { return F[n * HW + k]; }
};

// a(m,k) = diff[m,k], b(k,n) = F[k,n]: diff·F
struct GradLoad {
    const float* D; const float* F; int M, N, C;
    static constexpr bool B_K_FAST = false;
    __device__ float a(int m, int k) const { return D[m * C + k]; }
    __device__ float b(int k, int n) const { return F[k * N + n]; }
};

// acc[m, n] += v  (split-K partial sums of Ĝ, row stride C)
struct AtomicAddTo {
    float* acc; int C;
    __device__ void operator()(int m, int n, float v) const { atomicAdd(&acc[m * C + n], v); }
};

// F C×hw -> G C×C = F Fᵀ / hw;  grid C·C blocks, 256 threads
extern "C" __global__ void gram_v1(const float* __restrict__ F, float* __restrict__ G, int C, int HW, float inv_hw)
{
    const int i = blockIdx.x / C, j = blockIdx.x - i * C;
    const float* fi = F + i * HW;
    const float* fj = F + j * HW;
    float s = 0.0f;
    for (int k = threadIdx.x; k < HW; k += blockDim.x) s = fmaf(fi[k], fj[k], s);
    s = block_sum(s);
    if (threadIdx.x == 0) G[blockIdx.x] = s * inv_hw;
}

// G, T C×C -> diff = G − T (C×C), *loss += Σ diff² · inv_c2  (loss zeroed by the launcher)
extern "C" __global__ void style_diff_v1(const float* __restrict__ G, const float* __restrict__ T,
                                         float* __restrict__ diff, float* __restrict__ loss, int n, float inv_c2)
{
    float s = 0.0f;
    for (long long e64 = grid_start(); e64 < n; e64 += grid_stride()) {
        const int e = int(e64);
        const float d = G[e] - T[e];
        diff[e] = d;
        s = fmaf(d, d, s);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(loss, s * inv_c2);
}

// diff C×C, F C×hw -> grad C×hw = scale · diff·F
extern "C" __global__ void style_grad_v1(const float* __restrict__ D, const float* __restrict__ F,
                                         float* __restrict__ grad, int C, int HW, float scale)
{
    const int total = C * HW;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int c = e / HW, n = e - c * HW;
        float s = 0.0f;
        for (int k = 0; k < C; ++k) s = fmaf(D[c * C + k], F[k * HW + n], s);
        grad[e] = scale * s;
    }
}

// F C×hw (-> acc C×C scratch, zeroed; tickets one int per tile pair, zeroed)
//   with_target == 0: out = Ĝ (C×C), T and loss unused;   else out = diff = Ĝ − T and *loss += Σ diff² · inv_c2.
// grid (P, S): P = nt(nt+1)/2 upper-triangle tile pairs (nt = ⌈C/64⌉), S hw-splits of split_len
// (a multiple of TILE_K) each; 256 threads.
extern "C" __global__ void gram_v2_splitk(const float* __restrict__ F, float* __restrict__ acc_g,
                                          unsigned int* __restrict__ tickets, const float* __restrict__ T,
                                          float* __restrict__ out, float* __restrict__ loss,
                                          int C, int HW, int split_len, int with_target, float inv_hw, float inv_c2)
{
    const int nt = (C + TILE_M - 1) / TILE_M;
    int p = blockIdx.x, ti = 0;
    while (p >= nt - ti) { p -= nt - ti; ++ti; }        // pair index -> (ti ≤ tj)
    const int tj = ti + p, m0 = ti * TILE_M, n0 = tj * TILE_N;
    const int k_begin = blockIdx.y * split_len, k_end = min(HW, k_begin + split_len);

    const GramLoad ld{F, C, C, HW};
    float acc[4][4] = {};
    tile_simt(ld, m0, n0, k_begin, k_end, acc);
    tile_store(C, C, m0, n0, acc, AtomicAddTo{acc_g, C});

    // last block of this tile pair: every other split's atomics are visible after the fence
    __shared__ unsigned int ticket;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) ticket = atomicAdd(&tickets[blockIdx.x], 1u);
    __syncthreads();
    if (ticket != gridDim.y - 1) return;                 // block-uniform
    __threadfence();

    float s = 0.0f;
    for (int e = threadIdx.x; e < TILE_M * TILE_N; e += TILE_THREADS) {
        const int m = m0 + e / TILE_N, n = n0 + e % TILE_N;
        if (m >= C || n >= C) continue;
        const float g = __ldcg(&acc_g[m * C + n]) * inv_hw;   // L2, not a stale L1 line
        if (!with_target) {
            out[m * C + n] = g;
            if (ti != tj) out[n * C + m] = g;            // a diagonal tile holds both halves itself
        } else {
            const float d = g - T[m * C + n];
            out[m * C + n] = d;
            s = fmaf(d, d, s);
            if (ti != tj) {                              // the mirrored element, own target
                const float dt = g - T[n * C + m];
                out[n * C + m] = dt;
                s = fmaf(dt, dt, s);
            }
        }
    }
    if (!with_target) return;                            // uniform: no block_sum needed
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(loss, s * inv_c2);
}

// diff C×C, F C×hw -> grad C×hw = scale · diff·F;  grid (⌈hw/64⌉, ⌈C/64⌉), 256 threads
extern "C" __global__ void style_grad_v2(const float* __restrict__ D, const float* __restrict__ F,
                                         float* __restrict__ grad, int C, int HW, float scale)
{
    const GradLoad ld{D, F, C, HW, C};
    const int m0 = blockIdx.y * TILE_M, n0 = blockIdx.x * TILE_N;
    float acc[4][4] = {};
    tile_simt(ld, m0, n0, 0, C, acc);
    tile_store(C, HW, m0, n0, acc, StoreTo{grad, HW, scale});
}
