// The tensor-core convolutions (kernels/cuda/conv2d_tensor_core.cuh), reached
// through conv2d_* with precision tf32 or bf16, against ladon::cpu's conv2d_*
// on odd shapes: 1x1, 3x3 and 5x5 kernels, strides 1 and 2, padding, batch 1
// and 3, 1, 3 and 13 channels, K and N that fill no tile; bitwise
// repeatability in both fiber orders; conflict-free copies into shared memory.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/conv2d.hpp"
#include "kernels/cuda/conv2d_tensor_core.hpp"
#include "kernels/cuda/fast_divisor.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda::MatmulPrecision;
using cuda::MmaTiles;
using cuda_test::DeviceBuffer;
using ops::Activation;
using ops::Conv2dShape;

// batch, in_channels, in_height, in_width, out_channels, kernel h/w, stride h/w, pad h/w.
const std::vector<Conv2dShape> shapes = {
    {1, 1, 9, 11, 3, 1, 1, 1, 1, 0, 0},     // one input channel, 1x1
    {3, 3, 9, 7, 13, 3, 3, 1, 1, 1, 1},     // 3 -> 13 channels, 3x3 padded, batch 3
    {3, 13, 10, 9, 5, 5, 5, 2, 2, 2, 2},    // 5x5, stride 2, padding 2
    {1, 13, 11, 11, 70, 3, 3, 2, 2, 0, 0},  // stride 2 unpadded; 70 output channels: two row tiles
    {2, 4, 6, 7, 33, 3, 3, 1, 1, 1, 1},     // K = 36: weight rows copied as 16-byte chunks
    {3, 3, 8, 6, 5, 3, 2, 2, 1, 1, 0},      // non-square kernel, stride (2, 1), padding (1, 0)
    {1, 66, 3, 3, 5, 1, 1, 1, 1, 0, 0},     // 66 input channels: three k-tiles forward, two row tiles backward
    {3, 3, 9, 8, 5, 1, 1, 2, 2, 0, 0},      // 1x1, stride 2: three of the four stride phases receive no tap
    {2, 3, 10, 11, 4, 2, 2, 3, 3, 1, 0},    // 2x2 kernel, stride 3: phases with and without taps, ragged phases
    {3, 2, 20, 20, 3, 3, 3, 1, 1, 1, 1},    // backward filter splits its 1200-long reduction
};

std::string describe(const Conv2dShape& s, MatmulPrecision precision, MmaTiles tiles = MmaTiles::automatic) {
    std::ostringstream text;
    text << (precision == MatmulPrecision::tf32 ? "tf32" : "bf16")
         << (tiles == MmaTiles::large ? " 128x128" : tiles == MmaTiles::small ? " 64x64" : "") << " N" << s.batch << " C" << s.in_channels << " "
         << s.in_height << "x" << s.in_width << " Cout" << s.out_channels << " k" << s.kernel_height << "x"
         << s.kernel_width << " s" << s.stride_height << "," << s.stride_width << " p" << s.pad_height << ","
         << s.pad_width;
    return text.str();
}

std::vector<float> absolute(std::vector<float> values) {
    for (float& value : values) value = std::fabs(value);
    return values;
}

std::vector<float> cpu_workspace(const Conv2dShape& shape) {
    return std::vector<float>(cpu::conv2d_workspace_floats(shape, omp_get_max_threads()));
}

// The bound on |tensor core - CPU| for one output whose K products have
// magnitudes summing to `magnitude` (the same convolution of |operands|):
// both operands rounded (unit roundoff u = 2^-11 for TF32, 2^-8 for BF16:
// 2u + u^2 per product), FP32 accumulation in any order on either side
// (2 (K + 2) 2^-24), and the rounding of a nonzero starting value.
double tolerance(MatmulPrecision precision, int64_t k, double magnitude, double start) {
    const double u = precision == MatmulPrecision::tf32 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    return (2 * u + u * u + 2 * (k + 2) * std::ldexp(1.0, -24)) * magnitude * 1.0001 +
           std::ldexp(1.0, -22) * std::fabs(start) + 1e-30;
}

void expect_within(const std::vector<float>& expected, const std::vector<float>& actual,
                   const std::vector<float>& magnitude, const std::vector<float>& start, MatmulPrecision precision,
                   int64_t k, const std::string& what) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    int reported = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const double bound = tolerance(precision, k, magnitude[i], start.empty() ? 0.0 : start[i]);
        if (!(std::fabs(double{expected[i]} - actual[i]) <= bound) && reported++ < 5)
            ADD_FAILURE() << what << ": element " << i << " expected " << expected[i] << " got " << actual[i]
                          << " (tolerance " << bound << ")";
    }
}

