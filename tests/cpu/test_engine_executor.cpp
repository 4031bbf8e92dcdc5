// The CPU executor as a whole: gradients of the total loss against finite
// differences, fan-out sums, uncertainty weighting, determinism, memory plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/cpu_executor.hpp"
#include "engine/graph.hpp"
#include "engine_test_support.hpp"
#include "ladon/config.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
namespace {

using ladon::testing::dag_model;
using ladon::testing::gated_model;
using ladon::testing::make_batch;

// The total loss in training mode at the executor's current parameters.
double training_loss(Executor& executor, const Batch& batch_data) {
    executor.forward(batch_data, true);
    return executor.compute_loss(batch_data);
}

struct FiniteDifferenceReport {
    int checked = 0;
    int kinks = 0;
};

// Compares d(total loss)/d(parameter) from compute_loss() + backward() with
// central differences of compute_loss() (accumulated in double), for up to
// `per_slice` elements of every slice in `slices` (name, offset, count).
// Elements where the one-sided differences disagree sit on a kink (ReLU at 0,
// a max-pool switch) and are skipped.
FiniteDifferenceReport check_parameter_gradients(Executor& executor, const Batch& batch_data,
                                                 const std::vector<BufferSlice>& slices,
                                                 int per_slice, double step, double relative_tolerance,
                                                 double absolute_tolerance) {
    training_loss(executor, batch_data);
    executor.backward();
    const std::vector<float> analytic(executor.gradients().begin(), executor.gradients().end());
    std::span<float> parameters = executor.parameters();
    FiniteDifferenceReport report;
    for (const BufferSlice& slice : slices) {
        float largest = 0.0f;
        for (int64_t i = 0; i < slice.count; ++i) largest = std::max(largest, std::abs(analytic[slice.offset + i]));
        EXPECT_GT(largest, 1e-4f) << slice.name << " gets no gradient at all";
        const int64_t stride = std::max<int64_t>(1, slice.count / per_slice);
        for (int64_t i = stride / 2; i < slice.count; i += stride) {
            const int64_t index = slice.offset + i;
            const float original = parameters[index];
            const float plus = original + float(step), minus = original - float(step);
            parameters[index] = plus;
            const double loss_plus = training_loss(executor, batch_data);
            parameters[index] = minus;
            const double loss_minus = training_loss(executor, batch_data);
            parameters[index] = original;
            const double loss_zero = training_loss(executor, batch_data);
            const double h_plus = double(plus) - double(original), h_minus = double(original) - double(minus);
            const double numeric = (loss_plus - loss_minus) / (h_plus + h_minus);
            const double right = (loss_plus - loss_zero) / h_plus, left = (loss_zero - loss_minus) / h_minus;
            ++report.checked;
            if (std::abs(right - left) > 0.1 * std::max(std::abs(right), std::abs(left)) + 5e-4) {
                ++report.kinks;
                continue;
            }
            const double a = analytic[index];
            EXPECT_NEAR(a, numeric, absolute_tolerance + relative_tolerance * std::max(std::abs(a), std::abs(numeric)))
                << slice.name << "[" << i << "]";
        }
    }
    return report;
}

TEST(EngineExecutor, WholeModelGradientsMatchFiniteDifferencesOfTheTotalLoss) {
    // Batch norm runs on batch statistics in training mode, and dropout draws
    // the same mask for every forward of one step, so the training-mode loss
    // is a deterministic function of the parameters.
    CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 7});
    Batch batch_data = make_batch(executor, 11);
    const FiniteDifferenceReport report =
        check_parameter_gradients(executor, batch_data, executor.graph().parameters, 8, 2e-3, 2e-2, 2e-4);
    EXPECT_GE(report.checked, 80);
    EXPECT_LE(report.kinks, report.checked / 10) << report.kinks << " of " << report.checked << " on kinks";
}

