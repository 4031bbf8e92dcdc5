#pragma once
// CUDA's headers and language keywords for g++. First CUDA's runtime header,
// exactly as host code compiled by g++ includes it: dim3, float4, cudaError_t,
// cudaDeviceProp ... and the runtime calls' declarations (C linkage, default
// arguments) are NVIDIA's own, so other CUDA headers
// (cuda_fp16.h, say) agree with ours. The emulator defines the calls it
// implements (runtime.cpp); any other fails to link, by name.
//
// It drags in crt/host_defines.h, which under a host compiler defines
// `__shared__` as nothing and would silently make block-shared memory
// per-thread (pitfall 4). So every keyword is undefined and defined again
// here, after it.
#include <cuda_runtime.h>

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
