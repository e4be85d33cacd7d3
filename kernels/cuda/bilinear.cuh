// bilinear.cuh — a bilinear sample at a double coordinate, taken as nst/flow.py `sample` takes it:
// the coordinate clamped to [0, W−1]×[0, H−1], the cell's corner at most (W−2, H−2), the weights
// and the sums in double. Products go through rmul (__dmul_rn), which CUDA never fuses into an
// FMA, so each sum rounds as NumPy's does (the mask's thresholds compare exactly).
#pragma once

__device__ __forceinline__ double rmul(double a, double b) { return __dmul_rn(a, b); }

// a*x + b*y with both products rounded first (never an FMA)
__device__ __forceinline__ double dot2(double a, double x, double b, double y) { return rmul(a, x) + rmul(b, y); }

struct Bilinear {
    int p00, p01, p10, p11;       // pixel indices of the cell's corners (row y0 or y1, column x0 or x1)
    double ax, ay;                // the weights of x1 and y1

    // img H×W×K interleaved -> channel ch at the point: (1−ay)·top + ay·bottom
    __device__ __forceinline__ double at(const float* img, int K, int ch) const
    {
        const double top = dot2(1.0 - ax, img[p00 * K + ch], ax, img[p01 * K + ch]);
        const double bottom = dot2(1.0 - ax, img[p10 * K + ch], ax, img[p11 * K + ch]);
        return dot2(1.0 - ay, top, ay, bottom);
    }
};

// (fx, fy) a point of an H×W image -> its cell and weights
__device__ __forceinline__ Bilinear bilinear_at(double fx, double fy, int H, int W)
{
    fx = fx < 0.0 ? 0.0 : fx > W - 1.0 ? W - 1.0 : fx;
    fy = fy < 0.0 ? 0.0 : fy > H - 1.0 ? H - 1.0 : fy;
    const int x0 = W > 1 ? min(int(floor(fx)), W - 2) : 0, x1 = min(x0 + 1, W - 1);
    const int y0 = H > 1 ? min(int(floor(fy)), H - 2) : 0, y1 = min(y0 + 1, H - 1);
    Bilinear s;
    s.p00 = y0 * W + x0, s.p01 = y0 * W + x1, s.p10 = y1 * W + x0, s.p11 = y1 * W + x1;
    s.ax = fx - x0, s.ay = fy - y0;
    return s;
}
