// flow_mask.cu — the reliability mask of a flow pair (video; Ruder, Dosovitskiy & Brox 2016):
// c(x) = 1 where pixel x of frame i is reliably seen in frame i−1, else 0 (nst/flow.py
// `reliability_mask`, the reference; kernels/flow_mask.py the Numba kernel):
//   inside:      x + back(x) in [0, W−1]×[0, H−1]
//   consistent:  |back + ŵ|² ≤ 0.01·(|back|² + |ŵ|²) + 0.5,  ŵ = fwd(x + back(x)) bilinear
//   no boundary: |∇u|² + |∇v|² ≤ 0.01·|back|² + 0.002  (central differences, clamped index)
// Legend: H×W pixels; back, fwd H×W×2 (the flows i → i−1 and i−1 → i, [2p] along x, [2p + 1]
// along y); c H×W float32 in {0, 1}.
// Versions: v1 — grid-stride over the H·W pixels, one pass per pixel: the bilinear sample of
//   fwd, the gradient of back from its 4 neighbours, the three tests, all in double with every
//   product rounded before it is summed (bilinear.cuh rmul: no FMA), so the thresholds compare
//   the reference's values and c equals the reference's bit for bit.
//   (baseline "cupy" in the launcher: the NumPy reference run by CuPy.)
// Bytes (512²): reads back 2 MiB (5 reads per element, cached) + fwd 2 MiB, writes 1 MiB.
#include "bilinear.cuh"
#include "grid_stride.cuh"

// nst/flow.py's thresholds (tests/test_video_kernels.py checks they agree)
constexpr double CONSISTENCY_REL = 0.01, CONSISTENCY_ABS = 0.5;
constexpr double BOUNDARY_REL = 0.01, BOUNDARY_ABS = 0.002;

// back H×W×2, pixel (i, j) -> |∇u|² + |∇v|², ∂_x u = (u(i, min(j+1, W−1)) − u(i, max(j−1, 0))) / 2, …
__device__ __forceinline__ double flow_gradient_sq(const float* back, int i, int j, int H, int W)
{
    const int left = i * W + max(j - 1, 0), right = i * W + min(j + 1, W - 1);
    const int up = max(i - 1, 0) * W + j, down = min(i + 1, H - 1) * W + j;
    double g = 0.0;
    for (int ch = 0; ch < 2; ++ch) {
        const double dx = (double(back[2 * right + ch]) - double(back[2 * left + ch])) / 2.0;
        const double dy = (double(back[2 * down + ch]) - double(back[2 * up + ch])) / 2.0;
        g += dot2(dx, dx, dy, dy);
    }
    return g;
}

// back, fwd H×W×2 -> c H×W: 1 where inside ∧ consistent ∧ no boundary, else 0
extern "C" __global__ void flow_mask_v1(const float* __restrict__ back, const float* __restrict__ fwd,
                                        float* __restrict__ c, int H, int W)
{
    const int n = H * W;
    for (long long p64 = grid_start(); p64 < n; p64 += grid_stride()) {
        const int p = int(p64), i = p / W, j = p % W;
        const double u = back[2 * p], v = back[2 * p + 1], fx = j + u, fy = i + v;
        const Bilinear s = bilinear_at(fx, fy, H, W);
        const double f0 = s.at(fwd, 2, 0), f1 = s.at(fwd, 2, 1);
        const double b2 = dot2(u, u, v, v), f2 = dot2(f0, f0, f1, f1);
        const double d2 = dot2(u + f0, u + f0, v + f1, v + f1);
        const bool inside = fx >= 0.0 && fx <= W - 1.0 && fy >= 0.0 && fy <= H - 1.0;
        const bool consistent = d2 <= rmul(CONSISTENCY_REL, b2 + f2) + CONSISTENCY_ABS;
        const bool smooth = flow_gradient_sq(back, i, j, H, W) <= rmul(BOUNDARY_REL, b2) + BOUNDARY_ABS;
        c[p] = inside && consistent && smooth ? 1.0f : 0.0f;
    }
}
