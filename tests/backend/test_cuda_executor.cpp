// The CUDA executor on the emulated backend (kernels/cuda/ compiled by g++
// against kernels/emu/), against the CPU executor: same graph, same seed, same
// batches.
//
// Tolerances. The CUDA kernels sum in other orders than the CPU's OpenBLAS
// GEMMs and im2col (tiles, split reductions, shifted float sums in batch
// norm), so values agree to float rounding, not bit for bit: ~1e-6 relative
// per op. Over a few hundred AdamW steps those differences feed back through
// the parameters; the losses stay within 1e-4 relative (the bound),
// which a wrong gradient or a missed update would exceed by orders of
// magnitude within a few steps. Runs are bitwise reproducible per backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>

#include "backend/executor_match.hpp"
#include "cpu/engine_test_support.hpp"
#include "engine/batch_loader.hpp"
#include "engine/cpu_executor.hpp"
#include "engine/cuda_executor.hpp"
#include "ladon/config.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
namespace {

using testing_match::one_step_gradients_match;
using testing_match::relative;

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}


// Trains both executors on the same batches and compares every head's loss
// at every step against `tolerance`; returns the largest relative
// difference. With `resync`, the CUDA executor starts every step from the CPU
// executor's state (parameters, statistics, moments), so each step is compared
// on its own rather than after earlier steps' rounding has fed back.
double max_loss_difference(Executor& cpu, Executor& cuda, const Dataset& data, int steps,
                           const OptimizerOptions& optimizer, double tolerance, bool resync) {
    BatchLoader loader(data, cpu.batch_layout());
    Batch batch_data(cpu.batch_layout());
    std::vector<int64_t> order;
    double worst = 0.0;
    const int64_t batch = cpu.batch();
    for (int step = 0; step < steps; ++step) {
        const int64_t per_epoch = data.size() / batch;
        if (step % per_epoch == 0) shuffled_indices(7, step / per_epoch + 1, order, data.size());
        const std::span<const int64_t> rows(order.data() + (step % per_epoch) * batch, batch);
        loader.load(rows, batch_data, step);
        if (resync) {
            std::copy(cpu.parameters().begin(), cpu.parameters().end(), cuda.parameters().begin());
            std::copy(cpu.state().begin(), cpu.state().end(), cuda.state().begin());
            std::copy(cpu.optimizer_state().begin(), cpu.optimizer_state().end(), cuda.optimizer_state().begin());
            cuda.push_state();
        }
        EXPECT_TRUE(cpu.train_step(batch_data, optimizer, optimizer.learning_rate));
        EXPECT_TRUE(cuda.train_step(batch_data, optimizer, optimizer.learning_rate));
        for (std::size_t h = 0; h < cpu.head_losses().size(); ++h) {
            const double d = relative(cpu.head_losses()[h], cuda.head_losses()[h]);
            worst = std::max(worst, d);
            if (d > tolerance)
                ADD_FAILURE() << "step " << step << " head " << cpu.graph().heads[h].spec.name << ": cpu "
                              << cpu.head_losses()[h] << " cuda " << cuda.head_losses()[h];
        }
        if (::testing::Test::HasFailure()) break;
    }
    return worst;
}


// The embedded synthetic model (the default `ladon train`), AdamW as configured.
struct SyntheticRun {
    RunConfig config = default_run_config();
    std::unique_ptr<Dataset> data = make_train_dataset(config.data);
    ExecutorOptions options{3, config.training.optimizer.kind, TaskWeighting::fixed, true, Precision::fp32};
    Graph graph = build_graph(config.model, 16);
};

