// cuda_host.h — the CUDA subset our kernels use, emulated on the CPU (force-included by g++).
//
// The .cu/.cuh files of kernels/cuda compile unchanged against this header; kernels/cuda/host/
// build.py adds one export per kernel (runtime.h) and loads the shared library with ctypes.
// Model: blocks run one after another; the threads of a block are fibers on one OS thread (or,
// with -DNST_HOST_THREADS, one OS thread each, for ThreadSanitizer) meeting at __syncthreads and
// at warp-collective operations (__shfl_*_sync, wmma::mma_sync). Static __shared__ variables live
// in static storage; each declaration reports itself (nst::use_shared), so the runtime counts a
// kernel's static shared bytes (48 KiB at most) and poisons them with NaN before every block. Anything not declared here
// (another intrinsic, __constant__, textures, cooperative groups…) is a compile error.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>

#ifndef __CUDA_ARCH__
#define __CUDA_ARCH__ 800          // the emulated GPU: sm_80 (TF32 WMMA available); -D to change
#endif
#define NST_CUDA_HOST 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static          // build.py appends nst::use_shared(&x, sizeof x) to each declaration

struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

#ifdef NST_HOST_THREADS
#define NST_TLS thread_local
#else
#define NST_TLS
#endif

namespace nst {
// the CUDA built-in variables of the running thread (set by the scheduler before it resumes one)
extern NST_TLS uint3 cur_thread, cur_block;
extern dim3 cur_block_dim, cur_grid_dim;
[[noreturn]] void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void syncthreads(const char* file, int line);
// every lane named in mask contributes `bytes` (≤ 64) -> all lanes' contributions, lane l at + 64·l
const unsigned char* warp_exchange(unsigned mask, const void* mine, size_t bytes, const char* what,
                                   const char* file, int line);
void* dynamic_shared();
void use_shared(void* p, size_t bytes, const char* file, int line);
}  // namespace nst

#define threadIdx (static_cast<const uint3&>(nst::cur_thread))
#define blockIdx (static_cast<const uint3&>(nst::cur_block))
#define blockDim (static_cast<const dim3&>(nst::cur_block_dim))
#define gridDim (static_cast<const dim3&>(nst::cur_grid_dim))
#define warpSize 32

#define __syncthreads() nst::syncthreads(__FILE__, __LINE__)
#define __trap() nst::fail("__trap() called in %s:%d", __FILE__, __LINE__)

// extern __shared__ T name[] (rewritten so by build.py): the launch's dynamic shared memory
namespace nst {
template <class T> struct DynShared {
    operator T*() const { return static_cast<T*>(dynamic_shared()); }
};
}  // namespace nst

// ---- math: the float functions come from <cmath>; CUDA's min/max overloads -----------------
__device__ inline int min(int a, int b) { return a < b ? a : b; }
__device__ inline int max(int a, int b) { return a > b ? a : b; }
__device__ inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
__device__ inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
__device__ inline long long min(long long a, long long b) { return a < b ? a : b; }
__device__ inline long long max(long long a, long long b) { return a > b ? a : b; }
__device__ inline float min(float a, float b) { return fminf(a, b); }
__device__ inline float max(float a, float b) { return fmaxf(a, b); }
using ::fmaf; using ::fmaxf; using ::fminf; using ::sqrtf;
__device__ inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
// a product CUDA never fuses into an FMA; out of line so g++ cannot fuse it either (-ffp-contract)
__attribute__((noinline)) inline double __dmul_rn(double a, double b) { return a * b; }
__device__ inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
__device__ inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }

// ---- memory: cache hints are plain loads; fences and atomics are real (threads mode) --------
template <class T> __device__ inline T __ldg(const T* p) { return *p; }
template <class T> __device__ inline T __ldcg(const T* p) { return *p; }
__device__ inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
__device__ inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

__device__ inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
__device__ inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
__device__ inline float atomicAdd(float* p, float v)
{
    unsigned* u = reinterpret_cast<unsigned*>(p);
    unsigned old = __atomic_load_n(u, __ATOMIC_SEQ_CST), want;
    do want = __float_as_uint(__uint_as_float(old) + v);
    while (!__atomic_compare_exchange_n(u, &old, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return __uint_as_float(old);
}

// ---- warp shuffles: every lane named in mask must arrive; lanes exchange through the warp ---
namespace nst {
template <class T> inline T shfl(unsigned mask, T v, int src_lane, const char* what, const char* file, int line)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of an unemulated type");
    const unsigned char* all = warp_exchange(mask, &v, sizeof(T), what, file, line);
    T r;
    std::memcpy(&r, all + 64 * src_lane, sizeof(T));
    return r;
}
inline int lane() { return int(cur_thread.x + cur_block_dim.x * (cur_thread.y + cur_block_dim.y * cur_thread.z)) & 31; }
}  // namespace nst
// (no width argument: a fourth one is a preprocessor error, not silently ignored)
#define __shfl_sync(mask, v, src) nst::shfl((mask), (v), int(src) & 31, "__shfl_sync", __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, d) \
    nst::shfl((mask), (v), nst::lane() + int(d) < 32 ? nst::lane() + int(d) : nst::lane(), "__shfl_down_sync", __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, d) \
    nst::shfl((mask), (v), nst::lane() - int(d) >= 0 ? nst::lane() - int(d) : nst::lane(), "__shfl_up_sync", __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, m) nst::shfl((mask), (v), nst::lane() ^ (int(m) & 31), "__shfl_xor_sync", __FILE__, __LINE__)
#define __syncwarp(...) nst::syncwarp(__FILE__, __LINE__, ##__VA_ARGS__)
namespace nst {
inline void syncwarp(const char* file, int line, unsigned mask = 0xffffffffu) { shfl(mask, 0, 0, "__syncwarp", file, line); }
}  // namespace nst
// <mma.h> (nvcuda::wmma) is this folder's mma.h: TF32 m16n16k8 fragments, see wmma_host.h
