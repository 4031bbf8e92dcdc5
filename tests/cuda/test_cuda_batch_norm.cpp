// Batch norm (kernels/cuda/batch_norm.cuh) on the emulator or a GPU against ladon::cpu:
// training forward (y, saved statistics, running statistics), inference
// forward and backward on odd shapes, channels longer than a block, a mean far
// from zero, a single value per channel; backward passes that accumulate;
// results bit-identical from run to run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/batch_norm.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;
using ops::BatchNormShape;

std::vector<float> random_values(std::size_t size, unsigned seed, float low = -1.0f, float high = 1.0f) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> distribution(low, high);
    std::vector<float> values(size);
    for (float& value : values) value = distribution(generator);
    return values;
}

BatchNormShape make_shape(int64_t batch, int64_t channels, int64_t spatial) {
    BatchNormShape s;
    s.batch = batch;
    s.channels = channels;
    s.spatial = spatial;
    s.epsilon = 1e-5f;
    s.momentum = 0.1f;
    return s;
}

struct Case {
    BatchNormShape shape;
    float offset;  // added to every x: the mean the centring must survive
};

std::vector<Case> cases() {
    return {
        {make_shape(3, 5, 7 * 9), 0.0f},    // N=3, C=5, H=7, W=9
        {make_shape(3, 5, 7 * 9), 100.0f},  // |mean| >> std
        {make_shape(4, 3, 100), 0.5f},      // 400 values per channel: more than one per thread
        {make_shape(1, 2, 1), 0.0f},        // one value per channel: variance 0
        {make_shape(2, 1, 3), -3.0f},
    };
}

std::string describe(const BatchNormShape& s) {
    return "batch " + std::to_string(s.batch) + " channels " + std::to_string(s.channels) + " spatial " +
           std::to_string(s.spatial);
}

int64_t size_of(const BatchNormShape& s) { return s.batch * s.channels * s.spatial; }

// Within 1e-5 of the larger of |expected| and the tensor's typical magnitude
// (the sums run in another order than the CPU's).
void expect_close(const std::vector<float>& expected, const std::vector<float>& actual, const std::string& what) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    double scale = 0.0;
    for (const float e : expected) scale = std::max(scale, double(std::abs(e)));
    int reported = 0;
    for (std::size_t i = 0; i < expected.size() && reported < 5; ++i) {
        const float e = expected[i], a = actual[i];
        if (std::abs(double(e) - double(a)) <= 1e-5 * std::max(1.0, scale)) continue;
        ADD_FAILURE() << what << ": element " << i << " expected " << e << ", got " << a;
        ++reported;
    }
}

void expect_bitwise_equal(const std::vector<float>& expected, const std::vector<float>& actual,
                          const std::string& what) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    EXPECT_EQ(0, std::memcmp(expected.data(), actual.data(), expected.size() * sizeof(float))) << what;
}

// The outputs of one training forward pass on the device.
struct TrainingResult {
    std::vector<float> y, saved_mean, saved_inv_std, running_mean, running_var;
};

TrainingResult device_training(const BatchNormShape& s, const std::vector<float>& x, const std::vector<float>& gamma,
                               const std::vector<float>& beta, const std::vector<float>& running_mean,
                               const std::vector<float>& running_var) {
    DeviceBuffer<float> dx(x), dgamma(gamma), dbeta(beta), dy(size_of(s)), dmean(s.channels), dinv(s.channels),
        drmean(running_mean), drvar(running_var);
    const cudaError_t error = cuda::batch_norm_forward_training(
        s, dx.get(), dgamma.get(), dbeta.get(), dy.get(), dmean.get(), dinv.get(), drmean.get(), drvar.get(), nullptr);
    EXPECT_EQ(cudaSuccess, error) << cuda_test::last_error_message();
    return {dy.download(), dmean.download(), dinv.download(), drmean.download(), drvar.download()};
}

class CudaBatchNorm : public cuda_test::DeviceTest {};

