// dense on the CPU: hand-computed cases, a direct-loop reference on random
// shapes, finite-difference gradients and accumulation.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cpu/op_test_support.hpp"
#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

using ladon::ops::DenseShape;
using ladon::testing::check_gradients;
using ladon::testing::expect_all_near;
using ladon::testing::random_vector;
using ladon::testing::ScopedThreadCount;
using ladon::testing::to_double;

std::string describe(const DenseShape& s) {
    std::ostringstream text;
    text << "N" << s.batch << " in" << s.in_features << " out" << s.out_features;
    return text.str();
}

TEST(DenseForward, MatchesHandComputedCase) {
    const DenseShape s{.batch = 2, .in_features = 3, .out_features = 2};
    std::vector<float> input = {1, 2, 3, 4, 5, 6};
    std::vector<float> weight = {1, 0, -1, 0.5f, 0.5f, 0.5f};
    std::vector<float> bias = {10, -1};
    std::vector<float> output(4, -99.0f);
    ladon::cpu::dense_forward(s, input.data(), weight.data(), bias.data(), output.data());
    EXPECT_EQ(output, (std::vector<float>{8, 2, 8, 6.5f}));
    ladon::cpu::dense_forward(s, input.data(), weight.data(), nullptr, output.data());
    EXPECT_EQ(output, (std::vector<float>{-2, 3, -2, 7.5f}));
}

TEST(DenseBackward, MatchesHandComputedCase) {
    const DenseShape s{.batch = 2, .in_features = 3, .out_features = 2};
    std::vector<float> input = {1, 2, 3, 4, 5, 6};
    std::vector<float> weight = {1, 0, -1, 0.5f, 0.5f, 0.5f};
    std::vector<float> grad_output = {1, 2, 3, 4};
    std::vector<float> grad_input(6, 0.0f), grad_weight(6, 0.0f), grad_bias(2, 0.0f);
    ladon::cpu::dense_backward_data(s, weight.data(), grad_output.data(), grad_input.data());
    ladon::cpu::dense_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(), grad_bias.data());
    EXPECT_EQ(grad_input, (std::vector<float>{2, 1, 0, 5, 2, -1}));        // grad_output * weight
    EXPECT_EQ(grad_weight, (std::vector<float>{13, 17, 21, 18, 24, 30}));  // grad_output^T * input
    EXPECT_EQ(grad_bias, (std::vector<float>{4, 6}));                      // column sums
}

// Random small shapes plus one wide enough to take the parallel bias paths
// and span several bias-gradient column blocks.
std::vector<DenseShape> sweep_shapes() {
    std::mt19937 rng(7);
    auto pick = [&](int64_t low, int64_t high) { return std::uniform_int_distribution<int64_t>(low, high)(rng); };
    std::vector<DenseShape> shapes;
    for (int i = 0; i < 12; ++i)
        shapes.push_back({.batch = pick(1, 9), .in_features = pick(1, 40), .out_features = pick(1, 40)});
    shapes.push_back({.batch = 70, .in_features = 33, .out_features = 600});
    return shapes;
}

TEST(Dense, ForwardAndAccumulatingBackwardMatchDirectLoopOnRandomShapes) {
    uint32_t seed = 1;
    for (const DenseShape& s : sweep_shapes()) {
        const int64_t batch = s.batch, in = s.in_features, out = s.out_features;
        auto input = random_vector(batch * in, seed++);
        auto weight = random_vector(out * in, seed++);
        auto bias = random_vector(out, seed++);
        auto grad_output = random_vector(batch * out, seed++);
        const auto initial_input_grad = random_vector(batch * in, seed++);
        const auto initial_weight_grad = random_vector(out * in, seed++);
        const auto initial_bias_grad = random_vector(out, seed++);

        std::vector<double> expected_output(batch * out);
        auto expected_input = to_double(initial_input_grad);
        auto expected_weight = to_double(initial_weight_grad);
        auto expected_bias = to_double(initial_bias_grad);
        for (int64_t n = 0; n < batch; ++n) {
            for (int64_t o = 0; o < out; ++o) {
                double sum = bias[o];
                const double g = grad_output[n * out + o];
                for (int64_t i = 0; i < in; ++i) {
                    sum += double(input[n * in + i]) * weight[o * in + i];
                    expected_input[n * in + i] += g * weight[o * in + i];
                    expected_weight[o * in + i] += g * input[n * in + i];
                }
                expected_output[n * out + o] = sum;
                expected_bias[o] += g;
            }
        }

        for (int threads : {1, 3}) {
            ScopedThreadCount scope(threads);
            const std::string what = describe(s) + " threads " + std::to_string(threads);
            std::vector<float> output(batch * out, -99.0f);
            ladon::cpu::dense_forward(s, input.data(), weight.data(), bias.data(), output.data());
            expect_all_near(output, expected_output, 1e-5, what + " output");

            auto grad_input = initial_input_grad;
            auto grad_weight = initial_weight_grad;
            auto grad_bias = initial_bias_grad;
            ladon::cpu::dense_backward_data(s, weight.data(), grad_output.data(), grad_input.data());
            ladon::cpu::dense_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(),
                                              grad_bias.data());
            expect_all_near(grad_input, expected_input, 1e-5, what + " grad_input");
            expect_all_near(grad_weight, expected_weight, 1e-5, what + " grad_weight");
            expect_all_near(grad_bias, expected_bias, 1e-5, what + " grad_bias");
        }
    }
}