TEST(EngineExecutor, GatedModelGradientsMatchFiniteDifferences) {
    // softmax, global_avg_pool, multiply (broadcast and equal shapes) and
    // mixture, each gradient reaching the parameters behind it. The trunk's
    // first activation is tanh: a ReLU flipping inside the step shifts the
    // conv's differences by ~10% without tripping the kink test.
    CpuExecutor executor(build_graph(gated_model(), 3), {.seed = 5});
    Batch batch_data = make_batch(executor, 13);
    const FiniteDifferenceReport report =
        check_parameter_gradients(executor, batch_data, executor.graph().parameters, 8, 2e-3, 2e-2, 2e-4);
    EXPECT_GE(report.checked, 80);
    EXPECT_LE(report.kinks, report.checked / 10) << report.kinks << " of " << report.checked << " on kinks";
}

TEST(EngineExecutor, GradientsMatchFiniteDifferencesAfterAnUpdateMovedTheDropoutMask) {
    // After an update the step count changes, so dropout draws a new mask;
    // forward and backward must still agree on it.
    CpuExecutor executor(build_graph(dag_model({1.0f, 1.0f, 1.0f}, 0.5f), 3), {.seed = 3});
    Batch batch_data = make_batch(executor, 5);
    training_loss(executor, batch_data);
    executor.backward();
    executor.update(OptimizerOptions{}, 1e-3f);
    ASSERT_EQ(executor.step(), 1);
    std::vector<BufferSlice> cls;
    for (const BufferSlice& slice : executor.graph().parameters)
        if (slice.name.starts_with("heads.cls") || slice.name.starts_with("trunk.11")) cls.push_back(slice);
    ASSERT_EQ(cls.size(), 4u);
    const FiniteDifferenceReport report = check_parameter_gradients(executor, batch_data, cls, 12, 2e-3, 2e-2, 2e-4);
    EXPECT_LE(report.kinks, report.checked / 10) << report.kinks << " of " << report.checked << " on kinks";
}

TEST(EngineExecutor, TotalLossIsTheWeightedSumOfHeadLosses) {
    CpuExecutor executor(build_graph(dag_model({1.0f, 0.5f, 2.0f}), 3), {.seed = 7});
    Batch batch_data = make_batch(executor, 11);
    const double total = training_loss(executor, batch_data);
    ASSERT_EQ(executor.head_losses().size(), 3u);
    double expected = 0.0;
    const std::vector<float> weights{1.0f, 0.5f, 2.0f};
    for (int h = 0; h < 3; ++h) {
        EXPECT_GT(executor.head_losses()[h], 0.0f);
        EXPECT_EQ(executor.head_weights()[h], weights[h]);
        expected += double(weights[h]) * executor.head_losses()[h];
    }
    EXPECT_DOUBLE_EQ(total, expected);
}

TEST(EngineExecutor, MaskedOutHeadHasZeroLossAndGivesNoGradient) {
    CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 7});
    Batch batch_data = make_batch(executor, 11);
    std::fill(batch_data.mask(2), batch_data.mask(2) + 3, 0.0f);  // "tags": no labels in this batch
    training_loss(executor, batch_data);
    executor.backward();
    EXPECT_EQ(executor.head_losses()[2], 0.0f);
    for (const BufferSlice& slice : executor.graph().parameters) {
        if (!slice.name.starts_with("heads.tags")) continue;
        for (int64_t i = 0; i < slice.count; ++i) ASSERT_EQ(executor.gradients()[slice.offset + i], 0.0f) << slice.name;
    }
}

