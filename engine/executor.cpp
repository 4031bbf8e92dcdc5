// What every backend shares: the memory plan, initialisation, head weights,
// and the default training step.
#include "engine/executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "engine/ops/op.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {

namespace {

// Uniform in [-bound, bound) from 24 random bits: the same numbers on every
// platform (std::uniform_real_distribution is implementation-defined).
float uniform(std::mt19937_64& rng, float bound) {
    const float u = float(rng() >> 40) * (1.0f / 16777216.0f);
    return (2.0f * u - 1.0f) * bound;
}

}  // namespace

ArenaPlan plan_arena(const Graph& graph) {
    ArenaPlan plan;
    // Every tensor keeps its own slot (backward reads every forward value);
    // flatten shares its input's slot. Gradients mirror it.
    plan.offsets.assign(graph.tensors.size(), 0);
    for (std::size_t t = 0; t < graph.tensors.size(); ++t) {
        const Tensor& tensor = graph.tensors[t];
        if (tensor.alias_of >= 0) {
            plan.offsets[t] = plan.offsets[tensor.alias_of];
            continue;
        }
        plan.offsets[t] = plan.arena;
        plan.arena += (tensor.shape.elements() + 15) / 16 * 16;  // 64-byte aligned slots
    }
    plan.argmax_offsets.assign(graph.nodes.size(), -1);
    plan.saved_offsets.assign(graph.nodes.size(), -1);
    for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const Node& node = graph.nodes[i];
        const OpDefinition& op = op_definition(node.spec.op);
        if (op.argmax_count) {
            plan.argmax_offsets[i] = plan.argmax_count;
            plan.argmax_count += op.argmax_count(node);
        }
        if (op.saved_count) {
            plan.saved_offsets[i] = plan.saved_count;
            plan.saved_count += op.saved_count(node);
        }
    }
    return plan;
}

Executor::Executor(Graph graph, const ExecutorOptions& options)
    : graph_(std::move(graph)), options_(options), weighting_(task_weighting_method(options.task_weighting)) {
    const int64_t heads = int64_t(graph_.heads.size());
    const int64_t trained = graph_.parameter_count + weighting_.parameters_per_head * heads;
    for (const Head& head : graph_.heads) base_weights_.push_back(head.spec.weight);
    parameters_.assign(trained, 0.0f);
    gradients_.assign(trained, 0.0f);
    optimizer_state_.assign(options_.optimizer == OptimizerOptions::Kind::adamw ? 2 * trained : trained, 0.0f);
    state_.assign(graph_.state_count, 0.0f);
    batch_layout_ = BatchLayout::of(graph_);
    head_losses_.assign(heads, 0.0f);
    head_weights_.assign(heads, 0.0f);
    gradient_writers_.assign(graph_.parameters.size(), -1);
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i)
        for (int slice : {graph_.nodes[i].weight, graph_.nodes[i].bias})
            if (slice >= 0) gradient_writers_[slice] = int(i);
    initialise_parameters();
}

void Executor::gradients_final_before_backward() {
    if (!gradients_final_hook_) return;
    if (final_from_.empty()) {
        // Walk the slices from the top of the buffer down and the nodes in
        // backward order: after node i the final part reaches down to the
        // first slice whose writer runs later (has a lower index). The slices
        // tile [0, parameter_count); a gap would be a layout bug.
        std::vector<int> slices(graph_.parameters.size());
        for (std::size_t s = 0; s < slices.size(); ++s) slices[s] = int(s);
        std::sort(slices.begin(), slices.end(),
                  [&](int a, int b) { return graph_.parameters[a].offset > graph_.parameters[b].offset; });
        final_from_.assign(graph_.nodes.size(), 0);
        int64_t frontier = graph_.parameter_count;
        std::size_t next = 0;
        for (std::size_t i = graph_.nodes.size(); i-- > 0;) {
            while (next < slices.size() && gradient_writers_[slices[next]] >= int(i)) {
                const BufferSlice& slice = graph_.parameters[slices[next]];
                if (slice.offset + slice.count != frontier)
                    throw Error(
                        fmt::format("executor: parameter '{}' at [{}, {}) does not end where the next one "
                                    "begins ({})",
                                    slice.name, slice.offset, slice.offset + slice.count, frontier));
                frontier = slice.offset;
                ++next;
            }
            final_from_[i] = frontier;
        }
        if (next != slices.size())
            throw Error(fmt::format("executor: parameter '{}' has no node that writes its gradient",
                                    graph_.parameters[slices[next]].name));
        if (frontier != 0) throw Error(fmt::format("executor: the parameters begin at {}, not 0", frontier));
    }
    reported_from_ = int64_t(gradients_.size());
    // The task weighting's learned values: final since compute_loss().
    if (graph_.parameter_count < reported_from_) report_final_gradients(graph_.parameter_count);
}

void Executor::report_final_gradients(int64_t begin) {
    const int64_t end = reported_from_;
    reported_from_ = begin;
    gradients_final_hook_(begin, end);
}

void Executor::check_batch(const Batch& batch) const {
    if (batch.layout() == batch_layout_) return;
    throw Error(fmt::format("executor: a batch of {} rows of {} for {} heads does not fit this model's batch of {} rows "
                            "of {} for {} heads",
                            batch.rows(), batch.layout().input.str(), batch.layout().heads.size(), batch_layout_.rows,
                            batch_layout_.input.str(), batch_layout_.heads.size()));
}

