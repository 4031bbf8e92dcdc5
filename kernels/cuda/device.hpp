#pragma once
// The first include of every file with device code. Under nvcc it is CUDA
// itself; under g++ with LADON_EMU defined it is the CPU emulator
// (kernels/emu/), so one kernel source builds for the GPU and for CI.
//
// Block-shared memory is declared through two macros, never `__shared__`:
//     LADON_SHARED(float, tile, [16][16]);   // __shared__ float tile[16][16];
//     LADON_SHARED(float, total, );          // __shared__ float total;
//     LADON_DYNAMIC_SHARED(float, buffer);   // float* buffer: the launch's shared_bytes
// The dynamic form is one aligned byte array cast to the type: nvcc rejects
// `extern __shared__ T buffer[]` in a template instantiated with two types
// (EMULATOR.md, pitfall 8). Use it once per kernel (the bytes are shared).
#if defined(__CUDACC__)

#include <cuda_runtime.h>

#define LADON_SHARED(type, name, dimensions) __shared__ type name dimensions
#define LADON_DYNAMIC_SHARED(type, name)                                         \
    extern __shared__ __align__(16) unsigned char ladon_dynamic_shared_memory[]; \
    type* const name = reinterpret_cast<type*>(ladon_dynamic_shared_memory)

#elif defined(LADON_EMU)

#include "kernels/emu/emu.hpp"

#elif defined(LADON_CUDA_HOST)

// Host code that calls the launch wrappers (the engine's CUDA executor, the
// `gpu` tests) compiled by g++ against the real runtime: no device code here.
#include <cuda_runtime.h>

#else
#error "kernels/cuda/device.hpp: compile with nvcc, with LADON_EMU (the CPU emulator), or with LADON_CUDA_HOST (host code against the CUDA runtime)"
#endif
