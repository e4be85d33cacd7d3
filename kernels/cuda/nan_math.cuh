// nan_math.cuh — max/min that propagate NaN as NumPy's np.maximum / np.minimum / np.clip do
// (fmaxf/fminf return the other operand, so a NaN would vanish through ReLU, pooling or a clip).
#pragma once

__device__ __forceinline__ float max_nan(float a, float b) { return (a > b || a != a) ? a : b; }
__device__ __forceinline__ float min_nan(float a, float b) { return (a < b || a != a) ? a : b; }