TEST(EngineExecutor, TrunkGradientIsTheSumOfEachHeadsGradient) {
    // Same spec and seed: identical parameters and dropout masks; only the
    // head weights differ.
    const std::vector<std::vector<float>> weightings{{1, 1, 1}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    std::vector<std::vector<float>> gradients;
    for (const auto& weights : weightings) {
        CpuExecutor executor(build_graph(dag_model(weights), 3), {.seed = 21});
        Batch batch_data = make_batch(executor, 4);
        training_loss(executor, batch_data);
        executor.backward();
        gradients.emplace_back(executor.gradients().begin(), executor.gradients().end());
    }
    const Graph graph = build_graph(dag_model(), 3);
    int64_t trunk_checked = 0;
    for (const BufferSlice& slice : graph.parameters) {
        // Relative to the parts' magnitudes; an element whose parts cancel is
        // compared against the slice's largest gradient instead.
        double largest = 0.0;
        for (int64_t i = slice.offset; i < slice.offset + slice.count; ++i)
            largest = std::max(largest, double(std::abs(gradients[0][i])));
        ASSERT_GT(largest, 0.0) << slice.name;
        for (int64_t i = slice.offset; i < slice.offset + slice.count; ++i) {
            const double parts = double(gradients[1][i]) + gradients[2][i] + gradients[3][i];
            const double scale = std::abs(gradients[1][i]) + std::abs(gradients[2][i]) + std::abs(gradients[3][i]);
            ASSERT_NEAR(gradients[0][i], parts, 1e-5 * scale + 1e-7 * largest)
                << slice.name << "[" << i - slice.offset << "]";
        }
        if (slice.name.starts_with("trunk")) trunk_checked += slice.count;
    }
    EXPECT_GT(trunk_checked, 400);
    // A head of weight 0 leaves its own parameters without gradient.
    for (const BufferSlice& slice : graph.parameters) {
        if (!slice.name.starts_with("heads.box")) continue;
        for (int64_t i = slice.offset; i < slice.offset + slice.count; ++i) {
            EXPECT_EQ(gradients[1][i], 0.0f) << slice.name;
            EXPECT_NE(gradients[2][i], 0.0f) << slice.name;
        }
    }
}

TEST(EngineExecutor, SameSeedGivesBitwiseIdenticalLossesOverTwentySteps) {
    auto run = [](uint64_t seed) {
        CpuExecutor executor(build_graph(dag_model(), 3), {.seed = seed});
        std::vector<float> losses;
        Batch batch_data = make_batch(executor, 100);  // one batch, learnt by heart
        for (int step = 0; step < 20; ++step) {
            training_loss(executor, batch_data);
            executor.backward();
            executor.update(OptimizerOptions{}, 1e-2f);
            losses.insert(losses.end(), executor.head_losses().begin(), executor.head_losses().end());
        }
        return losses;
    };
    const std::vector<float> first = run(5), second = run(5), other = run(6);
    ASSERT_EQ(first.size(), 60u);
    EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0);
    EXPECT_NE(first, other);
    EXPECT_LT(first[57] + first[58] + first[59], 0.5f * (first[0] + first[1] + first[2]));  // the steps trained
}

TEST(EngineExecutor, BatchNormSyncThroughTheIdentityTrainsBitForBitAsWithoutIt) {
    // One rank's allreduce is the identity: the synchronised path must then
    // be the plain one, parameters and running statistics to the bit, and
    // call the collective twice forward and once backward per batch norm.
    auto run = [](bool synchronised, int& collectives) {
        CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 5});
        if (synchronised) executor.set_batch_norm_sync([&collectives](double*, int64_t) { ++collectives; });
        Batch batch_data = make_batch(executor, 100);
        for (int step = 0; step < 4; ++step) {
            training_loss(executor, batch_data);
            executor.backward();
            executor.update(OptimizerOptions{}, 1e-2f);
        }
        std::vector<float> all(executor.parameters().begin(), executor.parameters().end());
        all.insert(all.end(), executor.state().begin(), executor.state().end());
        return all;
    };
    int plain_collectives = 0, collectives = 0;
    const std::vector<float> plain = run(false, plain_collectives);
    const std::vector<float> synchronised = run(true, collectives);
    ASSERT_EQ(plain.size(), synchronised.size());
    EXPECT_EQ(std::memcmp(plain.data(), synchronised.data(), plain.size() * sizeof(float)), 0);
    EXPECT_EQ(plain_collectives, 0);
    EXPECT_EQ(collectives, 4 * 3);  // dag_model has one batch norm
}

