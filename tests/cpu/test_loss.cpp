// The fused multi-head loss: values against hand-computed PyTorch numbers,
// gradients against finite differences, stability at logits of 1e4, masking.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

using ops::LossHead;
using ops::LossKind;

// Written into every gradient and loss before a call, so a value the kernel
// forgets to overwrite (or accumulates onto) shows.
constexpr float kSentinel = 123.0f;

// One head's buffers; view() points a LossHead at them.
struct HeadBuffers {
    LossHead settings;           // kind, width, weight, label_smoothing, beta
    std::vector<float> logits;   // [batch, width]
    std::vector<float> targets;  // [batch] for softmax CE, else [batch, width]
    std::vector<float> mask;     // [batch]; empty = every sample present
    std::vector<float> grad;     // [batch, width], written by compute()

    LossHead view() {
        LossHead head = settings;
        head.logits = logits.data();
        head.targets = targets.data();
        head.mask = mask.empty() ? nullptr : mask.data();
        head.grad_logits = grad.data();
        return head;
    }
};

HeadBuffers make_head(LossKind kind, int64_t width, std::vector<float> logits, std::vector<float> targets) {
    HeadBuffers head;
    head.settings.kind = kind;
    head.settings.width = width;
    head.logits = std::move(logits);
    head.targets = std::move(targets);
    return head;
}

// Runs multi_head_loss on all heads at once and returns the head losses.
std::vector<float> compute(int64_t batch, std::vector<HeadBuffers>& heads) {
    std::vector<LossHead> views;
    for (auto& head : heads) {
        head.grad.assign(head.logits.size(), kSentinel);
        views.push_back(head.view());
    }
    std::vector<float> losses(heads.size(), kSentinel);
    cpu::multi_head_loss(batch, views, losses.data());
    return losses;
}

float compute_one(int64_t batch, HeadBuffers& head) {
    std::vector<HeadBuffers> heads{head};
    const float loss = compute(batch, heads)[0];
    head = heads[0];
    return loss;
}

// Random logits in [-2, 2] and targets of the right kind: class indices,
// 0/1 labels, or values in [-2, 2] (so smooth L1 with beta 0.5 sees both regimes).
HeadBuffers random_head(LossKind kind, int64_t batch, int64_t width, uint32_t seed) {
    const auto size = static_cast<std::size_t>(batch * width);
    std::vector<float> targets;
    if (kind == LossKind::softmax_cross_entropy) {
        targets = testing::random_vector(static_cast<std::size_t>(batch), seed + 1, 0.0f, float(width));
        for (auto& t : targets) t = std::min(std::floor(t), float(width - 1));
    } else if (kind == LossKind::sigmoid_binary_cross_entropy) {
        targets = testing::random_vector(size, seed + 1);
        for (auto& t : targets) t = t < 0.0f ? 0.0f : 1.0f;
    } else {
        targets = testing::random_vector(size, seed + 1, -2.0f, 2.0f);
    }
    return make_head(kind, width, testing::random_vector(size, seed, -2.0f, 2.0f), std::move(targets));
}

// Missing samples 1 and 4 of 7.
const std::vector<float> kMaskOfSeven{1, 0, 1, 1, 0, 1, 1};

// Checks d(weight_h * loss_h)/d(logits_h) for every head against finite
// differences. grad_logits is overwritten with weight * d(loss)/d(logits), so
// the backward adds it, scaled by the output gradient, into the checker's buffers.
void check_heads_gradients(int64_t batch, std::vector<HeadBuffers>& heads) {
    std::vector<float> weighted_losses(heads.size());
    std::vector<std::vector<float>> analytic(heads.size());
    std::vector<testing::GradCheckInput> inputs;
    for (std::size_t h = 0; h < heads.size(); ++h) {
        analytic[h].assign(heads[h].logits.size(), 0.0f);
        inputs.push_back({"head " + std::to_string(h) + " logits", heads[h].logits, analytic[h]});
    }
    auto forward = [&] {
        const std::vector<float> losses = compute(batch, heads);
        for (std::size_t h = 0; h < heads.size(); ++h) weighted_losses[h] = heads[h].settings.weight * losses[h];
    };
    auto backward = [&](std::span<const float> grad_output) {
        compute(batch, heads);
        for (std::size_t h = 0; h < heads.size(); ++h)
            for (std::size_t i = 0; i < analytic[h].size(); ++i) analytic[h][i] += grad_output[h] * heads[h].grad[i];
    };
    testing::check_gradients(inputs, weighted_losses, forward, backward);
}

