// SGD and AdamW steps: hand-computed single weights, then several steps over a
// buffer large enough to run the OpenMP path, against the update rules written
// out again in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

using ops::AdamWParameters;
using ops::SgdParameters;

// Above the kernels' parallel threshold, so the threaded loop is the one tested.
constexpr std::size_t kLargeCount = 50000;

void expect_close_to_reference(const std::vector<float>& actual, const std::vector<double>& reference,
                               const char* what) {
    ASSERT_EQ(actual.size(), reference.size());
    for (std::size_t i = 0; i < actual.size(); ++i)
        ASSERT_NEAR(actual[i], reference[i], 1e-5 * std::max(1.0, std::abs(reference[i]))) << what << "[" << i << "]";
}

// ---------------------------------------------------------------- SGD

// torch.optim.SGD, dampening 0, in double.
void sgd_reference_step(const SgdParameters& p, std::vector<double>& weights, const std::vector<float>& grads,
                        std::vector<double>& buffer) {
    for (std::size_t i = 0; i < weights.size(); ++i) {
        double g = double(grads[i]) + double(p.weight_decay) * weights[i];
        if (p.momentum != 0.0f) {
            buffer[i] = double(p.momentum) * buffer[i] + g;
            g = p.nesterov ? g + double(p.momentum) * buffer[i] : buffer[i];
        }
        weights[i] -= double(p.learning_rate) * g;
    }
}

TEST(SgdUpdate, PlainStepSubtractsLearningRateTimesGradient) {
    std::vector<float> weights{1.0f, -2.0f};
    const std::vector<float> grads{0.5f, 0.25f};
    SgdParameters p;
    p.learning_rate = 0.1f;
    cpu::sgd_update(2, p, weights.data(), grads.data(), nullptr);
    EXPECT_FLOAT_EQ(weights[0], 0.95f);
    EXPECT_FLOAT_EQ(weights[1], -2.025f);
}

TEST(SgdUpdate, WeightDecayAddsToTheGradient) {
    // g = 0 + 0.1 * 2; w = 2 - 0.5 * 0.2.
    std::vector<float> weights{2.0f};
    const std::vector<float> grads{0.0f};
    SgdParameters p;
    p.learning_rate = 0.5f;
    p.weight_decay = 0.1f;
    cpu::sgd_update(1, p, weights.data(), grads.data(), nullptr);
    EXPECT_FLOAT_EQ(weights[0], 1.9f);
}

TEST(SgdUpdate, MomentumBufferStartsAsTheFirstGradient) {
    // buffer 0.5 then 0.9 * 0.5 + 0.5 = 0.95; w = 1 - 0.05 = 0.95, then 0.95 - 0.095 = 0.855.
    std::vector<float> weights{1.0f}, buffer{0.0f};
    const std::vector<float> grads{0.5f};
    SgdParameters p;
    p.learning_rate = 0.1f;
    p.momentum = 0.9f;
    cpu::sgd_update(1, p, weights.data(), grads.data(), buffer.data());
    EXPECT_FLOAT_EQ(buffer[0], 0.5f);
    EXPECT_FLOAT_EQ(weights[0], 0.95f);
    cpu::sgd_update(1, p, weights.data(), grads.data(), buffer.data());
    EXPECT_FLOAT_EQ(buffer[0], 0.95f);
    EXPECT_FLOAT_EQ(weights[0], 0.855f);
}

TEST(SgdUpdate, NesterovStepsAlongGradientPlusMomentumTimesBuffer) {
    // Step 1: buffer 0.5, g = 0.5 + 0.45 = 0.95, w = 0.905.
    // Step 2: buffer 0.95, g = 0.5 + 0.855 = 1.355, w = 0.7695.
    std::vector<float> weights{1.0f}, buffer{0.0f};
    const std::vector<float> grads{0.5f};
    SgdParameters p;
    p.learning_rate = 0.1f;
    p.momentum = 0.9f;
    p.nesterov = true;
    cpu::sgd_update(1, p, weights.data(), grads.data(), buffer.data());
    EXPECT_FLOAT_EQ(weights[0], 0.905f);
    cpu::sgd_update(1, p, weights.data(), grads.data(), buffer.data());
    EXPECT_FLOAT_EQ(buffer[0], 0.95f);
    EXPECT_FLOAT_EQ(weights[0], 0.7695f);
}

TEST(SgdUpdate, ThreeStepsMatchTheReferenceForEveryVariant) {
    struct Variant {
        float momentum;
        float weight_decay;
        bool nesterov;
    };
    const Variant variants[] = {{0.0f, 0.0f, false}, {0.0f, 1e-2f, false}, {0.9f, 5e-4f, false}, {0.9f, 1e-2f, true}};
    for (const Variant& variant : variants) {
        SgdParameters p;
        p.learning_rate = 0.05f;
        p.momentum = variant.momentum;
        p.weight_decay = variant.weight_decay;
        p.nesterov = variant.nesterov;
        std::vector<float> weights = testing::random_vector(kLargeCount, 7);
        std::vector<float> buffer(kLargeCount, 0.0f);
        std::vector<double> reference_weights(weights.begin(), weights.end());
        std::vector<double> reference_buffer(kLargeCount, 0.0);
        for (uint32_t step = 0; step < 3; ++step) {
            const std::vector<float> grads = testing::random_vector(kLargeCount, 100 + step, -2.0f, 2.0f);
            cpu::sgd_update(int64_t(kLargeCount), p, weights.data(), grads.data(), buffer.data());
            sgd_reference_step(p, reference_weights, grads, reference_buffer);
        }
        SCOPED_TRACE("momentum " + std::to_string(variant.momentum) + " weight_decay " +
                     std::to_string(variant.weight_decay) + (variant.nesterov ? " nesterov" : ""));
        expect_close_to_reference(weights, reference_weights, "weights");
        if (variant.momentum != 0.0f) expect_close_to_reference(buffer, reference_buffer, "momentum buffer");
    }
}