TEST(CudaExecutorEmulated, SyntheticModelEveryStepOfThreeHundredMatchesTheCpuBackendWithin1e4) {
    SyntheticRun run;
    CpuExecutor cpu(run.graph, run.options);
    CudaExecutor cuda(run.graph, run.options, 0);
    EXPECT_EQ(cuda.backend_name(), "cuda (emulated)");
    // The three heads read the trunk's features: one GEMM for all of them.
    ASSERT_EQ(cuda.fused_head_groups().size(), 1u);
    EXPECT_EQ(cuda.fused_head_groups()[0].size(), 3u);
    // The loss on the first 16 samples, before and after training.
    Batch batch_data(cpu.batch_layout());
    std::vector<int64_t> first_rows(16);
    std::iota(first_rows.begin(), first_rows.end(), int64_t{0});
    BatchLoader(*run.data, cpu.batch_layout()).load(first_rows, batch_data);
    cpu.forward(batch_data, false);
    const double first_loss = cpu.compute_loss(batch_data);
    const double worst = max_loss_difference(cpu, cuda, *run.data, 300, run.config.training.optimizer, 1e-4, true);
    std::printf("largest relative loss difference, 300 resynced steps: %.3g\n", worst);
    cpu.forward(batch_data, false);
    EXPECT_LT(cpu.compute_loss(batch_data), 0.5 * first_loss) << "the model should be learning";
    EXPECT_EQ(cuda.step(), 300);
    EXPECT_EQ(cuda.graph_replays(), 299);
}

TEST(CudaExecutorEmulated, SyntheticModelFreeRunningMatchesTheCpuBackendWithin1e5ForOneHundredSteps) {
    // Left to run apart, the two trajectories agree to ~1e-6 for about 125
    // steps; then a discrete event (a max-pool window whose two largest
    // inputs differ by less than the backends' rounding picks another
    // argmax, or a ReLU input that close to 0 changes sign) routes a gradient
    // differently and the runs diverge as any two float implementations do.
    SyntheticRun run;
    CpuExecutor cpu(run.graph, run.options);
    CudaExecutor cuda(run.graph, run.options, 0);
    const double worst = max_loss_difference(cpu, cuda, *run.data, 100, run.config.training.optimizer, 1e-5, false);
    std::printf("largest relative loss difference, 100 free-running steps: %.3g\n", worst);
    cuda.pull_state();
    for (std::size_t i = 0; i < cpu.parameters().size(); ++i)
        ASSERT_NEAR(cpu.parameters()[i], cuda.parameters()[i], 1e-4f) << i;
}

TEST(CudaExecutorEmulated, DagModelWithBatchNormDropoutConcatAndSgdMatchesTheCpuBackend) {
    // Every op kind, a head on an inner tensor, label smoothing, a masked row.
    const Graph graph = build_graph(testing::dag_model(), 5);
    const ExecutorOptions options{11, OptimizerOptions::Kind::sgd, TaskWeighting::fixed, true, Precision::fp32};
    CpuExecutor cpu(graph, options);
    CudaExecutor cuda(graph, options, 0);
    OptimizerOptions sgd;
    sgd.kind = OptimizerOptions::Kind::sgd;
    sgd.learning_rate = 0.05f;
    sgd.momentum = 0.9f;
    sgd.nesterov = true;
    sgd.weight_decay = 1e-3f;
    for (int step = 0; step < 12; ++step) {
        Batch batch_data = testing::make_batch(cpu, 100 + step);
        ASSERT_TRUE(cpu.train_step(batch_data, sgd, sgd.learning_rate));
        ASSERT_TRUE(cuda.train_step(batch_data, sgd, sgd.learning_rate));
        for (std::size_t h = 0; h < graph.heads.size(); ++h)
            ASSERT_LT(relative(cpu.head_losses()[h], cuda.head_losses()[h]), 1e-4)
                << "step " << step << " head " << graph.heads[h].spec.name << ": cpu " << cpu.head_losses()[h]
                << " cuda " << cuda.head_losses()[h];
        for (std::size_t h = 0; h < graph.heads.size(); ++h) {
            const float* a = cpu.head_output(int(h));
            const float* b = cuda.head_output(int(h));
            for (int64_t i = 0; i < graph.batch * graph.heads[h].width; ++i)
                ASSERT_NEAR(a[i], b[i], 1e-4f * (1.0f + std::abs(a[i]))) << "head " << h << " output " << i;
        }
    }
    // Running statistics and momentum buffers came along too.
    cuda.pull_state();
    for (std::size_t i = 0; i < cpu.state().size(); ++i) EXPECT_NEAR(cpu.state()[i], cuda.state()[i], 1e-4f);
    for (std::size_t i = 0; i < cpu.optimizer_state().size(); ++i)
        EXPECT_NEAR(cpu.optimizer_state()[i], cuda.optimizer_state()[i], 1e-4f * (1 + std::abs(cpu.optimizer_state()[i])));
}

