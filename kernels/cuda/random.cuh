#pragma once
// The counter-based hash of ops.hpp (mix64, uniform01) callable from device
// code: ops.hpp's functions are constexpr but not __host__ __device__. The
// bits must match ops::uniform01 exactly so the CUDA and CPU backends drop the
// same elements; tests/cuda/test_cuda_elementwise.cpp checks that.
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda {

__host__ __device__ constexpr uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Uniform in [0, 1) with 24 bits of resolution: the float conversion of a
// 24-bit integer and the scale by 2^-24 are both exact.
__host__ __device__ constexpr float uniform01(uint64_t seed, uint64_t index) {
    return static_cast<float>(mix64(seed ^ mix64(index)) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace ladon::cuda
