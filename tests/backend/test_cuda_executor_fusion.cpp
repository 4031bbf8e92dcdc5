// The fusion pass and the gradient plan on the emulated CUDA executor: which
// activations run in their producer's kernels (batch norm and add take
// ReLU), a ResNet basic block trained against the CPU, and activation
// gradients whose first write stores (no pass zeroes them).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/executor_match.hpp"
#include "cpu/engine_test_support.hpp"
#include "engine/cpu_executor.hpp"
#include "engine/cuda_executor.hpp"
#include "engine/fusion.hpp"
#include "engine/gradient_plan.hpp"
#include "ladon/config.hpp"

namespace ladon::engine {
namespace {

using testing_match::one_step_gradients_match;
using testing_match::relative;

// A ResNet basic block: conv -> BN -> ReLU, conv -> BN, add the block's
// input, ReLU. The ReLUs after BN and add run in those ops' kernels, and
// batch norm's backward runs its ReLU's backward too.
ModelSpec residual_model() {
    ModelBuilder builder(2, 9, 7);
    builder.trunk()
        .conv2d(4, 3, 1, 1, false)
        .batch_norm()
        .relu()
        .named("block_in")
        .conv2d(4, 3, 1, 1, false)
        .batch_norm()
        .relu()
        .conv2d(4, 3, 1, 1, false)
        .batch_norm()
        .named("branch")
        .add({"block_in", "branch"})
        .relu()
        .flatten();
    builder.head("cls", Loss::softmax_cross_entropy, 1.0f).dense(5);
    return builder.build();
}

// The fusion pass puts the ReLU after a batch norm or an add into their
// kernels, and any activation after a conv or dense into theirs; batch norm
// takes no other activation.
TEST(CudaExecutorEmulated, FusionPassFusesReluIntoBatchNormAndAddAndNothingElse) {
    const auto fused_after = [](const Graph& graph, OpKind producer) {
        const FusionPlan plan = plan_fusions(graph);
        std::vector<OpKind> fused;
        for (std::size_t i = 0; i + 1 < graph.nodes.size(); ++i)
            if (graph.nodes[i].spec.op == producer && plan.epilogue[i] == int(i + 1)) {
                EXPECT_TRUE(plan.fused_activation[i + 1]);
                fused.push_back(graph.nodes[i + 1].spec.op);
            }
        return fused;
    };
    const Graph dag = build_graph(testing::dag_model(), 5);
    EXPECT_EQ(fused_after(dag, OpKind::batch_norm), std::vector<OpKind>{OpKind::relu});
    EXPECT_EQ(fused_after(dag, OpKind::conv2d), std::vector<OpKind>{OpKind::tanh});
    EXPECT_EQ(fused_after(dag, OpKind::dense), std::vector<OpKind>{OpKind::leaky_relu});
    EXPECT_TRUE(fused_after(dag, OpKind::add).empty());  // no ReLU follows it

    const Graph residual = build_graph(residual_model(), 5);
    EXPECT_EQ(fused_after(residual, OpKind::batch_norm), (std::vector<OpKind>{OpKind::relu, OpKind::relu}));
    EXPECT_EQ(fused_after(residual, OpKind::add), std::vector<OpKind>{OpKind::relu});

    ModelBuilder builder(2, 9, 7);
    builder.trunk().conv2d(4, 3, 1, 1, false).batch_norm().tanh().flatten();
    builder.head("cls", Loss::softmax_cross_entropy, 1.0f).dense(5);
    EXPECT_TRUE(fused_after(build_graph(builder.build(), 5), OpKind::batch_norm).empty());
}

// Gradients of one step, then 20 AdamW steps' losses, against the CPU (which
// runs every ReLU as its own layer).
TEST(CudaExecutorEmulated, ResidualBlockWithFusedBatchNormAndAddReluMatchesTheCpuBackend) {
    const Graph graph = build_graph(residual_model(), 6);
    const ExecutorOptions options{.seed = 17, .precision = Precision::fp32};
    CpuExecutor cpu(graph, options);
    CudaExecutor cuda(graph, options, 0);
    Batch first = testing::make_batch(cpu, 3);
    one_step_gradients_match(cpu, cuda, first);
    OptimizerOptions adamw;
    for (int step = 0; step < 20; ++step) {
        Batch batch_data = testing::make_batch(cpu, 40 + step);
        ASSERT_TRUE(cpu.train_step(batch_data, adamw, adamw.learning_rate));
        ASSERT_TRUE(cuda.train_step(batch_data, adamw, adamw.learning_rate));
        ASSERT_LT(relative(cpu.head_losses()[0], cuda.head_losses()[0]), 1e-4) << "step " << step;
    }
    cuda.pull_state();  // the running statistics
    for (std::size_t i = 0; i < cpu.state().size(); ++i) EXPECT_NEAR(cpu.state()[i], cuda.state()[i], 1e-4f) << i;
}

// The residual block's plan: block_in is read by a conv and then by the add;
// backward reaches the add first, so the add stores and the conv adds. The
// first conv reads the model input, whose gradient nobody writes, and the
// flatten writes nothing (its output shares its input's slot).
TEST(CudaExecutorEmulated, GradientPlanStoresAtEachSlotsLastReader) {
    const Graph graph = build_graph(residual_model(), 5);
    const GradientWrites writes = plan_gradient_writes(graph, plan_fusions(graph));
    int block_in = -1;
    for (const Node& node : graph.nodes)
        if (node.name == "block_in") block_in = node.output;
    ASSERT_GE(block_in, 0);
    int readers = 0;
    for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const Node& node = graph.nodes[i];
        if (i == 0) {
            EXPECT_EQ(writes.writes[i], 0u) << "the first conv reads the model input";
        }
        if (node.spec.op == OpKind::flatten) {
            EXPECT_EQ(writes.writes[i], 0u);
        }
        for (std::size_t k = 0; k < node.inputs.size(); ++k) {
            if (node.inputs[k] != block_in) continue;
            ++readers;
            EXPECT_TRUE(writes.writes[i] >> k & 1u) << node.name;
            EXPECT_EQ(bool(writes.first_write[i] >> k & 1u), node.spec.op == OpKind::add) << node.name;
        }
    }
    EXPECT_EQ(readers, 2);
}

// No pass zeroes the activation gradients (engine/gradient_plan.hpp): each
// slot's first write stores. A second backward over the same batch, whose
// slots all hold the first one's values, must then give every tensor's
// gradient bit for bit again (a first write that added would double it),
// and those must match the CPU's. Every op kind, head groups, fan-in.
TEST(CudaExecutorEmulated, ActivationGradientsDoNotDependOnTheLastStepsValues) {
    for (const ModelSpec& model : {testing::dag_model(), testing::gated_model(), residual_model(),
                                   default_run_config().model}) {
        const Graph graph = build_graph(model, 3);
        CpuExecutor cpu(graph, {5});
        CudaExecutor cuda(graph, {.seed = 5, .precision = Precision::fp32}, 0);
        Batch batch_data = testing::make_batch(cpu, 8);
        std::vector<std::vector<float>> first(graph.tensors.size());
        for (int pass = 0; pass < 2; ++pass) {
            cuda.forward(batch_data, true);
            cuda.compute_loss(batch_data);
            cuda.backward();
            for (std::size_t t = 1; t < graph.tensors.size(); ++t) {
                if (graph.tensors[t].alias_of >= 0) continue;
                const std::vector<float> gradient = cuda.tensor_gradient(int(t));
                if (pass == 0) {
                    first[t] = gradient;
                    continue;
                }
                ASSERT_EQ(0, std::memcmp(first[t].data(), gradient.data(), gradient.size() * sizeof(float)))
                    << graph.tensors[t].name << " of a model with " << graph.nodes.size() << " nodes";
            }
        }
        one_step_gradients_match(cpu, cuda, batch_data);
    }
}

}  // namespace
}  // namespace ladon::engine
