// max_pool2d and avg_pool2d (kernels/cuda/pool.cuh) on the emulator or a GPU against
// ladon::cpu: odd and non-square shapes with overlapping (kernel 3, stride 2,
// pad 1), tiling (kernel 2, stride 2) and rectangular windows; ties, NaN and
// a window wholly in the padding; backward passes that accumulate; results
// bit-identical to the CPU's and from run to run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/pool.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;
using ops::Pool2dShape;

std::vector<float> random_values(std::size_t size, unsigned seed) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
    std::vector<float> values(size);
    for (float& value : values) value = distribution(generator);
    return values;
}

Pool2dShape make_shape(int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t kernel_height,
                       int64_t kernel_width, int64_t stride_height, int64_t stride_width, int64_t pad_height,
                       int64_t pad_width) {
    Pool2dShape s;
    s.batch = batch;
    s.channels = channels;
    s.in_height = height;
    s.in_width = width;
    s.kernel_height = kernel_height;
    s.kernel_width = kernel_width;
    s.stride_height = stride_height;
    s.stride_width = stride_width;
    s.pad_height = pad_height;
    s.pad_width = pad_width;
    return s;
}

// N=3, C=5, H=7, W=9 throughout, plus a small one with a window in the padding.
std::vector<Pool2dShape> shapes() {
    return {
        make_shape(3, 5, 7, 9, 3, 3, 2, 2, 1, 1),  // overlapping windows, padding
        make_shape(3, 5, 7, 9, 2, 2, 2, 2, 0, 0),  // tiling, last row and column dropped
        make_shape(3, 5, 7, 9, 2, 3, 1, 2, 1, 0),  // rectangular kernel and stride
        make_shape(3, 5, 7, 9, 3, 2, 3, 1, 1, 1),  // stride equal to the kernel along H
        make_shape(2, 3, 3, 2, 2, 2, 2, 1, 2, 1),  // the first row of windows lies wholly in the padding
    };
}

std::string describe(const Pool2dShape& s) {
    return "kernel " + std::to_string(s.kernel_height) + "x" + std::to_string(s.kernel_width) + " stride " +
           std::to_string(s.stride_height) + "x" + std::to_string(s.stride_width) + " pad " +
           std::to_string(s.pad_height) + "x" + std::to_string(s.pad_width) + " input " + std::to_string(s.in_height) +
           "x" + std::to_string(s.in_width);
}

// Inputs with ties (values rounded to a coarse grid) and one NaN per plane
// at most in some planes.
std::vector<float> pool_inputs(const Pool2dShape& s, unsigned seed) {
    std::vector<float> values = random_values(s.input_size(), seed);
    for (std::size_t i = 0; i < values.size(); ++i)
        if (i % 3 == 0) values[i] = std::round(values[i] * 2.0f) / 2.0f;  // many ties
    if (values.size() > 40) values[40] = std::numeric_limits<float>::quiet_NaN();
    return values;
}

// Bitwise, NaN included: the kernels follow the CPU's arithmetic step for step.
template <typename T>
void expect_bitwise_equal(const std::vector<T>& expected, const std::vector<T>& actual, const std::string& what) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    int reported = 0;
    for (std::size_t i = 0; i < expected.size() && reported < 5; ++i) {
        if (std::memcmp(&expected[i], &actual[i], sizeof(T)) == 0) continue;
        ADD_FAILURE() << what << ": element " << i << " expected " << expected[i] << ", got " << actual[i];
        ++reported;
    }
}

class CudaPool : public cuda_test::DeviceTest {};

