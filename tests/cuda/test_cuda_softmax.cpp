// softmax over channels (kernels/cuda/softmax.cuh) on the emulator or a GPU
// against ladon::cpu, on odd shapes that take both decompositions (a warp per
// feature row of 32 channels or more, a thread per column otherwise), large
// logits, backward passes that accumulate, and the same bits under every
// schedule.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/softmax.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;

using cuda_test::uniform_values;

struct Shape {
    int64_t batch, channels, spatial;
    std::string str() const {
        return std::to_string(batch) + "x" + std::to_string(channels) + "x" + std::to_string(spatial);
    }
    std::size_t count() const { return std::size_t(batch * channels * spatial); }
};

// Warp per row: 37 and 100 channels; thread per column: 5 channels of one
// feature, and channels over 7 x 9 = 63 positions.
constexpr Shape shapes[] = {{3, 37, 1}, {5, 100, 1}, {7, 5, 1}, {3, 5, 63}, {2, 40, 3}};

class CudaSoftmax : public cuda_test::DeviceTest {};

TEST_F(CudaSoftmax, ForwardMatchesCpuOnOddShapes) {
    for (const Shape& s : shapes) {
        const std::vector<float> x = uniform_values(s.count(), 1, 8.0f);
        std::vector<float> expected(s.count());
        cpu::softmax_forward(s.batch, s.channels, s.spatial, x.data(), expected.data());
        DeviceBuffer<float> device_x(x), device_y(s.count());
        ASSERT_CUDA_SUCCESS(
            cuda::softmax_forward(s.batch, s.channels, s.spatial, device_x.get(), device_y.get(), nullptr));
        cuda_test::expect_all_near(expected, device_y.download(), s.str(), 2e-6f, 1e-5f);
    }
}

TEST_F(CudaSoftmax, ForwardIsStableForLargeLogits) {
    std::vector<float> x = uniform_values(2 * 40, 2, 1.0f);
    for (std::size_t i = 0; i < x.size(); i += 3) x[i] = 1e4f + x[i];
    std::vector<float> expected(x.size());
    cpu::softmax_forward(2, 40, 1, x.data(), expected.data());
    DeviceBuffer<float> device_x(x), device_y(x.size());
    ASSERT_CUDA_SUCCESS(cuda::softmax_forward(2, 40, 1, device_x.get(), device_y.get(), nullptr));
    const std::vector<float> y = device_y.download();
    for (float v : y) ASSERT_TRUE(std::isfinite(v));
    cuda_test::expect_all_near(expected, y, "logits near 1e4", 2e-6f, 1e-5f);
}

TEST_F(CudaSoftmax, BackwardMatchesCpuAndAccumulates) {
    for (const Shape& s : shapes) {
        const std::vector<float> x = uniform_values(s.count(), 3, 4.0f), grad_y = uniform_values(s.count(), 4, 1.0f);
        const std::vector<float> initial = uniform_values(s.count(), 5, 1.0f);
        std::vector<float> y(s.count()), expected = initial;
        cpu::softmax_forward(s.batch, s.channels, s.spatial, x.data(), y.data());
        cpu::softmax_backward(s.batch, s.channels, s.spatial, y.data(), grad_y.data(), expected.data());
        DeviceBuffer<float> device_y(y), device_grad_y(grad_y), device_grad_x(initial);
        ASSERT_CUDA_SUCCESS(cuda::softmax_backward(s.batch, s.channels, s.spatial, device_y.get(), device_grad_y.get(),
                                                   device_grad_x.get(), nullptr));
        cuda_test::expect_all_near(expected, device_grad_x.download(), s.str(), 2e-6f, 1e-5f);
    }
}

TEST_F(CudaSoftmax, SameBitsUnderEverySchedule) {
    const Shape s{4, 45, 1};
    const std::vector<float> x = uniform_values(s.count(), 6, 4.0f);
    std::vector<float> first;
    cuda_test::for_each_schedule([&](const std::string& schedule) {
        DeviceBuffer<float> device_x(x), device_y(s.count());
        ASSERT_CUDA_SUCCESS(
            cuda::softmax_forward(s.batch, s.channels, s.spatial, device_x.get(), device_y.get(), nullptr));
        const std::vector<float> y = device_y.download();
        if (first.empty()) first = y;
        EXPECT_EQ(first, y) << schedule;
    });
}

TEST_F(CudaSoftmax, RejectsWhatTheCpuRejects) {
    DeviceBuffer<float> buffer(4);
    EXPECT_EQ(cudaErrorInvalidValue, cuda::softmax_forward(1, 0, 1, buffer.get(), buffer.get(), nullptr));
    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::softmax_backward(1, 2, 0, buffer.get(), buffer.get(), buffer.get(), nullptr));
    EXPECT_EQ(cudaSuccess, cuda::softmax_forward(0, 3, 2, buffer.get(), buffer.get(), nullptr));  // empty batch
}

}  // namespace
}  // namespace ladon