void Executor::forward(const Batch& batch, bool training) {
    check_batch(batch);
    load_input(batch);
    run_forward(training);
}

double Executor::compute_loss(const Batch& batch) {
    check_batch(batch);
    load_labels(batch);
    return run_loss();
}

void Executor::initialise_parameters() {
    // PyTorch's defaults for Conv2d and Linear: weight and bias uniform in
    // +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)); batch norm 1 and 0.
    std::mt19937_64 rng(options_.seed);
    for (const BufferSlice& slice : graph_.parameters) {
        float* p = parameters_.data() + slice.offset;
        switch (slice.init) {
            case BufferSlice::Init::uniform_fan_in: {
                const float bound = 1.0f / std::sqrt(float(slice.fan_in));
                for (int64_t i = 0; i < slice.count; ++i) p[i] = uniform(rng, bound);
                break;
            }
            case BufferSlice::Init::ones: std::fill(p, p + slice.count, 1.0f); break;
            case BufferSlice::Init::zeros: std::fill(p, p + slice.count, 0.0f); break;
        }
    }
    for (const BufferSlice& slice : graph_.state)
        std::fill(state_.begin() + slice.offset, state_.begin() + slice.offset + slice.count,
                  slice.init == BufferSlice::Init::ones ? 1.0f : 0.0f);
    std::fill(parameters_.begin() + graph_.parameter_count, parameters_.end(), weighting_.initial_value);
}

uint64_t Executor::dropout_seed(std::size_t node_index) const {
    return ops::mix64(options_.seed ^ ops::mix64(uint64_t(step_) * 0x100000001B3ull + node_index));
}

std::span<const float> Executor::task_weighting_values() const {
    return std::span<const float>(parameters_).subspan(graph_.parameter_count);
}

std::span<const float> Executor::step_base_weights() {
    if (!weighting_.step_base) return base_weights_;
    step_base_weights_.resize(base_weights_.size());
    weighting_.step_base(options_.seed, step_, base_weights_, step_base_weights_);
    return step_base_weights_;
}

void Executor::compute_head_weights() { weighting_.weights(step_base_weights(), task_weighting_values(), head_weights_); }

double Executor::total_loss() {
    double total = 0.0;
    for (std::size_t h = 0; h < graph_.heads.size(); ++h) total += double(head_weights_[h]) * head_losses_[h];
    return total + weighting_.loss_term(head_losses_, head_weights_, task_weighting_values(),
                                        std::span<float>(gradients_).subspan(graph_.parameter_count));
}

void Executor::set_task_weighting_losses(std::span<const float> losses) {
    if (weighting_.parameters_per_head == 0) return;
    weighting_.loss_term(losses, head_weights_, task_weighting_values(),
                         std::span<float>(gradients_).subspan(graph_.parameter_count));
    upload_task_weighting_gradients();
}

bool Executor::losses_finite() const {
    return std::all_of(head_losses_.begin(), head_losses_.end(), [](float loss) { return std::isfinite(loss); });
}

bool Executor::train_step(const Batch& batch, const OptimizerOptions& optimizer, float learning_rate,
                          const std::function<void(Executor&)>& gradients_ready, const Batch*) {
    forward(batch, true);
    compute_loss(batch);
    if (!losses_finite()) return false;
    backward();
    if (gradients_ready) gradients_ready(*this);
    update(optimizer, learning_rate);
    return true;
}

void Executor::set_batch_norm_sync(BatchNormSync allreduce_sum) {
    if (!allreduce_sum) return;
    for (const Node& node : graph_.nodes)
        if (node.spec.op == OpKind::batch_norm)
            throw Error(
                fmt::format("training.sync_batch_norm: the {} backend has no synchronised batch norm (node "
                            "'{}'); use the cpu backend or set training.sync_batch_norm = false",
                            backend_name(), node.name));
}

void Executor::backward() {
    gradients_final_before_backward();
    for (std::size_t i = graph_.nodes.size(); i-- > 0;) {
        backward_node(i);
        gradients_final_after_node(i);
    }
}

double Executor::time_ms(const std::function<void()>& work) {
    const auto start = std::chrono::steady_clock::now();
    work();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

Executor::Timing Executor::profile(const Batch& batch, int iterations, const OptimizerOptions& optimizer,
                                   float learning_rate) {
    Timing timing;
    const std::size_t nodes = graph_.nodes.size();
    timing.forward_ms.assign(nodes, 0.0);
    timing.backward_ms.assign(nodes, 0.0);
    train_step(batch, optimizer, learning_rate);  // warm-up: first touches of every buffer, a CUDA graph's capture
    for (int it = 0; it < iterations; ++it) {
        timing.step_ms += time_ms([&] { train_step(batch, optimizer, learning_rate); });
        load_input(batch);
        load_labels(batch);
        for (std::size_t i = 0; i < nodes; ++i) timing.forward_ms[i] += time_ms([&] { forward_node(i, true); });
        timing.loss_ms += time_ms([&] { profiled_loss(); });
        for (std::size_t i = nodes; i-- > 0;) timing.backward_ms[i] += time_ms([&] { backward_node(i); });
        timing.update_ms += time_ms([&] { update(optimizer, learning_rate); });
    }
    const double n = std::max(iterations, 1);
    for (auto& t : timing.forward_ms) t /= n;
    for (auto& t : timing.backward_ms) t /= n;
    timing.loss_ms /= n;
    timing.update_ms /= n;
    timing.step_ms /= n;
    return timing;
}

}  // namespace ladon::engine
