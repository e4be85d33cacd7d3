// grid_stride.cuh — the grid-stride loop, with a 64-bit index: the launchers allow totals up to
// INT32_MAX, and an int index within one stride of that would wrap to a negative offset.
//   for (long long e64 = grid_start(); e64 < n; e64 += grid_stride()) { const int e = int(e64); … }
// (e < n ≤ INT32_MAX, so the element index itself and all arithmetic on it stay 32-bit.)
#pragma once

__device__ __forceinline__ long long grid_start() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ long long grid_stride() { return (long long)gridDim.x * blockDim.x; }