TEST(CudaExecutorEmulated, GatedModelWithSoftmaxGlobalPoolMultiplyAndMixtureMatchesTheCpuBackend) {
    const Graph graph = build_graph(testing::gated_model(), 5);
    const ExecutorOptions options{.seed = 13, .precision = Precision::fp32};
    CpuExecutor cpu(graph, options);
    CudaExecutor cuda(graph, options, 0);
    Batch batch_data = testing::make_batch(cpu, 3);
    one_step_gradients_match(cpu, cuda, batch_data);
    OptimizerOptions adamw;
    for (int step = 0; step < 10; ++step) {
        Batch batch_data = testing::make_batch(cpu, 20 + step);
        ASSERT_TRUE(cpu.train_step(batch_data, adamw, adamw.learning_rate));
        ASSERT_TRUE(cuda.train_step(batch_data, adamw, adamw.learning_rate));
        for (std::size_t h = 0; h < graph.heads.size(); ++h)
            ASSERT_LT(relative(cpu.head_losses()[h], cuda.head_losses()[h]), 1e-4)
                << "step " << step << " head " << graph.heads[h].spec.name;
    }
}

TEST(CudaExecutorEmulated, GradientsOfOneStepMatchTheCpuBackendThroughFusedEpiloguesAndTheHeadGemm) {
    const RunConfig config = default_run_config();
    const Graph graph = build_graph(config.model, 7);
    CpuExecutor cpu(graph, {5});
    CudaExecutor cuda(graph, {.seed = 5, .precision = Precision::fp32}, 0);
    Batch batch_data = testing::make_batch(cpu, 9);
    const double scale = one_step_gradients_match(cpu, cuda, batch_data);
    // The input's gradient slot is never needed; every other tensor's is.
    for (std::size_t t = 1; t < graph.tensors.size(); ++t) {
        if (graph.tensors[t].alias_of >= 0) continue;
        bool produced_by_fused_layer = false;  // a conv or dense whose activation ran in its epilogue
        for (std::size_t n = 0; n + 1 < graph.nodes.size(); ++n)
            if (graph.nodes[n].output == int(t) &&
                (graph.nodes[n].spec.op == OpKind::conv2d || graph.nodes[n].spec.op == OpKind::dense) &&
                graph.nodes[n + 1].spec.op == OpKind::relu)
                produced_by_fused_layer = true;
        const std::vector<float> gradient = cuda.tensor_gradient(int(t));
        for (std::size_t i = 0; i < gradient.size(); ++i)
            ASSERT_NEAR(cpu.tensor_gradient(int(t))[i], gradient[i], 1e-5 * scale) << graph.tensors[t].name;
        if (produced_by_fused_layer) continue;  // its pre-activation value is never stored on the GPU
        const std::vector<float> value = cuda.tensor_value(int(t));
        for (std::size_t i = 0; i < value.size(); ++i)
            ASSERT_NEAR(cpu.tensor_value(int(t))[i], value[i], 1e-4f * (1 + std::abs(value[i])))
                << graph.tensors[t].name;
    }
}

