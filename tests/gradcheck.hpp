#pragma once
// The one gradient checker every op and loss test calls (Caffe's habit).
//
// The op is seen as y = f(x_1, ..., x_k). We check the gradient of the scalar
// L = sum_i r_i * y_i, with r a fixed random projection, so every output
// element contributes. The analytic gradient comes from the op's backward
// (called with grad_y = r on zeroed gradient buffers); the numeric one from
// central differences, L accumulated in double. Ops compute in float, so the
// step is large-ish (1e-3 relative to the value) and the tolerance relative.
// Elements where the two one-sided differences disagree sit on a kink (ReLU at
// 0, a max-pool tie) and are skipped; a test fails if more than a tenth are.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace ladon::testing {

inline std::vector<float> random_vector(std::size_t count, uint32_t seed, float low = -1.0f, float high = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(low, high);
    std::vector<float> v(count);
    for (auto& x : v) x = dist(rng);
    return v;
}

struct GradCheckInput {
    std::string name;
    std::span<float> values;     // the input the op reads; perturbed in place
    std::span<float> gradients;  // where backward accumulates d L / d values
};

struct GradCheckOptions {
    double step = 1e-3;
    double relative_tolerance = 1e-2;
    double absolute_tolerance = 2e-3;
    // Check at most this many elements per input (spread evenly); 0 = all.
    std::size_t max_elements_per_input = 0;
    double max_kink_fraction = 0.1;
};

// forward(): recompute `output` from the current input values.
// backward(grad_output): accumulate into every GradCheckInput::gradients.
inline void check_gradients(std::vector<GradCheckInput> inputs, std::span<const float> output,
                            const std::function<void()>& forward,
                            const std::function<void(std::span<const float>)>& backward,
                            GradCheckOptions options = {}) {
    forward();
    std::vector<float> projection = random_vector(output.size(), 1234u);
    auto objective = [&]() {
        forward();
        double sum = 0.0;
        for (std::size_t i = 0; i < output.size(); ++i) sum += double(projection[i]) * double(output[i]);
        return sum;
    };
    for (auto& in : inputs) std::fill(in.gradients.begin(), in.gradients.end(), 0.0f);
    forward();
    backward(projection);
    for (auto& in : inputs) {
        std::vector<float> analytic(in.gradients.begin(), in.gradients.end());
        std::size_t n = in.values.size();
        std::size_t stride = 1;
        if (options.max_elements_per_input != 0 && n > options.max_elements_per_input)
            stride = (n + options.max_elements_per_input - 1) / options.max_elements_per_input;
        std::size_t checked = 0, kinks = 0;
        for (std::size_t i = 0; i < n; i += stride) {
            float original = in.values[i];
            double h = options.step * std::max(1.0, std::abs(double(original)));
            float plus = float(double(original) + h), minus = float(double(original) - h);
            double h_plus = double(plus) - double(original), h_minus = double(original) - double(minus);
            in.values[i] = plus;
            double l_plus = objective();
            in.values[i] = minus;
            double l_minus = objective();
            in.values[i] = original;
            double l_zero = objective();
            double numeric = (l_plus - l_minus) / (h_plus + h_minus);
            double right = (l_plus - l_zero) / h_plus, left = (l_zero - l_minus) / h_minus;
            double scale = std::max({std::abs(right), std::abs(left), 1.0});
            ++checked;
            if (std::abs(right - left) > 0.1 * scale + 10 * options.absolute_tolerance) {
                ++kinks;
                continue;
            }
            double a = analytic[i];
            double tolerance = options.absolute_tolerance + options.relative_tolerance * std::max(std::abs(a), std::abs(numeric));
            EXPECT_NEAR(a, numeric, tolerance) << in.name << "[" << i << "] analytic " << a << " numeric " << numeric;
        }
        EXPECT_LE(double(kinks), options.max_kink_fraction * double(checked))
            << in.name << ": " << kinks << " of " << checked << " elements sit on kinks";
    }
}

}  // namespace ladon::testing
