// gemm_wmma.cuh — the tensor-core (TF32, nvcuda::wmma m16n16k8) version of gemm_tile.cuh's loop.
//
// Same loader contract (L.M, L.N, L.a, L.b, L::B_K_FAST). 128 threads = 4 warps in a 2×2 grid,
// each warp a 32×32 sub-tile = 2×2 fragments of 16×16. Operands are rounded to TF32 (10-bit
// mantissa) and accumulated in FP32: expect ~1e-3 relative error, not FP32's 1e-6.
// The finished 64×64 tile goes through shared memory; epi(m, n, value) is then called once per
// in-bounds element with consecutive threads on consecutive n (coalesced writes).
// TF32 tensor cores exist from sm_80: below that NST_WMMA is 0, tile_wmma is not declared and the
// kernels that use it compile to a trap (their launchers refuse such GPUs first).
#pragma once
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define NST_WMMA 1
#include <mma.h>

#define WT_M 64
#define WT_N 64
#define WT_K 16
#define WT_THREADS 128
#define WT_LDA (WT_K + 4)    // row strides: multiples of 4 floats and 32-byte aligned fragments
#define WT_LDB (WT_N + 4)
#define WT_LDC (WT_N + 4)

template <class L, class E>
__device__ __forceinline__ void tile_wmma(const L& ld, int m0, int n0, int k_begin, int k_end,
                                          const E& epi)
{
    using namespace nvcuda;
    __shared__ __align__(32) float As[WT_M][WT_LDA];   // As[m][k]
    __shared__ __align__(32) float Bs[WT_K][WT_LDB];   // Bs[k][n]
    __shared__ __align__(32) float Cs[WT_M][WT_LDC];
    const int tid = threadIdx.x, warp = tid >> 5, wm = warp >> 1, wn = warp & 1;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> c[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(c[i][j], 0.0f);

    for (int k0 = k_begin; k0 < k_end; k0 += WT_K) {
        for (int e = tid; e < WT_M * WT_K; e += WT_THREADS) {
            const int m = e / WT_K, k = e % WT_K, gm = m0 + m, gk = k0 + k;
            As[m][k] = (gm < ld.M && gk < k_end) ? ld.a(gm, gk) : 0.0f;
        }
        for (int e = tid; e < WT_K * WT_N; e += WT_THREADS) {
            int k, n;
            if (L::B_K_FAST) { k = e % WT_K; n = e / WT_K; }
            else             { n = e % WT_N; k = e / WT_N; }
            const int gk = k0 + k, gn = n0 + n;
            Bs[k][n] = (gn < ld.N && gk < k_end) ? ld.b(gk, gn) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < WT_K; kk += 8) {
            wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                wmma::load_matrix_sync(a[i], &As[wm * 32 + 16 * i][kk], WT_LDA);
#pragma unroll
                for (int t = 0; t < a[i].num_elements; ++t) a[i].x[t] = wmma::__float_to_tf32(a[i].x[t]);
            }
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                wmma::load_matrix_sync(b[j], &Bs[kk][wn * 32 + 16 * j], WT_LDB);
#pragma unroll
                for (int t = 0; t < b[j].num_elements; ++t) b[j].x[t] = wmma::__float_to_tf32(b[j].x[t]);
            }
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(c[i][j], a[i], b[j], c[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&Cs[wm * 32 + 16 * i][wn * 32 + 16 * j], c[i][j], WT_LDC,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int e = tid; e < WT_M * WT_N; e += WT_THREADS) {
        const int m = e / WT_N, n = e % WT_N;
        if (m0 + m < ld.M && n0 + n < ld.N) epi(m0 + m, n0 + n, Cs[m][n]);
    }
}
#else
#define NST_WMMA 0
#endif