TEST(CudaExecutorEmulated, GradientsFinalHookTilesTheBufferTopDownWithFinalValuesOnTheDag) {
    const Graph graph = build_graph(testing::dag_model(), 3);
    ExecutorOptions options{.seed = 7, .precision = Precision::fp32};
    options.task_weighting = TaskWeighting::uncertainty;
    CudaExecutor cuda(graph, options, 0);
    Batch batch_data = testing::make_batch(cuda, 5);
    cuda.forward(batch_data, true);
    cuda.compute_loss(batch_data);
    const float* gradients = cuda.device_buffer(Executor::FlatBuffer::gradients).data();
    const auto ranges = testing::backward_recording_final_ranges(cuda, gradients);
    const std::vector<float> final_gradients(gradients, gradients + cuda.gradients().size());
    testing::expect_final_ranges_tile_the_buffer(ranges, final_gradients);
    ASSERT_GE(ranges.size(), 2u);
    EXPECT_EQ(ranges[0].begin, graph.parameter_count);  // the log-variances, final before any node
}

TEST(CudaExecutorEmulated, GradientsFinalHookReportsAHeadGroupsBlockOnlyAfterItsOneGemm) {
    // The synthetic model's three heads run their first dense layers as one
    // GEMM at the first head's node, which writes the whole block (every
    // head's weights, then every head's biases) at once: no part of it may
    // be reported before, though the CPU backend reports the last heads'
    // biases earlier.
    const Graph graph = build_graph(default_run_config().model, 4);
    CudaExecutor cuda(graph, {.seed = 3, .precision = Precision::fp32}, 0);
    ASSERT_EQ(cuda.fused_head_groups().size(), 1u);
    Batch batch_data = testing::make_batch(cuda, 2);
    cuda.forward(batch_data, true);
    cuda.compute_loss(batch_data);
    const float* gradients = cuda.device_buffer(Executor::FlatBuffer::gradients).data();
    const auto ranges = testing::backward_recording_final_ranges(cuda, gradients);
    const std::vector<float> final_gradients(gradients, gradients + cuda.gradients().size());
    testing::expect_final_ranges_tile_the_buffer(ranges, final_gradients);
    const HeadGroup& group = graph.head_groups[0];
    const int64_t block_end = group.bias_offset + group.out_features;
    bool block_in_one_range = false;
    for (const auto& range : ranges)
        block_in_one_range = block_in_one_range || (range.begin <= group.weight_offset && range.end >= block_end);
    EXPECT_TRUE(block_in_one_range);
}

TEST(CudaExecutorEmulated, LearnedTaskWeightsMatchTheCpuBackend) {
    const Graph graph = build_graph(testing::dag_model({1.0f, 0.5f, 2.0f}, 0.0f), 4);
    const ExecutorOptions options{2, OptimizerOptions::Kind::adamw, TaskWeighting::uncertainty, true,
                                  Precision::fp32};
    CpuExecutor cpu(graph, options);
    CudaExecutor cuda(graph, options, 0);
    OptimizerOptions adamw;
    adamw.learning_rate = 0.05f;  // large, so the log-variances move visibly
    for (int step = 0; step < 8; ++step) {
        Batch batch_data = testing::make_batch(cpu, 40 + step);
        ASSERT_TRUE(cpu.train_step(batch_data, adamw, adamw.learning_rate));
        ASSERT_TRUE(cuda.train_step(batch_data, adamw, adamw.learning_rate));
        for (std::size_t h = 0; h < graph.heads.size(); ++h) {
            ASSERT_LT(relative(cpu.head_losses()[h], cuda.head_losses()[h]), 1e-4) << "step " << step;
            ASSERT_LT(relative(cpu.head_weights()[h], cuda.head_weights()[h]), 1e-5) << "step " << step;
        }
    }
    cuda.pull_state();
    const auto a = cpu.task_weighting_values(), b = cuda.task_weighting_values();
    ASSERT_EQ(a.size(), 3u);
    for (std::size_t h = 0; h < a.size(); ++h) {
        EXPECT_NE(a[h], 0.0f) << "the log-variances should have moved";
        EXPECT_NEAR(a[h], b[h], 1e-5f);
    }
}

