// cuda_cpu_cases.cu — small kernels that each break (or use) one rule of the CUDA model, for
// tests/test_cuda_cpu.py: the cuda-cpu emulator must report the error, not hang or guess.
#include "grid_stride.cuh"
#include "reduce.cuh"
#include <mma.h>

// out[t] = t, then the block's threads swap through dynamic shared memory: out[t] = n − 1 − t
extern "C" __global__ void dynamic_reverse(float* out)
{
    extern __shared__ float buf[];
    const int t = threadIdx.x, n = blockDim.x;
    buf[t] = float(t);
    __syncthreads();
    out[blockIdx.x * n + t] = buf[n - 1 - t];
}

// out[t] = the shared element before anyone wrote it (poisoned: NaN)
extern "C" __global__ void read_unwritten_shared(float* out)
{
    __shared__ float s[256];
    out[threadIdx.x] = s[threadIdx.x];
    __syncthreads();
}

// half the block waits at one __syncthreads, half at another
extern "C" __global__ void divergent_barrier(float* out)
{
    if (threadIdx.x < 16) __syncthreads();
    else __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// thread 0 leaves; the others wait for it forever
extern "C" __global__ void exit_before_barrier(float* out)
{
    if (threadIdx.x == 0) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// a full-warp shuffle in a block of fewer than 32 threads
extern "C" __global__ void shuffle_absent_lanes(float* out)
{
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, float(threadIdx.x), 1);
}

// a mask that leaves the calling lanes out
extern "C" __global__ void shuffle_without_self(float* out)
{
    out[threadIdx.x] = __shfl_sync(0x1u, float(threadIdx.x), 0);
}

// block_sum of 1 per thread: out[block] = blockDim.x
extern "C" __global__ void count_threads(float* out)
{
    const float s = block_sum(1.0f);
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// 52 KB of static shared memory: more than a kernel may declare
extern "C" __global__ void too_much_shared(float* out)
{
    __shared__ float big[13000];
    big[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = big[threadIdx.x];
}

// a WMMA load from a pointer 4 bytes past a 32-byte boundary
extern "C" __global__ void wmma_misaligned(float* out)
{
    using namespace nvcuda;
    __shared__ __align__(32) float s[16 * 8 + 8];
    for (int e = threadIdx.x; e < 16 * 8 + 8; e += 32) s[e] = 1.0f;
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a;
    wmma::load_matrix_sync(a, s + 1, 8);
    out[threadIdx.x] = a.x[0];
}

// __trap() stops the launch
extern "C" __global__ void traps(float* out)
{
    if (threadIdx.x == 3) __trap();
    out[threadIdx.x] = 1.0f;
}

// scalars as the kernel declares them: out[0] = n + x
extern "C" __global__ void scalars(float* out, int n, float x)
{
    if (threadIdx.x == 0) out[0] = float(n) + x;
}

// *count += the iterations of a grid-stride loop over n (grid_stride.cuh): n exactly, even when
// n is within one stride of INT32_MAX (an int index would wrap negative there and loop on)
extern "C" __global__ void grid_stride_count(unsigned* count, int n)
{
    unsigned c = 0;
    for (long long e64 = grid_start(); e64 < n; e64 += grid_stride()) ++c;
    atomicAdd(count, c);
}

// ticket[thread] = the place it ran in: each thread takes the next number (the launch order)
extern "C" __global__ void tickets(unsigned* counter, unsigned* ticket)
{
    ticket[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd(counter, 1u);
}
