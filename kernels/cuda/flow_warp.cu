// flow_warp.cu — the backward warp of video: ω(x) = image(x + back(x)), bilinear, clamped at the
// border (nst/flow.py `warp`, the reference; kernels/flow_warp.py the Numba kernel).
// Legend: H×W pixels; image, ω H×W×K interleaved (image[(i·W + j)·K + ch]); back H×W×2 the flow
// from frame i to frame i−1 (back[2p] along x = columns, back[2p + 1] along y = rows).
// Versions: v1 — grid-stride over the H·W pixels; each computes its cell and weights once
//   (double, bilinear.cuh) and gathers its K channels from the 4 corners.
//   (baseline "cupy" in the launcher: the NumPy reference run by CuPy.)
// Bytes (512², K = 3): reads 2 MiB of flow + 4 corners × 3 MiB (mostly cached), writes 3 MiB;
// ~10 double FLOPs per channel: bandwidth-bound where doubles are full rate, not far off elsewhere.
#include "bilinear.cuh"
#include "grid_stride.cuh"

// image H×W×K, back H×W×2 -> out H×W×K, out(x) = Σ bilinear weights · image(corners of x + back(x))
extern "C" __global__ void flow_warp_v1(const float* __restrict__ image, const float* __restrict__ back,
                                        float* __restrict__ out, int H, int W, int K)
{
    const int n = H * W;
    for (long long p64 = grid_start(); p64 < n; p64 += grid_stride()) {
        const int p = int(p64);
        const Bilinear s = bilinear_at(p % W + double(back[2 * p]), p / W + double(back[2 * p + 1]), H, W);
        for (int ch = 0; ch < K; ++ch) out[p * K + ch] = float(s.at(image, K, ch));
    }
}