// Every task-weighting method's CUDA half against its CPU half: weights,
// losses and learned values over a few AdamW steps.
TEST(CudaExecutorEmulated, EveryTaskWeightingMethodMatchesTheCpuBackend) {
    const Graph graph = build_graph(testing::dag_model({1.0f, 0.5f, 2.0f}, 0.0f), 4);
    for (const TaskWeightingMethod* method : task_weighting_methods()) {
        ExecutorOptions options{.seed = 9, .precision = Precision::fp32};
        options.task_weighting = method->kind;
        CpuExecutor cpu(graph, options);
        CudaExecutor cuda(graph, options, 0);
        OptimizerOptions adamw;
        adamw.learning_rate = 0.05f;  // large, so the learned values move
        for (int step = 0; step < 4; ++step) {
            Batch batch_data = testing::make_batch(cpu, 30 + step);
            ASSERT_TRUE(cpu.train_step(batch_data, adamw, adamw.learning_rate));
            ASSERT_TRUE(cuda.train_step(batch_data, adamw, adamw.learning_rate));
            for (std::size_t h = 0; h < graph.heads.size(); ++h) {
                ASSERT_LT(relative(cpu.head_losses()[h], cuda.head_losses()[h]), 1e-4) << method->name;
                ASSERT_LT(relative(cpu.head_weights()[h], cuda.head_weights()[h]), 1e-5) << method->name;
            }
        }
        cuda.pull_state();
        const auto a = cpu.task_weighting_values(), b = cuda.task_weighting_values();
        ASSERT_EQ(a.size(), graph.heads.size() * std::size_t(method->parameters_per_head)) << method->name;
        ASSERT_EQ(b.size(), a.size()) << method->name;
        for (std::size_t i = 0; i < a.size(); ++i) {
            EXPECT_GT(std::abs(a[i]), 1e-3f) << method->name << ": the learned value did not move";
            EXPECT_NEAR(a[i], b[i], 1e-5f) << method->name;
        }
    }
}

TEST(CudaExecutorEmulated, NonFiniteLossSkipsTheUpdateOnTheDeviceAndKeepsTheStep) {
    const Graph graph = build_graph(testing::dag_model(), 3);
    CudaExecutor cuda(graph, {.seed = 4, .precision = Precision::fp32}, 0);
    OptimizerOptions adamw;
    Batch batch_data = testing::make_batch(cuda, 1);
    ASSERT_TRUE(cuda.train_step(batch_data, adamw, 1e-3f));
    cuda.pull_state();
    const std::vector<float> before(cuda.parameters().begin(), cuda.parameters().end());
    const std::vector<float> moments(cuda.optimizer_state().begin(), cuda.optimizer_state().end());
    batch_data = testing::make_batch(cuda, 2);
    batch_data.targets(1)[0] = std::nanf("");  // the box head's first target
    EXPECT_FALSE(cuda.train_step(batch_data, adamw, 1e-3f));  // a replayed graph (the first step was plain)
    EXPECT_EQ(cuda.graph_replays(), 1);
    EXPECT_TRUE(std::isnan(cuda.head_losses()[1]));
    EXPECT_EQ(cuda.step(), 1);
    cuda.pull_state();
    for (std::size_t i = 0; i < before.size(); ++i) ASSERT_EQ(before[i], cuda.parameters()[i]) << i;
    for (std::size_t i = 0; i < moments.size(); ++i) ASSERT_EQ(moments[i], cuda.optimizer_state()[i]) << i;
    // The next good batch trains again, as step 2.
    batch_data = testing::make_batch(cuda, 3);
    EXPECT_TRUE(cuda.train_step(batch_data, adamw, 1e-3f));
    EXPECT_EQ(cuda.step(), 2);
}