TEST(EngineExecutor, InitialisationIsPyTorchsUniformFanInAndBatchNormOnesZeros) {
    CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 9});
    const Graph& graph = executor.graph();
    for (const BufferSlice& slice : graph.parameters) {
        const auto values = executor.parameters().subspan(slice.offset, slice.count);
        if (slice.init == BufferSlice::Init::uniform_fan_in) {
            const float bound = 1.0f / std::sqrt(float(slice.fan_in));
            float largest = 0.0f;
            for (float v : values) largest = std::max(largest, std::abs(v));
            EXPECT_LE(largest, bound) << slice.name;
            if (slice.count >= 36) {
                EXPECT_GT(largest, 0.5f * bound) << slice.name;
            }
        } else {
            const float expected = slice.init == BufferSlice::Init::ones ? 1.0f : 0.0f;
            for (float v : values) EXPECT_EQ(v, expected) << slice.name;
        }
    }
    ASSERT_EQ(graph.state.size(), 2u);
    for (int64_t i = 0; i < 4; ++i) {
        EXPECT_EQ(executor.state()[graph.state[0].offset + i], 0.0f);  // running mean
        EXPECT_EQ(executor.state()[graph.state[1].offset + i], 1.0f);  // running variance
    }
    CpuExecutor other(build_graph(dag_model(), 3), {.seed = 10});
    EXPECT_FALSE(std::equal(executor.parameters().begin(), executor.parameters().end(), other.parameters().begin()));
}

TEST(EngineExecutor, EvaluationForwardIsRepeatableAndUsesRunningStatistics) {
    CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 7});
    Batch batch_data = make_batch(executor, 11);
    executor.forward(batch_data, false);
    const std::vector<float> first(executor.head_output(0), executor.head_output(0) + 15);
    executor.forward(batch_data, false);
    EXPECT_TRUE(std::equal(first.begin(), first.end(), executor.head_output(0)));
    // A training forward updates batch norm's running statistics ...
    const std::vector<float> state_before(executor.state().begin(), executor.state().end());
    executor.forward(batch_data, true);
    EXPECT_NE(state_before, std::vector<float>(executor.state().begin(), executor.state().end()));
    // ... which the next evaluation forward then uses.
    executor.forward(batch_data, false);
    EXPECT_FALSE(std::equal(first.begin(), first.end(), executor.head_output(0)));
}

// ---------------------------------------------------------------- uncertainty weighting

TEST(EngineExecutor, UncertaintyWeightingAddsOneLogVariancePerHeadAfterTheModel) {
    CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 7, .task_weighting = TaskWeighting::uncertainty});
    const int64_t model = executor.graph().parameter_count;
    EXPECT_EQ(int64_t(executor.parameters().size()), model + 3);
    EXPECT_EQ(int64_t(executor.gradients().size()), model + 3);
    ASSERT_EQ(executor.task_weighting_values().size(), 3u);
    for (float s : executor.task_weighting_values()) EXPECT_EQ(s, 0.0f);  // every task weight starts at exp(0)
    EXPECT_EQ(executor.task_weighting_values().data(), executor.parameters().data() + model);
}

TEST(EngineExecutor, UncertaintyLogVarianceGradientIsOneMinusWeightedLoss) {
    CpuExecutor executor(build_graph(dag_model({1.0f, 0.5f, 2.0f}), 3), {.seed = 7, .task_weighting = TaskWeighting::uncertainty});
    Batch batch_data = make_batch(executor, 11);
    const int64_t model = executor.graph().parameter_count;
    const std::vector<float> s{0.3f, -0.4f, 1.1f}, w{1.0f, 0.5f, 2.0f};
    for (int h = 0; h < 3; ++h) executor.parameters()[model + h] = s[h];
    const double total = training_loss(executor, batch_data);
    double expected_total = 0.0;
    for (int h = 0; h < 3; ++h) {
        const double loss = executor.head_losses()[h];
        EXPECT_FLOAT_EQ(executor.head_weights()[h], std::exp(-s[h]) * w[h]);
        EXPECT_NEAR(executor.gradients()[model + h], 1.0 - std::exp(-s[h]) * w[h] * loss, 1e-6);
        expected_total += std::exp(-s[h]) * w[h] * loss + s[h];
    }
    EXPECT_NEAR(total, expected_total, 1e-5);

    // And by central differences, together with a few model parameters (whose
    // logit gradients are now scaled by exp(-s) w).
    std::vector<BufferSlice> slices{{"log_variances", model, 3, {3}, BufferSlice::Init::zeros, 1}};
    for (const BufferSlice& slice : executor.graph().parameters)
        if (slice.name.starts_with("heads.")) slices.push_back(slice);
    const FiniteDifferenceReport report = check_parameter_gradients(executor, batch_data, slices, 4, 2e-3, 2e-2, 2e-4);
    EXPECT_LE(report.kinks, report.checked / 10) << report.kinks << " of " << report.checked << " on kinks";
}

