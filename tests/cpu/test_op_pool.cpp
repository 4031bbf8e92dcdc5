// max_pool2d and avg_pool2d on the CPU: hand-computed cases (padding as -inf
// for max, as counted zeros for average), a direct-loop reference on random
// shapes, finite-difference gradients and accumulation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cpu/op_test_support.hpp"
#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

using ladon::ops::Pool2dShape;
using ladon::testing::check_gradients;
using ladon::testing::expect_all_near;
using ladon::testing::random_vector;
using ladon::testing::ScopedThreadCount;
using ladon::testing::to_double;

std::string describe(const Pool2dShape& s) {
    std::ostringstream text;
    text << "N" << s.batch << " C" << s.channels << " " << s.in_height << "x" << s.in_width << " k" << s.kernel_height
         << "x" << s.kernel_width << " s" << s.stride_height << "," << s.stride_width << " p" << s.pad_height << ","
         << s.pad_width;
    return text.str();
}

// Distinct values (a shuffled ramp, 0.05 apart) so no window has a tie and the
// max is differentiable everywhere the gradient checker looks.
std::vector<float> distinct_values(std::size_t count, uint32_t seed) {
    std::vector<float> v(count);
    std::iota(v.begin(), v.end(), 0.0f);
    std::shuffle(v.begin(), v.end(), std::mt19937(seed));
    for (float& x : v) x = (x - float(count) / 2) * 0.05f;
    return v;
}

// The definition of a pooling window: calls visit(input_index, output_index)
// for every input pixel inside an output's window, row-major.
template <typename Visit>
void for_each_window_pixel(const Pool2dShape& s, Visit visit) {
    for (int64_t plane = 0; plane < s.batch * s.channels; ++plane)
        for (int64_t oh = 0; oh < s.out_height(); ++oh)
            for (int64_t ow = 0; ow < s.out_width(); ++ow)
                for (int64_t kh = 0; kh < s.kernel_height; ++kh)
                    for (int64_t kw = 0; kw < s.kernel_width; ++kw) {
                        const int64_t ih = oh * s.stride_height - s.pad_height + kh;
                        const int64_t iw = ow * s.stride_width - s.pad_width + kw;
                        if (ih < 0 || ih >= s.in_height || iw < 0 || iw >= s.in_width) continue;
                        visit((plane * s.in_height + ih) * s.in_width + iw,
                              (plane * s.out_height() + oh) * s.out_width() + ow);
                    }
}

std::vector<Pool2dShape> sweep_shapes() {
    std::mt19937 rng(99);
    auto pick = [&](int64_t low, int64_t high) { return std::uniform_int_distribution<int64_t>(low, high)(rng); };
    std::vector<Pool2dShape> shapes;
    for (int i = 0; i < 25; ++i) {
        Pool2dShape s{.batch = pick(1, 4), .channels = pick(1, 5), .in_height = pick(1, 11), .in_width = pick(1, 11)};
        // PyTorch's rule: padding at most half the kernel, so no window lies
        // wholly in the padding.
        s.kernel_height = pick(1, std::min<int64_t>(4, s.in_height));
        s.kernel_width = pick(1, std::min<int64_t>(4, s.in_width));
        s.pad_height = pick(0, s.kernel_height / 2);
        s.pad_width = pick(0, s.kernel_width / 2);
        s.stride_height = pick(1, 3);
        s.stride_width = pick(1, 3);
        shapes.push_back(s);
    }
    // Large enough to run the planes in parallel.
    shapes.push_back({.batch = 2,
                      .channels = 8,
                      .in_height = 48,
                      .in_width = 48,
                      .kernel_height = 3,
                      .kernel_width = 3,
                      .stride_height = 2,
                      .stride_width = 2,
                      .pad_height = 1,
                      .pad_width = 1});
    return shapes;
}

// One 3x3 plane, 3x3 windows at stride 2 with one pixel of padding: a 2x2
// output whose four windows each hang over two borders and share the centre.
constexpr Pool2dShape kernel3_stride2_pad1_on_3x3{.in_height = 3,
                                                  .in_width = 3,
                                                  .kernel_height = 3,
                                                  .kernel_width = 3,
                                                  .stride_height = 2,
                                                  .stride_width = 2,
                                                  .pad_height = 1,
                                                  .pad_width = 1};

