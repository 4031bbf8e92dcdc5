// add_forward and accumulate (add's backward into each input).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

TEST(AddForward, SumsElementwiseAndOverwrites) {
    std::vector<float> a = {1.0f, -2.0f, 0.5f}, b = {10.0f, 2.0f, 0.25f}, y(3, 99.0f);
    ladon::cpu::add_forward(3, a.data(), b.data(), y.data());
    EXPECT_EQ(y, (std::vector<float>{11.0f, 0.0f, 0.75f}));
}

TEST(Accumulate, AddsSourceIntoExistingDestination) {
    std::vector<float> source = {1.0f, 2.0f, 3.0f}, destination = {0.5f, -2.0f, 10.0f};
    ladon::cpu::accumulate(3, source.data(), destination.data());
    EXPECT_EQ(destination, (std::vector<float>{1.5f, 0.0f, 13.0f}));
    ladon::cpu::accumulate(3, source.data(), destination.data());
    EXPECT_EQ(destination, (std::vector<float>{2.5f, 2.0f, 16.0f}));
}

TEST(AddGradient, MatchesFiniteDifferences) {
    const int64_t count = 3 * 5 * 7 * 9;
    std::vector<float> a = ladon::testing::random_vector(std::size_t(count), 21u);
    std::vector<float> b = ladon::testing::random_vector(std::size_t(count), 22u);
    std::vector<float> y(a.size()), grad_a(a.size()), grad_b(b.size());
    ladon::testing::check_gradients(
        {{"a", a, grad_a}, {"b", b, grad_b}}, y, [&] { ladon::cpu::add_forward(count, a.data(), b.data(), y.data()); },
        [&](std::span<const float> grad_y) {
            ladon::cpu::accumulate(count, grad_y.data(), grad_a.data());
            ladon::cpu::accumulate(count, grad_y.data(), grad_b.data());
        });
}

TEST(AddForward, LargeCountTakesTheParallelPathAndAgrees) {
    const int64_t count = 1 << 17;
    std::vector<float> a = ladon::testing::random_vector(std::size_t(count), 23u);
    std::vector<float> b = ladon::testing::random_vector(std::size_t(count), 24u);
    std::vector<float> y(a.size());
    ladon::cpu::add_forward(count, a.data(), b.data(), y.data());
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(y[i], a[i] + b[i]) << i;
}

}  // namespace
