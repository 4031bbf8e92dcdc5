// Channel concat: each input lands in its channel slice of every sample, and
// backward hands each input back exactly its slice, accumulated.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

TEST(ConcatForward, PlacesEachInputAtItsChannelSliceOfEverySample) {
    // batch 2, spatial 2; a has 1 channel, b has 2: y has 3 channels.
    std::vector<float> a = {1, 2, 3, 4};
    std::vector<float> b = {10, 11, 12, 13, 14, 15, 16, 17};
    std::vector<float> y(12, -1.0f);
    ladon::cpu::concat_forward(2, 2, 1, 0, 3, a.data(), y.data());
    ladon::cpu::concat_forward(2, 2, 2, 1, 3, b.data(), y.data());
    EXPECT_EQ(y, (std::vector<float>{1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17}));
}

TEST(ConcatBackward, ReadsOnlyItsOwnSliceAndAccumulates) {
    // grad_y is non-zero only in a's channel (channel 0 of 3).
    std::vector<float> grad_y = {1, 2, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0};
    std::vector<float> grad_a(4, 0.5f), grad_b(8, 0.0f);
    ladon::cpu::concat_backward(2, 2, 1, 0, 3, grad_y.data(), grad_a.data());
    ladon::cpu::concat_backward(2, 2, 2, 1, 3, grad_y.data(), grad_b.data());
    EXPECT_EQ(grad_a, (std::vector<float>{1.5f, 2.5f, 3.5f, 4.5f}));
    EXPECT_EQ(grad_b, std::vector<float>(8, 0.0f));
    ladon::cpu::concat_backward(2, 2, 1, 0, 3, grad_y.data(), grad_a.data());
    EXPECT_EQ(grad_a, (std::vector<float>{2.5f, 4.5f, 6.5f, 8.5f}));
}

TEST(ConcatGradient, ThreeInputsOfDifferentWidthsMatchFiniteDifferences) {
    const int64_t batch = 3, spatial = 7 * 9;
    const int64_t channels[] = {2, 3, 1}, offsets[] = {0, 2, 5}, total = 6;
    std::vector<float> inputs[3], grads[3];
    for (int k = 0; k < 3; ++k) {
        inputs[k] = ladon::testing::random_vector(std::size_t(batch * channels[k] * spatial), 81u + uint32_t(k));
        grads[k].resize(inputs[k].size());
    }
    std::vector<float> y(std::size_t(batch * total * spatial));
    ladon::testing::check_gradients(
        {{"a", inputs[0], grads[0]}, {"b", inputs[1], grads[1]}, {"c", inputs[2], grads[2]}}, y,
        [&] {
            for (int k = 0; k < 3; ++k)
                ladon::cpu::concat_forward(batch, spatial, channels[k], offsets[k], total, inputs[k].data(), y.data());
        },
        [&](std::span<const float> grad_y) {
            for (int k = 0; k < 3; ++k)
                ladon::cpu::concat_backward(batch, spatial, channels[k], offsets[k], total, grad_y.data(),
                                            grads[k].data());
        });
}

TEST(ConcatForward, LargeInputRoundTripsThroughBackward) {
    // Past the parallel threshold: concat then backward returns the input.
    const int64_t batch = 5, spatial = 32 * 32, channels = 16, total = 24;
    std::vector<float> input = ladon::testing::random_vector(std::size_t(batch * channels * spatial), 85u);
    std::vector<float> y(std::size_t(batch * total * spatial), 0.0f), back(input.size(), 0.0f);
    ladon::cpu::concat_forward(batch, spatial, channels, 8, total, input.data(), y.data());
    ladon::cpu::concat_backward(batch, spatial, channels, 8, total, y.data(), back.data());
    EXPECT_EQ(back, input);
}

}  // namespace
