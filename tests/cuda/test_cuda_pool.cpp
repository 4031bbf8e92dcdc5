// max_pool2d and avg_pool2d (kernels/cuda/pool.cuh) on the emulator or a GPU against
// ladon::cpu: odd and non-square shapes with 1x1, overlapping (kernel 3,
// stride 2, pad 1), tiling (kernel 2, stride 2), rectangular and 256- and
// 272-position windows; ties, NaN and a window wholly in the padding; backward
// passes that accumulate or overwrite; aligned (vector) and shifted (scalar)
// pointers; results bit-identical to the CPU's and from run to run. The
// argmax buffers differ in format (byte offsets on the GPU): compared decoded,
// and through the gradients they route.
#include <gtest/gtest.h>

#include <algorithm>
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

// Odd sizes (no multiple of 32), every window kind the kernels special-case
// and rows of a multiple of 4 and of 2 outputs or inputs (the vector paths).
std::vector<Pool2dShape> shapes() {
    return {
        make_shape(2, 3, 7, 9, 1, 1, 1, 1, 0, 0),      // 1x1 window
        make_shape(3, 5, 7, 9, 2, 2, 2, 2, 0, 0),      // tiling 2x2, last row and column dropped; 4 outputs a row
        make_shape(2, 3, 9, 13, 2, 2, 2, 2, 0, 0),     // tiling 2x2; 6 outputs a row
        make_shape(2, 3, 35, 37, 3, 3, 2, 2, 1, 1),    // ResNet's 3x3 stride 2 pad 1, odd sizes
        make_shape(2, 2, 12, 16, 3, 3, 2, 2, 1, 1),    // the same, 8 outputs and 16 inputs a row
        make_shape(2, 3, 7, 9, 3, 2, 2, 1, 1, 0),      // 3x2 with stride (2, 1)
        make_shape(3, 5, 7, 9, 2, 3, 1, 2, 1, 0),      // rectangular kernel and stride
        make_shape(3, 5, 7, 9, 3, 2, 3, 1, 1, 1),      // stride equal to the kernel along H
        make_shape(1, 2, 5, 40, 1, 3, 1, 4, 0, 1),     // stride past the kernel: inputs no window covers
        make_shape(2, 3, 3, 2, 2, 2, 2, 1, 2, 1),      // the first row of windows lies wholly in the padding
        make_shape(1, 2, 18, 17, 16, 16, 1, 1, 0, 0),  // 256 positions: the largest byte argmax
        make_shape(2, 3, 20, 19, 17, 16, 2, 3, 1, 2),  // 272 positions: the int32 argmax
    };
}

std::string describe(const Pool2dShape& s) {
    return "kernel " + std::to_string(s.kernel_height) + "x" + std::to_string(s.kernel_width) + " stride " +
           std::to_string(s.stride_height) + "x" + std::to_string(s.stride_width) + " pad " +
           std::to_string(s.pad_height) + "x" + std::to_string(s.pad_width) + " input " + std::to_string(s.in_height) +
           "x" + std::to_string(s.in_width);
}

// Inputs with ties (values rounded to a coarse grid) and a NaN in some
// planes.
std::vector<float> pool_inputs(const Pool2dShape& s, unsigned seed) {
    std::vector<float> values = random_values(s.input_size(), seed);
    for (std::size_t i = 0; i < values.size(); ++i)
        if (i % 3 == 0) values[i] = std::round(values[i] * 2.0f) / 2.0f;  // many ties
    for (std::size_t i = 40; i < values.size(); i += 997) values[i] = std::numeric_limits<float>::quiet_NaN();
    return values;
}

// The first output_size() bytes of an argmax buffer.
std::vector<uint8_t> argmax_bytes(const Pool2dShape& s, const DeviceBuffer<int32_t>& buffer) {
    const std::vector<int32_t> words = buffer.download();
    std::vector<uint8_t> bytes(std::size_t(s.output_size()));
    std::memcpy(bytes.data(), words.data(), bytes.size());
    return bytes;
}

