// Dropout with the counter-based mask: the mask's statistics, its
// reproducibility from the seed, exact identity at p = 0, and backward
// redrawing the forward's mask.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

constexpr int64_t large_count = 100000;

std::vector<float> dropout(const std::vector<float>& x, float probability, uint64_t seed) {
    std::vector<float> y(x.size(), -123.0f);
    ladon::cpu::dropout_forward(int64_t(x.size()), probability, seed, x.data(), y.data());
    return y;
}

TEST(DropoutForward, ProbabilityZeroIsExactIdentity) {
    std::vector<float> x = ladon::testing::random_vector(std::size_t(large_count), 71u, -5.0f, 5.0f);
    EXPECT_EQ(dropout(x, 0.0f, 3u), x);

    std::vector<float> grad_x(x.size(), 0.0f);
    ladon::cpu::dropout_backward(large_count, 0.0f, 3u, x.data(), grad_x.data());
    EXPECT_EQ(grad_x, x);
}

TEST(DropoutForward, ProbabilityOneDropsEverything) {
    std::vector<float> x(1000, 2.0f);
    EXPECT_EQ(dropout(x, 1.0f, 5u), std::vector<float>(1000, 0.0f));
}

TEST(DropoutForward, KeepsFractionCloseToOneMinusProbability) {
    const std::vector<float> x(std::size_t(large_count), 1.0f);
    for (float p : {0.1f, 0.5f, 0.9f}) {
        std::vector<float> y = dropout(x, p, 17u);
        int64_t kept = 0;
        for (float v : y) kept += v != 0.0f;
        EXPECT_NEAR(double(kept) / double(large_count), 1.0 - p, 0.01) << "p = " << p;
    }
}

TEST(DropoutForward, KeptElementsAreScaledAndFollowTheCounterMask) {
    // The mask is part of the contract (the CUDA backend must draw the same
    // one), so check it element by element against uniform01.
    const float p = 0.3f;
    const uint64_t seed = 99u;
    std::vector<float> x = ladon::testing::random_vector(std::size_t(large_count), 72u, 0.5f, 1.5f);
    std::vector<float> y = dropout(x, p, seed);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const bool keep = ladon::ops::uniform01(seed, i) >= p;
        ASSERT_EQ(y[i], keep ? x[i] * (1.0f / (1.0f - p)) : 0.0f) << i;
    }
}

TEST(DropoutForward, SameSeedSameMaskDifferentSeedDifferentMask) {
    const std::vector<float> x(std::size_t(large_count), 1.0f);
    const std::vector<float> first = dropout(x, 0.5f, 1234u);
    EXPECT_EQ(dropout(x, 0.5f, 1234u), first);

    const std::vector<float> other = dropout(x, 0.5f, 1235u);
    int64_t differing = 0;
    for (std::size_t i = 0; i < x.size(); ++i) differing += (first[i] != 0.0f) != (other[i] != 0.0f);
    // Two independent masks at p = 0.5 disagree on about half the elements.
    EXPECT_NEAR(double(differing) / double(large_count), 0.5, 0.02);
}

TEST(DropoutForward, PreservesTheMeanInExpectation) {
    std::vector<float> x = ladon::testing::random_vector(std::size_t(large_count), 73u, 0.0f, 2.0f);
    for (float p : {0.2f, 0.5f}) {
        std::vector<float> y = dropout(x, p, 8u);
        double mean_x = 0.0, mean_y = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            mean_x += x[i];
            mean_y += y[i];
        }
        mean_x /= double(large_count);
        mean_y /= double(large_count);
        EXPECT_NEAR(mean_y / mean_x, 1.0, 0.02) << "p = " << p;
    }
}

TEST(DropoutBackward, MatchesFiniteDifferencesWithTheForwardSeed) {
    const int64_t count = 3 * 5 * 7 * 9;
    const float p = 0.3f;
    const uint64_t seed = 2024u;
    std::vector<float> x = ladon::testing::random_vector(std::size_t(count), 74u);
    std::vector<float> y(x.size()), grad_x(x.size());
    ladon::testing::check_gradients(
        {{"x", x, grad_x}}, y, [&] { ladon::cpu::dropout_forward(count, p, seed, x.data(), y.data()); },
        [&](std::span<const float> grad_y) {
            ladon::cpu::dropout_backward(count, p, seed, grad_y.data(), grad_x.data());
        });
}

TEST(DropoutBackward, AccumulatesAndZeroesDroppedElements) {
    const float p = 0.4f;
    const uint64_t seed = 5u;
    std::vector<float> x = ladon::testing::random_vector(std::size_t(large_count), 75u, 0.5f, 1.5f);
    std::vector<float> grad_y = ladon::testing::random_vector(x.size(), 76u, 0.5f, 1.5f);
    std::vector<float> y = dropout(x, p, seed);
    std::vector<float> once(x.size(), 0.0f), twice(x.size(), 0.0f);
    ladon::cpu::dropout_backward(large_count, p, seed, grad_y.data(), once.data());
    for (int repeat = 0; repeat < 2; ++repeat)
        ladon::cpu::dropout_backward(large_count, p, seed, grad_y.data(), twice.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(once[i] == 0.0f, y[i] == 0.0f) << i;  // same mask as forward
        ASSERT_EQ(twice[i], 2.0f * once[i]) << i;
    }
}

}  // namespace