TEST(CudaExecutorEmulated, GraphReplayGivesTheSameBitsAsPlainLaunchesWithDropoutAndAChangingLearningRate) {
    // The per-step values (batch, dropout seeds, learning rate, AdamW's bias
    // corrections) reach a replayed graph through device memory: if any were
    // baked into the capture, the graph run would drift from the plain one.
    const Graph graph = build_graph(testing::dag_model({1.0f, 0.5f, 2.0f}, 0.4f), 4);
    ExecutorOptions with_graphs{.seed = 6, .precision = Precision::fp32}, without = with_graphs;
    without.cuda_graphs = false;
    CudaExecutor replayed(graph, with_graphs, 0), plain(graph, without, 0);
    CpuExecutor cpu(graph, with_graphs);
    OptimizerOptions adamw;
    adamw.weight_decay = 0.05f;
    for (int step = 0; step < 7; ++step) {
        const float learning_rate = 0.01f / float(1 + step);
        for (Executor* e : std::initializer_list<Executor*>{&replayed, &plain, &cpu}) {
            Batch batch_data = testing::make_batch(*e, 70 + step);
            ASSERT_TRUE(e->train_step(batch_data, adamw, learning_rate));
        }
        for (std::size_t h = 0; h < graph.heads.size(); ++h) {
            ASSERT_EQ(replayed.head_losses()[h], plain.head_losses()[h]) << "step " << step << " head " << h;
            ASSERT_LT(relative(cpu.head_losses()[h], replayed.head_losses()[h]), 1e-4) << "step " << step;
        }
    }
    EXPECT_EQ(replayed.graph_replays(), 6);  // one plain warm-up step, then the graph
    EXPECT_EQ(plain.graph_replays(), 0);
    replayed.pull_state();
    plain.pull_state();
    for (std::size_t i = 0; i < plain.parameters().size(); ++i)
        ASSERT_EQ(replayed.parameters()[i], plain.parameters()[i]) << i;
    for (std::size_t i = 0; i < plain.optimizer_state().size(); ++i)
        ASSERT_EQ(replayed.optimizer_state()[i], plain.optimizer_state()[i]) << i;
}

// train_step's `next`: the following batch copied in on the copy stream while
// a step runs, then moved into place, gives the bits of copying each batch
// from the host; a staged batch that is not the one trained on next is not used.
TEST(CudaExecutorEmulated, AStagedNextBatchGivesTheBitsOfCopyingEachBatchIn) {
    const Graph graph = build_graph(testing::dag_model({1.0f, 0.5f, 2.0f}, 0.3f), 4);
    CudaExecutor staged(graph, {12}, 0), plain(graph, {12}, 0);
    OptimizerOptions adamw;
    std::vector<Batch> batches;
    for (int step = 0; step < 6; ++step) batches.push_back(testing::make_batch(plain, 90 + step));
    const Batch stray = testing::make_batch(plain, 7);
    for (int step = 0; step < 6; ++step) {
        // Step 3 stages a batch that step 4 does not train on.
        const Batch* next = step == 3 ? &stray : step + 1 < 6 ? &batches[std::size_t(step) + 1] : nullptr;
        ASSERT_TRUE(staged.train_step(batches[std::size_t(step)], adamw, 1e-2f, {}, next));
        ASSERT_TRUE(plain.train_step(batches[std::size_t(step)], adamw, 1e-2f));
        for (std::size_t h = 0; h < graph.heads.size(); ++h)
            ASSERT_EQ(staged.head_losses()[h], plain.head_losses()[h]) << "step " << step << " head " << h;
        for (std::size_t h = 0; h < graph.heads.size(); ++h)
            for (int64_t i = 0; i < graph.batch * graph.heads[h].width; ++i)
                ASSERT_EQ(staged.head_output(int(h))[i], plain.head_output(int(h))[i]) << "step " << step;
    }
    EXPECT_EQ(staged.graph_replays(), 5);
}

TEST(CudaExecutorEmulated, SameSeedGivesBitwiseIdenticalLosses) {
    const Graph graph = build_graph(testing::dag_model(), 4);
    CudaExecutor a(graph, {8}, 0), b(graph, {8}, 0);
    OptimizerOptions adamw;
    for (int step = 0; step < 5; ++step) {
        Batch batch_data = testing::make_batch(a, step);
        a.train_step(batch_data, adamw, 1e-2f);
        b.train_step(batch_data, adamw, 1e-2f);
        for (std::size_t h = 0; h < graph.heads.size(); ++h) ASSERT_EQ(a.head_losses()[h], b.head_losses()[h]);
    }
}

