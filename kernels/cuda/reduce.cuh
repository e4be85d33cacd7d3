// reduce.cuh — block-wide float sum used by the loss kernels' epilogues.
#pragma once

// v: this thread's value -> the block's sum, valid in thread 0.  blockDim.x a multiple of 32
// (≤ 1024); every thread of the block must call it, once per kernel.
__device__ __forceinline__ float block_sum(float v)
{
    __shared__ float warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = (lane < (int)(blockDim.x >> 5)) ? warp_sums[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    }
    return v;
}