TEST(MaxPool2dForward, MatchesHandComputed2x2Stride2) {
    const Pool2dShape s{
        .in_height = 4, .in_width = 4, .kernel_height = 2, .kernel_width = 2, .stride_height = 2, .stride_width = 2};
    std::vector<float> input = {1, 5, 2, 0,  //
                                3, 4, 8, 7,  //
                                9, 0, 1, 1,  //
                                2, 6, 3, 4};
    std::vector<float> output(4);
    std::vector<int32_t> argmax(4);
    ladon::cpu::max_pool2d_forward(s, input.data(), output.data(), argmax.data());
    EXPECT_EQ(output, (std::vector<float>{5, 8, 9, 4}));
    EXPECT_EQ(argmax, (std::vector<int32_t>{1, 6, 8, 15}));
}

TEST(MaxPool2dForward, PaddingActsAsMinusInfinity) {
    // All inputs negative: a zero-padded max would return 0 at the borders.
    const Pool2dShape s = kernel3_stride2_pad1_on_3x3;
    std::vector<float> input = {-9, -8, -7, -6, -5, -4, -3, -2, -1};
    std::vector<float> output(4);
    std::vector<int32_t> argmax(4);
    ladon::cpu::max_pool2d_forward(s, input.data(), output.data(), argmax.data());
    EXPECT_EQ(output, (std::vector<float>{-5, -4, -2, -1}));
    EXPECT_EQ(argmax, (std::vector<int32_t>{4, 5, 7, 8}));
}

TEST(MaxPool2dForward, TiesGoToTheFirstMaximumInRowMajorOrder) {
    const Pool2dShape s{.in_height = 2, .in_width = 2, .kernel_height = 2, .kernel_width = 2};
    std::vector<float> input = {1, 3, 3, 3};
    float output = 0;
    int32_t argmax = -7;
    ladon::cpu::max_pool2d_forward(s, input.data(), &output, &argmax);
    EXPECT_EQ(output, 3.0f);
    EXPECT_EQ(argmax, 1);
}

TEST(MaxPool2dForward, WindowWhollyInPaddingYieldsMinusInfinityAndNoGradient) {
    const Pool2dShape s{.in_height = 2, .in_width = 2, .pad_height = 1, .pad_width = 1};  // 1x1 kernel, 4x4 output
    std::vector<float> input = {1, 2, 3, 4};
    std::vector<float> output(16);
    std::vector<int32_t> argmax(16);
    ladon::cpu::max_pool2d_forward(s, input.data(), output.data(), argmax.data());
    EXPECT_EQ(output[0], -std::numeric_limits<float>::infinity());
    EXPECT_EQ(argmax[0], -1);
    EXPECT_EQ(output[5], 1.0f);
    EXPECT_EQ(argmax[5], 0);
    std::vector<float> grad_output(16, 1.0f), grad_input(4, 0.0f);
    ladon::cpu::max_pool2d_backward(s, grad_output.data(), argmax.data(), grad_input.data());
    EXPECT_EQ(grad_input, (std::vector<float>{1, 1, 1, 1}));
}

