// activation_forward / activation_backward: closed-form values, PyTorch's
// conventions at the kinks, gradients against finite differences, and the
// accumulate-into-grad_x contract.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

using ladon::ops::Activation;

constexpr float slope = 0.1f;

std::vector<float> forward(Activation kind, const std::vector<float>& x) {
    std::vector<float> y(x.size(), -123.0f);  // forward must overwrite the sentinel
    ladon::cpu::activation_forward(kind, slope, int64_t(x.size()), x.data(), y.data());
    return y;
}

TEST(ActivationForward, IdentityCopies) {
    std::vector<float> x = {-2.5f, 0.0f, 7.25f};
    EXPECT_EQ(forward(Activation::identity, x), x);
}

TEST(ActivationForward, ReluZeroesNonPositive) {
    EXPECT_EQ(forward(Activation::relu, {-1.5f, 0.0f, 2.0f}), (std::vector<float>{0.0f, 0.0f, 2.0f}));
}

TEST(ActivationForward, LeakyReluScalesNegativesBySlope) {
    std::vector<float> y = forward(Activation::leaky_relu, {-2.0f, 3.0f});
    EXPECT_FLOAT_EQ(y[0], -0.2f);
    EXPECT_FLOAT_EQ(y[1], 3.0f);
}

TEST(ActivationForward, SigmoidMatchesClosedForm) {
    std::vector<float> y = forward(Activation::sigmoid, {-2.0f, 0.0f, 3.0f});
    EXPECT_NEAR(y[0], 0.11920292f, 1e-7);
    EXPECT_FLOAT_EQ(y[1], 0.5f);
    EXPECT_NEAR(y[2], 0.95257413f, 1e-7);
}

TEST(ActivationForward, SigmoidSaturatesWithoutNaN) {
    std::vector<float> y = forward(Activation::sigmoid, {-200.0f, 200.0f});
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_EQ(y[1], 1.0f);
}

TEST(ActivationForward, TanhMatchesClosedForm) {
    std::vector<float> y = forward(Activation::tanh, {0.5f, -1.0f});
    EXPECT_NEAR(y[0], 0.46211716f, 1e-7);
    EXPECT_NEAR(y[1], -0.76159416f, 1e-7);
}

TEST(ActivationBackward, ReluAndLeakyAtZeroTakeTheNegativeSideSlope) {
    // PyTorch's convention: the derivative at exactly 0 is the left one.
    std::vector<float> x = {0.0f}, y = {0.0f}, grad_y = {1.0f};
    std::vector<float> grad_relu = {0.0f}, grad_leaky = {0.0f};
    ladon::cpu::activation_backward(Activation::relu, slope, 1, x.data(), y.data(), grad_y.data(), grad_relu.data());
    ladon::cpu::activation_backward(Activation::leaky_relu, slope, 1, x.data(), y.data(), grad_y.data(),
                                    grad_leaky.data());
    EXPECT_EQ(grad_relu[0], 0.0f);
    EXPECT_FLOAT_EQ(grad_leaky[0], slope);
}

std::string activation_name(const ::testing::TestParamInfo<Activation>& info) {
    switch (info.param) {
        case Activation::identity:
            return "identity";
        case Activation::relu:
            return "relu";
        case Activation::leaky_relu:
            return "leaky_relu";
        case Activation::sigmoid:
            return "sigmoid";
        case Activation::tanh:
            return "tanh";
    }
    return "unknown";
}

class ActivationGradient : public ::testing::TestWithParam<Activation> {};

// Odd NCHW shape (3, 5, 7, 9). Inputs stay at least 0.1 away from 0, well
// beyond the finite-difference step, so ReLU's kink is never straddled.
std::vector<float> inputs_away_from_zero(std::size_t count) {
    std::vector<float> x = ladon::testing::random_vector(count, 11u, 0.1f, 3.0f);
    std::vector<float> sign = ladon::testing::random_vector(count, 12u);
    for (std::size_t i = 0; i < count; ++i)
        if (sign[i] < 0.0f) x[i] = -x[i];
    return x;
}

TEST_P(ActivationGradient, MatchesFiniteDifferences) {
    const Activation kind = GetParam();
    const int64_t count = 3 * 5 * 7 * 9;
    std::vector<float> x = inputs_away_from_zero(std::size_t(count));
    std::vector<float> y(x.size()), grad_x(x.size());
    ladon::testing::check_gradients(
        {{"x", x, grad_x}}, y, [&] { ladon::cpu::activation_forward(kind, slope, count, x.data(), y.data()); },
        [&](std::span<const float> grad_y) {
            ladon::cpu::activation_backward(kind, slope, count, x.data(), y.data(), grad_y.data(), grad_x.data());
        });
}

TEST_P(ActivationGradient, BackwardAccumulates) {
    const Activation kind = GetParam();
    const int64_t count = 3 * 5 * 7 * 9;
    std::vector<float> x = inputs_away_from_zero(std::size_t(count));
    std::vector<float> grad_y = ladon::testing::random_vector(x.size(), 13u);
    std::vector<float> y(x.size()), once(x.size(), 0.0f), twice(x.size(), 0.0f);
    ladon::cpu::activation_forward(kind, slope, count, x.data(), y.data());
    ladon::cpu::activation_backward(kind, slope, count, x.data(), y.data(), grad_y.data(), once.data());
    for (int repeat = 0; repeat < 2; ++repeat)
        ladon::cpu::activation_backward(kind, slope, count, x.data(), y.data(), grad_y.data(), twice.data());
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        nonzero += once[i] != 0.0f;
        ASSERT_FLOAT_EQ(twice[i], 2.0f * once[i]) << i;
    }
    EXPECT_GT(nonzero, x.size() / 3);  // the check is not vacuous (ReLU zeroes about half)
}

INSTANTIATE_TEST_SUITE_P(AllKinds, ActivationGradient,
                         ::testing::Values(Activation::identity, Activation::relu, Activation::leaky_relu,
                                           Activation::sigmoid, Activation::tanh),
                         activation_name);

TEST(ActivationForward, LargeCountTakesTheParallelPathAndAgrees) {
    // Past the parallel threshold; the result is checked element by element.
    const int64_t count = 1 << 17;
    std::vector<float> x = ladon::testing::random_vector(std::size_t(count), 14u, -4.0f, 4.0f);
    std::vector<float> y(x.size());
    ladon::cpu::activation_forward(Activation::tanh, slope, count, x.data(), y.data());
    for (std::size_t i = 0; i < x.size(); ++i) ASSERT_FLOAT_EQ(y[i], std::tanh(x[i])) << i;
}

}  // namespace
