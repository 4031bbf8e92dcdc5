// The dense layer's tiled SGEMM (kernels/cuda/gemm.cuh) on the emulator or a GPU
// against ladon::cpu: odd shapes and shapes just past a 64-wide tile or an
// 8-deep K step, every activation in the fused epilogue with and without
// bias, backward passes that accumulate, the generic GEMM's four transposes
// with alpha, beta and padded leading dimensions, and bitwise determinism
// across fiber orders.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;
using ops::Activation;
using ops::DenseShape;

constexpr Activation all_activations[] = {Activation::identity, Activation::relu, Activation::leaky_relu,
                                          Activation::sigmoid, Activation::tanh};
constexpr float negative_slope = 0.1f;

// batch, in, out: odd sizes; a single element; one past a 64 tile in M and N
// with K one past an 8-deep step; one past a tile in the GEMM's K (= out for
// backward data, = batch for backward filter).
const DenseShape odd_shapes[] = {{37, 53, 29}, {1, 1, 1}, {65, 9, 65}, {3, 70, 5}, {66, 2, 3}};

std::string describe(const DenseShape& s) {
    return "batch " + std::to_string(s.batch) + ", in " + std::to_string(s.in_features) + ", out " +
           std::to_string(s.out_features);
}

std::vector<float> random_values(std::size_t size, unsigned seed) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
    std::vector<float> values(size);
    for (float& value : values) value = distribution(generator);
    return values;
}

// Elementwise |actual - expected| <= 1e-5 relative to the largest |expected|
// (sums of K products of values in [-1, 1]: rounding grows with the terms,
// not with a small, cancelled result).
void expect_close(const std::vector<float>& expected, const std::vector<float>& actual, const std::string& what) {
    ASSERT_EQ(expected.size(), actual.size()) << what;
    float magnitude = 1.0f;
    for (float value : expected) magnitude = std::max(magnitude, std::abs(value));
    const float tolerance = 1e-5f * magnitude;
    int reported = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        if (std::abs(expected[i] - actual[i]) <= tolerance) continue;
        ADD_FAILURE() << what << ": element " << i << " expected " << expected[i] << ", got " << actual[i]
                      << " (tolerance " << tolerance << ")";
        if (++reported == 5) return;
    }
}

class CudaDense : public cuda_test::DeviceTest {};

TEST_F(CudaDense, ForwardMatchesCpuForEveryActivationWithAndWithoutBias) {
    for (const DenseShape& shape : odd_shapes) {
        const std::size_t x_size = shape.batch * shape.in_features, w_size = shape.out_features * shape.in_features;
        const std::size_t y_size = shape.batch * shape.out_features;
        const std::vector<float> x = random_values(x_size, 1), w = random_values(w_size, 2),
                                 b = random_values(shape.out_features, 3);
        DeviceBuffer<float> device_x(x), device_w(w), device_b(b), device_y(y_size);
        for (const bool with_bias : {false, true}) {
            std::vector<float> expected(y_size);
            cpu::dense_forward(shape, x.data(), w.data(), with_bias ? b.data() : nullptr, expected.data());
            for (const Activation activation : all_activations) {
                std::vector<float> activated(y_size);
                cpu::activation_forward(activation, negative_slope, static_cast<int64_t>(y_size), expected.data(),
                                        activated.data());
                ASSERT_CUDA_SUCCESS(cuda::dense_forward(shape, device_x.get(), device_w.get(),
                                                        with_bias ? device_b.get() : nullptr, activation,
                                                        negative_slope, device_y.get(), nullptr));
                expect_close(activated, device_y.download(),
                             describe(shape) + (with_bias ? ", bias" : ", no bias") + ", activation " +
                                 std::to_string(static_cast<int>(activation)));
            }
        }
    }
}

TEST_F(CudaDense, BackwardDataAccumulatesLikeCpu) {
    for (const DenseShape& shape : odd_shapes) {
        const std::size_t x_size = shape.batch * shape.in_features;
        const std::vector<float> w = random_values(shape.out_features * shape.in_features, 4),
                                 grad_y = random_values(shape.batch * shape.out_features, 5);
        std::vector<float> expected = random_values(x_size, 6);  // a gradient already there
        DeviceBuffer<float> device_w(w), device_grad_y(grad_y), device_grad_x(expected);
        for (int call = 1; call <= 2; ++call) {  // the second call adds the same product again
            cpu::dense_backward_data(shape, w.data(), grad_y.data(), expected.data());
            ASSERT_CUDA_SUCCESS(
                cuda::dense_backward_data(shape, device_w.get(), device_grad_y.get(), device_grad_x.get(), nullptr));
            expect_close(expected, device_grad_x.download(), describe(shape) + ", call " + std::to_string(call));
        }
    }
}