// Windows that tile the input (no padding, kernel == stride) take a fast path
// in max_pool2d_forward. The padded general path computes the same windows if
// the plane is shifted: with padding 1 and the input placed at offset
// (kernel - 1, kernel - 1) of a larger plane, general output (oh + 1, ow + 1)
// covers exactly the pixels of tiled output (oh, ow). The two must agree bit
// for bit, argmax included, on odd shapes and on NaN, -inf and tied values
// (first maximum wins, a NaN wins, of several NaNs the last).
TEST(MaxPool2dForward, TilingFastPathMatchesPaddedGeneralPathBitForBit) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<Pool2dShape> shapes = {
        {.batch = 3,
         .channels = 5,
         .in_height = 7,
         .in_width = 9,
         .kernel_height = 2,
         .kernel_width = 2,
         .stride_height = 2,
         .stride_width = 2},
        {.batch = 2,
         .channels = 3,
         .in_height = 40,
         .in_width = 40,
         .kernel_height = 2,
         .kernel_width = 2,
         .stride_height = 2,
         .stride_width = 2},
        {.batch = 2,
         .channels = 2,
         .in_height = 11,
         .in_width = 10,
         .kernel_height = 3,
         .kernel_width = 2,
         .stride_height = 3,
         .stride_width = 2},
        {.batch = 1,
         .channels = 4,
         .in_height = 5,
         .in_width = 13,
         .kernel_height = 1,
         .kernel_width = 3,
         .stride_height = 1,
         .stride_width = 3},
        {.batch = 64,
         .channels = 9,
         .in_height = 9,
         .in_width = 7,
         .kernel_height = 2,
         .kernel_width = 2,
         .stride_height = 2,
         .stride_width = 2},  // large enough to run the planes in parallel
    };
    std::mt19937 rng(5);
    // Few distinct values, so windows hold ties, NaNs (sometimes several) and -inf.
    const std::vector<float> palette = {-inf, -2.0f, -0.0f, 0.0f, 1.0f, 1.0f, 3.0f, nan};
    auto same_bits = [](float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; };
    for (const Pool2dShape& tiled : shapes) {
        std::vector<float> input(tiled.input_size());
        for (float& v : input) v = palette[std::uniform_int_distribution<std::size_t>(0, palette.size() - 1)(rng)];

        const int64_t shift_h = tiled.kernel_height - 1, shift_w = tiled.kernel_width - 1;
        Pool2dShape padded = tiled;
        padded.in_height += shift_h;
        padded.in_width += shift_w;
        padded.pad_height = padded.pad_width = 1;
        std::vector<float> shifted(padded.input_size(), 7.0f);  // the filler never reaches a compared output
        for (int64_t plane = 0; plane < tiled.batch * tiled.channels; ++plane)
            for (int64_t h = 0; h < tiled.in_height; ++h)
                for (int64_t w = 0; w < tiled.in_width; ++w)
                    shifted[(plane * padded.in_height + h + shift_h) * padded.in_width + w + shift_w] =
                        input[(plane * tiled.in_height + h) * tiled.in_width + w];

        for (int threads : {1, 3}) {
            ScopedThreadCount scope(threads);
            const std::string what = describe(tiled) + " threads " + std::to_string(threads);
            std::vector<float> fast(tiled.output_size()), general(padded.output_size());
            std::vector<int32_t> fast_argmax(tiled.output_size(), -99), general_argmax(padded.output_size(), -99);
            ladon::cpu::max_pool2d_forward(tiled, input.data(), fast.data(), fast_argmax.data());
            ladon::cpu::max_pool2d_forward(padded, shifted.data(), general.data(), general_argmax.data());
            ASSERT_GE(padded.out_height(), tiled.out_height() + 1) << what;
            ASSERT_GE(padded.out_width(), tiled.out_width() + 1) << what;
            for (int64_t plane = 0; plane < tiled.batch * tiled.channels; ++plane)
                for (int64_t oh = 0; oh < tiled.out_height(); ++oh)
                    for (int64_t ow = 0; ow < tiled.out_width(); ++ow) {
                        const int64_t f = (plane * tiled.out_height() + oh) * tiled.out_width() + ow;
                        const int64_t g = (plane * padded.out_height() + oh + 1) * padded.out_width() + ow + 1;
                        const int32_t index = general_argmax[g];
                        const int64_t h = index / padded.in_width - shift_h, w = index % padded.in_width - shift_w;
                        ASSERT_TRUE(same_bits(fast[f], general[g]))
                            << what << " output " << f << ": " << fast[f] << " vs " << general[g];
                        ASSERT_EQ(fast_argmax[f], h * tiled.in_width + w) << what << " argmax " << f;
                    }
        }
    }
}

