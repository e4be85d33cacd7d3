// conv3x3_forward.cu — 3×3 conv, stride 1, zero pad 1, bias and ReLU fused (SPEC.md "The network").
// Legend: I channels in, O channels out, H×W spatial, N = H·W pixels, K = I·9 (channel, tap).
//   y[o,p,q] = max(0, b[o] + Σ_{i,dy,dx} w[o,i,dy,dx]·x[i, p+dy−1, q+dx−1])   (x = 0 outside)
// As a GEMM: Y (O×N) = Wm (O×K, w as stored) · X̃ (K×N), X̃[i·9+t, p·W+q] = x[i, p+t/3−1, q+t%3−1].
//
// Versions:
//   v1_naive     one thread per output, 9·I taps read straight from global memory.
//   v2_tiled     implicit GEMM: 64×64 output tiles, the im2col matrix X̃ built on the fly in shared
//                memory 16 rows at a time (gemm_tile.cuh), bias+ReLU in the epilogue; no K×N buffer.
//   v3_wmma_tf32 the same tiling on tensor cores, TF32 operands, FP32 accumulate (gemm_wmma.cuh).
//   im2col_cublas (baseline, in the launcher) im2col3x3 below into a K×chunk buffer, cupy.matmul,
//                then bias_relu.
// FLOPs 2·O·K·N; bytes ≥ 4·(I·N + O·N + O·K).
#include "grid_stride.cuh"
#include "gemm_tile.cuh"
#include "gemm_wmma.cuh"
#include "nan_math.cuh"

// A = w (O×K), B = implicit im2col of x (K×N)
struct ConvFwdLoad {
    const float* x; const float* w;
    int M, N, K, H, W;
    static constexpr bool B_K_FAST = false;
    __device__ float a(int m, int k) const { return w[m * K + k]; }
    __device__ float b(int k, int n) const {
        const int i = k / 9, t = k - 9 * i, yy = n / W + t / 3 - 1, xx = n % W + t % 3 - 1;
        return (yy >= 0 && yy < H && xx >= 0 && xx < W) ? x[(i * H + yy) * W + xx] : 0.0f;
    }
};

// x I×H×W, w O×I×3×3, b O -> y O×H×W;  grid-stride over the O·N outputs
extern "C" __global__ void conv3x3_relu_fwd_v1(const float* __restrict__ x, const float* __restrict__ w,
                                               const float* __restrict__ b, float* __restrict__ y,
                                               int I, int O, int H, int W)
{
    const int N = H * W, total = O * N;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int o = e / N, n = e - o * N, p = n / W, q = n - p * W;
        float s = b[o];
        for (int i = 0; i < I; ++i) {
            const float* wi = w + (o * I + i) * 9;
            for (int dy = 0; dy < 3; ++dy) {
                const int yy = p + dy - 1;
                if (yy < 0 || yy >= H) continue;
                for (int dx = 0; dx < 3; ++dx) {
                    const int xx = q + dx - 1;
                    if (xx >= 0 && xx < W) s = fmaf(wi[dy * 3 + dx], x[(i * H + yy) * W + xx], s);
                }
            }
        }
        y[e] = max_nan(s, 0.0f);
    }
}

// y[m, n] = max(0, v + b[m]): the bias+ReLU epilogue of v2 and v3 (NaN propagates, as np.maximum)
struct BiasReluStore {
    const float* b; float* y; int N;
    __device__ void operator()(int m, int n, float v) const { y[m * N + n] = max_nan(v + b[m], 0.0f); }
};

// same contract; grid (⌈N/64⌉, ⌈O/64⌉), 256 threads
extern "C" __global__ void conv3x3_relu_fwd_v2(const float* __restrict__ x, const float* __restrict__ w,
                                               const float* __restrict__ b, float* __restrict__ y,
                                               int I, int O, int H, int W)
{
    const ConvFwdLoad ld{x, w, O, H * W, I * 9, H, W};
    const int m0 = blockIdx.y * TILE_M, n0 = blockIdx.x * TILE_N;
    float acc[4][4] = {};
    tile_simt(ld, m0, n0, 0, ld.K, acc);
    tile_store(O, ld.N, m0, n0, acc, BiasReluStore{b, y, ld.N});
}

// same contract; grid (⌈N/64⌉, ⌈O/64⌉), 128 threads; TF32; sm_80+ (traps below)
extern "C" __global__ void conv3x3_relu_fwd_v3_wmma(const float* __restrict__ x, const float* __restrict__ w,
                                                    const float* __restrict__ b, float* __restrict__ y,
                                                    int I, int O, int H, int W)
{
#if NST_WMMA
    const ConvFwdLoad ld{x, w, O, H * W, I * 9, H, W};
    tile_wmma(ld, blockIdx.y * WT_M, blockIdx.x * WT_N, 0, ld.K, BiasReluStore{b, y, H * W});
#else
    __trap();
#endif
}

// baseline helper: x I×H×W -> cols K×cnt, cols[k, j] = X̃[k, n0 + j]  (pixels n0 … n0+cnt−1)
extern "C" __global__ void im2col3x3(const float* __restrict__ x, float* __restrict__ cols,
                                     int I, int H, int W, int n0, int cnt)
{
    const int total = I * 9 * cnt;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        const int k = e / cnt, n = n0 + (e - k * cnt), i = k / 9, t = k - 9 * i;
        const int yy = n / W + t / 3 - 1, xx = n % W + t % 3 - 1;
        cols[e] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? x[(i * H + yy) * W + xx] : 0.0f;
    }
}

// baseline helper: y O×N in place, y = max(0, y + b[o])
extern "C" __global__ void bias_relu(float* __restrict__ y, const float* __restrict__ b, int O, int N)
{
    const int total = O * N;
    for (long long e64 = grid_start(); e64 < total; e64 += grid_stride()) {
        const int e = int(e64);
        y[e] = max_nan(y[e] + b[e / N], 0.0f);
    }
}