TEST_F(CudaDense, BackwardFilterAccumulatesWeightAndBiasGradientsLikeCpu) {
    for (const DenseShape& shape : odd_shapes) {
        const std::vector<float> x = random_values(shape.batch * shape.in_features, 7),
                                 grad_y = random_values(shape.batch * shape.out_features, 8);
        for (const bool with_bias : {false, true}) {
            std::vector<float> expected_w = random_values(shape.out_features * shape.in_features, 9);
            std::vector<float> expected_b = random_values(shape.out_features, 10);
            DeviceBuffer<float> device_x(x), device_grad_y(grad_y), device_grad_w(expected_w),
                device_grad_b(expected_b);
            for (int call = 1; call <= 2; ++call) {
                cpu::dense_backward_filter(shape, x.data(), grad_y.data(), expected_w.data(),
                                           with_bias ? expected_b.data() : nullptr);
                ASSERT_CUDA_SUCCESS(cuda::dense_backward_filter(shape, device_x.get(), device_grad_y.get(),
                                                                device_grad_w.get(),
                                                                with_bias ? device_grad_b.get() : nullptr, nullptr));
                const std::string what = describe(shape) + ", call " + std::to_string(call);
                expect_close(expected_w, device_grad_w.download(), what + ", weight");
                expect_close(expected_b, device_grad_b.download(), what + ", bias");
            }
        }
    }
}

TEST_F(CudaDense, BackwardFilterIsBitwiseDeterministicInBothFiberOrders) {
    const DenseShape shape{70, 11, 67};  // K = batch spans 9 steps, bias columns span 3 blocks
    const std::vector<float> x = random_values(shape.batch * shape.in_features, 11),
                             grad_y = random_values(shape.batch * shape.out_features, 12);
    DeviceBuffer<float> device_x(x), device_grad_y(grad_y), grad_w(shape.out_features * shape.in_features),
        grad_b(shape.out_features);
    std::vector<std::vector<float>> results;
    cuda_test::for_each_schedule([&](const std::string& schedule) {
        grad_w.zero();
        grad_b.zero();
        EXPECT_CUDA_SUCCESS(cuda::dense_backward_filter(shape, device_x.get(), device_grad_y.get(), grad_w.get(),
                                                        grad_b.get(), nullptr))
            << schedule;
        results.push_back(grad_w.download());
        results.push_back(grad_b.download());
    });
    ASSERT_EQ(4u, results.size());
    EXPECT_EQ(results[0], results[2]);
    EXPECT_EQ(results[1], results[3]);
}

TEST_F(CudaDense, EmptyBatchWritesNothingAndLeavesGradientsUnchanged) {
    const DenseShape shape{0, 5, 3};
    const std::vector<float> grad_w = random_values(15, 13), grad_b = random_values(3, 14);
    DeviceBuffer<float> device_grad_w(grad_w), device_grad_b(grad_b), unused(1);
    EXPECT_CUDA_SUCCESS(
        cuda::dense_forward(shape, unused.get(), unused.get(), nullptr, Activation::relu, 0.0f, unused.get(), nullptr));
    EXPECT_CUDA_SUCCESS(cuda::dense_backward_filter(shape, unused.get(), unused.get(), device_grad_w.get(),
                                                    device_grad_b.get(), nullptr));
    EXPECT_EQ(grad_w, device_grad_w.download());
    EXPECT_EQ(grad_b, device_grad_b.download());
}

// C = alpha op(A) op(B) + beta C against a double loop, every transpose pair,
// leading dimensions wider than the matrices.
TEST_F(CudaDense, GemmHandlesEveryTransposeWithAlphaBetaAndLeadingDimensions) {
    const int64_t m = 19, n = 23, k = 17, pad = 3;
    for (const bool transpose_a : {false, true}) {
        for (const bool transpose_b : {false, true}) {
            const int64_t lda = (transpose_a ? m : k) + pad, ldb = (transpose_b ? k : n) + pad, ldc = n + pad;
            const std::vector<float> a = random_values((transpose_a ? k : m) * lda, 15),
                                     b = random_values((transpose_b ? n : k) * ldb, 16);
            const std::vector<float> c = random_values(m * ldc, 17);
            const float alpha = 0.5f, beta = -2.0f;
            std::vector<float> expected = c;
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    double sum = 0;
                    for (int64_t p = 0; p < k; ++p)
                        sum += double{transpose_a ? a[p * lda + i] : a[i * lda + p]} *
                               double{transpose_b ? b[j * ldb + p] : b[p * ldb + j]};
                    expected[i * ldc + j] = static_cast<float>(alpha * sum + beta * double{c[i * ldc + j]});
                }
            DeviceBuffer<float> device_a(a), device_b(b), device_c(c);
            cuda::GemmArguments g;
            g.transpose_a = transpose_a, g.transpose_b = transpose_b;
            g.m = m, g.n = n, g.k = k, g.alpha = alpha, g.beta = beta;
            g.a = device_a.get(), g.lda = lda, g.b = device_b.get(), g.ldb = ldb, g.c = device_c.get(), g.ldc = ldc;
            ASSERT_CUDA_SUCCESS(cuda::gemm(g, nullptr));
            // The padding columns of C are untouched: compared exactly as part of `expected`.
            expect_close(
                expected, device_c.download(),
                std::string("transpose_a ") + (transpose_a ? "1" : "0") + ", transpose_b " + (transpose_b ? "1" : "0"));
        }
    }
}

TEST_F(CudaDense, GemmRejectsLeadingDimensionsTooNarrow) {
    cuda::GemmArguments g;
    g.m = 4, g.n = 4, g.k = 4, g.lda = 3, g.ldb = 4, g.ldc = 4;
    EXPECT_EQ(cudaErrorInvalidValue, cuda::gemm(g, nullptr));
}

}  // namespace
}  // namespace ladon