TEST_F(CudaBatchNorm, TrainingForwardMatchesCpu) {
    for (const Case& test : cases()) {
        const BatchNormShape& s = test.shape;
        const std::vector<float> x = random_values(size_of(s), 1, test.offset - 1.0f, test.offset + 1.0f);
        const std::vector<float> gamma = random_values(s.channels, 2, 0.5f, 1.5f), beta = random_values(s.channels, 3);
        const std::vector<float> running_mean = random_values(s.channels, 4),
                                 running_var = random_values(s.channels, 5, 0.5f, 2.0f);
        TrainingResult expected{std::vector<float>(size_of(s)), std::vector<float>(s.channels),
                                std::vector<float>(s.channels), running_mean, running_var};
        cpu::batch_norm_forward_training(s, x.data(), gamma.data(), beta.data(), expected.y.data(),
                                         expected.saved_mean.data(), expected.saved_inv_std.data(),
                                         expected.running_mean.data(), expected.running_var.data());
        const TrainingResult actual = device_training(s, x, gamma, beta, running_mean, running_var);
        const std::string what = describe(s) + ", offset " + std::to_string(test.offset);
        expect_close(expected.y, actual.y, what + ", y");
        expect_close(expected.saved_mean, actual.saved_mean, what + ", saved_mean");
        expect_close(expected.saved_inv_std, actual.saved_inv_std, what + ", saved_inv_std");
        expect_close(expected.running_mean, actual.running_mean, what + ", running_mean");
        expect_close(expected.running_var, actual.running_var, what + ", running_var");

        const TrainingResult again = device_training(s, x, gamma, beta, running_mean, running_var);
        expect_bitwise_equal(actual.y, again.y, what + ", y, second run");
        expect_bitwise_equal(actual.saved_inv_std, again.saved_inv_std, what + ", saved_inv_std, second run");
        expect_bitwise_equal(actual.running_var, again.running_var, what + ", running_var, second run");
    }
}

TEST_F(CudaBatchNorm, InferenceForwardMatchesCpu) {
    for (const Case& test : cases()) {
        const BatchNormShape& s = test.shape;
        const std::vector<float> x = random_values(size_of(s), 6, test.offset - 1.0f, test.offset + 1.0f);
        const std::vector<float> gamma = random_values(s.channels, 7), beta = random_values(s.channels, 8);
        const std::vector<float> running_mean = random_values(s.channels, 9, test.offset - 0.5f, test.offset + 0.5f),
                                 running_var = random_values(s.channels, 10, 0.1f, 3.0f);
        std::vector<float> expected(size_of(s));
        cpu::batch_norm_forward_inference(s, x.data(), gamma.data(), beta.data(), running_mean.data(),
                                          running_var.data(), expected.data());
        DeviceBuffer<float> dx(x), dgamma(gamma), dbeta(beta), drmean(running_mean), drvar(running_var), dy(size_of(s));
        ASSERT_CUDA_SUCCESS(cuda::batch_norm_forward_inference(s, dx.get(), dgamma.get(), dbeta.get(), drmean.get(),
                                                               drvar.get(), dy.get(), nullptr));
        expect_close(expected, dy.download(), describe(s));
    }
}

// More (sample, channel) planes than a grid's y dimension holds (65535):
// blocks stride over planes and the channel wraps by 65535 % 219 = 54 per
// stride, which a shape under the limit never exercises.
TEST_F(CudaBatchNorm, InferenceStridesPastTheGridPlaneLimit) {
    const BatchNormShape s = make_shape(301, 219, 1);
    ASSERT_GT(s.batch * s.channels, 65535);
    const std::vector<float> x = random_values(size_of(s), 11, -1.0f, 1.0f);
    const std::vector<float> gamma = random_values(s.channels, 12), beta = random_values(s.channels, 13);
    const std::vector<float> running_mean = random_values(s.channels, 14),
                             running_var = random_values(s.channels, 15, 0.1f, 3.0f);
    std::vector<float> expected(size_of(s));
    cpu::batch_norm_forward_inference(s, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                      expected.data());
    DeviceBuffer<float> dx(x), dgamma(gamma), dbeta(beta), drmean(running_mean), drvar(running_var), dy(size_of(s));
    ASSERT_CUDA_SUCCESS(cuda::batch_norm_forward_inference(s, dx.get(), dgamma.get(), dbeta.get(), drmean.get(),
                                                           drvar.get(), dy.get(), nullptr));
    expect_close(expected, dy.download(), describe(s));
}

