// Elementwise ops and concat (kernels/cuda/elementwise.cuh) on the emulator or a GPU
// against ladon::cpu: every activation forward and backward on counts that
// leave a float4 tail, through aligned (float4) and misaligned (scalar)
// pointers, with NaN, infinities and saturating inputs; dropout masks
// bit-identical to the CPU's; backward passes that accumulate.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/random.cuh"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;
using ops::Activation;

constexpr Activation all_activations[] = {Activation::identity, Activation::relu, Activation::leaky_relu,
                                          Activation::sigmoid, Activation::tanh};
constexpr float negative_slope = 0.1f;
constexpr float infinity = std::numeric_limits<float>::infinity();
constexpr float nan_value = std::numeric_limits<float>::quiet_NaN();

// 1 and 7: all tail; 1037 = 259 float4 + 1.
constexpr int64_t counts[] = {1, 7, 1037};

std::vector<float> random_values(std::size_t size, unsigned seed, float scale = 1.0f) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> distribution(-scale, scale);
    std::vector<float> values(size);
    for (float& value : values) value = distribution(generator);
    return values;
}

// Inputs for activations: random in [-4, 4], with the special values first.
std::vector<float> activation_inputs(int64_t count, unsigned seed) {
    std::vector<float> values = random_values(count, seed, 4.0f);
    const float specials[] = {0.0f, nan_value, infinity, -infinity, 100.0f, -100.0f, -0.0f};
    for (std::size_t i = 0; i < std::size(specials) && i < values.size(); ++i) values[i] = specials[i];
    return values;
}

// A device range of `count` floats at a chosen alignment: offset 0 is
// cudaMalloc's (16-byte aligned, the float4 path), offset 1 is not (scalar).
class DeviceRange {
public:
    DeviceRange(int64_t count, int offset) : buffer_(count + offset), offset_(offset), count_(count) {}
    DeviceRange(const std::vector<float>& host, int offset) : DeviceRange(static_cast<int64_t>(host.size()), offset) {
        upload(host);
    }
    float* get() const { return buffer_.get() + offset_; }
    void upload(const std::vector<float>& host) {
        if (cudaMemcpy(get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess)
            throw std::runtime_error("upload: " + cuda_test::last_error_message());
    }
    std::vector<float> download() const {
        std::vector<float> host(count_);
        if (cudaMemcpy(host.data(), get(), host.size() * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess)
            throw std::runtime_error("download: " + cuda_test::last_error_message());
        return host;
    }

private:
    DeviceBuffer<float> buffer_;
    int offset_;
    int64_t count_;
};

// Equal within 1e-6 relative (the formulas are the CPU's; only libm may
// differ on a GPU), NaN where the CPU has NaN, the same infinities.
void expect_close(const std::vector<float>& expected, const std::vector<float>& actual, const std::string& what) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    int reported = 0;
    for (std::size_t i = 0; i < expected.size() && reported < 5; ++i) {
        const float e = expected[i], a = actual[i];
        const bool ok = std::isnan(e) ? std::isnan(a) : (e == a || std::abs(e - a) <= 1e-6f * (1.0f + std::abs(e)));
        if (ok) continue;
        ADD_FAILURE() << what << ": element " << i << " expected " << e << ", got " << a;
        ++reported;
    }
}

void expect_bitwise_equal(const std::vector<float>& expected, const std::vector<float>& actual,
                          const std::string& what) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    EXPECT_EQ(0, std::memcmp(expected.data(), actual.data(), expected.size() * sizeof(float))) << what;
}

std::string describe(int64_t count, int offset) {
    return "count " + std::to_string(count) + (offset == 0 ? ", aligned" : ", misaligned");
}

std::string describe(Activation activation, int64_t count, int offset) {
    return "activation " + std::to_string(static_cast<int>(activation)) + ", " + describe(count, offset);
}

class CudaElementwise : public cuda_test::DeviceTest {};

