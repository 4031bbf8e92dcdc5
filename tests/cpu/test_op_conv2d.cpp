// conv2d on the CPU: hand-computed cases, a direct-loop reference on random
// shapes (under several thread counts, so both schedules run), finite-difference
// gradients, accumulation and reproducibility.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/op_test_support.hpp"
#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

using ladon::ops::Conv2dShape;
using ladon::testing::check_gradients;
using ladon::testing::expect_all_near;
using ladon::testing::random_vector;
using ladon::testing::ScopedThreadCount;
using ladon::testing::to_double;

std::string describe(const Conv2dShape& s) {
    std::ostringstream text;
    text << "N" << s.batch << " C" << s.in_channels << " " << s.in_height << "x" << s.in_width << " Cout"
         << s.out_channels << " k" << s.kernel_height << "x" << s.kernel_width << " s" << s.stride_height << ","
         << s.stride_width << " p" << s.pad_height << "," << s.pad_width;
    return text.str();
}

std::vector<float> workspace_for(const Conv2dShape& s) {
    return std::vector<float>(ladon::cpu::conv2d_workspace_floats(s, omp_get_max_threads()));
}

// The definition of conv2d, one multiply-add at a time: calls
// visit(input_index, weight_index, output_index) for every product that
// contributes to an output.
template <typename Visit>
void for_each_product(const Conv2dShape& s, Visit visit) {
    for (int64_t n = 0; n < s.batch; ++n)
        for (int64_t co = 0; co < s.out_channels; ++co)
            for (int64_t oh = 0; oh < s.out_height(); ++oh)
                for (int64_t ow = 0; ow < s.out_width(); ++ow)
                    for (int64_t c = 0; c < s.in_channels; ++c)
                        for (int64_t ki = 0; ki < s.kernel_height; ++ki)
                            for (int64_t kj = 0; kj < s.kernel_width; ++kj) {
                                const int64_t ih = oh * s.stride_height - s.pad_height + ki;
                                const int64_t iw = ow * s.stride_width - s.pad_width + kj;
                                if (ih < 0 || ih >= s.in_height || iw < 0 || iw >= s.in_width) continue;
                                visit(((n * s.in_channels + c) * s.in_height + ih) * s.in_width + iw,
                                      ((co * s.in_channels + c) * s.kernel_height + ki) * s.kernel_width + kj,
                                      ((n * s.out_channels + co) * s.out_height() + oh) * s.out_width() + ow);
                            }
}

int64_t channel_of_output(const Conv2dShape& s, int64_t o) {
    return (o / (s.out_height() * s.out_width())) % s.out_channels;
}

std::vector<double> reference_forward(const Conv2dShape& s, const std::vector<float>& input,
                                      const std::vector<float>& weight, const std::vector<float>& bias) {
    std::vector<double> out(s.output_size(), 0.0);
    if (!bias.empty())
        for (int64_t o = 0; o < s.output_size(); ++o) out[o] = bias[channel_of_output(s, o)];
    for_each_product(s, [&](int64_t i, int64_t w, int64_t o) { out[o] += double(input[i]) * weight[w]; });
    return out;
}

// A random shape whose kernel fits the padded input.
Conv2dShape random_shape(std::mt19937& rng) {
    auto pick = [&](int64_t low, int64_t high) { return std::uniform_int_distribution<int64_t>(low, high)(rng); };
    Conv2dShape s;
    s.batch = pick(1, 7);
    s.in_channels = pick(1, 4);
    s.out_channels = pick(1, 5);
    s.in_height = pick(1, 9);
    s.in_width = pick(1, 9);
    s.pad_height = pick(0, 2);
    s.pad_width = pick(0, 2);
    s.kernel_height = pick(1, std::min<int64_t>(4, s.in_height + 2 * s.pad_height));
    s.kernel_width = pick(1, std::min<int64_t>(4, s.in_width + 2 * s.pad_width));
    s.stride_height = pick(1, 3);
    s.stride_width = pick(1, 3);
    return s;
}