// The CPU's argmax (index within the plane, -1 for a window wholly in the
// padding) decoded from what cuda::max_pool2d_forward left in `buffer`.
std::vector<int32_t> plane_indices(const Pool2dShape& s, const DeviceBuffer<int32_t>& buffer) {
    if (cuda::max_pool2d_argmax_bytes(s) == 4) return buffer.download();
    const std::vector<uint8_t> offsets = argmax_bytes(s, buffer);
    std::vector<int32_t> indices(offsets.size());
    for (std::size_t o = 0; o < offsets.size(); ++o) {
        const int64_t oh = int64_t(o) / s.out_width() % s.out_height(), ow = int64_t(o) % s.out_width();
        const int64_t h0 = oh * s.stride_height - s.pad_height, w0 = ow * s.stride_width - s.pad_width;
        const bool in_padding =
            h0 + s.kernel_height <= 0 || h0 >= s.in_height || w0 + s.kernel_width <= 0 || w0 >= s.in_width;
        const int64_t h = h0 + offsets[o] / s.kernel_width, w = w0 + offsets[o] % s.kernel_width;
        indices[o] = in_padding && offsets[o] == 255 ? -1 : int32_t(h * s.in_width + w);
    }
    return indices;
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
        expect_bitwise_equal(expected_argmax, plane_indices(s, device_argmax), describe(s) + ", argmax");
    }
}

TEST_F(CudaPool, MaxArgmaxIsAByteWithinWindowsOfAtMost256PositionsElseAPlaneIndex) {
    EXPECT_EQ(1, cuda::max_pool2d_argmax_bytes(make_shape(1, 1, 16, 16, 16, 16, 1, 1, 0, 0)));
    EXPECT_EQ(4, cuda::max_pool2d_argmax_bytes(make_shape(1, 1, 17, 16, 17, 16, 1, 1, 0, 0)));
    // One 16x16 window and one 17x16 window, each with its maximum at the last position.
    for (const int64_t kernel_height : {16, 17}) {
        const Pool2dShape s = make_shape(1, 1, kernel_height, 16, kernel_height, 16, 1, 1, 0, 0);
        std::vector<float> x(s.input_size(), 0.0f);
        x.back() = 1.0f;
        DeviceBuffer<float> device_x(x), y(1);
        DeviceBuffer<int32_t> argmax(std::vector<int32_t>{-2});
        ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, device_x.get(), y.get(), argmax.get(), nullptr));
        if (kernel_height == 16)
            EXPECT_EQ(255, argmax_bytes(s, argmax)[0]);
        else
            EXPECT_EQ(int32_t(s.input_size() - 1), argmax.download()[0]);
    }
}

TEST_F(CudaPool, MaxWindowInPaddingIsMinusInfinityAndBackwardSkipsIt) {
    // One input column, padded by two on each side: window starts -2, -1, 0, 1.
    const Pool2dShape s = make_shape(1, 1, 1, 1, 1, 2, 1, 1, 0, 2);
    ASSERT_EQ(4, s.output_size());
    DeviceBuffer<float> x(std::vector<float>{-7.0f}), y(4);
    DeviceBuffer<int32_t> argmax(4);
    ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, x.get(), y.get(), argmax.get(), nullptr));
    const float infinity = std::numeric_limits<float>::infinity();
    EXPECT_EQ((std::vector<float>{-infinity, -7.0f, -7.0f, -infinity}), y.download());
    // The input is the second position of window -1 and the first of window 0.
    EXPECT_EQ((std::vector<uint8_t>{255, 1, 0, 255}), argmax_bytes(s, argmax));
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
    const std::vector<uint8_t> offset = argmax_bytes(s, argmax);
    EXPECT_EQ(3.0f, out[0]);
    EXPECT_EQ(1, offset[0]);
    EXPECT_TRUE(std::isnan(out[1]));
    EXPECT_EQ(3, offset[1]);  // the last NaN: a NaN replaces anything, another NaN included (as the CPU)
}

// Gradients route through each backend's own argmax: a different tie or NaN
// choice puts a gradient on another element.
TEST_F(CudaPool, MaxBackwardAccumulatesLikeCpuBitForBit) {
    for (const Pool2dShape& s : shapes()) {
        const std::vector<float> x = pool_inputs(s, 2), grad_y = random_values(s.output_size(), 3);
        std::vector<float> y(s.output_size());
        std::vector<int32_t> argmax(s.output_size());
        cpu::max_pool2d_forward(s, x.data(), y.data(), argmax.data());
        std::vector<float> expected = random_values(s.input_size(), 4);  // a gradient already there
        DeviceBuffer<float> device_x(x), device_y(s.output_size()), device_grad_y(grad_y), device_grad_x(expected);
        DeviceBuffer<int32_t> device_argmax(s.output_size());
        ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, device_x.get(), device_y.get(), device_argmax.get(), nullptr));
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