TEST_F(CudaElementwise, UniformMatchesTheCpuHashBitForBit) {
    static_assert(cuda::uniform01(42, 7) == ops::uniform01(42, 7));
    static_assert(cuda::mix64(0) == ops::mix64(0));
    for (const uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{0x123456789abcdefull}, ~uint64_t{0}})
        for (uint64_t index = 0; index < 4096; ++index)
            ASSERT_EQ(ops::uniform01(seed, index), cuda::uniform01(seed, index)) << seed << ", " << index;
}

TEST_F(CudaElementwise, ActivationForwardMatchesCpuIncludingNanAndInfinity) {
    for (const int64_t count : counts) {
        const std::vector<float> x = activation_inputs(count, 1);
        for (const int offset : {0, 1}) {
            DeviceRange device_x(x, offset), device_y(count, offset);
            for (const Activation activation : all_activations) {
                std::vector<float> expected(count);
                cpu::activation_forward(activation, negative_slope, count, x.data(), expected.data());
                ASSERT_CUDA_SUCCESS(cuda::activation_forward(activation, negative_slope, count, device_x.get(),
                                                             device_y.get(), nullptr));
                expect_close(expected, device_y.download(), describe(activation, count, offset));
            }
        }
    }
}

TEST_F(CudaElementwise, ReluPassesNanThrough) {
    DeviceBuffer<float> x(std::vector<float>{nan_value, -1.0f, 2.0f}), y(3);
    ASSERT_CUDA_SUCCESS(cuda::activation_forward(Activation::relu, 0.0f, 3, x.get(), y.get(), nullptr));
    const std::vector<float> result = y.download();
    EXPECT_TRUE(std::isnan(result[0]));
    EXPECT_EQ(0.0f, result[1]);
    EXPECT_EQ(2.0f, result[2]);
}

TEST_F(CudaElementwise, ActivationForwardRunsInPlace) {
    const int64_t count = 1037;
    const std::vector<float> x = activation_inputs(count, 2);
    std::vector<float> expected(count);
    cpu::activation_forward(Activation::sigmoid, 0.0f, count, x.data(), expected.data());
    DeviceBuffer<float> device_x(x);
    ASSERT_CUDA_SUCCESS(
        cuda::activation_forward(Activation::sigmoid, 0.0f, count, device_x.get(), device_x.get(), nullptr));
    expect_close(expected, device_x.download(), "in place");
}

TEST_F(CudaElementwise, ActivationBackwardAccumulatesLikeCpu) {
    for (const int64_t count : counts) {
        const std::vector<float> x = random_values(count, 3, 4.0f), grad_y = random_values(count, 4);
        for (const int offset : {0, 1}) {
            for (const Activation activation : all_activations) {
                // The pointer the derivative does not read is passed as nullptr, as the header allows.
                const bool reads_x = activation == Activation::relu || activation == Activation::leaky_relu;
                const bool reads_y = activation == Activation::sigmoid || activation == Activation::tanh;
                std::vector<float> y(count);
                cpu::activation_forward(activation, negative_slope, count, x.data(), y.data());
                std::vector<float> expected = random_values(count, 5);  // a gradient already there
                DeviceRange device_x(x, offset), device_y(y, offset), device_grad_y(grad_y, offset),
                    device_grad_x(expected, offset);
                for (int call = 1; call <= 2; ++call) {
                    cpu::activation_backward(activation, negative_slope, count, x.data(), y.data(), grad_y.data(),
                                             expected.data());
                    ASSERT_CUDA_SUCCESS(cuda::activation_backward(
                        activation, negative_slope, count, reads_x ? device_x.get() : nullptr,
                        reads_y ? device_y.get() : nullptr, device_grad_y.get(), device_grad_x.get(), nullptr));
                    expect_close(expected, device_grad_x.download(),
                                 describe(activation, count, offset) + ", call " + std::to_string(call));
                }
            }
        }
    }
}