// The shapes the random sweeps run: small random ones (run on one thread),
// the pointwise fast path, and a few with enough multiply-adds (over 2^19) for
// the kernels to start threads, with batches above and below the thread counts.
std::vector<Conv2dShape> sweep_shapes() {
    std::mt19937 rng(2024);
    std::vector<Conv2dShape> shapes;
    for (int i = 0; i < 30; ++i) shapes.push_back(random_shape(rng));
    shapes.push_back({.batch = 6, .in_channels = 5, .in_height = 4, .in_width = 7, .out_channels = 3});
    shapes.push_back({.batch = 1, .in_channels = 3, .in_height = 5, .in_width = 5, .out_channels = 2});
    // Large enough for threads.
    shapes.push_back({.batch = 6,
                      .in_channels = 8,
                      .in_height = 13,
                      .in_width = 15,
                      .out_channels = 10,
                      .kernel_height = 3,
                      .kernel_width = 3,
                      .pad_height = 1,
                      .pad_width = 1});
    shapes.push_back({.batch = 3,
                      .in_channels = 8,
                      .in_height = 17,
                      .in_width = 17,
                      .out_channels = 12,
                      .kernel_height = 3,
                      .kernel_width = 3,
                      .pad_height = 1,
                      .pad_width = 1});
    shapes.push_back({.batch = 2,
                      .in_channels = 6,
                      .in_height = 21,
                      .in_width = 19,
                      .out_channels = 48,
                      .kernel_height = 3,
                      .kernel_width = 2,
                      .stride_height = 2,
                      .stride_width = 1,
                      .pad_height = 1,
                      .pad_width = 0});
    shapes.push_back({.batch = 1, .in_channels = 64, .in_height = 16, .in_width = 16, .out_channels = 40});
    shapes.push_back({.batch = 7, .in_channels = 64, .in_height = 9, .in_width = 11, .out_channels = 16});
    return shapes;
}

// 1 thread, and thread counts below and above the batch, so both schedules run.
constexpr int sweep_thread_counts[] = {1, 2, 5};

TEST(Conv2dForward, MatchesHandComputed2x2KernelWithBias) {
    const Conv2dShape s{.in_height = 3, .in_width = 3, .kernel_height = 2, .kernel_width = 2};
    std::vector<float> input = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::vector<float> weight = {1, 2, 3, 4};
    std::vector<float> bias = {0.5f};
    std::vector<float> output(s.output_size(), -99.0f);
    auto workspace = workspace_for(s);
    ladon::cpu::conv2d_forward(s, input.data(), weight.data(), bias.data(), output.data(), workspace.data());
    // out[0][0] = 1*1 + 2*2 + 4*3 + 5*4 + 0.5, and so on.
    EXPECT_EQ(output, (std::vector<float>{37.5f, 47.5f, 67.5f, 77.5f}));
}

TEST(Conv2dForward, PaddingContributesZerosToStridedWindows) {
    // 3x3 ones kernel, stride 2, pad 1 on 1..9: each output is the sum of the
    // input pixels its window covers, the padded ones adding nothing.
    const Conv2dShape s{.in_height = 3,
                        .in_width = 3,
                        .kernel_height = 3,
                        .kernel_width = 3,
                        .stride_height = 2,
                        .stride_width = 2,
                        .pad_height = 1,
                        .pad_width = 1};
    std::vector<float> input = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::vector<float> weight(9, 1.0f);
    std::vector<float> output(s.output_size());
    auto workspace = workspace_for(s);
    ladon::cpu::conv2d_forward(s, input.data(), weight.data(), nullptr, output.data(), workspace.data());
    EXPECT_EQ(output, (std::vector<float>{12, 16, 24, 28}));
}

