#pragma once
// Helpers for the emulator suites: device buffers, both fiber orders, and a
// check that prints the emulator's message when a CUDA call fails.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/device_memory.hpp"
#include "kernels/cuda/launch.hpp"

#define EXPECT_CUDA_SUCCESS(call) EXPECT_EQ(cudaSuccess, (call)) << ladon::emu::last_error_message()
#define ASSERT_CUDA_SUCCESS(call) ASSERT_EQ(cudaSuccess, (call)) << ladon::emu::last_error_message()

namespace ladon::emu_test {

// The emulator poisons new device memory itself (0xFF bytes, NaN as floats).
template <typename T>
using DeviceBuffer = cuda::DeviceBuffer<T>;

// Sets the fiber order for one scope, whatever LADON_EMU_REVERSE said.
class ScopedFiberOrder {
public:
    explicit ScopedFiberOrder(emu::FiberOrder order) : previous_(emu::fiber_order()) { emu::set_fiber_order(order); }
    ~ScopedFiberOrder() { emu::set_fiber_order(previous_); }
    ScopedFiberOrder(const ScopedFiberOrder&) = delete;
    ScopedFiberOrder& operator=(const ScopedFiberOrder&) = delete;

private:
    emu::FiberOrder previous_;
};

inline constexpr emu::FiberOrder both_fiber_orders[] = {emu::FiberOrder::forward, emu::FiberOrder::reverse};

inline const char* order_name(emu::FiberOrder order) {
    return order == emu::FiberOrder::forward ? "forward" : "reverse";
}

// The launch failed with a kernel fault, cudaGetLastError reports (and
// clears) it, and the message contains every one of `fragments`.
inline void expect_kernel_fault(cudaError_t launch_result, const std::vector<std::string>& fragments) {
    EXPECT_EQ(cudaErrorLaunchFailure, launch_result);
    const std::string message = emu::last_error_message();
    EXPECT_EQ(cudaErrorLaunchFailure, cudaGetLastError());
    EXPECT_EQ(cudaSuccess, cudaGetLastError());
    for (const std::string& fragment : fragments)
        EXPECT_NE(std::string::npos, message.find(fragment)) << "missing \"" << fragment << "\" in: " << message;
}

}  // namespace ladon::emu_test