TEST_F(CudaBatchNorm, BackwardAccumulatesLikeCpuAndIsDeterministic) {
    for (const Case& test : cases()) {
        const BatchNormShape& s = test.shape;
        const std::string what = describe(s) + ", offset " + std::to_string(test.offset);
        const std::vector<float> x = random_values(size_of(s), 11, test.offset - 1.0f, test.offset + 1.0f);
        const std::vector<float> grad_y = random_values(size_of(s), 12);
        const std::vector<float> gamma = random_values(s.channels, 13, 0.5f, 1.5f), beta(s.channels, 0.0f);
        // The saved statistics of a CPU training pass, shared by both backends.
        std::vector<float> y(size_of(s)), saved_mean(s.channels), saved_inv_std(s.channels),
            running_mean(s.channels, 0.0f), running_var(s.channels, 1.0f);
        cpu::batch_norm_forward_training(s, x.data(), gamma.data(), beta.data(), y.data(), saved_mean.data(),
                                         saved_inv_std.data(), running_mean.data(), running_var.data());

        std::vector<float> expected_x = random_values(size_of(s), 14), expected_gamma = random_values(s.channels, 15),
                           expected_beta = random_values(s.channels, 16);
        DeviceBuffer<float> dx(x), dgrad_y(grad_y), dgamma(gamma), dmean(saved_mean), dinv(saved_inv_std),
            dgrad_x(expected_x), dgrad_gamma(expected_gamma), dgrad_beta(expected_beta);
        for (int call = 1; call <= 2; ++call) {
            cpu::batch_norm_backward(s, x.data(), grad_y.data(), gamma.data(), saved_mean.data(), saved_inv_std.data(),
                                     expected_x.data(), expected_gamma.data(), expected_beta.data());
            ASSERT_CUDA_SUCCESS(cuda::batch_norm_backward(s, dx.get(), dgrad_y.get(), dgamma.get(), dmean.get(),
                                                          dinv.get(), dgrad_x.get(), dgrad_gamma.get(),
                                                          dgrad_beta.get(), nullptr));
            const std::string at = what + ", call " + std::to_string(call);
            expect_close(expected_x, dgrad_x.download(), at + ", grad_x");
            expect_close(expected_gamma, dgrad_gamma.download(), at + ", grad_gamma");
            expect_close(expected_beta, dgrad_beta.download(), at + ", grad_beta");
        }

        // From zero: twice is two times once (within rounding), and two runs agree bit for bit.
        const std::vector<float> zeros_x(size_of(s), 0.0f), zeros_c(s.channels, 0.0f);
        DeviceBuffer<float> once_x(zeros_x), once_gamma(zeros_c), once_beta(zeros_c), again_x(zeros_x),
            again_gamma(zeros_c), again_beta(zeros_c), twice_x(zeros_x), twice_gamma(zeros_c), twice_beta(zeros_c);
        const auto backward = [&](DeviceBuffer<float>& gx, DeviceBuffer<float>& gg, DeviceBuffer<float>& gb) {
            return cuda::batch_norm_backward(s, dx.get(), dgrad_y.get(), dgamma.get(), dmean.get(), dinv.get(),
                                             gx.get(), gg.get(), gb.get(), nullptr);
        };
        ASSERT_CUDA_SUCCESS(backward(once_x, once_gamma, once_beta));
        ASSERT_CUDA_SUCCESS(backward(again_x, again_gamma, again_beta));
        ASSERT_CUDA_SUCCESS(backward(twice_x, twice_gamma, twice_beta));
        ASSERT_CUDA_SUCCESS(backward(twice_x, twice_gamma, twice_beta));
        expect_bitwise_equal(once_x.download(), again_x.download(), what + ", grad_x, second run");
        expect_bitwise_equal(once_gamma.download(), again_gamma.download(), what + ", grad_gamma, second run");
        expect_bitwise_equal(once_beta.download(), again_beta.download(), what + ", grad_beta, second run");
        // Each call adds the same float to the same start, so doubling is exact.
        for (auto [once, twice] :
             {std::pair{&once_x, &twice_x}, std::pair{&once_gamma, &twice_gamma}, std::pair{&once_beta, &twice_beta}}) {
            std::vector<float> doubled = once->download();
            for (float& v : doubled) v *= 2.0f;
            expect_bitwise_equal(doubled, twice->download(), what + ", twice");
        }
    }
}

TEST_F(CudaBatchNorm, NegativeSizesAreRejected) {
    DeviceBuffer<float> buffer(16);
    const BatchNormShape s = make_shape(-1, 2, 3);
    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::batch_norm_forward_inference(s, buffer.get(), buffer.get(), buffer.get(), buffer.get(),
                                                 buffer.get(), buffer.get(), nullptr));
}

}  // namespace
}  // namespace ladon
