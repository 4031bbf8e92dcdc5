#pragma once
// Division by a divisor fixed for a whole launch, as a multiply-high, a
// add and a shift (Granlund & Montgomery, "Division by invariant integers
// using multiplication", 1994, with the 33-bit multiplier split as 2^32 + m).
// The host builds it once per launch; a kernel's gathers then decode their
// indices without the ~20-instruction sequence of a 32-bit divide.
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda {

class FastDivisor {
public:
    FastDivisor() = default;
    // divisor in [1, 2^31).
    __host__ __device__ explicit FastDivisor(std::uint32_t divisor) : divisor_(divisor) {
        while ((std::uint64_t{1} << shift_) < divisor) ++shift_;  // ceil(log2 divisor)
        const std::uint64_t power = std::uint64_t{1} << shift_;
        multiplier_ = static_cast<std::uint32_t>((power - divisor) * (std::uint64_t{1} << 32) / divisor + 1);
    }

    // value / divisor, for value in [0, 2^31).
    __host__ __device__ __forceinline__ std::uint32_t divide(std::uint32_t value) const {
        const auto high = static_cast<std::uint32_t>((std::uint64_t{multiplier_} * value) >> 32);
        return (high + value) >> shift_;  // high + value < 2^32 for value < 2^31
    }
    // Sets quotient and remainder of value.
    __host__ __device__ __forceinline__ void divide(std::uint32_t value, int& quotient, int& remainder) const {
        const std::uint32_t q = divide(value);
        quotient = static_cast<int>(q);
        remainder = static_cast<int>(value - q * divisor_);
    }
    __host__ __device__ std::uint32_t divisor() const { return divisor_; }

private:
    std::uint32_t divisor_ = 1, multiplier_ = 1, shift_ = 0;
};

}  // namespace ladon::cuda
