// conv2d as implicit GEMM on the emulator or a GPU against ladon::cpu's conv2d_*:
// odd shapes that fill no tile, strides, padding, 1x1 and non-square
// kernels, every epilogue activation, accumulation, and bitwise determinism
// of the weight gradient.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/conv2d.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;

using ops::Activation;
using ops::Conv2dShape;

// batch, in_channels, in_height, in_width, out_channels, kernel h/w, stride h/w, pad h/w.
const std::vector<Conv2dShape> odd_shapes = {
    {3, 5, 7, 9, 4, 3, 3, 2, 2, 1, 1},    // strided, padded, odd everywhere
    {2, 6, 5, 5, 7, 1, 1, 1, 1, 0, 0},    // 1x1, scalar loads
    {2, 8, 4, 6, 5, 1, 1, 1, 1, 0, 0},    // 1x1 with float4 loads of weight and grad_output
    {2, 3, 8, 6, 5, 3, 2, 2, 1, 1, 0},    // non-square kernel, stride (2, 1), padding (1, 0)
    {2, 4, 6, 7, 33, 3, 3, 1, 1, 1, 1},   // Cout = 33, K = 36: no multiple of a tile
    {1, 3, 5, 5, 70, 3, 3, 1, 1, 1, 1},   // Cout = 70: two tiles of output channels
    {1, 66, 3, 3, 5, 1, 1, 1, 1, 0, 0},   // Cin = 66: two tiles of input channels
    {3, 2, 20, 20, 3, 3, 3, 1, 1, 1, 1},  // backward filter splits its 1200-long reduction in two uneven runs
};

// The partial-sum buffer backward filter asks for (at least one float, so
// the pointer is never null even when the shape needs none).
DeviceBuffer<float> filter_workspace(const Conv2dShape& shape) {
    return DeviceBuffer<float>(std::max<std::size_t>(1, cuda::conv2d_backward_filter_workspace_bytes(shape) / 4));
}

std::string describe(const Conv2dShape& s) {
    std::ostringstream text;
    text << "N" << s.batch << " C" << s.in_channels << " " << s.in_height << "x" << s.in_width << " Cout"
         << s.out_channels << " k" << s.kernel_height << "x" << s.kernel_width << " s" << s.stride_height << ","
         << s.stride_width << " p" << s.pad_height << "," << s.pad_width;
    return text.str();
}

std::vector<float> random_values(int64_t size, uint64_t seed) {
    std::vector<float> values(static_cast<std::size_t>(size));
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = 2.0f * ops::uniform01(seed, i) - 1.0f;
    return values;
}

std::vector<float> cpu_workspace(const Conv2dShape& shape) {
    return std::vector<float>(cpu::conv2d_workspace_floats(shape, omp_get_max_threads()));
}

// |actual - expected| within 1e-4 of the largest |expected|: summation order
// differs from the CPU's GEMM, so errors scale with the result's magnitude.
void expect_close(const std::vector<float>& expected, const std::vector<float>& actual, const std::string& what) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    float scale = 0.0f;
    for (float value : expected) scale = std::max(scale, std::abs(value));
    const float tolerance = 1e-4f * scale + 1e-6f;
    int reported = 0;
    for (std::size_t i = 0; i < expected.size(); ++i)
        if (!(std::abs(expected[i] - actual[i]) <= tolerance) && reported++ < 5)
            ADD_FAILURE() << what << ": element " << i << " expected " << expected[i] << " got " << actual[i]
                          << " (tolerance " << tolerance << ")";
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void expect_forward_matches_cpu(const Conv2dShape& shape, bool with_bias, Activation activation) {
    const std::string what = describe(shape) + (with_bias ? " bias" : " no bias") + " activation " +
                             std::to_string(static_cast<int>(activation));
    const std::vector<float> input = random_values(shape.input_size(), 1),
                             weight = random_values(shape.weight_size(), 2),
                             bias = random_values(shape.out_channels, 3);
    const float negative_slope = 0.1f;

    std::vector<float> expected(static_cast<std::size_t>(shape.output_size())), workspace = cpu_workspace(shape);
    cpu::conv2d_forward(shape, input.data(), weight.data(), with_bias ? bias.data() : nullptr, expected.data(),
                        workspace.data());
    cpu::activation_forward(activation, negative_slope, shape.output_size(), expected.data(), expected.data());

    DeviceBuffer<float> device_input(input), device_weight(weight), device_bias(bias),
        device_output(static_cast<std::size_t>(shape.output_size()));
    ASSERT_CUDA_SUCCESS(cuda::conv2d_forward(shape, device_input.get(), device_weight.get(),
                                             with_bias ? device_bias.get() : nullptr, activation, negative_slope,
                                             device_output.get(), nullptr))
        << what;
    expect_close(expected, device_output.download(), what);
}

