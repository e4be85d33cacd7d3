// gemm_tile.cuh — the one tiled main loop behind every GEMM-shaped kernel here (SIMT, FP32).
//
// acc[m0:m0+64, n0:n0+64] += Σ_{k ∈ [k_begin, k_end)} A(m,k)·B(k,n), A and B read through a
// loader L: L.M, L.N (bounds), L.a(m,k), L.b(k,n), L::B_K_FAST (B's memory is contiguous in k,
// e.g. Fᵀ in the Gram, rather than in n). Conv (implicit im2col), the Gram F·Fᵀ and the style
// gradient diff·F each only write a loader, so the loop is checked once for all of them.
// 256 threads; thread (tx = tid%16, ty = tid/16) owns rows ty+16i, cols tx+16j (i, j < 4): the
// interleave keeps shared reads conflict-free and global writes coalesced.
// Per 16-deep k step: 2·64·16 floats loaded to shared, 64·64·16 FMAs (16 per loaded float pair).
// tile_store then hands each in-bounds acc element to an epilogue epi(m, n, value), the same
// functor contract as gemm_wmma.cuh's tile_wmma (StoreTo below, or a kernel's own: bias+ReLU…).
#pragma once

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16
#define TILE_THREADS 256

template <class L>
__device__ __forceinline__ void tile_simt(const L& ld, int m0, int n0, int k_begin, int k_end,
                                          float acc[4][4])
{
    __shared__ float As[TILE_K][TILE_M + 1];   // As[k][m]: A tile transposed
    __shared__ float Bs[TILE_K][TILE_N + 1];   // Bs[k][n]
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    for (int k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        for (int e = tid; e < TILE_M * TILE_K; e += TILE_THREADS) {
            const int m = e / TILE_K, k = e % TILE_K, gm = m0 + m, gk = k0 + k;
            As[k][m] = (gm < ld.M && gk < k_end) ? ld.a(gm, gk) : 0.0f;
        }
        for (int e = tid; e < TILE_K * TILE_N; e += TILE_THREADS) {
            int k, n;
            if (L::B_K_FAST) { k = e % TILE_K; n = e / TILE_K; }
            else             { n = e % TILE_N; k = e / TILE_N; }
            const int gk = k0 + k, gn = n0 + n;
            Bs[k][n] = (gn < ld.N && gk < k_end) ? ld.b(gk, gn) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < TILE_K; ++k) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[k][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
}

// acc of this thread (rows m0+ty+16i, cols n0+tx+16j) -> epi(m, n, acc[i][j]) for m < M, n < N
template <class E>
__device__ __forceinline__ void tile_store(int M, int N, int m0, int n0, const float acc[4][4], const E& epi)
{
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int m = m0 + ty + 16 * i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int n = n0 + tx + 16 * j;
            if (n < N) epi(m, n, acc[i][j]);
        }
    }
}

// y[m, n] = scale · v  (row stride N)
struct StoreTo {
    float* y; int N; float scale;
    __device__ void operator()(int m, int n, float v) const { y[m * N + n] = scale * v; }
};