// ---------------------------------------------------------------- AdamW

// torch.optim.AdamW (amsgrad off) in double; p.step is the 1-based step count.
void adamw_reference_step(const AdamWParameters& p, std::vector<double>& weights, const std::vector<float>& grads,
                          std::vector<double>& m, std::vector<double>& v) {
    const double b1 = p.beta1, b2 = p.beta2, lr = p.learning_rate;
    for (std::size_t i = 0; i < weights.size(); ++i) {
        const double g = grads[i];
        weights[i] *= 1.0 - lr * double(p.weight_decay);
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        const double m_hat = m[i] / (1.0 - std::pow(b1, double(p.step)));
        const double v_hat = v[i] / (1.0 - std::pow(b2, double(p.step)));
        weights[i] -= lr * m_hat / (std::sqrt(v_hat) + double(p.epsilon));
    }
}

TEST(AdamWUpdate, BiasCorrectedFirstStepMovesEachWeightByTheLearningRate) {
    // At step 1, m_hat = g and v_hat = g^2: the step is lr * g / (|g| + eps).
    std::vector<float> weights{1.0f, -1.0f, 0.5f}, m(3, 0.0f), v(3, 0.0f);
    const std::vector<float> grads{0.5f, -0.001f, 3.0f};
    AdamWParameters p;
    p.learning_rate = 0.1f;
    p.weight_decay = 0.01f;
    p.step = 1;
    cpu::adamw_update(3, p, weights.data(), grads.data(), m.data(), v.data());
    EXPECT_NEAR(weights[0], 1.0f * 0.999f - 0.1f, 1e-6f);
    EXPECT_NEAR(weights[1], -1.0f * 0.999f + 0.1f, 1e-5f);  // eps shortens this step by 1e-5 relative
    EXPECT_NEAR(weights[2], 0.5f * 0.999f - 0.1f, 1e-6f);
    EXPECT_FLOAT_EQ(m[0], 0.05f);
    EXPECT_NEAR(v[2], 0.009f, 1e-6f);  // beta2 = 0.999 stored as float: 1 - beta2 is 0.00099998713
}

TEST(AdamWUpdate, BiasCorrectionKeepsAConstantGradientStepAtTheLearningRateThroughStepThree) {
    // With a constant g, m = g (1 - b1^t) and v = g^2 (1 - b2^t): every corrected
    // step is lr, so three steps move by 3 lr. Uncorrected, step 1 would be 0.1 / sqrt(0.001) = 3.16 lr.
    std::vector<float> weights{1.0f}, m{0.0f}, v{0.0f};
    const std::vector<float> grads{0.3f};
    AdamWParameters p;
    p.learning_rate = 0.01f;
    p.weight_decay = 0.0f;
    for (int64_t step = 1; step <= 3; ++step) {
        p.step = step;
        cpu::adamw_update(1, p, weights.data(), grads.data(), m.data(), v.data());
        EXPECT_NEAR(weights[0], 1.0f - 0.01f * float(step), 1e-6f) << "step " << step;
    }
    EXPECT_NEAR(m[0], 0.3f * (1.0f - 0.9f * 0.9f * 0.9f), 1e-7f);
}

TEST(AdamWUpdate, ZeroGradientOnlyDecaysTheWeights) {
    std::vector<float> weights{2.0f, -4.0f}, m(2, 0.0f), v(2, 0.0f);
    const std::vector<float> grads(2, 0.0f);
    AdamWParameters p;
    p.learning_rate = 0.1f;
    p.weight_decay = 0.5f;
    p.step = 3;
    cpu::adamw_update(2, p, weights.data(), grads.data(), m.data(), v.data());
    EXPECT_FLOAT_EQ(weights[0], 2.0f * 0.95f);
    EXPECT_FLOAT_EQ(weights[1], -4.0f * 0.95f);
    EXPECT_EQ(m[0], 0.0f);
    EXPECT_EQ(v[1], 0.0f);
}

TEST(AdamWUpdate, ThreeStepsMatchTheReference) {
    AdamWParameters p;
    p.learning_rate = 1e-2f;
    p.weight_decay = 1e-2f;
    std::vector<float> weights = testing::random_vector(kLargeCount, 9);
    std::vector<float> m(kLargeCount, 0.0f), v(kLargeCount, 0.0f);
    std::vector<double> reference_weights(weights.begin(), weights.end());
    std::vector<double> reference_m(kLargeCount, 0.0), reference_v(kLargeCount, 0.0);
    for (int64_t step = 1; step <= 3; ++step) {
        p.step = step;
        const std::vector<float> grads = testing::random_vector(kLargeCount, 200 + uint32_t(step), -2.0f, 2.0f);
        cpu::adamw_update(int64_t(kLargeCount), p, weights.data(), grads.data(), m.data(), v.data());
        adamw_reference_step(p, reference_weights, grads, reference_m, reference_v);
    }
    expect_close_to_reference(weights, reference_weights, "weights");
    expect_close_to_reference(m, reference_m, "first moment");
    expect_close_to_reference(v, reference_v, "second moment");
}

TEST(AdamWUpdate, StepZeroThrows) {
    std::vector<float> weights{1.0f}, m{0.0f}, v{0.0f};
    const std::vector<float> grads{1.0f};
    AdamWParameters p;
    p.step = 0;
    EXPECT_THROW(cpu::adamw_update(1, p, weights.data(), grads.data(), m.data(), v.data()), Error);
}

}  // namespace
}  // namespace ladon