TEST(AvgPool2dForward, PaddingCountsInTheDivisor) {
    const Pool2dShape s = kernel3_stride2_pad1_on_3x3;
    std::vector<float> input = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::vector<float> output(4);
    ladon::cpu::avg_pool2d_forward(s, input.data(), output.data());
    EXPECT_EQ(output, (std::vector<float>{12.0f / 9, 16.0f / 9, 24.0f / 9, 28.0f / 9}));
}

TEST(AvgPool2dBackward, SpreadsEachGradientOverItsWindowDividedByKernelArea) {
    const Pool2dShape s = kernel3_stride2_pad1_on_3x3;
    std::vector<float> grad_output(4, 1.0f), grad_input(9, 0.0f);
    ladon::cpu::avg_pool2d_backward(s, grad_output.data(), grad_input.data());
    // Number of the four windows covering each pixel, over 9.
    const float ninth = 1.0f / 9;
    EXPECT_EQ(grad_input,
              (std::vector<float>{ninth, 2 * ninth, ninth, 2 * ninth, 4 * ninth, 2 * ninth, ninth, 2 * ninth, ninth}));
}

TEST(Pool2d, ForwardAndAccumulatingBackwardMatchDirectLoopOnRandomShapes) {
    uint32_t seed = 1;
    for (const Pool2dShape& s : sweep_shapes()) {
        const auto input = distinct_values(s.input_size(), seed++);  // for max: no ties
        // For average: values near 1 in size, so float cancellation stays below
        // the tolerance (the distinct ramp reaches |x| ~ 1000 on the big shape).
        const auto avg_input = random_vector(s.input_size(), seed++);
        const auto grad_output = random_vector(s.output_size(), seed++);
        const auto initial_grad = random_vector(s.input_size(), seed++);

        std::vector<double> expected_max(s.output_size(), -std::numeric_limits<double>::infinity());
        std::vector<int64_t> expected_argmax(s.output_size(), -1);
        std::vector<double> expected_avg(s.output_size(), 0.0);
        const double area = double(s.kernel_height * s.kernel_width);
        const int64_t plane_size = s.in_height * s.in_width;
        for_each_window_pixel(s, [&](int64_t i, int64_t o) {
            if (input[i] > expected_max[o]) {
                expected_max[o] = input[i];
                expected_argmax[o] = i;
            }
            expected_avg[o] += avg_input[i] / area;
        });
        auto expected_max_grad = to_double(initial_grad);
        for (int64_t o = 0; o < s.output_size(); ++o) expected_max_grad[expected_argmax[o]] += grad_output[o];
        auto expected_avg_grad = to_double(initial_grad);
        for_each_window_pixel(s, [&](int64_t i, int64_t o) { expected_avg_grad[i] += grad_output[o] / area; });

        for (int threads : {1, 3}) {
            ScopedThreadCount scope(threads);
            const std::string what = describe(s) + " threads " + std::to_string(threads);
            std::vector<float> output(s.output_size(), -99.0f);
            std::vector<int32_t> argmax(s.output_size(), -99);
            ladon::cpu::max_pool2d_forward(s, input.data(), output.data(), argmax.data());
            expect_all_near(output, expected_max, 0.0, what + " max output");
            for (int64_t o = 0; o < s.output_size(); ++o)
                ASSERT_EQ(argmax[o], expected_argmax[o] % plane_size) << what << " argmax [" << o << "]";
            auto grad_input = initial_grad;
            ladon::cpu::max_pool2d_backward(s, grad_output.data(), argmax.data(), grad_input.data());
            expect_all_near(grad_input, expected_max_grad, 1e-6, what + " max grad_input");

            ladon::cpu::avg_pool2d_forward(s, avg_input.data(), output.data());
            expect_all_near(output, expected_avg, 1e-5, what + " avg output");
            grad_input = initial_grad;
            ladon::cpu::avg_pool2d_backward(s, grad_output.data(), grad_input.data());
            expect_all_near(grad_input, expected_avg_grad, 1e-6, what + " avg grad_input");
        }
    }
}