void check_dense_gradients(const DenseShape& s, bool with_bias) {
    auto input = random_vector(s.batch * s.in_features, 41);
    auto weight = random_vector(s.out_features * s.in_features, 42);
    auto bias = random_vector(s.out_features, 43);
    std::vector<float> grad_input(input.size()), grad_weight(weight.size()), grad_bias(bias.size());
    std::vector<float> output(s.batch * s.out_features);
    std::vector<ladon::testing::GradCheckInput> inputs = {{"input", input, grad_input},
                                                          {"weight", weight, grad_weight}};
    if (with_bias) inputs.push_back({"bias", bias, grad_bias});
    const float* bias_or_null = with_bias ? bias.data() : nullptr;
    float* grad_bias_or_null = with_bias ? grad_bias.data() : nullptr;
    check_gradients(
        inputs, output, [&] { ladon::cpu::dense_forward(s, input.data(), weight.data(), bias_or_null, output.data()); },
        [&](std::span<const float> grad_output) {
            ladon::cpu::dense_backward_data(s, weight.data(), grad_output.data(), grad_input.data());
            ladon::cpu::dense_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(),
                                              grad_bias_or_null);
        });
}

TEST(DenseGradient, OddShapeWithBias) {
    check_dense_gradients({.batch = 5, .in_features = 7, .out_features = 3}, true);
}

TEST(DenseGradient, WithoutBias) { check_dense_gradients({.batch = 4, .in_features = 9, .out_features = 6}, false); }

TEST(DenseGradient, SingleSampleSingleOutput) {
    check_dense_gradients({.batch = 1, .in_features = 11, .out_features = 1}, true);
}

TEST(DenseBackward, SecondCallDoublesEveryGradient) {
    const DenseShape s{.batch = 6, .in_features = 13, .out_features = 5};
    auto input = random_vector(s.batch * s.in_features, 51);
    auto weight = random_vector(s.out_features * s.in_features, 52);
    auto grad_output = random_vector(s.batch * s.out_features, 53);
    std::vector<float> grad_input(input.size(), 0.0f), grad_weight(weight.size(), 0.0f),
        grad_bias(s.out_features, 0.0f);
    auto backward = [&] {
        ladon::cpu::dense_backward_data(s, weight.data(), grad_output.data(), grad_input.data());
        ladon::cpu::dense_backward_filter(s, input.data(), grad_output.data(), grad_weight.data(), grad_bias.data());
    };
    backward();
    auto doubled = [](const std::vector<float>& v) {
        std::vector<double> d(v.begin(), v.end());
        for (double& x : d) x *= 2.0;
        return d;
    };
    const auto expected_input = doubled(grad_input), expected_weight = doubled(grad_weight),
               expected_bias = doubled(grad_bias);
    backward();
    expect_all_near(grad_input, expected_input, 1e-6, "grad_input");
    expect_all_near(grad_weight, expected_weight, 1e-6, "grad_weight");
    expect_all_near(grad_bias, expected_bias, 1e-6, "grad_bias");
}

TEST(DenseBackward, EmptyBatchLeavesParameterGradientsUnchanged) {
    const DenseShape s{.batch = 0, .in_features = 3, .out_features = 2};
    std::vector<float> weight_storage(6, 1.0f), grad_weight = {1, 2, 3, 4, 5, 6}, grad_bias = {7, 8};
    const float* no_rows = weight_storage.data();  // never read: there are no samples
    ladon::cpu::dense_backward_filter(s, no_rows, no_rows, grad_weight.data(), grad_bias.data());
    EXPECT_EQ(grad_weight, (std::vector<float>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(grad_bias, (std::vector<float>{7, 8}));
}

}  // namespace