class CudaConv2d : public cuda_test::DeviceTest {};

TEST_F(CudaConv2d, ForwardWithBiasMatchesCpuOnOddShapes) {
    for (const Conv2dShape& shape : odd_shapes) expect_forward_matches_cpu(shape, true, Activation::identity);
}

TEST_F(CudaConv2d, ForwardFusesEveryActivationWithAndWithoutBias) {
    const Conv2dShape shape{3, 5, 7, 9, 4, 3, 3, 2, 2, 1, 1};
    for (Activation activation :
         {Activation::identity, Activation::relu, Activation::leaky_relu, Activation::sigmoid, Activation::tanh})
        for (bool with_bias : {false, true}) expect_forward_matches_cpu(shape, with_bias, activation);
}

TEST_F(CudaConv2d, BackwardDataMatchesCpuAndAccumulates) {
    for (const Conv2dShape& shape : odd_shapes) {
        const std::string what = describe(shape);
        const std::vector<float> weight = random_values(shape.weight_size(), 4),
                                 grad_output = random_values(shape.output_size(), 5),
                                 initial = random_values(shape.input_size(), 6);
        std::vector<float> expected = initial, workspace = cpu_workspace(shape);
        cpu::conv2d_backward_data(shape, weight.data(), grad_output.data(), expected.data(), workspace.data());

        DeviceBuffer<float> device_weight(weight), device_grad_output(grad_output), device_grad_input(initial);
        ASSERT_CUDA_SUCCESS(cuda::conv2d_backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                       device_grad_input.get(), nullptr))
            << what;
        expect_close(expected, device_grad_input.download(), what + " onto nonzero grad_input");

        // From zero, a second call adds the same values again: exactly twice.
        device_grad_input.zero();
        ASSERT_CUDA_SUCCESS(cuda::conv2d_backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                       device_grad_input.get(), nullptr));
        const std::vector<float> once = device_grad_input.download();
        ASSERT_CUDA_SUCCESS(cuda::conv2d_backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                       device_grad_input.get(), nullptr));
        const std::vector<float> twice = device_grad_input.download();
        for (std::size_t i = 0; i < once.size(); ++i) ASSERT_EQ(2.0f * once[i], twice[i]) << what << " element " << i;
    }
}

// accumulate = false (a gradient's first write): every element is written,
// whatever the buffer held (here NaN), equal to one accumulating call from zero.
TEST_F(CudaConv2d, BackwardDataOverwritesEveryElementWhenNotAccumulating) {
    for (const Conv2dShape& shape : odd_shapes) {
        const std::vector<float> weight = random_values(shape.weight_size(), 7),
                                 grad_output = random_values(shape.output_size(), 8);
        DeviceBuffer<float> device_weight(weight), device_grad_output(grad_output), from_zero(shape.input_size()),
            over_nan(shape.input_size());  // DeviceBuffer starts as 0xFF bytes: NaN
        from_zero.zero();
        ASSERT_CUDA_SUCCESS(cuda::conv2d_backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                       from_zero.get(), nullptr));
        ASSERT_CUDA_SUCCESS(cuda::conv2d_backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                       over_nan.get(), nullptr, cuda::MatmulPrecision::fp32, false));
        const std::vector<float> expected = from_zero.download(), actual = over_nan.download();
        for (std::size_t i = 0; i < expected.size(); ++i)
            ASSERT_EQ(expected[i], actual[i]) << describe(shape) << " element " << i;
    }
}

TEST_F(CudaConv2d, BackwardFilterMatchesCpuAndAccumulatesWithAndWithoutBias) {
    for (const Conv2dShape& shape : odd_shapes)
        for (bool with_bias : {true, false}) {
            const std::string what = describe(shape) + (with_bias ? " bias" : " no bias");
            const std::vector<float> input = random_values(shape.input_size(), 7),
                                     grad_output = random_values(shape.output_size(), 8),
                                     initial_weight = random_values(shape.weight_size(), 9),
                                     initial_bias = random_values(shape.out_channels, 10);
            std::vector<float> expected_weight = initial_weight, expected_bias = initial_bias,
                               workspace = cpu_workspace(shape);
            cpu::conv2d_backward_filter(shape, input.data(), grad_output.data(), expected_weight.data(),
                                        with_bias ? expected_bias.data() : nullptr, workspace.data());

            DeviceBuffer<float> device_input(input), device_grad_output(grad_output),
                device_grad_weight(initial_weight), device_grad_bias(initial_bias),
                workspace_buffer = filter_workspace(shape);
            ASSERT_CUDA_SUCCESS(cuda::conv2d_backward_filter(
                shape, device_input.get(), device_grad_output.get(), device_grad_weight.get(),
                with_bias ? device_grad_bias.get() : nullptr, workspace_buffer.get(), nullptr))
                << what;
            expect_close(expected_weight, device_grad_weight.download(), what + " grad_weight");
            expect_close(with_bias ? expected_bias : initial_bias, device_grad_bias.download(), what + " grad_bias");
        }
}

