// Batch norm (kernels/cuda/batch_norm.cuh) on the emulator or a GPU against ladon::cpu:
// training forward (y, saved statistics, running statistics), inference
// forward and backward on odd shapes, channels split over many blocks with a
// ragged last chunk, float4 and scalar paths, a mean far from zero, a single
// value per channel; backward passes that accumulate or overwrite; the fused
// ReLU against BN then ReLU; results bit-identical from run to run.
#include <gtest/gtest.h>

#include <algorithm>
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
        {make_shape(4, 3, 100), 0.5f},      // float4 units, more than one per thread
        {make_shape(1, 2, 1), 0.0f},        // one value per channel: variance 0
        {make_shape(2, 1, 3), -3.0f},
        {make_shape(5, 3, 4099), 2.0f},     // 21 blocks per channel, scalar, ragged last chunk
        {make_shape(3, 2, 4 * 1031), 0.0f}, // several blocks per channel of float4 units
    };
}

// The partial sums' scratch for `s` (at least one float, so the pointer is set).
DeviceBuffer<float> workspace_for(const BatchNormShape& s) {
    return DeviceBuffer<float>(std::max<std::size_t>(1, cuda::batch_norm_workspace_bytes(s) / sizeof(float)));
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
        drmean(running_mean), drvar(running_var), workspace = workspace_for(s);
    const cudaError_t error =
        cuda::batch_norm_forward_training(s, dx.get(), dgamma.get(), dbeta.get(), dy.get(), dmean.get(), dinv.get(),
                                          drmean.get(), drvar.get(), workspace.get(), nullptr);
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
            dgrad_x(expected_x), dgrad_gamma(expected_gamma), dgrad_beta(expected_beta), workspace = workspace_for(s);
        for (int call = 1; call <= 2; ++call) {
            cpu::batch_norm_backward(s, x.data(), grad_y.data(), gamma.data(), saved_mean.data(), saved_inv_std.data(),
                                     expected_x.data(), expected_gamma.data(), expected_beta.data());
            ASSERT_CUDA_SUCCESS(cuda::batch_norm_backward(s, dx.get(), dgrad_y.get(), dgamma.get(), dmean.get(),
                                                          dinv.get(), dgrad_x.get(), dgrad_gamma.get(),
                                                          dgrad_beta.get(), workspace.get(), nullptr));
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
                                             gx.get(), gg.get(), gb.get(), workspace.get(), nullptr);
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

// The split the kernels use: enough blocks per channel to fill 132 SMs four
// times over, none with fewer than 1024 values (batch_norm.cu).
TEST_F(CudaBatchNorm, LongChannelsAreSplitOverBlocks) {
    EXPECT_EQ(21, cuda::batch_norm_blocks_per_channel(make_shape(5, 3, 4099)));  // 20495 values: ceil / 1024
    EXPECT_EQ(13, cuda::batch_norm_blocks_per_channel(make_shape(3, 2, 4 * 1031)));  // counted in floats
    EXPECT_EQ(1, cuda::batch_norm_blocks_per_channel(make_shape(3, 5, 63)));
    EXPECT_EQ(9, cuda::batch_norm_blocks_per_channel(make_shape(256, 64, 112 * 112)));  // ResNet-18's first BN
    EXPECT_EQ(2, cuda::batch_norm_blocks_per_channel(make_shape(256, 512, 7 * 7)));     // and its last
    EXPECT_EQ(3 * 4 * 2 * sizeof(float), cuda::batch_norm_workspace_bytes(make_shape(2, 4, 1024)));
}

// Values of mean 1e4 and std 1 (the test): the statistics and y
// against a double-precision reference. Unshifted FP32 sums of squares would
// put the variance off by about 1e8 * 2^-24 = 6.
TEST_F(CudaBatchNorm, LargeMeanKeepsFloatAccuracyAgainstDouble) {
    const BatchNormShape s = make_shape(8, 2, 1024);
    std::mt19937 generator(21);
    std::normal_distribution<double> normal(1e4, 1.0);
    std::vector<float> x(size_of(s));
    for (float& v : x) v = float(normal(generator));
    const std::vector<float> gamma = {1.0f, 2.0f}, beta = {0.0f, -1.0f};
    const TrainingResult actual = device_training(s, x, gamma, beta, {0.0f, 0.0f}, {1.0f, 1.0f});
    const int64_t count = s.batch * s.spatial;
    for (int64_t c = 0; c < s.channels; ++c) {
        double sum = 0.0, squares = 0.0;
        for (int64_t n = 0; n < s.batch; ++n)
            for (int64_t j = 0; j < s.spatial; ++j) sum += x[std::size_t((n * s.channels + c) * s.spatial + j)];
        const double mean = sum / double(count);
        for (int64_t n = 0; n < s.batch; ++n)
            for (int64_t j = 0; j < s.spatial; ++j) {
                const double d = x[std::size_t((n * s.channels + c) * s.spatial + j)] - mean;
                squares += d * d;
            }
        const double inv_std = 1.0 / std::sqrt(squares / double(count) + double(s.epsilon));
        const std::string what = "channel " + std::to_string(c);
        EXPECT_NEAR(mean, actual.saved_mean[std::size_t(c)], 1e-3) << what;  // one float ulp at 1e4
        EXPECT_NEAR(1.0, actual.saved_inv_std[std::size_t(c)] / inv_std, 2e-5) << what;
        double worst = 0.0;
        for (int64_t n = 0; n < s.batch; ++n)
            for (int64_t j = 0; j < s.spatial; ++j) {
                const std::size_t i = std::size_t((n * s.channels + c) * s.spatial + j);
                const double y = (x[i] - mean) * inv_std * gamma[std::size_t(c)] + beta[std::size_t(c)];
                worst = std::max(worst, std::abs(y - double(actual.y[i])));
            }
        EXPECT_LT(worst, 1e-3) << what;  // x itself is only known to 5e-4 in float
    }
}

// Shifted by one float, planes of a multiple of 4 values leave 16-byte
// alignment and the kernels take their scalar path: same results.
TEST_F(CudaBatchNorm, UnalignedTensorsTakeTheScalarPath) {
    const BatchNormShape s = make_shape(3, 2, 4 * 1031);
    const std::vector<float> x = random_values(size_of(s), 31, 0.0f, 2.0f);
    const std::vector<float> gamma = random_values(s.channels, 32, 0.5f, 1.5f), beta = random_values(s.channels, 33);
    std::vector<float> expected(size_of(s)), mean(s.channels), inv_std(s.channels), running_mean(s.channels, 0.0f),
        running_var(s.channels, 1.0f);
    cpu::batch_norm_forward_training(s, x.data(), gamma.data(), beta.data(), expected.data(), mean.data(),
                                     inv_std.data(), running_mean.data(), running_var.data());
    std::vector<float> shifted(x.size() + 1, 0.0f);
    std::copy(x.begin(), x.end(), shifted.begin() + 1);
    DeviceBuffer<float> dx(shifted), dy(shifted.size()), dgamma(gamma), dbeta(beta), dmean(s.channels),
        dinv(s.channels), drmean(std::vector<float>(s.channels, 0.0f)), drvar(std::vector<float>(s.channels, 1.0f)),
        workspace = workspace_for(s);
    ASSERT_CUDA_SUCCESS(cuda::batch_norm_forward_training(s, dx.get() + 1, dgamma.get(), dbeta.get(), dy.get() + 1,
                                                          dmean.get(), dinv.get(), drmean.get(), drvar.get(),
                                                          workspace.get(), nullptr));
    std::vector<float> y = dy.download();
    y.erase(y.begin());
    expect_close(expected, y, describe(s) + ", unaligned y");
    expect_close(inv_std, dinv.download(), describe(s) + ", unaligned saved_inv_std");
}

// BN with a fused ReLU against the CPU's BN followed by ReLU, forward
// (training and inference) and backward (the gradient masked by the output).
TEST_F(CudaBatchNorm, FusedReluMatchesBatchNormThenRelu) {
    for (const BatchNormShape& s : {make_shape(3, 5, 63), make_shape(4, 3, 100), make_shape(5, 3, 4099)}) {
        const std::string what = describe(s);
        const std::vector<float> x = random_values(size_of(s), 41), grad_y = random_values(size_of(s), 42);
        const std::vector<float> gamma = random_values(s.channels, 43, 0.5f, 1.5f), beta = random_values(s.channels, 44);
        std::vector<float> y(size_of(s)), mean(s.channels), inv_std(s.channels), running_mean(s.channels, 0.0f),
            running_var(s.channels, 1.0f);
        cpu::batch_norm_forward_training(s, x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                         inv_std.data(), running_mean.data(), running_var.data());
        std::vector<float> relu_y = y, masked_grad = grad_y;
        for (std::size_t i = 0; i < y.size(); ++i) {
            relu_y[i] = std::max(y[i], 0.0f);
            if (!(y[i] > 0.0f)) masked_grad[i] = 0.0f;
        }
        std::vector<float> grad_x(size_of(s), 0.0f), grad_gamma(s.channels, 0.0f), grad_beta(s.channels, 0.0f);
        cpu::batch_norm_backward(s, x.data(), masked_grad.data(), gamma.data(), mean.data(), inv_std.data(),
                                 grad_x.data(), grad_gamma.data(), grad_beta.data());

        DeviceBuffer<float> dx(x), dgy(grad_y), dgamma(gamma), dbeta(beta), dy(size_of(s)), dmean(s.channels),
            dinv(s.channels), drmean(std::vector<float>(s.channels, 0.0f)),
            drvar(std::vector<float>(s.channels, 1.0f)), dgx(size_of(s)),
            dgg(std::vector<float>(s.channels, 0.0f)), dgb(std::vector<float>(s.channels, 0.0f)),
            workspace = workspace_for(s);
        ASSERT_CUDA_SUCCESS(cuda::batch_norm_forward_training(s, dx.get(), dgamma.get(), dbeta.get(), dy.get(),
                                                              dmean.get(), dinv.get(), drmean.get(), drvar.get(),
                                                              workspace.get(), nullptr, true));
        expect_close(relu_y, dy.download(), what + ", training y");
        // dgx starts as 0xFF bytes (NaN): not accumulating must overwrite it.
        ASSERT_CUDA_SUCCESS(cuda::batch_norm_backward(s, dx.get(), dgy.get(), dgamma.get(), dmean.get(), dinv.get(),
                                                      dgx.get(), dgg.get(), dgb.get(), workspace.get(), nullptr,
                                                      {.relu_output = dy.get(), .accumulate = false}));
        expect_close(grad_x, dgx.download(), what + ", grad_x");
        expect_close(grad_gamma, dgg.download(), what + ", grad_gamma");
        expect_close(grad_beta, dgb.download(), what + ", grad_beta");

        std::vector<float> inference(size_of(s));
        cpu::batch_norm_forward_inference(s, x.data(), gamma.data(), beta.data(), running_mean.data(),
                                          running_var.data(), inference.data());
        for (float& v : inference) v = std::max(v, 0.0f);
        DeviceBuffer<float> dri(size_of(s));
        ASSERT_CUDA_SUCCESS(cuda::batch_norm_forward_inference(s, dx.get(), dgamma.get(), dbeta.get(), drmean.get(),
                                                               drvar.get(), dri.get(), nullptr, true));
        expect_close(inference, dri.download(), what + ", inference y");
    }
}

// Offsets are 32-bit: a tensor of 2^31 or more values is refused before any
// launch (none is allocated here), as is a training pass without scratch.
TEST_F(CudaBatchNorm, TensorsBeyond32BitIndicesAreRefused) {
    DeviceBuffer<float> buffer(16);
    float* b = buffer.get();
    const BatchNormShape huge = make_shape(int64_t{1} << 20, 1 << 11, 1);
    EXPECT_EQ(0, cuda::batch_norm_blocks_per_channel(huge));
    EXPECT_EQ(cudaErrorInvalidValue, cuda::batch_norm_forward_inference(huge, b, b, b, b, b, b, nullptr));
    EXPECT_EQ(cudaErrorInvalidValue, cuda::batch_norm_forward_training(huge, b, b, b, b, b, b, b, b, b, nullptr));
    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::batch_norm_backward(huge, b, b, b, b, b, b, b, b, b, nullptr));
    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::batch_norm_forward_training(make_shape(2, 2, 2), b, b, b, b, b, b, b, b, nullptr, nullptr));
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
