#pragma once
// What the CUDA kernel suites share, built two ways from the same sources:
//   LADON_EMU        test_cuda(_asan): kernels on the CPU emulator (label `emu`)
//   LADON_CUDA_HOST  test_cuda_gpu: nvcc's kernels on a real GPU (label `gpu`)
// Each suite's fixture derives from DeviceTest, which skips every test, with
// the reason in its output, where no GPU is usable; CTest then counts them
// as skipped, neither passed nor failed. Emulator-only checks (fiber orders,
// emulated faults) stay inside `#if defined(LADON_EMU)`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/device_memory.hpp"

#if defined(LADON_EMU)
#include "emu/emu_test_support.hpp"
#elif defined(LADON_CUDA_HOST)
#define EXPECT_CUDA_SUCCESS(call) EXPECT_EQ(cudaSuccess, (call)) << ladon::cuda_test::last_error_message()
#define ASSERT_CUDA_SUCCESS(call) ASSERT_EQ(cudaSuccess, (call)) << ladon::cuda_test::last_error_message()
#else
#error "cuda_test_support.hpp: build with LADON_EMU or LADON_CUDA_HOST"
#endif

namespace ladon::cuda_test {

#if defined(LADON_EMU)

// The emulator names kernel, block and thread of a failure.
inline std::string last_error_message() { return emu::last_error_message(); }

using emu_test::DeviceBuffer;

#else

// Reads and clears the runtime's last error: what a failed call left.
inline std::string last_error_message() {
    const cudaError_t error = cudaGetLastError();
    return std::string(cudaGetErrorName(error)) + ": " + cudaGetErrorString(error);
}

// New memory is filled with 0xFF bytes (NaN as floats), as the emulator
// poisons it, so an element a kernel forgets to write shows on the GPU too.
template <typename T>
class DeviceBuffer : public cuda::DeviceBuffer<T> {
public:
    explicit DeviceBuffer(std::size_t size) : cuda::DeviceBuffer<T>(size) { this->fill_bytes(0xFF); }
    explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { this->upload(host); }
};

#endif

// Empty where kernels can run (always on the emulator); else why not, asked
// of the runtime once per process.
inline const std::string& missing_device_reason() {
    static const std::string reason = [] {
#if defined(LADON_EMU)
        return std::string();
#else
        int count = 0;
        const cudaError_t error = cudaGetDeviceCount(&count);
        if (error != cudaSuccess) {
            cudaGetLastError();  // clears the error it recorded, or a later check would report it
            return std::string(cudaGetErrorString(error));
        }
        return count == 0 ? std::string("cudaGetDeviceCount found no device") : std::string();
#endif
    }();
    return reason;
}

// Calls body(name) once per way the blocks and threads may be scheduled, for
// tests of bitwise determinism: under each fiber order on the emulator (set
// for the call), twice on a GPU, whose scheduler varies by itself.
template <typename Body>
void for_each_schedule(const Body& body) {
#if defined(LADON_EMU)
    for (const emu::FiberOrder order : emu_test::both_fiber_orders) {
        const emu_test::ScopedFiberOrder scoped(order);
        body(std::string("fibers ") + emu_test::order_name(order));
    }
#else
    for (const char* name : {"run 1", "run 2"}) body(std::string(name));
#endif
}

// The fixture of every CUDA kernel suite: `class CudaPool : public
// cuda_test::DeviceTest {};` then TEST_F(CudaPool, ...).
class DeviceTest : public testing::Test {
protected:
    void SetUp() override {
        if (!missing_device_reason().empty()) GTEST_SKIP() << "no CUDA device: " << missing_device_reason();
    }
    void TearDown() override {
#if defined(LADON_CUDA_HOST)
        // A kernel fault surfaces at the next synchronising call: name it in
        // the test that caused it, not in the next one.
        if (missing_device_reason().empty()) {
            EXPECT_CUDA_SUCCESS(cudaDeviceSynchronize());
        }
#endif
    }
};

// `size` floats uniform in [-scale, scale).
inline std::vector<float> uniform_values(std::size_t size, unsigned seed, float scale = 1.0f) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> distribution(-scale, scale);
    std::vector<float> values(size);
    for (float& value : values) value = distribution(generator);
    return values;
}

// Kernels that sum in another order than the CPU agree to rounding: each
// element within absolute + relative * |expected|; the first five misses reported.
inline void expect_all_near(const std::vector<float>& expected, const std::vector<float>& actual,
                            const std::string& what, float absolute, float relative) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    int reported = 0;
    for (std::size_t i = 0; i < expected.size() && reported < 5; ++i) {
        if (std::abs(expected[i] - actual[i]) <= absolute + relative * std::abs(expected[i])) continue;
        ADD_FAILURE() << what << ": element " << i << " expected " << expected[i] << ", got " << actual[i];
        ++reported;
    }
}

}  // namespace ladon::cuda_test