void expect_backward_filter_reproducible(const Conv2dShape& shape) {
    SCOPED_TRACE(describe(shape));
    const std::vector<float> input = random_values(shape.input_size(), 11),
                             grad_output = random_values(shape.output_size(), 12);
    DeviceBuffer<float> device_input(input), device_grad_output(grad_output),
        device_grad_weight(static_cast<std::size_t>(shape.weight_size())),
        device_grad_bias(static_cast<std::size_t>(shape.out_channels)), workspace = filter_workspace(shape);
    auto run_from_zero = [&] {
        device_grad_weight.zero();
        device_grad_bias.zero();
        EXPECT_CUDA_SUCCESS(cuda::conv2d_backward_filter(shape, device_input.get(), device_grad_output.get(),
                                                         device_grad_weight.get(), device_grad_bias.get(),
                                                         workspace.get(), nullptr));
        return std::make_pair(device_grad_weight.download(), device_grad_bias.download());
    };
    const auto first = run_from_zero();
    cuda_test::for_each_schedule([&](const std::string& schedule) {
        const auto again = run_from_zero();
        EXPECT_TRUE(bitwise_equal(first.first, again.first)) << "grad_weight, " << schedule;
        EXPECT_TRUE(bitwise_equal(first.second, again.second)) << "grad_bias, " << schedule;
    });

    EXPECT_CUDA_SUCCESS(cuda::conv2d_backward_filter(shape, device_input.get(), device_grad_output.get(),
                                                     device_grad_weight.get(), device_grad_bias.get(), workspace.get(),
                                                     nullptr));
    const std::vector<float> twice_weight = device_grad_weight.download(), twice_bias = device_grad_bias.download();
    for (std::size_t i = 0; i < twice_weight.size(); ++i) EXPECT_EQ(2.0f * first.first[i], twice_weight[i]) << i;
    for (std::size_t i = 0; i < twice_bias.size(); ++i) EXPECT_EQ(2.0f * first.second[i], twice_bias[i]) << i;
}

TEST_F(CudaConv2d, BackwardFilterTwiceFromZeroIsBitwiseIdenticalAndDoubles) {
    expect_backward_filter_reproducible({3, 5, 7, 9, 33, 3, 3, 2, 2, 1, 1});
}

TEST_F(CudaConv2d, BackwardFilterSplitAcrossBlocksIsBitwiseIdenticalAndDoubles) {
    const Conv2dShape shape{3, 2, 20, 20, 3, 3, 3, 1, 1, 1, 1};
    ASSERT_GT(cuda::conv2d_backward_filter_workspace_bytes(shape), 0u) << "the shape should split its reduction";
    expect_backward_filter_reproducible(shape);
}

TEST_F(CudaConv2d, InvalidShapeIsRejectedAndEmptyBatchIsANoOp) {
    const Conv2dShape too_large_kernel{1, 1, 2, 2, 1, 3, 3, 1, 1, 0, 0};
    EXPECT_EQ(cudaErrorInvalidValue, cuda::conv2d_forward(too_large_kernel, nullptr, nullptr, nullptr,
                                                          Activation::identity, 0.0f, nullptr, nullptr));
    EXPECT_EQ(cudaErrorInvalidValue, cuda::conv2d_backward_data(too_large_kernel, nullptr, nullptr, nullptr, nullptr));
    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::conv2d_backward_filter(too_large_kernel, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr));
    const Conv2dShape split{3, 2, 20, 20, 3, 3, 3, 1, 1, 1, 1};
    EXPECT_EQ(cudaErrorInvalidValue, cuda::conv2d_backward_filter(split, nullptr, nullptr, nullptr, nullptr,
                                                                  nullptr /*workspace missing*/, nullptr));
    const Conv2dShape empty{0, 2, 3, 3, 2, 1, 1, 1, 1, 0, 0};
    EXPECT_EQ(cudaSuccess,
              cuda::conv2d_forward(empty, nullptr, nullptr, nullptr, Activation::relu, 0.0f, nullptr, nullptr));
}

}  // namespace
}  // namespace ladon