// accumulate = false is the gradient's first write: every element, those no
// window covers included, is overwritten (with the CPU's sum onto zeros).
TEST_F(CudaPool, BackwardWithoutAccumulateOverwritesEveryElementOfANanBuffer) {
    const float nan_value = std::numeric_limits<float>::quiet_NaN();
    for (const Pool2dShape& s : shapes()) {
        const std::vector<float> x = random_values(s.input_size(), 10), grad_y = random_values(s.output_size(), 11);
        std::vector<float> y(s.output_size());
        std::vector<int32_t> argmax(s.output_size());
        cpu::max_pool2d_forward(s, x.data(), y.data(), argmax.data());
        std::vector<float> expected_max(s.input_size(), 0.0f), expected_avg(s.input_size(), 0.0f);
        cpu::max_pool2d_backward(s, grad_y.data(), argmax.data(), expected_max.data());
        cpu::avg_pool2d_backward(s, grad_y.data(), expected_avg.data());

        const std::vector<float> nans(s.input_size(), nan_value);
        DeviceBuffer<float> device_x(x), device_y(s.output_size()), device_grad_y(grad_y), max_grad_x(nans),
            avg_grad_x(nans);
        DeviceBuffer<int32_t> device_argmax(s.output_size());
        ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, device_x.get(), device_y.get(), device_argmax.get(), nullptr));
        ASSERT_CUDA_SUCCESS(
            cuda::max_pool2d_backward(s, device_grad_y.get(), device_argmax.get(), max_grad_x.get(), nullptr, false));
        ASSERT_CUDA_SUCCESS(cuda::avg_pool2d_backward(s, device_grad_y.get(), avg_grad_x.get(), nullptr, false));
        expect_bitwise_equal(expected_max, max_grad_x.download(), describe(s) + ", max");
        expect_bitwise_equal(expected_avg, avg_grad_x.download(), describe(s) + ", avg");
    }
}

// Shifted by one float, rows of a multiple of 4 values leave 16-byte
// alignment and the kernels take their scalar path: the same results.
TEST_F(CudaPool, UnalignedPointersGiveTheCpuResults) {
    const Pool2dShape s = make_shape(2, 2, 12, 16, 3, 3, 2, 2, 1, 1);  // 8 outputs, 16 inputs a row
    const std::vector<float> x = pool_inputs(s, 12), grad_y = random_values(s.output_size(), 13),
                             grad_x = random_values(s.input_size(), 14);
    std::vector<float> max_y(s.output_size()), avg_y(s.output_size()), max_grad_x = grad_x, avg_grad_x = grad_x;
    std::vector<int32_t> argmax(s.output_size());
    cpu::max_pool2d_forward(s, x.data(), max_y.data(), argmax.data());
    cpu::max_pool2d_backward(s, grad_y.data(), argmax.data(), max_grad_x.data());
    cpu::avg_pool2d_forward(s, x.data(), avg_y.data());
    cpu::avg_pool2d_backward(s, grad_y.data(), avg_grad_x.data());

    const auto shifted = [](const std::vector<float>& values) {
        std::vector<float> out(values.size() + 1, 0.0f);
        std::copy(values.begin(), values.end(), out.begin() + 1);
        return out;
    };
    const auto unshifted = [](const DeviceBuffer<float>& buffer) {
        std::vector<float> values = buffer.download();
        values.erase(values.begin());
        return values;
    };
    DeviceBuffer<float> device_x(shifted(x)), device_max_y(s.output_size() + 1), device_avg_y(s.output_size() + 1),
        device_grad_y(shifted(grad_y)), device_max_grad_x(shifted(grad_x)), device_avg_grad_x(shifted(grad_x));
    DeviceBuffer<int32_t> device_argmax(s.output_size() + 1);
    ASSERT_CUDA_SUCCESS(
        cuda::max_pool2d_forward(s, device_x.get() + 1, device_max_y.get() + 1, device_argmax.get() + 1, nullptr));
    ASSERT_CUDA_SUCCESS(cuda::max_pool2d_backward(s, device_grad_y.get() + 1, device_argmax.get() + 1,
                                                  device_max_grad_x.get() + 1, nullptr));
    ASSERT_CUDA_SUCCESS(cuda::avg_pool2d_forward(s, device_x.get() + 1, device_avg_y.get() + 1, nullptr));
    ASSERT_CUDA_SUCCESS(cuda::avg_pool2d_backward(s, device_grad_y.get() + 1, device_avg_grad_x.get() + 1, nullptr));
    expect_bitwise_equal(max_y, unshifted(device_max_y), "max forward");
    expect_bitwise_equal(max_grad_x, unshifted(device_max_grad_x), "max backward");
    expect_bitwise_equal(avg_y, unshifted(device_avg_y), "avg forward");
    expect_bitwise_equal(avg_grad_x, unshifted(device_avg_grad_x), "avg backward");
}