TEST(Conv2dBackward, MatchesHandComputedGradients) {
    const Conv2dShape s{.in_height = 3, .in_width = 3, .kernel_height = 2, .kernel_width = 2};
    std::vector<float> input = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::vector<float> weight = {1, 2, 3, 4};
    std::vector<float> grad_output(4, 1.0f);
    std::vector<float> grad_input(9, 0.0f), grad_weight(4, 0.0f), grad_bias(1, 0.0f);
    auto workspace = workspace_for(s);
    ladon::cpu::conv2d_backward_data(s, weight.data(), grad_output.data(), grad_input.data(), workspace.data());
    ladon::cpu::conv2d_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(), grad_bias.data(),
                                       workspace.data());
    // Each input pixel receives the sum of the kernel taps that see it.
    EXPECT_EQ(grad_input, (std::vector<float>{1, 3, 2, 4, 10, 6, 3, 7, 4}));
    // Each tap's gradient is the sum of the 2x2 block of input it sees.
    EXPECT_EQ(grad_weight, (std::vector<float>{12, 16, 24, 28}));
    EXPECT_EQ(grad_bias, (std::vector<float>{4}));
}

TEST(Conv2dForward, MatchesDirectLoopOnRandomShapes) {
    uint32_t seed = 1;
    for (const Conv2dShape& s : sweep_shapes()) {
        auto input = random_vector(s.input_size(), seed++);
        auto weight = random_vector(s.weight_size(), seed++);
        auto bias = random_vector(s.out_channels, seed++);
        const auto expected_with_bias = reference_forward(s, input, weight, bias);
        const auto expected_without_bias = reference_forward(s, input, weight, {});
        for (int threads : sweep_thread_counts) {
            ScopedThreadCount scope(threads);
            auto workspace = workspace_for(s);
            std::vector<float> output(s.output_size(), -99.0f);
            const std::string what = describe(s) + " threads " + std::to_string(threads);
            ladon::cpu::conv2d_forward(s, input.data(), weight.data(), bias.data(), output.data(), workspace.data());
            expect_all_near(output, expected_with_bias, 1e-5, what + " with bias");
            ladon::cpu::conv2d_forward(s, input.data(), weight.data(), nullptr, output.data(), workspace.data());
            expect_all_near(output, expected_without_bias, 1e-5, what + " without bias");
        }
    }
}

// Gradient buffers start from random values, so the comparison also checks
// that backward adds to them rather than overwriting.
TEST(Conv2dBackward, AccumulatesDirectLoopGradientsOnRandomShapes) {
    uint32_t seed = 100;
    for (const Conv2dShape& s : sweep_shapes()) {
        auto input = random_vector(s.input_size(), seed++);
        auto weight = random_vector(s.weight_size(), seed++);
        auto grad_output = random_vector(s.output_size(), seed++);
        const auto initial_input_grad = random_vector(s.input_size(), seed++);
        const auto initial_weight_grad = random_vector(s.weight_size(), seed++);
        const auto initial_bias_grad = random_vector(s.out_channels, seed++);

        auto expected_input = to_double(initial_input_grad);
        auto expected_weight = to_double(initial_weight_grad);
        auto expected_bias = to_double(initial_bias_grad);
        for_each_product(s, [&](int64_t i, int64_t w, int64_t o) {
            expected_input[i] += double(weight[w]) * grad_output[o];
            expected_weight[w] += double(input[i]) * grad_output[o];
        });
        for (int64_t o = 0; o < s.output_size(); ++o) expected_bias[channel_of_output(s, o)] += grad_output[o];

        for (int threads : sweep_thread_counts) {
            ScopedThreadCount scope(threads);
            auto workspace = workspace_for(s);
            auto grad_input = initial_input_grad;
            auto grad_weight = initial_weight_grad;
            auto grad_bias = initial_bias_grad;
            const std::string what = describe(s) + " threads " + std::to_string(threads);
            ladon::cpu::conv2d_backward_data(s, weight.data(), grad_output.data(), grad_input.data(), workspace.data());
            ladon::cpu::conv2d_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(),
                                               grad_bias.data(), workspace.data());
            expect_all_near(grad_input, expected_input, 1e-5, what + " grad_input");
            expect_all_near(grad_weight, expected_weight, 1e-5, what + " grad_weight");
            expect_all_near(grad_bias, expected_bias, 1e-5, what + " grad_bias");
        }
    }
}

