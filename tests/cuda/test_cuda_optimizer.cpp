// The optimizer steps on a GPU or the emulator against the CPU op: 1003 parameters
// (not a multiple of 4), buffers aligned, all misaligned alike (float4 body
// with a scalar head and tail) and misaligned differently (scalar path), over
// several steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/optimizer.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;

constexpr int64_t kCount = 1000 + 3;
constexpr int kSteps = 5;

std::vector<float> random_values(std::mt19937& random, float scale) {
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> values(kCount);
    for (float& value : values) value = normal(random);
    return values;
}

// A device view of kCount floats starting `offset` floats into its allocation.
class OffsetBuffer {
public:
    OffsetBuffer(const std::vector<float>& host, int offset) : buffer_(kCount + 4), offset_(offset) {
        std::vector<float> padded(kCount + 4, 0.0f);
        std::copy(host.begin(), host.end(), padded.begin() + offset);
        buffer_.upload(padded);
    }
    float* get() const { return buffer_.get() + offset_; }
    std::vector<float> download() const {
        const std::vector<float> padded = buffer_.download();
        return {padded.begin() + offset_, padded.begin() + offset_ + kCount};
    }

private:
    DeviceBuffer<float> buffer_;
    int offset_;
};

void expect_close(const std::vector<float>& expected, const std::vector<float>& actual, const char* what) {
    ASSERT_EQ(expected.size(), actual.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
        ASSERT_NEAR(expected[i], actual[i], 1e-6 * std::abs(expected[i]) + 1e-30) << what << " at " << i;
}

// Offsets (in floats) of weights, grads and the state buffers.
struct Offsets {
    int weights, grads, state1, state2;
};
constexpr Offsets kLayouts[] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {3, 3, 3, 3}, {1, 2, 0, 3}};

void check_sgd(const ops::SgdParameters& parameters) {
    for (const Offsets& offsets : kLayouts) {
        SCOPED_TRACE(testing::Message() << "offsets " << offsets.weights << offsets.grads << offsets.state1);
        std::mt19937 random(11);
        std::vector<float> weights = random_values(random, 1.0f), momentum(kCount, 0.0f);
        OffsetBuffer device_weights(weights, offsets.weights), device_momentum(momentum, offsets.state1);
        for (int step = 0; step < kSteps; ++step) {
            const std::vector<float> grads = random_values(random, 0.1f);
            OffsetBuffer device_grads(grads, offsets.grads);
            cpu::sgd_update(kCount, parameters, weights.data(), grads.data(), momentum.data());
            ASSERT_CUDA_SUCCESS(cuda::sgd_update(kCount, parameters, device_weights.get(), device_grads.get(),
                                                 parameters.momentum != 0.0f ? device_momentum.get() : nullptr,
                                                 nullptr));
        }
        expect_close(weights, device_weights.download(), "weights");
        if (parameters.momentum != 0.0f) expect_close(momentum, device_momentum.download(), "momentum");
    }
}

class CudaOptim : public cuda_test::DeviceTest {};

TEST_F(CudaOptim, SgdWithNesterovMomentumAndWeightDecayMatchesCpuOnOddMisalignedBuffers) {
    check_sgd(ops::SgdParameters{0.05f, 0.9f, 1e-3f, true});
}

TEST_F(CudaOptim, SgdWithMomentumMatchesCpu) { check_sgd(ops::SgdParameters{0.05f, 0.8f, 0.0f, false}); }

TEST_F(CudaOptim, PlainSgdNeedsNoMomentumBuffer) { check_sgd(ops::SgdParameters{0.1f, 0.0f, 1e-2f, false}); }

TEST_F(CudaOptim, AdamWMatchesCpuOverStepsOnOddMisalignedBuffers) {
    for (const Offsets& offsets : kLayouts) {
        SCOPED_TRACE(testing::Message() << "offsets " << offsets.weights << offsets.grads << offsets.state1
                                        << offsets.state2);
        std::mt19937 random(12);
        std::vector<float> weights = random_values(random, 1.0f), first(kCount, 0.0f), second(kCount, 0.0f);
        OffsetBuffer device_weights(weights, offsets.weights), device_first(first, offsets.state1),
            device_second(second, offsets.state2);
        for (int64_t step = 1; step <= kSteps; ++step) {
            const ops::AdamWParameters parameters{2e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step};
            const std::vector<float> grads = random_values(random, 0.1f);
            OffsetBuffer device_grads(grads, offsets.grads);
            cpu::adamw_update(kCount, parameters, weights.data(), grads.data(), first.data(), second.data());
            ASSERT_CUDA_SUCCESS(cuda::adamw_update(kCount, parameters, device_weights.get(), device_grads.get(),
                                                   device_first.get(), device_second.get(), nullptr));
        }
        expect_close(weights, device_weights.download(), "weights");
        expect_close(first, device_first.download(), "first moment");
        expect_close(second, device_second.download(), "second moment");
    }
}

TEST_F(CudaOptim, FewerParametersThanOneFloat4) {
    std::vector<float> weights{1.0f, -2.0f, 3.0f}, grads{0.5f, 0.25f, -1.0f}, momentum(3, 0.0f);
    DeviceBuffer<float> device_weights(weights), device_grads(grads), device_momentum(momentum);
    const ops::SgdParameters parameters{0.1f, 0.9f, 0.0f, false};
    cpu::sgd_update(3, parameters, weights.data(), grads.data(), momentum.data());
    ASSERT_CUDA_SUCCESS(
        cuda::sgd_update(3, parameters, device_weights.get(), device_grads.get(), device_momentum.get(), nullptr));
    EXPECT_EQ(weights, device_weights.download());
}

}  // namespace
}  // namespace ladon
