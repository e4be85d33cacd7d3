"""The CUDA sources of kernels/cuda run on the CPU: an emulation header, a fiber runtime, a cached
g++ build (build.py). The `cuda-cpu` backend and the tests use it through kernels/cuda/_common.py."""