void check_max_pool_gradients(const Pool2dShape& s) {
    auto input = distinct_values(s.input_size(), 61);
    std::vector<float> grad_input(input.size()), output(s.output_size());
    std::vector<int32_t> argmax(s.output_size());
    check_gradients(
        {{"input", input, grad_input}}, output,
        [&] { ladon::cpu::max_pool2d_forward(s, input.data(), output.data(), argmax.data()); },
        [&](std::span<const float> grad_output) {
            ladon::cpu::max_pool2d_backward(s, grad_output.data(), argmax.data(), grad_input.data());
        });
}

void check_avg_pool_gradients(const Pool2dShape& s) {
    auto input = random_vector(s.input_size(), 62);
    std::vector<float> grad_input(input.size()), output(s.output_size());
    check_gradients(
        {{"input", input, grad_input}}, output, [&] { ladon::cpu::avg_pool2d_forward(s, input.data(), output.data()); },
        [&](std::span<const float> grad_output) {
            ladon::cpu::avg_pool2d_backward(s, grad_output.data(), grad_input.data());
        });
}

TEST(MaxPool2dGradient, OverlappingPaddedWindows) {
    check_max_pool_gradients({.batch = 3,
                              .channels = 5,
                              .in_height = 7,
                              .in_width = 9,
                              .kernel_height = 3,
                              .kernel_width = 3,
                              .stride_height = 2,
                              .stride_width = 2,
                              .pad_height = 1,
                              .pad_width = 1});
}

TEST(MaxPool2dGradient, NonSquareKernelUnevenStride) {
    check_max_pool_gradients({.batch = 2,
                              .channels = 3,
                              .in_height = 7,
                              .in_width = 8,
                              .kernel_height = 3,
                              .kernel_width = 2,
                              .stride_height = 1,
                              .stride_width = 2,
                              .pad_height = 1});
}

TEST(AvgPool2dGradient, OverlappingPaddedWindows) {
    check_avg_pool_gradients({.batch = 3,
                              .channels = 5,
                              .in_height = 7,
                              .in_width = 9,
                              .kernel_height = 3,
                              .kernel_width = 3,
                              .stride_height = 2,
                              .stride_width = 2,
                              .pad_height = 1,
                              .pad_width = 1});
}

TEST(AvgPool2dGradient, NonSquareKernelUnevenStride) {
    check_avg_pool_gradients({.batch = 2,
                              .channels = 3,
                              .in_height = 7,
                              .in_width = 8,
                              .kernel_height = 3,
                              .kernel_width = 2,
                              .stride_height = 1,
                              .stride_width = 2,
                              .pad_height = 1});
}

TEST(Pool2dBackward, SecondCallDoublesTheGradient) {
    const Pool2dShape s{.batch = 2,
                        .channels = 3,
                        .in_height = 7,
                        .in_width = 6,
                        .kernel_height = 3,
                        .kernel_width = 3,
                        .stride_height = 2,
                        .stride_width = 2,
                        .pad_height = 1,
                        .pad_width = 1};
    const auto input = distinct_values(s.input_size(), 71);
    const auto grad_output = random_vector(s.output_size(), 72);
    std::vector<float> output(s.output_size());
    std::vector<int32_t> argmax(s.output_size());
    ladon::cpu::max_pool2d_forward(s, input.data(), output.data(), argmax.data());

    auto doubled = [](const std::vector<float>& v) {
        std::vector<double> d(v.begin(), v.end());
        for (double& x : d) x *= 2.0;
        return d;
    };
    std::vector<float> grad_max(s.input_size(), 0.0f), grad_avg(s.input_size(), 0.0f);
    ladon::cpu::max_pool2d_backward(s, grad_output.data(), argmax.data(), grad_max.data());
    ladon::cpu::avg_pool2d_backward(s, grad_output.data(), grad_avg.data());
    const auto expected_max = doubled(grad_max), expected_avg = doubled(grad_avg);
    ladon::cpu::max_pool2d_backward(s, grad_output.data(), argmax.data(), grad_max.data());
    ladon::cpu::avg_pool2d_backward(s, grad_output.data(), grad_avg.data());
    expect_all_near(grad_max, expected_max, 1e-6, "max grad_input");
    expect_all_near(grad_avg, expected_avg, 1e-6, "avg grad_input");
}

}  // namespace
