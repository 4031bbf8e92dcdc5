// softmax over channels: columns that sum to one, stability for large
// logits, the spatial layout, and finite-difference gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

TEST(SoftmaxForward, NormalisesEachColumnOverChannels) {
    // batch 1, channels 3, spatial 2: columns (1, 2, 3) and (0, 0, 0).
    const std::vector<float> x = {1.0f, 0.0f, 2.0f, 0.0f, 3.0f, 0.0f};
    std::vector<float> y(6, 99.0f);
    ladon::cpu::softmax_forward(1, 3, 2, x.data(), y.data());
    const double total = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    EXPECT_NEAR(y[0], std::exp(1.0) / total, 1e-7);
    EXPECT_NEAR(y[2], std::exp(2.0) / total, 1e-7);
    EXPECT_NEAR(y[4], std::exp(3.0) / total, 1e-7);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(y[c * 2 + 1], 1.0 / 3.0, 1e-7);
}

TEST(SoftmaxForward, StableForLargeLogits) {
    const std::vector<float> x = {1e4f, 1e4f - 1.0f, -1e4f};
    std::vector<float> y(3);
    ladon::cpu::softmax_forward(1, 3, 1, x.data(), y.data());
    EXPECT_NEAR(y[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
    EXPECT_NEAR(y[1], std::exp(-1.0) / (1.0 + std::exp(-1.0)), 1e-6);
    EXPECT_EQ(y[2], 0.0f);
}

TEST(SoftmaxForward, RejectsAnEmptyChannelAxis) {
    float x = 0, y = 0;
    EXPECT_THROW(ladon::cpu::softmax_forward(1, 0, 1, &x, &y), std::invalid_argument);
}

void check_softmax_gradient(int64_t batch, int64_t channels, int64_t spatial) {
    const auto count = std::size_t(batch * channels * spatial);
    std::vector<float> x = ladon::testing::random_vector(count, 31u, -3.0f, 3.0f);
    std::vector<float> y(count), grad_x(count);
    ladon::testing::check_gradients(
        {{"x", x, grad_x}}, y, [&] { ladon::cpu::softmax_forward(batch, channels, spatial, x.data(), y.data()); },
        [&](std::span<const float> grad_y) {
            ladon::cpu::softmax_backward(batch, channels, spatial, y.data(), grad_y.data(), grad_x.data());
        });
}

TEST(SoftmaxGradient, FeatureRowsMatchFiniteDifferences) { check_softmax_gradient(3, 7, 1); }
TEST(SoftmaxGradient, ChannelColumnsMatchFiniteDifferences) { check_softmax_gradient(3, 5, 7 * 9); }

TEST(SoftmaxBackward, Accumulates) {
    const std::vector<float> x = {0.5f, -1.0f, 2.0f};
    std::vector<float> y(3), grad_y = {1.0f, 0.0f, 0.0f}, once(3, 0.0f), twice(3, 0.0f);
    ladon::cpu::softmax_forward(1, 3, 1, x.data(), y.data());
    ladon::cpu::softmax_backward(1, 3, 1, y.data(), grad_y.data(), once.data());
    ladon::cpu::softmax_backward(1, 3, 1, y.data(), grad_y.data(), twice.data());
    ladon::cpu::softmax_backward(1, 3, 1, y.data(), grad_y.data(), twice.data());
    for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(twice[i], 2.0f * once[i]);
}

TEST(SoftmaxForward, LargeBatchTakesTheParallelPathAndAgrees) {
    const int64_t batch = 600, channels = 9, spatial = 7;
    const auto count = std::size_t(batch * channels * spatial);
    const std::vector<float> x = ladon::testing::random_vector(count, 33u);
    std::vector<float> all(count), one(channels * spatial);
    ladon::cpu::softmax_forward(batch, channels, spatial, x.data(), all.data());
    for (int64_t n = 0; n < batch; n += 97) {
        ladon::cpu::softmax_forward(1, channels, spatial, x.data() + n * channels * spatial, one.data());
        for (int64_t i = 0; i < channels * spatial; ++i) ASSERT_EQ(one[i], all[n * channels * spatial + i]);
    }
}

}  // namespace