TEST_F(CudaElementwise, DropoutMasksAreBitIdenticalToCpu) {
    const uint64_t seed = 0xfeedbeefull;
    for (const int64_t count : counts) {
        const std::vector<float> x = random_values(count, 6), grad_y = random_values(count, 7);
        for (const int offset : {0, 1}) {
            for (const float probability : {0.0f, 0.3f, 1.0f}) {
                const std::string what = describe(count, offset) + ", p " + std::to_string(probability);
                std::vector<float> expected_y(count), expected_grad_x = random_values(count, 8);
                DeviceRange device_x(x, offset), device_y(count, offset), device_grad_y(grad_y, offset),
                    device_grad_x(expected_grad_x, offset);
                cpu::dropout_forward(count, probability, seed, x.data(), expected_y.data());
                ASSERT_CUDA_SUCCESS(
                    cuda::dropout_forward(count, probability, seed, device_x.get(), device_y.get(), nullptr));
                expect_bitwise_equal(expected_y, device_y.download(), what + ", forward");
                for (int call = 1; call <= 2; ++call) {
                    cpu::dropout_backward(count, probability, seed, grad_y.data(), expected_grad_x.data());
                    ASSERT_CUDA_SUCCESS(cuda::dropout_backward(count, probability, seed, device_grad_y.get(),
                                                               device_grad_x.get(), nullptr));
                    expect_bitwise_equal(expected_grad_x, device_grad_x.download(),
                                         what + ", backward call " + std::to_string(call));
                }
            }
        }
    }
}

TEST_F(CudaElementwise, AddAndAccumulateMatchCpu) {
    for (const int64_t count : counts) {
        const std::vector<float> a = random_values(count, 9), b = random_values(count, 10);
        for (const int offset : {0, 1}) {
            DeviceRange device_a(a, offset), device_b(b, offset), device_y(count, offset);
            std::vector<float> expected(count);
            cpu::add_forward(count, a.data(), b.data(), expected.data());
            ASSERT_CUDA_SUCCESS(cuda::add_forward(count, device_a.get(), device_b.get(), device_y.get(), nullptr));
            expect_bitwise_equal(expected, device_y.download(), describe(count, offset) + ", add");
            for (int call = 1; call <= 2; ++call) {
                cpu::accumulate(count, a.data(), expected.data());
                ASSERT_CUDA_SUCCESS(cuda::accumulate(count, device_a.get(), device_y.get(), nullptr));
                expect_bitwise_equal(expected, device_y.download(),
                                     describe(count, offset) + ", accumulate call " + std::to_string(call));
            }
        }
    }
}

// With a fused ReLU: max(a + b, 0), and for a third input dst = max(dst + src, 0),
// bit for bit the CPU's add (or accumulate) followed by its relu.
TEST_F(CudaElementwise, AddAndAccumulateWithReluMatchCpuAddThenRelu) {
    for (const int64_t count : counts) {
        const std::vector<float> a = random_values(count, 12), b = random_values(count, 13), c = random_values(count, 14);
        for (const int offset : {0, 1}) {
            DeviceRange device_a(a, offset), device_b(b, offset), device_c(c, offset), device_y(count, offset);
            std::vector<float> sum(count), expected(count);
            cpu::add_forward(count, a.data(), b.data(), sum.data());
            cpu::activation_forward(ops::Activation::relu, 0.0f, count, sum.data(), expected.data());
            ASSERT_CUDA_SUCCESS(
                cuda::add_forward(count, device_a.get(), device_b.get(), device_y.get(), nullptr, true));
            expect_bitwise_equal(expected, device_y.download(), describe(count, offset) + ", add relu");
            ASSERT_CUDA_SUCCESS(cuda::add_forward(count, device_a.get(), device_b.get(), device_y.get(), nullptr));
            ASSERT_CUDA_SUCCESS(cuda::accumulate(count, device_c.get(), device_y.get(), nullptr, true));
            cpu::accumulate(count, c.data(), sum.data());
            cpu::activation_forward(ops::Activation::relu, 0.0f, count, sum.data(), expected.data());
            expect_bitwise_equal(expected, device_y.download(), describe(count, offset) + ", accumulate relu");
        }
    }
}

