// conv3x3_backward_input.cu — gradient of conv3x3+ReLU to its input, the ReLU mask fused.
// Legend: I channels in, O channels out, H×W spatial, N = H·W, K = O·9.
//   g = da·[a > 0]   (a the saved ReLU output, O×H×W)
//   dx[i,p,q] = Σ_{o,dy,dx} w[o,i,dy,dx]·g[o, p−dy+1, q−dx+1]
//             = Σ_{o,t} w[o,i,8−t]·g[o, p+t/3−1, q+t%3−1]  (a forward conv with the kernel
//               transposed in channels and flipped in space: same im2col, no weight repack)
// As a GEMM: dX (I×K') … A(i, o·9+t) = w[o,i,8−t], B(o·9+t, n) = g shifted by tap t.
//
// Versions:
//   v1_naive     one thread per dx element, O·9 taps from global memory.
//   v2_tiled     implicit GEMM over 64×64 tiles (gemm_tile.cuh), mask applied while loading B.
//   v3_wmma_tf32 the same on tensor cores, TF32 (gemm_wmma.cuh).
//   im2col_cublas (baseline, in the launcher) im2col3x3_masked below, then cupy.matmul with the
//                flipped, transposed weights.
// FLOPs 2·I·K·N.
#include "grid_stride.cuh"
#include "gemm_tile.cuh"
#include "gemm_wmma.cuh"

struct ConvBwdLoad {
    const float* da; const float* act; const float* w;
    int M, N, K, H, W;                       // M = I, K = O·9
    static constexpr bool B_K_FAST = false;
    __device__ float a(int m, int k) const {
        const int o = k / 9;
        return w[(o * M + m) * 9 + 8 - (k - 9 * o)];
    }
    __device__ float b(int k, int n) const {
        const int o = k / 9, t = k - 9 * o, yy = n / W + t / 3 - 1, xx = n % W + t % 3 - 1;
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) return 0.0f;
        const int idx = (o * H + yy) * W + xx;
        return act[idx] > 0.0f ? da[idx] : 0.0f;
    }
};

// da, a O×H×W, w O×I×3×3 -> dx I×H×W;  grid-stride over the I·N outputs
extern "C" __global__ void conv3x3_relu_bwd_v1(const float* __restrict__ da, const float* __restrict__ act,
                                               const float* __restrict__ w, float* __restrict__ dx,
                                               int I, int O, int H, int W)
{
    const int N = H * W, total = I * N;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int i = e / N, n = e - i * N, p = n / W, q = n - p * W;
        float s = 0.0f;
        for (int o = 0; o < O; ++o) {
            const float* wo = w + (o * I + i) * 9;
            for (int dy = 0; dy < 3; ++dy) {
                const int yy = p - dy + 1;
                if (yy < 0 || yy >= H) continue;
                for (int dxx = 0; dxx < 3; ++dxx) {
                    const int xx = q - dxx + 1;
                    if (xx < 0 || xx >= W) continue;
                    const int idx = (o * H + yy) * W + xx;
                    if (act[idx] > 0.0f) s = fmaf(wo[dy * 3 + dxx], da[idx], s);
                }
            }
        }
        dx[e] = s;
    }
}

// same contract; grid (⌈N/64⌉, ⌈I/64⌉), 256 threads
extern "C" __global__ void conv3x3_relu_bwd_v2(const float* __restrict__ da, const float* __restrict__ act,
                                               const float* __restrict__ w, float* __restrict__ dx,
                                               int I, int O, int H, int W)
{
    const ConvBwdLoad ld{da, act, w, I, H * W, O * 9, H, W};
    const int m0 = blockIdx.y * TILE_M, n0 = blockIdx.x * TILE_N;
    float acc[4][4] = {};
    tile_simt(ld, m0, n0, 0, ld.K, acc);
    tile_store(I, ld.N, m0, n0, acc, StoreTo{dx, ld.N, 1.0f});
}

// same contract; grid (⌈N/64⌉, ⌈I/64⌉), 128 threads; TF32; sm_80+ (traps below)
extern "C" __global__ void conv3x3_relu_bwd_v3_wmma(const float* __restrict__ da, const float* __restrict__ act,
                                                    const float* __restrict__ w, float* __restrict__ dx,
                                                    int I, int O, int H, int W)
{
#if NST_WMMA
    const ConvBwdLoad ld{da, act, w, I, H * W, O * 9, H, W};
    tile_wmma(ld, blockIdx.y * WT_M, blockIdx.x * WT_N, 0, ld.K, StoreTo{dx, H * W, 1.0f});
#else
    __trap();
#endif
}

// baseline helper: da, a O×H×W -> cols K×cnt, cols[o·9+t, j] = g[o, p+t/3−1, q+t%3−1] at pixel n0+j
extern "C" __global__ void im2col3x3_masked(const float* __restrict__ da, const float* __restrict__ act,
                                            float* __restrict__ cols, int O, int H, int W, int n0, int cnt)
{
    const int total = O * 9 * cnt;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int k = e / cnt, n = n0 + (e - k * cnt), o = k / 9, t = k - 9 * o;
        const int yy = n / W + t / 3 - 1, xx = n % W + t % 3 - 1;
        float v = 0.0f;
        if (yy >= 0 && yy < H && xx >= 0 && xx < W) {
            const int idx = (o * H + yy) * W + xx;
            v = act[idx] > 0.0f ? da[idx] : 0.0f;
        }
        cols[e] = v;
    }
}