TEST_F(CudaPool, MaxForwardMatchesCpuBitForBitWithTiesAndNan) {
    for (const Pool2dShape& s : shapes()) {
        const std::vector<float> x = pool_inputs(s, 1);
        std::vector<float> expected(s.output_size());
        std::vector<int32_t> expected_argmax(s.output_size());
        cpu::max_pool2d_forward(s, x.data(), expected.data(), expected_argmax.data());
        DeviceBuffer<float> device_x(x), device_y(s.output_size());
        DeviceBuffer<int32_t> device_argmax(s.output_size());
        ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, device_x.get(), device_y.get(), device_argmax.get(), nullptr));
        expect_bitwise_equal(expected, device_y.download(), describe(s) + ", output");
        expect_bitwise_equal(expected_argmax, device_argmax.download(), describe(s) + ", argmax");
    }
}

TEST_F(CudaPool, MaxWindowInPaddingIsMinusInfinityWithArgmaxMinusOne) {
    // One input column, padded by two on each side: window starts -2, -1, 0, 1.
    const Pool2dShape s = make_shape(1, 1, 1, 1, 1, 2, 1, 1, 0, 2);
    ASSERT_EQ(4, s.output_size());
    DeviceBuffer<float> x(std::vector<float>{-7.0f}), y(4);
    DeviceBuffer<int32_t> argmax(4);
    ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, x.get(), y.get(), argmax.get(), nullptr));
    const float infinity = std::numeric_limits<float>::infinity();
    EXPECT_EQ((std::vector<float>{-infinity, -7.0f, -7.0f, -infinity}), y.download());
    EXPECT_EQ((std::vector<int32_t>{-1, 0, 0, -1}), argmax.download());
    // Backward skips the empty windows and adds the other two.
    DeviceBuffer<float> grad_y(std::vector<float>{100.0f, 1.0f, 2.0f, 100.0f}), grad_x(std::vector<float>{0.5f});
    ASSERT_CUDA_SUCCESS(cuda::max_pool2d_backward(s, grad_y.get(), argmax.get(), grad_x.get(), nullptr));
    EXPECT_EQ(3.5f, grad_x.download()[0]);
}

TEST_F(CudaPool, MaxFirstMaximumWinsTiesAndNanWins) {
    const Pool2dShape s = make_shape(1, 2, 2, 2, 2, 2, 2, 2, 0, 0);
    const float nan_value = std::numeric_limits<float>::quiet_NaN();
    DeviceBuffer<float> x(std::vector<float>{1, 3, 3, 3, 5, nan_value, 9, nan_value}), y(2);
    DeviceBuffer<int32_t> argmax(2);
    ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, x.get(), y.get(), argmax.get(), nullptr));
    const std::vector<float> out = y.download();
    const std::vector<int32_t> index = argmax.download();
    EXPECT_EQ(3.0f, out[0]);
    EXPECT_EQ(1, index[0]);
    EXPECT_TRUE(std::isnan(out[1]));
    EXPECT_EQ(3, index[1]);  // the last NaN: a NaN replaces anything, another NaN included (as the CPU)
}

TEST_F(CudaPool, MaxBackwardAccumulatesLikeCpuBitForBit) {
    for (const Pool2dShape& s : shapes()) {
        const std::vector<float> x = random_values(s.input_size(), 2), grad_y = random_values(s.output_size(), 3);
        std::vector<float> y(s.output_size());
        std::vector<int32_t> argmax(s.output_size());
        cpu::max_pool2d_forward(s, x.data(), y.data(), argmax.data());
        std::vector<float> expected = random_values(s.input_size(), 4);  // a gradient already there
        DeviceBuffer<float> device_grad_y(grad_y), device_grad_x(expected);
        DeviceBuffer<int32_t> device_argmax(argmax);
        for (int call = 1; call <= 2; ++call) {
            cpu::max_pool2d_backward(s, grad_y.data(), argmax.data(), expected.data());
            ASSERT_CUDA_SUCCESS(
                cuda::max_pool2d_backward(s, device_grad_y.get(), device_argmax.get(), device_grad_x.get(), nullptr));
            expect_bitwise_equal(expected, device_grad_x.download(), describe(s) + ", call " + std::to_string(call));
        }
    }
}