// Under every schedule (both fiber orders on the emulator, two runs on a
// GPU) all four passes give the same bits.
TEST_F(CudaPool, ResultsAreBitwiseIdenticalUnderEverySchedule) {
    const Pool2dShape s = make_shape(2, 3, 35, 37, 3, 3, 2, 2, 1, 1);
    const std::vector<float> x = pool_inputs(s, 15), grad_y = random_values(s.output_size(), 16),
                             grad_x = random_values(s.input_size(), 17);
    std::vector<std::vector<float>> first;
    cuda_test::for_each_schedule([&](const std::string& schedule) {
        DeviceBuffer<float> device_x(x), max_y(s.output_size()), avg_y(s.output_size()), device_grad_y(grad_y),
            max_grad_x(grad_x), avg_grad_x(grad_x);
        DeviceBuffer<int32_t> argmax(s.output_size());
        ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, device_x.get(), max_y.get(), argmax.get(), nullptr));
        ASSERT_CUDA_SUCCESS(cuda::max_pool2d_backward(s, device_grad_y.get(), argmax.get(), max_grad_x.get(), nullptr));
        ASSERT_CUDA_SUCCESS(cuda::avg_pool2d_forward(s, device_x.get(), avg_y.get(), nullptr));
        ASSERT_CUDA_SUCCESS(cuda::avg_pool2d_backward(s, device_grad_y.get(), avg_grad_x.get(), nullptr));
        const std::vector<std::vector<float>> results{max_y.download(), max_grad_x.download(), avg_y.download(),
                                                      avg_grad_x.download()};
        if (first.empty()) {
            first = results;
            return;
        }
        for (std::size_t i = 0; i < results.size(); ++i)
            expect_bitwise_equal(first[i], results[i], schedule + ", result " + std::to_string(i));
    });
}

TEST_F(CudaPool, BackwardFromZeroTwiceIsTwiceOnce) {
    const Pool2dShape s = shapes()[3];
    const std::vector<float> x = random_values(s.input_size(), 8), grad_y = random_values(s.output_size(), 9);
    DeviceBuffer<float> device_x(x), device_y(s.output_size()), device_grad_y(grad_y);
    DeviceBuffer<int32_t> device_argmax(s.output_size());
    ASSERT_CUDA_SUCCESS(cuda::max_pool2d_forward(s, device_x.get(), device_y.get(), device_argmax.get(), nullptr));
    for (const bool max : {true, false}) {
        const std::vector<float> zeros(s.input_size(), 0.0f);
        DeviceBuffer<float> once(zeros), twice(zeros);
        const auto backward = [&](DeviceBuffer<float>& grad_x) {
            return max ? cuda::max_pool2d_backward(s, device_grad_y.get(), device_argmax.get(), grad_x.get(), nullptr)
                       : cuda::avg_pool2d_backward(s, device_grad_y.get(), grad_x.get(), nullptr);
        };
        ASSERT_CUDA_SUCCESS(backward(once));
        ASSERT_CUDA_SUCCESS(backward(twice));
        ASSERT_CUDA_SUCCESS(backward(twice));
        const std::vector<float> one = once.download(), two = twice.download();
        // Within rounding: the second call adds window by window onto the first's sum.
        for (std::size_t i = 0; i < one.size(); ++i)
            EXPECT_NEAR(2.0f * one[i], two[i], 1e-5f * (1.0f + std::abs(two[i])))
                << (max ? "max" : "avg") << ", element " << i;
    }
}

// The kernels index in 32 bits. No memory is needed: the shape is refused
// before any launch (a launch would fault on the null pointers).
TEST_F(CudaPool, TensorsOf2To31ElementsOrMoreAreRefused) {
    const Pool2dShape big_input = make_shape(1 << 15, 1 << 15, 2, 1, 2, 1, 2, 1, 0, 0);   // 2^31 in, 2^30 out
    const Pool2dShape big_output = make_shape(1, 1, 1, 1, 1, 1, 1, 1, 1 << 15, 1 << 15);  // 1 in, (2^16 + 1)^2 out
    ASSERT_EQ(int64_t{1} << 31, big_input.input_size());
    ASSERT_EQ(int64_t{1} << 30, big_input.output_size());
    ASSERT_GT(big_output.output_size(), int64_t{1} << 31);
    for (const Pool2dShape& s : {big_input, big_output}) {
        EXPECT_EQ(cudaErrorInvalidValue, cuda::max_pool2d_forward(s, nullptr, nullptr, nullptr, nullptr));
        EXPECT_EQ(cudaErrorInvalidValue, cuda::max_pool2d_backward(s, nullptr, nullptr, nullptr, nullptr));
        EXPECT_EQ(cudaErrorInvalidValue, cuda::avg_pool2d_forward(s, nullptr, nullptr, nullptr));
        EXPECT_EQ(cudaErrorInvalidValue, cuda::avg_pool2d_backward(s, nullptr, nullptr, nullptr));
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