// ---------------------------------------------------------------- hand-computed values

TEST(MultiHeadLossValue, CrossEntropyOfEqualLogitsIsLogTwo) {
    HeadBuffers head = make_head(LossKind::softmax_cross_entropy, 2, {0.0f, 0.0f}, {0.0f});
    EXPECT_FLOAT_EQ(compute_one(1, head), std::log(2.0f));
    EXPECT_FLOAT_EQ(head.grad[0], -0.5f);
    EXPECT_FLOAT_EQ(head.grad[1], 0.5f);
}

TEST(MultiHeadLossValue, CrossEntropyWithLabelSmoothingMatchesPyTorch) {
    // logsumexp(1, 2, 3) = 3.40760596; q = (eps/3, eps/3, 1 - eps + eps/3).
    HeadBuffers head = make_head(LossKind::softmax_cross_entropy, 3, {1.0f, 2.0f, 3.0f}, {2.0f});
    EXPECT_NEAR(compute_one(1, head), 0.40760596f, 1e-6f);
    EXPECT_NEAR(head.grad[0], 0.09003057f, 1e-6f);
    EXPECT_NEAR(head.grad[2], -0.33475904f, 1e-6f);

    head.settings.label_smoothing = 0.1f;
    EXPECT_NEAR(compute_one(1, head), 0.50760596f, 1e-6f);
    EXPECT_NEAR(head.grad[0], 0.05669724f, 1e-6f);
    EXPECT_NEAR(head.grad[1], 0.21139514f, 1e-6f);
    EXPECT_NEAR(head.grad[2], -0.26809238f, 1e-6f);
}

TEST(MultiHeadLossValue, CrossEntropyAveragesOverSamplesAndWeightsOnlyTheGradient) {
    // Sample 0: log 2. Sample 1: logits (0, ln 3), target 1: -log(3/4).
    HeadBuffers head = make_head(LossKind::softmax_cross_entropy, 2, {0.0f, 0.0f, 0.0f, std::log(3.0f)}, {0.0f, 1.0f});
    head.settings.weight = 4.0f;
    EXPECT_NEAR(compute_one(2, head), 0.5f * (std::log(2.0f) + std::log(4.0f / 3.0f)), 1e-6f);
    // weight / batch * (softmax - onehot) = 2 * (0.5 - 1), 2 * 0.5, 2 * 0.25, 2 * (0.75 - 1).
    EXPECT_NEAR(head.grad[0], -1.0f, 1e-6f);
    EXPECT_NEAR(head.grad[1], 1.0f, 1e-6f);
    EXPECT_NEAR(head.grad[2], 0.5f, 1e-6f);
    EXPECT_NEAR(head.grad[3], -0.5f, 1e-6f);
}

TEST(MultiHeadLossValue, BinaryCrossEntropyOfZeroLogitIsLogTwo) {
    // x = 0, t = 1: log 2. x = 2, t = 0: 2 + log(1 + e^-2) = 2.12692801. Mean over 2 elements.
    HeadBuffers head = make_head(LossKind::sigmoid_binary_cross_entropy, 2, {0.0f, 2.0f}, {1.0f, 0.0f});
    EXPECT_NEAR(compute_one(1, head), 1.41003760f, 1e-6f);
    EXPECT_NEAR(head.grad[0], (0.5f - 1.0f) / 2.0f, 1e-6f);
    EXPECT_NEAR(head.grad[1], 0.88079708f / 2.0f, 1e-6f);
}