TEST_F(CudaPool, AvgForwardMatchesCpuBitForBit) {
    for (const Pool2dShape& s : shapes()) {
        const std::vector<float> x = random_values(s.input_size(), 5);
        std::vector<float> expected(s.output_size());
        cpu::avg_pool2d_forward(s, x.data(), expected.data());
        DeviceBuffer<float> device_x(x), device_y(s.output_size());
        ASSERT_CUDA_SUCCESS(cuda::avg_pool2d_forward(s, device_x.get(), device_y.get(), nullptr));
        expect_bitwise_equal(expected, device_y.download(), describe(s));
    }
}

TEST_F(CudaPool, AvgBackwardAccumulatesLikeCpuBitForBit) {
    for (const Pool2dShape& s : shapes()) {
        const std::vector<float> grad_y = random_values(s.output_size(), 6);
        std::vector<float> expected = random_values(s.input_size(), 7);
        DeviceBuffer<float> device_grad_y(grad_y), device_grad_x(expected);
        for (int call = 1; call <= 2; ++call) {
            cpu::avg_pool2d_backward(s, grad_y.data(), expected.data());
            ASSERT_CUDA_SUCCESS(cuda::avg_pool2d_backward(s, device_grad_y.get(), device_grad_x.get(), nullptr));
            expect_bitwise_equal(expected, device_grad_x.download(), describe(s) + ", call " + std::to_string(call));
        }
    }
}

TEST_F(CudaPool, BackwardFromZeroTwiceIsTwiceOnceAndRunsAreIdentical) {
    const Pool2dShape s = shapes()[0];
    const std::vector<float> x = random_values(s.input_size(), 8), grad_y = random_values(s.output_size(), 9);
    DeviceBuffer<float> device_x(x), device_y(s.output_size()), device_grad_y(grad_y);
    DeviceBuffer<int32_t> device_argmax(s.output_size());
    ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, device_x.get(), device_y.get(), device_argmax.get(), nullptr));
    for (const bool max : {true, false}) {
        const std::vector<float> zeros(s.input_size(), 0.0f);
        DeviceBuffer<float> once(zeros), twice(zeros), again(zeros);
        const auto backward = [&](DeviceBuffer<float>& grad_x) {
            return max ? cuda::max_pool2d_backward(s, device_grad_y.get(), device_argmax.get(), grad_x.get(), nullptr)
                       : cuda::avg_pool2d_backward(s, device_grad_y.get(), grad_x.get(), nullptr);
        };
        ASSERT_CUDA_SUCCESS(backward(once));
        ASSERT_CUDA_SUCCESS(backward(again));
        ASSERT_CUDA_SUCCESS(backward(twice));
        ASSERT_CUDA_SUCCESS(backward(twice));
        const std::vector<float> one = once.download(), two = twice.download();
        const std::string what = max ? "max" : "avg";
        // Within rounding: the second call adds window by window onto the first's sum.
        for (std::size_t i = 0; i < one.size(); ++i)
            EXPECT_NEAR(2.0f * one[i], two[i], 1e-5f * (1.0f + std::abs(two[i]))) << what << ", twice, element " << i;
        expect_bitwise_equal(one, again.download(), what + ", second run");
    }
}

TEST_F(CudaPool, InvalidShapesAreRejected) {
    DeviceBuffer<float> buffer(64);
    DeviceBuffer<int32_t> argmax(64);
    Pool2dShape too_big = make_shape(1, 1, 2, 2, 5, 5, 1, 1, 0, 0);
    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::max_pool2d_forward(too_big, buffer.get(), buffer.get(), argmax.get(), nullptr));
    Pool2dShape zero_stride = make_shape(1, 1, 4, 4, 2, 2, 0, 1, 0, 0);
    EXPECT_EQ(cudaErrorInvalidValue, cuda::avg_pool2d_forward(zero_stride, buffer.get(), buffer.get(), nullptr));
    EXPECT_EQ(cudaErrorInvalidValue, cuda::avg_pool2d_backward(zero_stride, buffer.get(), buffer.get(), nullptr));
}

}  // namespace
}  // namespace ladon
