#pragma once
// Helpers for the emulator suites: device buffers, both fiber orders, and a
// check that prints the emulator's message when a CUDA call fails.
#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"

#define EXPECT_CUDA_SUCCESS(call) EXPECT_EQ(cudaSuccess, (call)) << ladon::emu::last_error_message()
#define ASSERT_CUDA_SUCCESS(call) ASSERT_EQ(cudaSuccess, (call)) << ladon::emu::last_error_message()

namespace ladon::emu_test {

// cudaMalloc'd array of `size` elements, freed on destruction.
template <typename T>
class DeviceBuffer {
public:
    explicit DeviceBuffer(std::size_t size) : size_(size) {
        void* memory = nullptr;
        if (cudaMalloc(&memory, size * sizeof(T)) != cudaSuccess)
            throw std::runtime_error("cudaMalloc: " + emu::last_error_message());
        data_ = static_cast<T*>(memory);
    }
    explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
    ~DeviceBuffer() { cudaFree(data_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    T* get() const { return data_; }
    std::size_t size() const { return size_; }

    void upload(const std::vector<T>& host) {
        if (host.size() != size_ ||
            cudaMemcpy(data_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess)
            throw std::runtime_error("upload: " + emu::last_error_message());
    }
    std::vector<T> download() const {
        std::vector<T> host(size_);
        if (cudaMemcpy(host.data(), data_, size_ * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess)
            throw std::runtime_error("download: " + emu::last_error_message());
        return host;
    }
    void zero() {
        if (cudaMemset(data_, 0, size_ * sizeof(T)) != cudaSuccess)
            throw std::runtime_error("cudaMemset: " + emu::last_error_message());
    }

private:
    std::size_t size_;
    T* data_ = nullptr;
};

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