// Runs the finite-difference check on input, weight and (when with_bias) bias.
void check_conv2d_gradients(const Conv2dShape& s, bool with_bias) {
    auto input = random_vector(s.input_size(), 11);
    auto weight = random_vector(s.weight_size(), 12);
    auto bias = random_vector(s.out_channels, 13);
    std::vector<float> grad_input(input.size()), grad_weight(weight.size()), grad_bias(bias.size());
    std::vector<float> output(s.output_size());
    auto workspace = workspace_for(s);

    std::vector<ladon::testing::GradCheckInput> inputs = {{"input", input, grad_input},
                                                          {"weight", weight, grad_weight}};
    if (with_bias) inputs.push_back({"bias", bias, grad_bias});
    const float* bias_or_null = with_bias ? bias.data() : nullptr;
    float* grad_bias_or_null = with_bias ? grad_bias.data() : nullptr;
    check_gradients(
        inputs, output,
        [&] {
            ladon::cpu::conv2d_forward(s, input.data(), weight.data(), bias_or_null, output.data(), workspace.data());
        },
        [&](std::span<const float> grad_output) {
            ladon::cpu::conv2d_backward_data(s, weight.data(), grad_output.data(), grad_input.data(), workspace.data());
            ladon::cpu::conv2d_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(),
                                               grad_bias_or_null, workspace.data());
        });
}

TEST(Conv2dGradient, OddShapeStride2Pad1WithBias) {
    check_conv2d_gradients({.batch = 3,
                            .in_channels = 5,
                            .in_height = 7,
                            .in_width = 9,
                            .out_channels = 4,
                            .kernel_height = 3,
                            .kernel_width = 3,
                            .stride_height = 2,
                            .stride_width = 2,
                            .pad_height = 1,
                            .pad_width = 1},
                           true);
}

TEST(Conv2dGradient, Pointwise1x1WithBias) {
    check_conv2d_gradients({.batch = 3, .in_channels = 5, .in_height = 7, .in_width = 9, .out_channels = 4}, true);
}

TEST(Conv2dGradient, NonSquareKernelUnevenStrideAndPaddingWithoutBias) {
    check_conv2d_gradients({.batch = 2,
                            .in_channels = 3,
                            .in_height = 6,
                            .in_width = 7,
                            .out_channels = 5,
                            .kernel_height = 3,
                            .kernel_width = 2,
                            .stride_height = 2,
                            .stride_width = 1,
                            .pad_height = 1,
                            .pad_width = 0},
                           false);
}

TEST(Conv2dGradient, Kernel3Stride1Pad0WithBias) {
    check_conv2d_gradients({.batch = 4,
                            .in_channels = 2,
                            .in_height = 5,
                            .in_width = 6,
                            .out_channels = 3,
                            .kernel_height = 3,
                            .kernel_width = 3},
                           true);
}

TEST(Conv2dGradient, StridedOneByOneWithoutBias) {
    // A 1x1 kernel with stride 2 must not take the pointwise shortcut.
    check_conv2d_gradients({.batch = 2,
                            .in_channels = 3,
                            .in_height = 7,
                            .in_width = 5,
                            .out_channels = 2,
                            .stride_height = 2,
                            .stride_width = 2},
                           false);
}