TEST(MultiHeadLossValue, MeanSquaredErrorAveragesOverElements) {
    // Squared differences 1, 4, 0, 1 over 2 samples x 2 outputs.
    HeadBuffers head = make_head(LossKind::mean_squared_error, 2, {1.0f, -2.0f, 0.5f, 0.5f}, {0.0f, 0.0f, 0.5f, 1.5f});
    head.settings.weight = 3.0f;
    EXPECT_FLOAT_EQ(compute_one(2, head), 1.5f);
    // weight * 2 d / 4.
    EXPECT_FLOAT_EQ(head.grad[0], 1.5f);
    EXPECT_FLOAT_EQ(head.grad[1], -3.0f);
    EXPECT_FLOAT_EQ(head.grad[2], 0.0f);
    EXPECT_FLOAT_EQ(head.grad[3], -1.5f);
}

TEST(MultiHeadLossValue, SmoothL1IsQuadraticInsideBetaAndLinearOutside) {
    // beta 0.5, d = 0.2, -1, 3: 0.5 * 0.04 / 0.5 = 0.04, 1 - 0.25 = 0.75, 3 - 0.25 = 2.75.
    HeadBuffers head = make_head(LossKind::smooth_l1, 3, {0.2f, -1.0f, 4.0f}, {0.0f, 0.0f, 1.0f});
    head.settings.beta = 0.5f;
    EXPECT_NEAR(compute_one(1, head), 3.54f / 3.0f, 1e-6f);
    EXPECT_NEAR(head.grad[0], 0.4f / 3.0f, 1e-6f);
    EXPECT_NEAR(head.grad[1], -1.0f / 3.0f, 1e-6f);
    EXPECT_NEAR(head.grad[2], 1.0f / 3.0f, 1e-6f);

    // PyTorch's default beta 1: d = 0.5 gives 0.125.
    HeadBuffers unit = make_head(LossKind::smooth_l1, 1, {0.5f}, {0.0f});
    EXPECT_FLOAT_EQ(compute_one(1, unit), 0.125f);
    EXPECT_FLOAT_EQ(unit.grad[0], 0.5f);
}

// ---------------------------------------------------------------- gradients

TEST(MultiHeadLossGradient, SoftmaxCrossEntropyWithLabelSmoothingAndMask) {
    std::vector<HeadBuffers> heads{random_head(LossKind::softmax_cross_entropy, 7, 5, 11)};
    heads[0].settings.label_smoothing = 0.1f;
    heads[0].settings.weight = 0.7f;
    heads[0].mask = kMaskOfSeven;
    check_heads_gradients(7, heads);
}

TEST(MultiHeadLossGradient, SigmoidBinaryCrossEntropyWithMask) {
    std::vector<HeadBuffers> heads{random_head(LossKind::sigmoid_binary_cross_entropy, 7, 3, 21)};
    heads[0].settings.weight = 2.0f;
    heads[0].mask = kMaskOfSeven;
    check_heads_gradients(7, heads);
}

TEST(MultiHeadLossGradient, MeanSquaredErrorWithMask) {
    std::vector<HeadBuffers> heads{random_head(LossKind::mean_squared_error, 7, 3, 31)};
    heads[0].settings.weight = 0.5f;
    heads[0].mask = kMaskOfSeven;
    check_heads_gradients(7, heads);
}

TEST(MultiHeadLossGradient, SmoothL1WithBetaHalfAndMask) {
    std::vector<HeadBuffers> heads{random_head(LossKind::smooth_l1, 7, 3, 41)};
    heads[0].settings.beta = 0.5f;
    heads[0].settings.weight = 1.5f;
    heads[0].mask = kMaskOfSeven;
    check_heads_gradients(7, heads);
}

