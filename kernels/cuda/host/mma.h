// mma.h — stands in for CUDA's <mma.h> when kernels/cuda compiles on the host (see cuda_host.h).
#pragma once
#include "wmma_host.h"
