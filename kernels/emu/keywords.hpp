#pragma once
// CUDA's language keywords for g++. CUDA's vector_types.h comes first so that
// dim3, uint3, float4 ... are NVIDIA's own definitions (same layout and
// alignment as on the GPU); it drags in crt/host_defines.h, which under a
// host compiler defines `__shared__` as nothing and would silently make
// block-shared memory per-thread (pitfall 4). So every keyword is undefined
// and defined again here, after it.
#include <vector_types.h>

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __launch_bounds__
#undef __constant__
#undef __managed__
#undef __shared__

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// A __constant__ array is an ordinary global: every block and worker sees the
// same storage, and cudaMemcpyToSymbol writes it.
#define __constant__
#define __managed__
// Bare `__shared__` cannot be emulated (a plain local would be per-thread):
// use LADON_SHARED / LADON_DYNAMIC_SHARED from kernels/cuda/device.hpp.
#define __shared__ _Pragma("GCC error \"use LADON_SHARED or LADON_DYNAMIC_SHARED for block-shared memory\"")

// Not defined on purpose:
// - __noinline__: libstdc++ and glibc write __attribute__((__noinline__)),
//   which a macro would break (pitfall 5); kernels do not use it.
// - __restrict__: g++ understands it natively.