// Forward with bias and ReLU (the epilogue): the pre-activation values are
// compared, ReLU applied to both sides after.
// tiles automatic: through conv2d_forward; small or large: the tensor-core
// kernel with those tiles.
std::vector<float> expect_forward(const Conv2dShape& shape, MatmulPrecision precision,
                                  MmaTiles tiles = MmaTiles::automatic) {
    const std::string what = describe(shape, precision, tiles) + " forward";
    const std::vector<float> input = cuda_test::uniform_values(shape.input_size(), 1),
                             weight = cuda_test::uniform_values(shape.weight_size(), 2),
                             bias = cuda_test::uniform_values(shape.out_channels, 3);
    const std::size_t size = static_cast<std::size_t>(shape.output_size());
    std::vector<float> expected(size), magnitude(size), workspace = cpu_workspace(shape);
    cpu::conv2d_forward(shape, input.data(), weight.data(), bias.data(), expected.data(), workspace.data());
    cpu::conv2d_forward(shape, absolute(input).data(), absolute(weight).data(), absolute(bias).data(),
                        magnitude.data(), workspace.data());
    cpu::activation_forward(Activation::relu, 0.0f, shape.output_size(), expected.data(), expected.data());

    DeviceBuffer<float> device_input(input), device_weight(weight), device_bias(bias), device_output(size);
    EXPECT_CUDA_SUCCESS(tiles == MmaTiles::automatic
                            ? cuda::conv2d_forward(shape, device_input.get(), device_weight.get(), device_bias.get(),
                                                   Activation::relu, 0.0f, device_output.get(), nullptr, precision)
                            : cuda::tc_conv::forward(shape, device_input.get(), device_weight.get(),
                                                     device_bias.get(), Activation::relu, 0.0f, device_output.get(),
                                                     precision, nullptr, tiles))
        << what;
    const std::vector<float> actual = device_output.download();
    expect_within(expected, actual, magnitude, {}, precision,
                  shape.in_channels * shape.kernel_height * shape.kernel_width + 1, what);
    return actual;
}

// grad_input += onto a nonzero start.
std::vector<float> expect_backward_data(const Conv2dShape& shape, MatmulPrecision precision,
                                        MmaTiles tiles = MmaTiles::automatic) {
    const std::string what = describe(shape, precision, tiles) + " backward data";
    const std::vector<float> weight = cuda_test::uniform_values(shape.weight_size(), 4),
                             grad_output = cuda_test::uniform_values(shape.output_size(), 5),
                             start = cuda_test::uniform_values(shape.input_size(), 6);
    std::vector<float> expected = start, magnitude(start.size()), workspace = cpu_workspace(shape);
    cpu::conv2d_backward_data(shape, weight.data(), grad_output.data(), expected.data(), workspace.data());
    cpu::conv2d_backward_data(shape, absolute(weight).data(), absolute(grad_output).data(), magnitude.data(),
                              workspace.data());

    DeviceBuffer<float> device_weight(weight), device_grad_output(grad_output), device_grad_input(start);
    EXPECT_CUDA_SUCCESS(tiles == MmaTiles::automatic
                            ? cuda::conv2d_backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                         device_grad_input.get(), nullptr, precision)
                            : cuda::tc_conv::backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                           device_grad_input.get(), precision, nullptr, tiles))
        << what;
    const std::vector<float> actual = device_grad_input.download();
    expect_within(expected, actual, magnitude, start, precision,
                  shape.out_channels * shape.kernel_height * shape.kernel_width, what);
    return actual;
}

// grad_weight and grad_bias += onto nonzero starts (the bias gradient is the
// FP32 kernel's: exact to the CPU's summation order).
std::vector<float> expect_backward_filter(const Conv2dShape& shape, MatmulPrecision precision) {
    const std::string what = describe(shape, precision) + " backward filter";
    const std::vector<float> input = cuda_test::uniform_values(shape.input_size(), 7),
                             grad_output = cuda_test::uniform_values(shape.output_size(), 8),
                             start = cuda_test::uniform_values(shape.weight_size(), 9),
                             bias_start = cuda_test::uniform_values(shape.out_channels, 10);
    std::vector<float> expected = start, expected_bias = bias_start, magnitude(start.size()),
                       magnitude_bias(bias_start.size()), workspace = cpu_workspace(shape);
    cpu::conv2d_backward_filter(shape, input.data(), grad_output.data(), expected.data(), expected_bias.data(),
                                workspace.data());
    cpu::conv2d_backward_filter(shape, absolute(input).data(), absolute(grad_output).data(), magnitude.data(),
                                magnitude_bias.data(), workspace.data());

    DeviceBuffer<float> device_input(input), device_grad_output(grad_output), device_grad_weight(start),
        device_grad_bias(bias_start),
        device_workspace(std::max<std::size_t>(1, cuda::conv2d_backward_filter_workspace_bytes(shape) / 4));
    EXPECT_CUDA_SUCCESS(cuda::conv2d_backward_filter(shape, device_input.get(), device_grad_output.get(),
                                                     device_grad_weight.get(), device_grad_bias.get(),
                                                     device_workspace.get(), nullptr, precision))
        << what;
    const std::vector<float> actual = device_grad_weight.download();
    const int64_t reduction = shape.batch * shape.out_height() * shape.out_width();
    expect_within(expected, actual, magnitude, start, precision, reduction, what + " grad_weight");
    const std::vector<float> actual_bias = device_grad_bias.download();
    for (std::size_t i = 0; i < actual_bias.size(); ++i)
        EXPECT_NEAR(expected_bias[i], actual_bias[i],
                    (reduction + 2) * std::ldexp(1.0, -23) * magnitude_bias[i] +
                        std::ldexp(1.0, -22) * std::fabs(bias_start[i]))
            << what << " grad_bias " << i;
    return actual;
}

