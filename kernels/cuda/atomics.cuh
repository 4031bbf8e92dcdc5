#pragma once
// Atomics CUDA does not have, built from the ones it has; the same source runs
// on the GPU and in the emulator. Float atomics apply in no fixed order: keep
// them off the deterministic training path (ARCHITECTURE.md).
#include "kernels/cuda/device.hpp"

// Raises *address to `value` if larger; returns the old value. A compare-and-
// swap loop on the float's bits: a first read that is stale only costs one
// more iteration. A NaN `value` never wins, so initialise with -INFINITY.
__device__ __forceinline__ float ladon_atomic_max_float(float* address, float value) {
    int* const bits = reinterpret_cast<int*>(address);
    int old = __float_as_int(*address);
    while (__int_as_float(old) < value) {
        const int assumed = old;
        old = atomicCAS(bits, assumed, __float_as_int(value));
        if (old == assumed) break;
    }
    return __int_as_float(old);
}