TEST(EngineExecutor, GradientsFinalHookTilesTheBufferTopDownWithFinalValuesOnTheDag) {
    // The DAG: a head on a trunk junction ("tags" on "sum"), batch norm,
    // concat; learned task weights, whose gradients are final before backward.
    CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 7, .task_weighting = TaskWeighting::uncertainty});
    Batch batch_data = make_batch(executor, 5);
    training_loss(executor, batch_data);
    const auto ranges = testing::backward_recording_final_ranges(executor, executor.gradients().data());
    testing::expect_final_ranges_tile_the_buffer(ranges, executor.gradients());
    // The log-variances come first, alone; then one range per node with parameters at most.
    ASSERT_GE(ranges.size(), 2u);
    EXPECT_EQ(ranges[0].begin, executor.graph().parameter_count);
    int writers = 0;
    for (const Node& node : executor.graph().nodes) writers += node.weight >= 0 ? 1 : 0;
    EXPECT_LE(int(ranges.size()), writers + 1);
    EXPECT_GT(int(ranges.size()), writers / 2);
    // A second backward reports the same ranges again.
    training_loss(executor, batch_data);
    const auto again = testing::backward_recording_final_ranges(executor, executor.gradients().data());
    ASSERT_EQ(again.size(), ranges.size());
    for (std::size_t r = 0; r < ranges.size(); ++r) EXPECT_EQ(again[r].begin, ranges[r].begin);
}

TEST(EngineExecutor, GradientsFinalHookWaitsForEveryHeadOfAHeadGroupsSharedBlock) {
    // The synthetic model's three heads read the same features: their first
    // dense layers' weights lie in one block, then their biases, so a head's
    // slices interleave with the others'. The CPU runs each head's layer on
    // its own: the last heads' biases may go first, but the weights' block,
    // below the first head's bias, waits for the first head, the last
    // backward of the group.
    const Graph graph = build_graph(default_run_config().model, 4);
    ASSERT_EQ(graph.head_groups.size(), 1u);
    CpuExecutor executor(graph, {.seed = 3});
    Batch batch_data = make_batch(executor, 2);
    training_loss(executor, batch_data);
    const auto ranges = testing::backward_recording_final_ranges(executor, executor.gradients().data());
    testing::expect_final_ranges_tile_the_buffer(ranges, executor.gradients());
    const HeadGroup& group = graph.head_groups[0];
    ASSERT_GE(group.bias_offset, 0);
    bool weights_in_one_range = false;
    for (const auto& range : ranges)
        weights_in_one_range =
            weights_in_one_range || (range.begin <= group.weight_offset && range.end >= group.bias_offset);
    EXPECT_TRUE(weights_in_one_range);
}

TEST(EngineExecutor, AGradientsFinalHookLeavesTheGradientsAsWithout) {
    CpuExecutor hooked(build_graph(dag_model(), 3), {.seed = 7}), plain(build_graph(dag_model(), 3), {.seed = 7});
    Batch batch_data = make_batch(hooked, 5);
    training_loss(hooked, batch_data);
    training_loss(plain, batch_data);
    testing::backward_recording_final_ranges(hooked, hooked.gradients().data());
    plain.backward();
    EXPECT_EQ(std::memcmp(hooked.gradients().data(), plain.gradients().data(), plain.gradients().size() * 4), 0);
}

TEST(EngineExecutor, UncertaintyTrainingMovesTheLogVariances) {
    CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 7, .task_weighting = TaskWeighting::uncertainty});
    Batch batch_data = make_batch(executor, 11);
    for (int step = 0; step < 10; ++step) {
        training_loss(executor, batch_data);
        executor.backward();
        executor.update(OptimizerOptions{}, 1e-2f);
    }
    for (float s : executor.task_weighting_values()) EXPECT_GT(std::abs(s), 1e-3f);
}