class CudaConv2dTensorCore : public cuda_test::DeviceTest {};

// The gathers' index decodes: quotient and remainder exact for every divisor
// 1..4096 and some large ones, at the edges and on pseudo-random values < 2^31.
TEST_F(CudaConv2dTensorCore, FastDivisorDividesExactlyBelowTwoToThe31) {
    std::vector<std::uint32_t> divisors;
    for (std::uint32_t d = 1; d <= 4096; ++d) divisors.push_back(d);
    for (const std::uint32_t d : {65535u, 65536u, 65537u, 1000003u, (1u << 30) - 1, 1u << 30, (1u << 31) - 1})
        divisors.push_back(d);
    std::uint64_t state = 88172645463325252ull;
    for (const std::uint32_t d : divisors) {
        const cuda::FastDivisor divisor(d);
        std::vector<std::uint32_t> values = {0, 1, d - 1, d, d + 1, 2 * d - 1, (1u << 31) - 1, (1u << 31) - d};
        for (int i = 0; i < 64; ++i) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            values.push_back(static_cast<std::uint32_t>(state >> 33));  // < 2^31
        }
        for (const std::uint32_t value : values) {
            if (value >= (1u << 31)) continue;
            int quotient, remainder;
            divisor.divide(value, quotient, remainder);
            ASSERT_EQ(value / d, static_cast<std::uint32_t>(quotient)) << value << " / " << d;
            ASSERT_EQ(value % d, static_cast<std::uint32_t>(remainder)) << value << " % " << d;
        }
    }
}

TEST_F(CudaConv2dTensorCore, ForwardMatchesCpuWithinThePrecisionsBound) {
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Conv2dShape& shape : shapes) {
            ASSERT_TRUE(cuda::conv2d_tensor_core_applies(shape));
            ASSERT_EQ(MmaTiles::small, cuda::choose_mma_tiles(shape.out_channels, shape.output_size()));
            expect_forward(shape, precision);
        }
}

// The 128 x 128 tiles (8 warps, 4 x 4 mma tiles each), which the heuristic
// picks only for large layers, on the same shapes.
TEST_F(CudaConv2dTensorCore, ForwardWithLargeTilesMatchesCpu) {
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Conv2dShape& shape : shapes) expect_forward(shape, precision, MmaTiles::large);
}

TEST_F(CudaConv2dTensorCore, BackwardDataMatchesCpuWithinThePrecisionsBound) {
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Conv2dShape& shape : shapes) expect_backward_data(shape, precision);
}

TEST_F(CudaConv2dTensorCore, BackwardDataWithLargeTilesMatchesCpu) {
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Conv2dShape& shape : shapes) expect_backward_data(shape, precision, MmaTiles::large);
}

// Large tiles once every SM gets a block (132 of 128 x 128: an H100/H200)
// that is not half empty.
// accumulate = false: every element written over NaN, stride phases that
// receive no tap included, equal to one accumulating call from zero.
TEST_F(CudaConv2dTensorCore, BackwardDataOverwritesEveryElementWhenNotAccumulating) {
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Conv2dShape& shape : shapes) {
            const std::vector<float> weight = cuda_test::uniform_values(shape.weight_size(), 7),
                                     grad_output = cuda_test::uniform_values(shape.output_size(), 8);
            DeviceBuffer<float> device_weight(weight), device_grad_output(grad_output),
                from_zero(std::vector<float>(shape.input_size(), 0.0f)), over_nan(shape.input_size());
            ASSERT_CUDA_SUCCESS(cuda::conv2d_backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                           from_zero.get(), nullptr, precision));
            ASSERT_CUDA_SUCCESS(cuda::conv2d_backward_data(shape, device_weight.get(), device_grad_output.get(),
                                                           over_nan.get(), nullptr, precision, false));
            const std::vector<float> expected = from_zero.download(), actual = over_nan.download();
            for (std::size_t i = 0; i < expected.size(); ++i)
                ASSERT_EQ(expected[i], actual[i]) << describe(shape, precision) << " element " << i;
        }
}