TEST(Conv2dBackward, SecondCallDoublesEveryGradient) {
    const Conv2dShape padded_3x3{.batch = 5,
                                 .in_channels = 3,
                                 .in_height = 6,
                                 .in_width = 5,
                                 .out_channels = 4,
                                 .kernel_height = 3,
                                 .kernel_width = 3,
                                 .pad_height = 1,
                                 .pad_width = 1};
    const Conv2dShape pointwise{.batch = 5, .in_channels = 3, .in_height = 6, .in_width = 5, .out_channels = 4};
    for (const Conv2dShape& s : {padded_3x3, pointwise}) {
        auto input = random_vector(s.input_size(), 21);
        auto weight = random_vector(s.weight_size(), 22);
        auto grad_output = random_vector(s.output_size(), 23);
        auto workspace = workspace_for(s);
        std::vector<float> grad_input(s.input_size(), 0.0f), grad_weight(s.weight_size(), 0.0f),
            grad_bias(s.out_channels, 0.0f);
        auto backward = [&] {
            ladon::cpu::conv2d_backward_data(s, weight.data(), grad_output.data(), grad_input.data(), workspace.data());
            ladon::cpu::conv2d_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(),
                                               grad_bias.data(), workspace.data());
        };
        backward();
        const auto once_input = grad_input, once_weight = grad_weight, once_bias = grad_bias;
        backward();
        auto doubled = [](const std::vector<float>& v) {
            std::vector<double> d(v.begin(), v.end());
            for (double& x : d) x *= 2.0;
            return d;
        };
        expect_all_near(grad_input, doubled(once_input), 1e-6, describe(s) + " grad_input");
        expect_all_near(grad_weight, doubled(once_weight), 1e-6, describe(s) + " grad_weight");
        expect_all_near(grad_bias, doubled(once_bias), 1e-6, describe(s) + " grad_bias");
    }
}

TEST(Conv2dBackward, FilterGradientIsBitwiseReproducibleForAThreadCount) {
    // Batch above the thread count and enough work for threads: the schedule
    // with per-thread partial sums.
    const Conv2dShape s{.batch = 11,
                        .in_channels = 8,
                        .in_height = 12,
                        .in_width = 12,
                        .out_channels = 8,
                        .kernel_height = 3,
                        .kernel_width = 3,
                        .pad_height = 1,
                        .pad_width = 1};
    ScopedThreadCount scope(3);
    auto input = random_vector(s.input_size(), 31);
    auto grad_output = random_vector(s.output_size(), 32);
    auto workspace = workspace_for(s);
    auto run = [&] {
        std::vector<float> grad_weight(s.weight_size(), 0.0f), grad_bias(s.out_channels, 0.0f);
        ladon::cpu::conv2d_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(), grad_bias.data(),
                                           workspace.data());
        grad_weight.insert(grad_weight.end(), grad_bias.begin(), grad_bias.end());
        return grad_weight;
    };
    const auto first = run();
    for (int repeat = 0; repeat < 5; ++repeat) ASSERT_EQ(run(), first) << "repeat " << repeat;
}

TEST(Conv2dWorkspace, HoldsAColumnBufferPerThreadAPartialGradientPerExtraThreadAndPerSampleBiasSums) {
    const Conv2dShape s{.batch = 2,
                        .in_channels = 3,
                        .in_height = 8,
                        .in_width = 8,
                        .out_channels = 5,
                        .kernel_height = 3,
                        .kernel_width = 3,
                        .pad_height = 1,
                        .pad_width = 1};
    const std::size_t columns = 3 * 3 * 3 * 8 * 8, partial = 5 * 3 * 3 * 3, bias_sums = 2 * 5;
    EXPECT_EQ(ladon::cpu::conv2d_workspace_floats(s, 1), columns + bias_sums);
    EXPECT_EQ(ladon::cpu::conv2d_workspace_floats(s, 4), 4 * columns + 3 * partial + bias_sums);
    // A pointwise conv reads its input as the column matrix.
    const Conv2dShape pointwise{.batch = 2, .in_channels = 3, .in_height = 8, .in_width = 8, .out_channels = 5};
    EXPECT_EQ(ladon::cpu::conv2d_workspace_floats(pointwise, 4), 3 * std::size_t{5 * 3} + bias_sums);
}

TEST(Conv2dForward, RejectsAKernelLargerThanThePaddedInput) {
    const Conv2dShape s{.in_height = 2, .in_width = 2, .kernel_height = 3, .kernel_width = 3};
    std::vector<float> buffer(64);
    EXPECT_THROW(ladon::cpu::conv2d_forward(s, buffer.data(), buffer.data(), nullptr, buffer.data(), buffer.data()),
                 std::invalid_argument);
}

}  // namespace
