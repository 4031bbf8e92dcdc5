// global_avg_pool, multiply (a [N, C] gate over [N, C, H, W], or equal
// shapes) and mixture (a gate over E experts): values on small examples,
// finite-difference gradients to every input, accumulation, and bad sizes.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

using ladon::testing::random_vector;

TEST(GlobalAvgPool, AveragesEachPlane) {
    const std::vector<float> x = {1, 2, 3, 4, 5, 6};  // two planes of three
    std::vector<float> y(2, 99.0f), grad_x(6, 1.0f);
    ladon::cpu::global_avg_pool_forward(2, 3, x.data(), y.data());
    EXPECT_EQ(y, (std::vector<float>{2.0f, 5.0f}));
    const std::vector<float> grad_y = {3.0f, -6.0f};
    ladon::cpu::global_avg_pool_backward(2, 3, grad_y.data(), grad_x.data());
    EXPECT_EQ(grad_x, (std::vector<float>{2, 2, 2, -1, -1, -1}));  // accumulated onto 1
}

TEST(GlobalAvgPool, MatchesFiniteDifferences) {
    const int64_t planes = 3 * 5, spatial = 7 * 9;
    std::vector<float> x = random_vector(std::size_t(planes * spatial), 41u), y(planes), grad_x(x.size());
    ladon::testing::check_gradients(
        {{"x", x, grad_x}}, y, [&] { ladon::cpu::global_avg_pool_forward(planes, spatial, x.data(), y.data()); },
        [&](std::span<const float> grad_y) {
            ladon::cpu::global_avg_pool_backward(planes, spatial, grad_y.data(), grad_x.data());
        });
}

TEST(Multiply, GateScalesEachPlane) {
    const std::vector<float> gate = {2.0f, -1.0f}, x = {1, 2, 3, 4};  // two planes of two
    std::vector<float> y(4);
    ladon::cpu::multiply_forward(2, 2, gate.data(), x.data(), y.data());
    EXPECT_EQ(y, (std::vector<float>{2, 4, -3, -4}));
}

void check_multiply_gradient(int64_t planes, int64_t spatial) {
    std::vector<float> a = random_vector(std::size_t(planes), 42u),
                       b = random_vector(std::size_t(planes * spatial), 43u);
    std::vector<float> y(b.size()), grad_a(a.size()), grad_b(b.size());
    ladon::testing::check_gradients(
        {{"a", a, grad_a}, {"b", b, grad_b}}, y,
        [&] { ladon::cpu::multiply_forward(planes, spatial, a.data(), b.data(), y.data()); },
        [&](std::span<const float> grad_y) {
            ladon::cpu::multiply_backward(planes, spatial, a.data(), b.data(), grad_y.data(), grad_a.data(),
                                          grad_b.data());
        });
}

TEST(Multiply, BroadcastMatchesFiniteDifferences) { check_multiply_gradient(3 * 5, 7 * 9); }
TEST(Multiply, EqualShapesMatchFiniteDifferences) { check_multiply_gradient(3 * 5 * 7 * 9, 1); }

TEST(Multiply, ATensorTimesItselfGetsBothGradients) {
    // y = x * x: d x = 2 x d y when both gradients land in one buffer.
    const std::vector<float> x = {1.5f, -2.0f}, grad_y = {1.0f, 3.0f};
    std::vector<float> grad_x(2, 0.0f);
    ladon::cpu::multiply_backward(2, 1, x.data(), x.data(), grad_y.data(), grad_x.data(), grad_x.data());
    EXPECT_EQ(grad_x, (std::vector<float>{3.0f, -12.0f}));
}

TEST(Mixture, WeightsEachExpertBySampleGate) {
    // batch 2, 2 experts, 3 features.
    const std::vector<float> gate = {0.25f, 0.75f, 1.0f, 0.0f};
    const std::vector<float> e0 = {4, 8, 12, 1, 2, 3}, e1 = {0, 4, 8, 9, 9, 9};
    const float* experts[] = {e0.data(), e1.data()};
    std::vector<float> y(6);
    ladon::cpu::mixture_forward(2, 3, gate.data(), experts, y.data());
    EXPECT_EQ(y, (std::vector<float>{1, 5, 9, 1, 2, 3}));
}

TEST(Mixture, MatchesFiniteDifferencesForGateAndEveryExpert) {
    const int64_t batch = 3, features = 5 * 7, count = 3;
    std::vector<float> gate = random_vector(std::size_t(batch * count), 44u);
    std::vector<std::vector<float>> experts, grads;
    for (int e = 0; e < count; ++e) {
        experts.push_back(random_vector(std::size_t(batch * features), 45u + unsigned(e)));
        grads.emplace_back(std::size_t(batch * features));
    }
    const float* values[] = {experts[0].data(), experts[1].data(), experts[2].data()};
    float* gradients[] = {grads[0].data(), grads[1].data(), grads[2].data()};
    std::vector<float> y(std::size_t(batch * features)), grad_gate(gate.size());
    ladon::testing::check_gradients(
        {{"gate", gate, grad_gate},
         {"expert 0", experts[0], grads[0]},
         {"expert 1", experts[1], grads[1]},
         {"expert 2", experts[2], grads[2]}},
        y, [&] { ladon::cpu::mixture_forward(batch, features, gate.data(), values, y.data()); },
        [&](std::span<const float> grad_y) {
            ladon::cpu::mixture_backward(batch, features, gate.data(), values, grad_y.data(), grad_gate.data(),
                                         gradients);
        });
}

TEST(Mixture, SkipsNullGradients) {
    const std::vector<float> gate = {0.5f, 2.0f}, e0 = {1, 1}, e1 = {3, 5}, grad_y = {1, 1};
    const float* values[] = {e0.data(), e1.data()};
    std::vector<float> grad_e1(2, 0.0f);
    float* gradients[] = {nullptr, grad_e1.data()};
    ladon::cpu::mixture_backward(1, 2, gate.data(), values, grad_y.data(), nullptr, gradients);
    EXPECT_EQ(grad_e1, (std::vector<float>{2.0f, 2.0f}));
}

TEST(Mixture, RejectsTooManyExpertsAndMismatchedGradients) {
    const std::vector<float> zeros(ladon::ops::max_mixture_experts + 1, 0.0f);
    std::vector<const float*> values(std::size_t(ladon::ops::max_mixture_experts + 1), zeros.data());
    float y = 0;
    EXPECT_THROW(ladon::cpu::mixture_forward(1, 1, zeros.data(), values, &y), std::invalid_argument);
    std::vector<float*> one_gradient{&y};
    const std::span<const float* const> two(values.data(), 2);
    EXPECT_THROW(ladon::cpu::mixture_backward(1, 1, zeros.data(), two, zeros.data(), nullptr, one_gradient),
                 std::invalid_argument);
}

}  // namespace
