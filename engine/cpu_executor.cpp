// The CPU executor: every node through ladon::cpu.
#include "engine/cpu_executor.hpp"

#include <mutex>
#include <cstdio>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "ladon/error.hpp"

namespace ladon::engine {

CpuExecutor::CpuExecutor(Graph graph, const ExecutorOptions& options) : Executor(std::move(graph), options) {
    if (options_.precision == Precision::tf32 || options_.precision == Precision::bf16) {
        static std::once_flag said;
        std::call_once(said, [&] {
            std::fprintf(stderr, "ladon: precision = \"%s\" has no effect on the CPU backend, which computes in fp32\n",
                         precision_name(options_.precision));
        });
    }
    options_.precision = Precision::fp32;
    threads_ = omp_get_max_threads();
    plan_ = plan_arena(graph_);
    activations_.assign(plan_.arena, 0.0f);
    gradients_arena_.assign(plan_.arena, 0.0f);
    argmax_.assign(plan_.argmax_count, 0);
    saved_statistics_.assign(plan_.saved_count, 0.0f);
    std::size_t workspace = 0;
    for (const Node& node : graph_.nodes)
        if (const auto floats = op_definition(node.spec.op).cpu_workspace_floats)
            workspace = std::max(workspace, floats(node, threads_));
    workspace_.assign(std::max<std::size_t>(workspace, 1), 0.0f);
    int64_t widest_batch_norm = 0;
    for (const Node& node : graph_.nodes)
        if (node.spec.op == OpKind::batch_norm)
            widest_batch_norm = std::max(widest_batch_norm, node.batch_norm.channels);
    // Backward's three sums per channel and the count, twice (local, total).
    batch_norm_sums_.assign(std::size_t(2 * (3 * widest_batch_norm + 1)), 0.0);

    const int heads = int(graph_.heads.size());
    buffers_ = {&graph_,           &plan_,           activations_.data(),      gradients_arena_.data(),
                parameters_.data(), gradients_.data(), state_.data(),           saved_statistics_.data(),
                workspace_.data(),  argmax_.data()};
    for (int h = 0; h < heads; ++h) {
        const Head& head = graph_.heads[h];
        ops::LossHead loss;
        loss.kind = kernel_loss(head.spec.loss);
        loss.width = head.width;
        loss.logits = value(head.output);
        // targets and mask: the batch's, set by load_labels().
        loss.label_smoothing = head.spec.label_smoothing;
        loss.beta = head.spec.beta;
        loss.grad_logits = grad(head.output);
        loss_heads_.push_back(loss);
    }
}

const float* CpuExecutor::head_output(int head) const { return tensor_value(graph_.heads[head].output); }

void CpuExecutor::scale_head_gradient(int head, float scale) {
    float* grad_logits = grad(graph_.heads[head].output);
    const int64_t count = graph_.batch * graph_.heads[head].width;
    for (int64_t i = 0; i < count; ++i) grad_logits[i] *= scale;
}

void CpuExecutor::load_input(const Batch& batch) {
    // Tensor 0, the input, has its own slot in the arena: one copy per step
    // (0.8 MB for fashion_mtl's batch), so no op reads outside the arena.
    std::copy(batch.input().begin(), batch.input().end(), value(0));
}

void CpuExecutor::load_labels(const Batch& batch) {
    for (std::size_t h = 0; h < loss_heads_.size(); ++h) {
        loss_heads_[h].targets = batch.targets(int(h));
        loss_heads_[h].mask = batch.mask(int(h));
    }
}

void CpuExecutor::run_forward(bool training) {
    // The conv workspace holds one slice per OpenMP thread, sized when the
    // executor was built; a changed thread count would overrun it.
    if (omp_get_max_threads() != threads_)
        throw Error(fmt::format("executor: planned for {} OpenMP threads but now running with {}; build a new "
                                "executor after changing the thread count",
                                threads_, omp_get_max_threads()));
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) forward_node(i, training);
}

void CpuExecutor::forward_node(std::size_t index, bool training) {
    const Node& node = graph_.nodes[index];
    op_definition(node.spec.op).cpu_forward(op_step(node, training, index));
}

CpuOpStep CpuExecutor::op_step(const Node& node, bool training, std::size_t index) {
    CpuOpStep step{{buffers_, node, index, training, dropout_seed(index)}};
    step.batch_norm_sync = &batch_norm_sync_;
    step.batch_norm_sums = batch_norm_sums_.data();
    return step;
}

double CpuExecutor::run_loss() {
    std::fill(gradients_.begin(), gradients_.end(), 0.0f);
    std::fill(gradients_arena_.begin(), gradients_arena_.end(), 0.0f);
    compute_head_weights();
    for (std::size_t h = 0; h < graph_.heads.size(); ++h) loss_heads_[h].weight = head_weights_[h];
    cpu::multi_head_loss(graph_.batch, loss_heads_, head_losses_.data());
    return total_loss();
}

void CpuExecutor::backward_node(std::size_t index) {
    const Node& node = graph_.nodes[index];
    op_definition(node.spec.op).cpu_backward(op_step(node, true, index));
}

void CpuExecutor::update(const OptimizerOptions& optimizer, float learning_rate) {
    if (optimizer.kind != options_.optimizer)
        throw Error("executor: the optimizer kind changed after the optimizer state was planned");
    ++step_;
    const int64_t model = graph_.parameter_count;
    const int64_t total = int64_t(parameters_.size());
    // Weight decay applies to the model's parameters, never to the task
    // weighting's learned values (decay would pull every task weight towards 1).
    auto run = [&](int64_t begin, int64_t count, float weight_decay) {
        if (count == 0) return;
        if (optimizer.kind == OptimizerOptions::Kind::sgd) {
            ops::SgdParameters p{learning_rate, optimizer.momentum, weight_decay, optimizer.nesterov};
            cpu::sgd_update(count, p, parameters_.data() + begin, gradients_.data() + begin,
                            optimizer_state_.data() + begin);
        } else {
            ops::AdamWParameters p{learning_rate, optimizer.beta1, optimizer.beta2, optimizer.epsilon, weight_decay,
                                   step_};
            cpu::adamw_update(count, p, parameters_.data() + begin, gradients_.data() + begin,
                              optimizer_state_.data() + begin, optimizer_state_.data() + total + begin);
        }
    };
    run(0, model, optimizer.weight_decay);
    run(model, total - model, 0.0f);
}

Executor::MemoryPlan CpuExecutor::memory_plan() const {
    MemoryPlan plan;
    plan.parameters = int64_t(parameters_.size() + state_.size()) * 4;
    plan.gradients = int64_t(gradients_.size()) * 4;
    plan.optimizer_state = int64_t(optimizer_state_.size()) * 4;
    plan.activations = int64_t(activations_.size() + gradients_arena_.size() + saved_statistics_.size()) * 4 +
                       int64_t(argmax_.size()) * 4;
    plan.workspace = int64_t(workspace_.size()) * 4;
    return plan;
}

}  // namespace ladon::engine