TEST(EngineExecutor, WeightDecayNeverTouchesTaskLogVariances) {
    CpuExecutor executor(build_graph(dag_model(), 3),
                      {.seed = 7, .optimizer = OptimizerOptions::Kind::sgd, .task_weighting = TaskWeighting::uncertainty});
    const int64_t model = executor.graph().parameter_count;
    for (int h = 0; h < 3; ++h) executor.parameters()[model + h] = 0.5f;
    const std::vector<float> before(executor.parameters().begin(), executor.parameters().end());
    std::fill(executor.gradients().begin(), executor.gradients().end(), 0.0f);
    OptimizerOptions sgd;
    sgd.kind = OptimizerOptions::Kind::sgd;
    sgd.weight_decay = 0.1f;
    executor.update(sgd, 0.5f);
    for (int h = 0; h < 3; ++h) EXPECT_EQ(executor.parameters()[model + h], 0.5f);
    // The model's own weights did decay: w - lr * decay * w.
    const int64_t first = executor.graph().parameters[0].offset;
    EXPECT_NEAR(executor.parameters()[first], before[first] * (1.0f - 0.5f * 0.1f), 1e-7);
}

TEST(EngineExecutor, ChangingTheOptimizerKindAfterPlanningIsAnError) {
    CpuExecutor executor(build_graph(dag_model(), 3), {.seed = 7});  // planned for adamw
    OptimizerOptions sgd;
    sgd.kind = OptimizerOptions::Kind::sgd;
    EXPECT_THROW(executor.update(sgd, 0.1f), Error);
}

// ---------------------------------------------------------------- memory plan

// The arena holds a value and a gradient slot per tensor that is not a view,
// each rounded up to 16 floats (64 bytes).
int64_t arena_floats(const Graph& graph) {
    int64_t floats = 0;
    for (const Tensor& tensor : graph.tensors)
        if (tensor.alias_of < 0) floats += (tensor.shape.elements() + 15) / 16 * 16;
    return floats;
}

TEST(EngineExecutor, MemoryPlanMatchesTheGraphsBuffers) {
    const Graph graph = build_graph(dag_model(), 3);
    const int64_t params = graph.parameter_count;
    {
        CpuExecutor adamw(Graph(graph), {.seed = 1, .optimizer = OptimizerOptions::Kind::adamw});
        const auto plan = adamw.memory_plan();
        EXPECT_EQ(plan.parameters, 4 * (params + graph.state_count));  // running statistics travel with the weights
        EXPECT_EQ(plan.gradients, 4 * params);
        EXPECT_EQ(plan.optimizer_state, 2 * 4 * params);  // first and second moments
        // Values and gradients of every stored tensor; batch norm's saved mean
        // and inverse std; max pool's argmax. The batch (targets 1 + 4 + 3
        // per row, a mask per head and row) is the caller's Batch.
        const int64_t saved = 2 * 4, argmax = 3 * 4 * 4 * 3;
        EXPECT_EQ(plan.activations, 4 * (2 * arena_floats(graph) + saved + argmax));
        EXPECT_EQ(adamw.batch_layout().target_floats(), 3 * (1 + 4 + 3));
        EXPECT_GT(plan.workspace, 0);
    }
    {
        CpuExecutor sgd(Graph(graph), {.seed = 1, .optimizer = OptimizerOptions::Kind::sgd, .task_weighting = TaskWeighting::uncertainty});
        const auto plan = sgd.memory_plan();
        EXPECT_EQ(plan.gradients, 4 * (params + 3));
        EXPECT_EQ(plan.optimizer_state, 4 * (params + 3));  // one momentum buffer
    }
}

TEST(EngineExecutor, FlattenTakesNoActivationMemory) {
    auto model = [](bool flatten) {
        ModelBuilder builder(3, 10, 10);
        builder.trunk().conv2d(8, 3);
        if (flatten) builder.trunk().flatten();
        builder.head("out", Loss::mean_squared_error).dense(2);
        return builder.build();
    };
    CpuExecutor with(build_graph(model(true), 4), {});
    CpuExecutor without(build_graph(model(false), 4), {});
    EXPECT_EQ(with.memory_plan().activations, without.memory_plan().activations);
    EXPECT_EQ(with.graph().tensors.size(), without.graph().tensors.size() + 1);
}

}  // namespace
}  // namespace ladon::engine