TEST(CudaExecutorEmulated, PushedStateIsWhatTheNextStepUses) {
    // A checkpoint restore writes the host view and pushes it: the device
    // must then compute with exactly those values.
    const Graph graph = build_graph(testing::dag_model(), 3);
    CpuExecutor cpu(graph, {21});
    CudaExecutor cuda(graph, {22}, 0);  // other seed: other initial weights
    std::copy(cpu.parameters().begin(), cpu.parameters().end(), cuda.parameters().begin());
    std::copy(cpu.state().begin(), cpu.state().end(), cuda.state().begin());
    cuda.push_state();
    Batch batch_data = testing::make_batch(cpu, 5);
    cpu.forward(batch_data, false);
    cuda.forward(batch_data, false);
    EXPECT_LT(relative(cpu.compute_loss(batch_data), cuda.compute_loss(batch_data)), 1e-5);
}

TEST(CudaExecutorEmulated, NoDeviceAndAMissingDeviceAreClearErrors) {
    const Graph graph = build_graph(testing::dag_model(), 2);
    EXPECT_EQ(message_of([&] { CudaExecutor(graph, {}, 3); }),
              "CUDA backend: device cuda:3 does not exist; this machine has 1 (cuda:0 to cuda:0)");
    ::setenv("LADON_EMU_DEVICE_COUNT", "0", 1);
    const std::string none = message_of([&] { CudaExecutor(graph, {}, 0); });
    ::unsetenv("LADON_EMU_DEVICE_COUNT");
    EXPECT_EQ(none.rfind("CUDA backend: no CUDA device (cudaErrorNoDevice", 0), 0u) << none;
}

TEST(CudaExecutorEmulated, SynchronisedBatchNormIsRefusedNamingTheOption) {
    CudaExecutor cuda(build_graph(testing::dag_model(), 2), {}, 0);
    const std::string message = message_of([&] { cuda.set_batch_norm_sync([](double*, int64_t) {}); });
    EXPECT_EQ(message.rfind("training.sync_batch_norm: the cuda (emulated) backend has no synchronised batch norm", 0),
              0u)
        << message;
    cuda.set_batch_norm_sync({});  // asking for none is fine
}

TEST(CudaExecutorEmulated, OutOfMemoryNamesTheAllocationAndItsSize) {
    // 200k samples of the synthetic model: about 2 x 7.4 GB of activations,
    // more than the emulated device's 16 GiB with everything else.
    const Graph graph = build_graph(default_run_config().model, 200000);
    const std::string message = message_of([&] { CudaExecutor(graph, {}, 0); });
    EXPECT_NE(message.find("CUDA backend: out of memory on cuda:0"), std::string::npos) << message;
    EXPECT_NE(message.find("for batch 200000"), std::string::npos) << message;
    EXPECT_NE(message.find("activations "), std::string::npos) << message;
    EXPECT_NE(message.find("MiB"), std::string::npos) << message;
    EXPECT_NE(message.find("lower training.batch_size"), std::string::npos) << message;
}

TEST(CudaExecutorEmulated, ProfileTimesEveryNodeAndPhase) {
    const Graph graph = build_graph(testing::dag_model(), 3);
    CudaExecutor cuda(graph, {1}, 0);
    Batch batch_data = testing::make_batch(cuda, 1);
    OptimizerOptions adamw;
    const Executor::Timing timing = cuda.profile(batch_data, 2, adamw, 1e-3f);
    ASSERT_EQ(timing.forward_ms.size(), graph.nodes.size());
    EXPECT_GT(timing.step_ms, 0.0);
    EXPECT_GT(timing.loss_ms, 0.0);
    EXPECT_GT(timing.update_ms, 0.0);
    EXPECT_GT(timing.forward_ms[0], 0.0);   // the first conv
    EXPECT_GT(timing.backward_ms[0], 0.0);
    EXPECT_EQ(cuda.step(), 1 + 2 * 2);  // warm-up, then a step and an update per iteration
}

}  // namespace
}  // namespace ladon::engine