TEST(MultiHeadLossGradient, HeadsOfEveryKindInOneCall) {
    std::vector<HeadBuffers> heads{
        random_head(LossKind::softmax_cross_entropy, 7, 5, 51),
        random_head(LossKind::softmax_cross_entropy, 7, 3, 52),
        random_head(LossKind::sigmoid_binary_cross_entropy, 7, 3, 53),
        random_head(LossKind::mean_squared_error, 7, 1, 54),
        random_head(LossKind::smooth_l1, 7, 5, 55),
    };
    heads[0].settings.label_smoothing = 0.1f;
    heads[0].settings.weight = 0.3f;
    heads[1].mask = kMaskOfSeven;
    heads[2].settings.weight = 2.5f;
    heads[2].mask = {0, 1, 1, 1, 1, 1, 0};
    heads[4].settings.beta = 0.5f;
    heads[4].mask = kMaskOfSeven;
    check_heads_gradients(7, heads);
}

// ---------------------------------------------------------------- stability

TEST(MultiHeadLossStability, CrossEntropyOfHugeLogitsIsExactAndFinite) {
    HeadBuffers wrong = make_head(LossKind::softmax_cross_entropy, 2, {1e4f, -1e4f}, {1.0f});
    EXPECT_FLOAT_EQ(compute_one(1, wrong), 2e4f);
    EXPECT_FLOAT_EQ(wrong.grad[0], 1.0f);
    EXPECT_FLOAT_EQ(wrong.grad[1], -1.0f);

    HeadBuffers right = make_head(LossKind::softmax_cross_entropy, 2, {1e4f, -1e4f}, {0.0f});
    EXPECT_FLOAT_EQ(compute_one(1, right), 0.0f);
    EXPECT_FLOAT_EQ(right.grad[0], 0.0f);
    EXPECT_FLOAT_EQ(right.grad[1], 0.0f);

    // With eps 0.1: 1e4 - (0.95 * 1e4 + 0.05 * -1e4) = 1000; gradient softmax - q = (0.05, -0.05).
    right.settings.label_smoothing = 0.1f;
    EXPECT_FLOAT_EQ(compute_one(1, right), 1000.0f);
    EXPECT_FLOAT_EQ(right.grad[0], 0.05f);
    EXPECT_FLOAT_EQ(right.grad[1], -0.05f);
}

TEST(MultiHeadLossStability, BinaryCrossEntropyOfHugeLogitsIsExactAndFinite) {
    // Per element: 1e4, 0, 0, 1e4.
    HeadBuffers head =
        make_head(LossKind::sigmoid_binary_cross_entropy, 4, {1e4f, -1e4f, 1e4f, -1e4f}, {0.0f, 0.0f, 1.0f, 1.0f});
    EXPECT_FLOAT_EQ(compute_one(1, head), 5e3f);
    EXPECT_FLOAT_EQ(head.grad[0], 0.25f);
    EXPECT_FLOAT_EQ(head.grad[1], 0.0f);
    EXPECT_FLOAT_EQ(head.grad[2], 0.0f);
    EXPECT_FLOAT_EQ(head.grad[3], -0.25f);
}

// ---------------------------------------------------------------- masking

TEST(MultiHeadLossMask, HeadWithNoPresentSampleHasZeroLossAndZeroGradient) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<HeadBuffers> heads{
        make_head(LossKind::softmax_cross_entropy, 2, {1.0f, 2.0f, 3.0f, 4.0f}, {-1.0f, 7.0f}),
        make_head(LossKind::mean_squared_error, 2, {1.0f, 2.0f, 3.0f, 4.0f}, {nan, nan, nan, nan}),
    };
    for (auto& head : heads) head.mask = {0.0f, 0.0f};
    const std::vector<float> losses = compute(2, heads);
    for (std::size_t h = 0; h < heads.size(); ++h) {
        EXPECT_EQ(losses[h], 0.0f) << "head " << h;
        for (float g : heads[h].grad) EXPECT_EQ(g, 0.0f) << "head " << h;
    }
}