TEST_F(CudaConv2dTensorCore, LargeTilesOnlyWhenTheyFillTheGpu) {
    EXPECT_EQ(MmaTiles::small, cuda::choose_mma_tiles(64, 256 * 56 * 56));   // ResNet-18 layer1: 64 channels
    EXPECT_EQ(MmaTiles::large, cuda::choose_mma_tiles(128, 256 * 28 * 28));  // ResNet-18 layer2 at batch 256
    EXPECT_EQ(MmaTiles::small, cuda::choose_mma_tiles(1024, 1024));          // 64 large blocks
    EXPECT_EQ(MmaTiles::large, cuda::choose_mma_tiles(128 * 12, 128 * 11));  // exactly one per SM
    EXPECT_EQ(MmaTiles::small, cuda::choose_mma_tiles(128 * 131, 128));
}

TEST_F(CudaConv2dTensorCore, BackwardFilterMatchesCpuWithinThePrecisionsBound) {
    ASSERT_GT(cuda::conv2d_backward_filter_workspace_bytes(shapes.back()), 0u) << "the last shape should split";
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Conv2dShape& shape : shapes) expect_backward_filter(shape, precision);
}

// The tensor cores ran: TF32 results differ from the FP32 kernel's somewhere
// (rounded operands), and BF16 from TF32.
TEST_F(CudaConv2dTensorCore, PrecisionSelectsTheKernel) {
    const Conv2dShape shape = shapes[1];
    const std::vector<float> input = cuda_test::uniform_values(shape.input_size(), 1),
                             weight = cuda_test::uniform_values(shape.weight_size(), 2);
    DeviceBuffer<float> device_input(input), device_weight(weight),
        device_output(static_cast<std::size_t>(shape.output_size()));
    std::vector<std::vector<float>> outputs;
    for (const MatmulPrecision precision : {MatmulPrecision::fp32, MatmulPrecision::tf32, MatmulPrecision::bf16}) {
        ASSERT_CUDA_SUCCESS(cuda::conv2d_forward(shape, device_input.get(), device_weight.get(), nullptr,
                                                 Activation::identity, 0.0f, device_output.get(), nullptr, precision));
        outputs.push_back(device_output.download());
    }
    EXPECT_NE(outputs[0], outputs[1]);
    EXPECT_NE(outputs[1], outputs[2]);
    // A sample of 2^31 input elements takes the FP32 kernels.
    EXPECT_FALSE(cuda::conv2d_tensor_core_applies({1, 1 << 16, 1 << 8, 1 << 7, 1, 1, 1, 1, 1, 0, 0}));
}

TEST_F(CudaConv2dTensorCore, IsBitwiseRepeatableInBothFiberOrders) {
    const Conv2dShape split = shapes.back(), strided = shapes[2];
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16}) {
        std::vector<std::vector<float>> results;
        cuda_test::for_each_schedule([&](const std::string&) {
            results.push_back(expect_forward(strided, precision));
            results.push_back(expect_backward_data(strided, precision));
            results.push_back(expect_backward_filter(split, precision));
            results.push_back(expect_forward(strided, precision, MmaTiles::large));
            results.push_back(expect_backward_data(strided, precision, MmaTiles::large));
        });
        ASSERT_EQ(10u, results.size());
        for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(results[i], results[i + 5]) << "result " << i;
    }
}

#if defined(LADON_EMU)
// Every gathering copy writes 32 consecutive floats of one tile row.
TEST_F(CudaConv2dTensorCore, CopiesIntoSharedMemoryHaveNoBankConflicts) {
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Conv2dShape& shape : {shapes[2], shapes[4]}) {
            emu::reset_shared_bank_conflicts();
            expect_forward(shape, precision);
            expect_backward_data(shape, precision);
            expect_backward_filter(shape, precision);
            expect_forward(shape, precision, MmaTiles::large);
            expect_backward_data(shape, precision, MmaTiles::large);
            const emu::BankCounts counts = emu::shared_bank_conflicts().cp_async;
            EXPECT_GT(counts.phases, 0u);
            EXPECT_EQ(0u, counts.conflicts()) << describe(shape, precision);
        }
}
#endif

}  // namespace
}  // namespace ladon
