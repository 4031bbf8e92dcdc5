// Batch norm, PyTorch semantics: hand-computed forward values and running
// statistics, inference on running statistics, gradients through the batch
// statistics, accumulation, accuracy at large offsets, thread-count
// independence, and the split kernels of synchronised batch norm.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/ops.hpp"

namespace {

using ladon::ops::BatchNormShape;

// Everything one training step of batch norm reads and writes.
struct BatchNormBuffers {
    explicit BatchNormBuffers(const BatchNormShape& shape)
        : x(std::size_t(shape.batch * shape.channels * shape.spatial)),
          y(x.size()),
          gamma(std::size_t(shape.channels), 1.0f),
          beta(std::size_t(shape.channels), 0.0f),
          saved_mean(gamma.size()),
          saved_inv_std(gamma.size()),
          running_mean(gamma.size(), 0.0f),
          running_var(gamma.size(), 1.0f) {}

    void forward_training(const BatchNormShape& shape) {
        ladon::cpu::batch_norm_forward_training(shape, x.data(), gamma.data(), beta.data(), y.data(), saved_mean.data(),
                                                saved_inv_std.data(), running_mean.data(), running_var.data());
    }

    std::vector<float> x, y, gamma, beta, saved_mean, saved_inv_std, running_mean, running_var;
};

TEST(BatchNormForwardTraining, NormalisesTwoSamplesAndUpdatesRunningStatistics) {
    // x = {1, 3}: mean 2, biased variance 1 (normalises), unbiased 2 (running).
    BatchNormShape shape{.batch = 2, .channels = 1, .spatial = 1};
    BatchNormBuffers b(shape);
    b.x = {1.0f, 3.0f};
    b.gamma = {2.0f};
    b.beta = {0.5f};
    b.forward_training(shape);

    const double inv_std = 1.0 / std::sqrt(1.0 + 1e-5);
    EXPECT_NEAR(b.y[0], 0.5 - 2.0 * inv_std, 1e-6);
    EXPECT_NEAR(b.y[1], 0.5 + 2.0 * inv_std, 1e-6);
    EXPECT_FLOAT_EQ(b.saved_mean[0], 2.0f);
    EXPECT_NEAR(b.saved_inv_std[0], inv_std, 1e-7);
    EXPECT_FLOAT_EQ(b.running_mean[0], 0.9f * 0.0f + 0.1f * 2.0f);  // 0.2
    EXPECT_FLOAT_EQ(b.running_var[0], 0.9f * 1.0f + 0.1f * 2.0f);   // 1.1
}

TEST(BatchNormForwardTraining, StatisticsArePerChannelOverBatchAndSpatial) {
    // [batch 2, channels 2, spatial 2]. Channel 0 holds {1, 2} and {3, 4}:
    // mean 2.5, biased variance 1.25, unbiased 5/3. Channel 1 is constant 10:
    // variance 0, so y = beta exactly.
    BatchNormShape shape{.batch = 2, .channels = 2, .spatial = 2, .momentum = 0.5f};
    BatchNormBuffers b(shape);
    b.x = {1.0f, 2.0f, 10.0f, 10.0f, 3.0f, 4.0f, 10.0f, 10.0f};
    b.beta = {0.0f, -3.0f};
    b.forward_training(shape);

    const double inv_std = 1.0 / std::sqrt(1.25 + 1e-5);
    const double expected_channel0[] = {-1.5, -0.5, 0.5, 1.5};
    const int64_t channel0_index[] = {0, 1, 4, 5};
    for (int k = 0; k < 4; ++k)
        EXPECT_NEAR(b.y[std::size_t(channel0_index[k])], expected_channel0[k] * inv_std, 1e-6) << k;
    for (int64_t i : {2, 3, 6, 7}) EXPECT_EQ(b.y[std::size_t(i)], -3.0f) << i;

    EXPECT_FLOAT_EQ(b.running_mean[0], 0.5f * 2.5f);
    EXPECT_FLOAT_EQ(b.running_mean[1], 0.5f * 10.0f);
    EXPECT_FLOAT_EQ(b.running_var[0], 0.5f + 0.5f * (5.0f / 3.0f));
    EXPECT_FLOAT_EQ(b.running_var[1], 0.5f);
}

TEST(BatchNorm, ShiftInvariantWhenMeanDwarfsSpread) {
    // Batch norm ignores a constant offset. Values k/64 stay exact after
    // adding 1e5 (float spacing there is 1/128), so y and every gradient must
    // come out the same with and without the offset. Float rounding of the
    // mean (up to 0.004 here) would show up at the 1e-3 level if forward or
    // backward folded the mean in carelessly.
    BatchNormShape shape{.batch = 4, .channels = 3, .spatial = 50};
    std::vector<float> steps = ladon::testing::random_vector(std::size_t(4 * 3 * 50), 31u, -128.0f, 128.0f);
    std::vector<float> grad_y = ladon::testing::random_vector(steps.size(), 32u);
    auto run = [&](float offset) {
        BatchNormBuffers b(shape);
        for (std::size_t i = 0; i < steps.size(); ++i) b.x[i] = std::round(steps[i]) / 64.0f + offset;
        b.gamma = {1.0f, 2.0f, 0.5f};
        b.beta = {0.0f, 1.0f, -1.0f};
        b.forward_training(shape);
        std::vector<float> grad_x(b.x.size()), grad_gamma(3), grad_beta(3);
        ladon::cpu::batch_norm_backward(shape, b.x.data(), grad_y.data(), b.gamma.data(), b.saved_mean.data(),
                                        b.saved_inv_std.data(), grad_x.data(), grad_gamma.data(), grad_beta.data());
        std::vector<float> all = b.y;
        for (const auto* v : {&grad_x, &grad_gamma, &grad_beta}) all.insert(all.end(), v->begin(), v->end());
        return all;
    };
    const std::vector<float> centred = run(0.0f), offset = run(1e5f);
    for (std::size_t i = 0; i < centred.size(); ++i) ASSERT_NEAR(offset[i], centred[i], 2e-5) << i;
}

TEST(BatchNormForwardInference, UsesRunningStatistics) {
    // running mean 1, running var 4 - eps: y = gamma * (x - 1) / 2 + beta.
    BatchNormShape shape{.batch = 2, .channels = 1, .spatial = 2};
    std::vector<float> x = {1.0f, 3.0f, -1.0f, 5.0f}, y(4, 99.0f);
    std::vector<float> gamma = {3.0f}, beta = {0.25f}, running_mean = {1.0f}, running_var = {4.0f - 1e-5f};
    ladon::cpu::batch_norm_forward_inference(shape, x.data(), gamma.data(), beta.data(), running_mean.data(),
                                             running_var.data(), y.data());
    EXPECT_FLOAT_EQ(y[0], 0.25f);
    EXPECT_FLOAT_EQ(y[1], 3.25f);
    EXPECT_FLOAT_EQ(y[2], -2.75f);
    EXPECT_FLOAT_EQ(y[3], 6.25f);
}

TEST(BatchNormBackward, MatchesFiniteDifferencesThroughBatchStatistics) {
    // Odd shape: N=3, C=5, H*W=7*9. The objective sees x through the batch
    // mean and variance as well as directly.
    BatchNormShape shape{.batch = 3, .channels = 5, .spatial = 63};
    BatchNormBuffers b(shape);
    b.x = ladon::testing::random_vector(b.x.size(), 41u, -2.0f, 3.0f);
    b.gamma = ladon::testing::random_vector(b.gamma.size(), 42u, 0.5f, 1.5f);
    b.beta = ladon::testing::random_vector(b.beta.size(), 43u);
    std::vector<float> grad_x(b.x.size()), grad_gamma(b.gamma.size()), grad_beta(b.beta.size());
    ladon::testing::check_gradients(
        {{"x", b.x, grad_x}, {"gamma", b.gamma, grad_gamma}, {"beta", b.beta, grad_beta}}, b.y,
        [&] { b.forward_training(shape); },
        [&](std::span<const float> grad_y) {
            ladon::cpu::batch_norm_backward(shape, b.x.data(), grad_y.data(), b.gamma.data(), b.saved_mean.data(),
                                            b.saved_inv_std.data(), grad_x.data(), grad_gamma.data(), grad_beta.data());
        });
}

TEST(BatchNormBackward, AccumulatesIntoEveryGradient) {
    BatchNormShape shape{.batch = 3, .channels = 5, .spatial = 63};
    BatchNormBuffers b(shape);
    b.x = ladon::testing::random_vector(b.x.size(), 51u);
    b.gamma = ladon::testing::random_vector(b.gamma.size(), 52u, 0.5f, 1.5f);
    std::vector<float> grad_y = ladon::testing::random_vector(b.x.size(), 53u);
    b.forward_training(shape);

    auto backward = [&](std::vector<float>& gx, std::vector<float>& gg, std::vector<float>& gb) {
        ladon::cpu::batch_norm_backward(shape, b.x.data(), grad_y.data(), b.gamma.data(), b.saved_mean.data(),
                                        b.saved_inv_std.data(), gx.data(), gg.data(), gb.data());
    };
    std::vector<float> gx1(b.x.size()), gg1(b.gamma.size()), gb1(b.beta.size());
    std::vector<float> gx2(b.x.size()), gg2(b.gamma.size()), gb2(b.beta.size());
    backward(gx1, gg1, gb1);
    backward(gx2, gg2, gb2);
    backward(gx2, gg2, gb2);
    for (std::size_t i = 0; i < gx1.size(); ++i) ASSERT_FLOAT_EQ(gx2[i], 2.0f * gx1[i]) << i;
    for (std::size_t c = 0; c < gg1.size(); ++c) {
        EXPECT_NE(gg1[c], 0.0f);
        EXPECT_FLOAT_EQ(gg2[c], 2.0f * gg1[c]) << c;
        EXPECT_FLOAT_EQ(gb2[c], 2.0f * gb1[c]) << c;
    }
}

TEST(BatchNorm, ResultsDoNotDependOnThreadCount) {
    BatchNormShape shape{.batch = 8, .channels = 7, .spatial = 121};
    std::vector<float> grad_y = ladon::testing::random_vector(std::size_t(8 * 7 * 121), 61u);
    auto run = [&](int threads) {
        BatchNormBuffers b(shape);
        b.x = ladon::testing::random_vector(b.x.size(), 62u);
        std::vector<float> grad_x(b.x.size()), grad_gamma(b.gamma.size()), grad_beta(b.beta.size());
        const int previous = omp_get_max_threads();
        omp_set_num_threads(threads);
        b.forward_training(shape);
        ladon::cpu::batch_norm_backward(shape, b.x.data(), grad_y.data(), b.gamma.data(), b.saved_mean.data(),
                                        b.saved_inv_std.data(), grad_x.data(), grad_gamma.data(), grad_beta.data());
        omp_set_num_threads(previous);
        std::vector<float> all = b.y;
        for (const auto* v : {&grad_x, &grad_gamma, &grad_beta, &b.running_mean, &b.running_var})
            all.insert(all.end(), v->begin(), v->end());
        return all;
    };
    const std::vector<float> one = run(1);
    EXPECT_EQ(run(3), one);  // exact equality: same bits
    EXPECT_EQ(run(4), one);
}

// What one training step of batch norm produces, fused or split: y, the saved
// and running statistics, and the gradients (which start from non-zero
// values: backward accumulates).
struct StepResult {
    std::vector<float> y, saved_mean, saved_inv_std, running_mean, running_var, grad_x, grad_gamma, grad_beta;
};

BatchNormBuffers random_buffers(const BatchNormShape& shape, uint32_t seed) {
    BatchNormBuffers b(shape);
    b.x = ladon::testing::random_vector(b.x.size(), seed, -2.0f, 3.0f);
    for (float& v : b.x) v += 40.0f;  // |mean| >> std: the float-mean centring matters
    b.gamma = ladon::testing::random_vector(b.gamma.size(), seed + 1, 0.5f, 1.5f);
    b.beta = ladon::testing::random_vector(b.beta.size(), seed + 2);
    b.running_mean = ladon::testing::random_vector(b.running_mean.size(), seed + 3);
    b.running_var = ladon::testing::random_vector(b.running_var.size(), seed + 4, 0.5f, 2.0f);
    return b;
}

StepResult fused_step(const BatchNormShape& shape, BatchNormBuffers b, const std::vector<float>& grad_y) {
    StepResult r;
    b.forward_training(shape);
    r.grad_x.assign(b.x.size(), 0.25f);
    r.grad_gamma.assign(b.gamma.size(), -0.5f);
    r.grad_beta.assign(b.beta.size(), 0.75f);
    ladon::cpu::batch_norm_backward(shape, b.x.data(), grad_y.data(), b.gamma.data(), b.saved_mean.data(),
                                    b.saved_inv_std.data(), r.grad_x.data(), r.grad_gamma.data(), r.grad_beta.data());
    r.y = b.y;
    r.saved_mean = b.saved_mean;
    r.saved_inv_std = b.saved_inv_std;
    r.running_mean = b.running_mean;
    r.running_var = b.running_var;
    return r;
}

// The same step with the batch cut into `parts` equal parts along the batch
// (as ranks hold it), each part running the split kernels and the parts'
// sums added in between (the allreduce). The parts' d gamma and d beta are
// added up: what averaging the ranks' gradients does, their losses being
// weighted by the number of ranks.
StepResult split_step(const BatchNormShape& shape, const BatchNormBuffers& whole, const std::vector<float>& grad_y,
                      int64_t parts) {
    BatchNormShape part_shape = shape;
    part_shape.batch = shape.batch / parts;
    const int64_t channels = shape.channels;
    const int64_t part_size = part_shape.batch * channels * shape.spatial;
    const int64_t count = shape.batch * shape.spatial;
    auto part_x = [&](int64_t p) { return whole.x.data() + p * part_size; };
    auto part_grad_y = [&](int64_t p) { return grad_y.data() + p * part_size; };

    std::vector<BatchNormBuffers> buffers(std::size_t(parts), whole);  // each rank's copy of the parameters
    std::vector<double> sums(std::size_t(channels), 0.0), squared(std::size_t(channels), 0.0);
    std::vector<double> part_sums(sums.size());
    for (int64_t p = 0; p < parts; ++p) {
        ladon::cpu::batch_norm_forward_sums(part_shape, part_x(p), part_sums.data());
        for (int64_t c = 0; c < channels; ++c) sums[c] += part_sums[c];
    }
    for (int64_t p = 0; p < parts; ++p) {
        ladon::cpu::batch_norm_forward_squared_deviations(part_shape, count, part_x(p), sums.data(), part_sums.data());
        for (int64_t c = 0; c < channels; ++c) squared[c] += part_sums[c];
    }
    StepResult r;
    r.grad_x.assign(whole.x.size(), 0.25f);
    r.grad_gamma.assign(whole.gamma.size(), -0.5f);
    r.grad_beta.assign(whole.beta.size(), 0.75f);
    std::vector<std::vector<double>> local(std::size_t(parts), std::vector<double>(std::size_t(3 * channels)));
    std::vector<double> total(std::size_t(3 * channels), 0.0);
    for (int64_t p = 0; p < parts; ++p) {
        BatchNormBuffers& b = buffers[std::size_t(p)];
        ladon::cpu::batch_norm_forward_apply(part_shape, count, part_x(p), b.gamma.data(), b.beta.data(), sums.data(),
                                             squared.data(), b.y.data() + p * part_size, b.saved_mean.data(),
                                             b.saved_inv_std.data(), b.running_mean.data(), b.running_var.data());
        ladon::cpu::batch_norm_backward_sums(part_shape, part_x(p), part_grad_y(p), b.saved_mean.data(),
                                             local[std::size_t(p)].data());
        for (std::size_t i = 0; i < total.size(); ++i) total[i] += local[std::size_t(p)][i];
    }
    for (int64_t p = 0; p < parts; ++p) {
        BatchNormBuffers& b = buffers[std::size_t(p)];
        // Every part adds its share of d gamma and d beta into the same buffer.
        ladon::cpu::batch_norm_backward_apply(part_shape, count, part_x(p), part_grad_y(p), b.gamma.data(),
                                              b.saved_mean.data(), b.saved_inv_std.data(), local[std::size_t(p)].data(),
                                              total.data(), r.grad_x.data() + p * part_size, r.grad_gamma.data(),
                                              r.grad_beta.data());
        std::copy(b.y.begin() + p * part_size, b.y.begin() + (p + 1) * part_size, std::back_inserter(r.y));
    }
    // Every part ends with the same statistics; part 0's are reported.
    for (int64_t p = 1; p < parts; ++p) {
        EXPECT_EQ(buffers[std::size_t(p)].saved_mean, buffers[0].saved_mean);
        EXPECT_EQ(buffers[std::size_t(p)].running_var, buffers[0].running_var);
    }
    r.saved_mean = buffers[0].saved_mean;
    r.saved_inv_std = buffers[0].saved_inv_std;
    r.running_mean = buffers[0].running_mean;
    r.running_var = buffers[0].running_var;
    return r;
}

TEST(BatchNormSynchronised, SplitKernelsOnOneBatchGiveTheFusedKernelsResultsBitForBit) {
    BatchNormShape shape{.batch = 5, .channels = 4, .spatial = 37, .momentum = 0.3f};
    const BatchNormBuffers b = random_buffers(shape, 71u);
    const std::vector<float> grad_y = ladon::testing::random_vector(b.x.size(), 76u);
    const StepResult fused = fused_step(shape, b, grad_y);
    const StepResult split = split_step(shape, b, grad_y, 1);
    EXPECT_EQ(split.y, fused.y);
    EXPECT_EQ(split.saved_mean, fused.saved_mean);
    EXPECT_EQ(split.saved_inv_std, fused.saved_inv_std);
    EXPECT_EQ(split.running_mean, fused.running_mean);
    EXPECT_EQ(split.running_var, fused.running_var);
    EXPECT_EQ(split.grad_x, fused.grad_x);
    EXPECT_EQ(split.grad_gamma, fused.grad_gamma);
    EXPECT_EQ(split.grad_beta, fused.grad_beta);
}

TEST(BatchNormSynchronised, TwoHalfBatchesWithAddedSumsGiveTheWholeBatchWithin1e6) {
    // Per-half statistics would be far off: the halves have different means
    // (the second half is shifted by 0.5 below).
    BatchNormShape shape{.batch = 6, .channels = 3, .spatial = 25, .momentum = 0.3f};
    BatchNormBuffers b = random_buffers(shape, 81u);
    for (std::size_t i = b.x.size() / 2; i < b.x.size(); ++i) b.x[i] += 0.5f;
    const std::vector<float> grad_y = ladon::testing::random_vector(b.x.size(), 86u);
    const StepResult whole = fused_step(shape, b, grad_y);
    const StepResult halves = split_step(shape, b, grad_y, 2);
    auto expect_near = [](const std::vector<float>& actual, const std::vector<float>& expected, const char* what) {
        ASSERT_EQ(actual.size(), expected.size()) << what;
        for (std::size_t i = 0; i < actual.size(); ++i)
            ASSERT_NEAR(actual[i], expected[i], 1e-6 * std::max(1.0f, std::abs(expected[i])))
                << what << "[" << i << "]";
    };
    expect_near(halves.y, whole.y, "y");
    expect_near(halves.saved_mean, whole.saved_mean, "saved_mean");
    expect_near(halves.saved_inv_std, whole.saved_inv_std, "saved_inv_std");
    expect_near(halves.running_mean, whole.running_mean, "running_mean");
    expect_near(halves.running_var, whole.running_var, "running_var");
    expect_near(halves.grad_x, whole.grad_x, "grad_x");
    expect_near(halves.grad_gamma, whole.grad_gamma, "grad_gamma");
    expect_near(halves.grad_beta, whole.grad_beta, "grad_beta");

    // Each half normalised alone differs clearly: the check above can fail.
    BatchNormShape half_shape = shape;
    half_shape.batch = 3;
    BatchNormBuffers first_half(half_shape);
    std::copy(b.x.begin(), b.x.begin() + std::ptrdiff_t(first_half.x.size()), first_half.x.begin());
    first_half.gamma = b.gamma;
    first_half.beta = b.beta;
    first_half.forward_training(half_shape);
    float largest_difference = 0.0f;
    for (std::size_t i = 0; i < first_half.y.size(); ++i)
        largest_difference = std::max(largest_difference, std::abs(first_half.y[i] - whole.y[i]));
    EXPECT_GT(largest_difference, 0.1f);
}

}  // namespace