// Masked samples carry invalid targets (-1, NaN): the kernel must not read them.
TEST(MultiHeadLossMask, MissingSamplesMatchACallOnOnlyThePresentSamples) {
    const int64_t batch = 7, width = 3;
    const LossKind kinds[] = {LossKind::softmax_cross_entropy, LossKind::sigmoid_binary_cross_entropy,
                              LossKind::mean_squared_error, LossKind::smooth_l1};
    uint32_t seed = 61;
    for (LossKind kind : kinds) {
        HeadBuffers masked = random_head(kind, batch, width, seed++);
        masked.settings.weight = 1.7f;
        masked.settings.label_smoothing = kind == LossKind::softmax_cross_entropy ? 0.1f : 0.0f;
        masked.settings.beta = 0.5f;
        masked.mask = kMaskOfSeven;

        HeadBuffers present = masked;
        present.mask.clear();
        present.logits.clear();
        present.targets.clear();
        const int64_t targets_per_sample = kind == LossKind::softmax_cross_entropy ? 1 : width;
        for (int64_t s = 0; s < batch; ++s) {
            if (kMaskOfSeven[s] == 0.0f) {
                for (int64_t t = 0; t < targets_per_sample; ++t)
                    masked.targets[s * targets_per_sample + t] =
                        kind == LossKind::softmax_cross_entropy ? -1.0f : std::numeric_limits<float>::quiet_NaN();
                continue;
            }
            present.logits.insert(present.logits.end(), masked.logits.begin() + s * width,
                                  masked.logits.begin() + (s + 1) * width);
            present.targets.insert(present.targets.end(), masked.targets.begin() + s * targets_per_sample,
                                   masked.targets.begin() + (s + 1) * targets_per_sample);
        }
        const int64_t present_count = static_cast<int64_t>(present.logits.size()) / width;
        ASSERT_EQ(present_count, 5);

        SCOPED_TRACE("kind " + std::to_string(static_cast<int>(kind)));
        const float masked_loss = compute_one(batch, masked);
        const float present_loss = compute_one(present_count, present);
        EXPECT_FLOAT_EQ(masked_loss, present_loss);
        int64_t row = 0;
        for (int64_t s = 0; s < batch; ++s) {
            const bool missing = kMaskOfSeven[s] == 0.0f;
            for (int64_t j = 0; j < width; ++j) {
                const float g = masked.grad[s * width + j];
                if (missing)
                    EXPECT_EQ(g, 0.0f) << "sample " << s;
                else
                    EXPECT_FLOAT_EQ(g, present.grad[row * width + j]) << "sample " << s;
            }
            row += missing ? 0 : 1;
        }
    }
}

// ---------------------------------------------------------------- errors

TEST(MultiHeadLossValidation, ClassIndexOutsideTheWidthThrows) {
    HeadBuffers too_large = make_head(LossKind::softmax_cross_entropy, 3, {0.0f, 0.0f, 0.0f}, {3.0f});
    EXPECT_THROW(compute_one(1, too_large), Error);
    HeadBuffers fractional = make_head(LossKind::softmax_cross_entropy, 3, {0.0f, 0.0f, 0.0f}, {1.5f});
    EXPECT_THROW(compute_one(1, fractional), Error);
    HeadBuffers not_a_number =
        make_head(LossKind::softmax_cross_entropy, 3, {0.0f, 0.0f, 0.0f}, {std::numeric_limits<float>::quiet_NaN()});
    EXPECT_THROW(compute_one(1, not_a_number), Error);
}

TEST(MultiHeadLossValidation, NonPositiveSmoothL1BetaThrows) {
    HeadBuffers head = make_head(LossKind::smooth_l1, 1, {0.0f}, {0.0f});
    head.settings.beta = 0.0f;
    EXPECT_THROW(compute_one(1, head), Error);
}

}  // namespace
}  // namespace ladon