// The data-parallel head weighting: x *= factor in place, element for
// element the float product the CPU computes; fill sets every element.
TEST_F(CudaElementwise, ScaleMultipliesInPlaceAndFillSetsEveryElement) {
    for (const int64_t count : counts) {
        const std::vector<float> x = random_values(count, 11);
        for (const int offset : {0, 1}) {
            DeviceRange device_x(x, offset);
            std::vector<float> expected = x;
            for (float& value : expected) value *= 1.7f;
            ASSERT_CUDA_SUCCESS(cuda::scale(count, 1.7f, device_x.get(), nullptr));
            expect_bitwise_equal(expected, device_x.download(), describe(count, offset) + ", scale");
            ASSERT_CUDA_SUCCESS(cuda::fill(count, -0.25f, device_x.get(), nullptr));
            expect_bitwise_equal(std::vector<float>(count, -0.25f), device_x.download(),
                                 describe(count, offset) + ", fill");
        }
    }
    DeviceRange untouched(std::vector<float>{3.0f}, 0);
    ASSERT_CUDA_SUCCESS(cuda::scale(0, 2.0f, untouched.get(), nullptr));
    ASSERT_CUDA_SUCCESS(cuda::fill(0, 2.0f, untouched.get(), nullptr));
    EXPECT_EQ(untouched.download()[0], 3.0f);
    EXPECT_EQ(cuda::scale(-1, 2.0f, untouched.get(), nullptr), cudaErrorInvalidValue);
}

// Two inputs of 3 and 5 channels fill y's 8; spatial 4 takes the float4 path
// (every row start aligned), spatial 7 the scalar one.
TEST_F(CudaElementwise, ConcatForwardFillsSlicesAndBackwardAccumulatesLikeCpu) {
    const int64_t batch = 3, total_channels = 8;
    const int64_t channels[] = {3, 5}, offsets[] = {0, 3};
    for (const int64_t spatial : {int64_t{4}, int64_t{7}}) {
        const std::string what = "spatial " + std::to_string(spatial);
        const int64_t y_size = batch * total_channels * spatial;
        std::vector<float> expected_y(y_size);
        DeviceBuffer<float> device_y(y_size);
        std::vector<std::vector<float>> inputs;
        for (int part = 0; part < 2; ++part) {
            inputs.push_back(random_values(batch * channels[part] * spatial, 11 + part));
            DeviceBuffer<float> device_input(inputs.back());
            cpu::concat_forward(batch, spatial, channels[part], offsets[part], total_channels, inputs.back().data(),
                                expected_y.data());
            ASSERT_CUDA_SUCCESS(cuda::concat_forward(batch, spatial, channels[part], offsets[part], total_channels,
                                                     device_input.get(), device_y.get(), nullptr));
        }
        expect_bitwise_equal(expected_y, device_y.download(), what + ", forward");

        const std::vector<float> grad_y = random_values(y_size, 13);
        DeviceBuffer<float> device_grad_y(grad_y);
        for (int part = 0; part < 2; ++part) {
            std::vector<float> expected = random_values(batch * channels[part] * spatial, 14 + part);
            DeviceBuffer<float> device_grad_input(expected);
            for (int call = 1; call <= 2; ++call) {
                cpu::concat_backward(batch, spatial, channels[part], offsets[part], total_channels, grad_y.data(),
                                     expected.data());
                ASSERT_CUDA_SUCCESS(cuda::concat_backward(batch, spatial, channels[part], offsets[part], total_channels,
                                                          device_grad_y.get(), device_grad_input.get(), nullptr));
                expect_bitwise_equal(
                    expected, device_grad_input.download(),
                    what + ", part " + std::to_string(part) + ", backward call " + std::to_string(call));
            }
        }
    }
}

TEST_F(CudaElementwise, EmptyTensorsLaunchNothing) {
    EXPECT_CUDA_SUCCESS(cuda::activation_forward(Activation::tanh, 0.0f, 0, nullptr, nullptr, nullptr));
    EXPECT_CUDA_SUCCESS(cuda::dropout_backward(0, 0.5f, 1, nullptr, nullptr, nullptr));
    EXPECT_CUDA_SUCCESS(cuda::concat_forward(0, 4, 3, 0, 3, nullptr, nullptr, nullptr));
}

}  // namespace
}  // namespace ladon
