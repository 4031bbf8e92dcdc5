// The CPU executor: memory planning, initialisation, and one training step.
#include "engine/executor.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "ladon/error.hpp"

namespace ladon::engine {

namespace {

ops::LossKind kernel_loss(Loss loss) {
    switch (loss) {
        case Loss::softmax_cross_entropy: return ops::LossKind::softmax_cross_entropy;
        case Loss::sigmoid_binary_cross_entropy: return ops::LossKind::sigmoid_binary_cross_entropy;
        case Loss::mean_squared_error: return ops::LossKind::mean_squared_error;
        case Loss::smooth_l1: return ops::LossKind::smooth_l1;
    }
    return ops::LossKind::softmax_cross_entropy;
}

ops::Activation kernel_activation(OpKind op) {
    switch (op) {
        case OpKind::relu: return ops::Activation::relu;
        case OpKind::leaky_relu: return ops::Activation::leaky_relu;
        case OpKind::sigmoid: return ops::Activation::sigmoid;
        case OpKind::tanh: return ops::Activation::tanh;
        default: return ops::Activation::identity;
    }
}

// Uniform in [-bound, bound) from 24 random bits: the same numbers on every
// platform (std::uniform_real_distribution is implementation-defined).
float uniform(std::mt19937_64& rng, float bound) {
    const float u = float(rng() >> 40) * (1.0f / 16777216.0f);
    return (2.0f * u - 1.0f) * bound;
}

}  // namespace

Executor::Executor(Graph graph, const ExecutorOptions& options) : graph_(std::move(graph)), options_(options) {
    threads_ = omp_get_max_threads();
    const int64_t heads = int64_t(graph_.heads.size());
    const int64_t trained = graph_.parameter_count + (options_.learn_task_weights ? heads : 0);
    parameters_.assign(trained, 0.0f);
    gradients_.assign(trained, 0.0f);
    optimizer_state_.assign(options_.optimizer == OptimizerOptions::Kind::adamw ? 2 * trained : trained, 0.0f);
    state_.assign(graph_.state_count, 0.0f);

    // Activation arena: every tensor keeps its own slot (backward reads every
    // forward value); flatten shares its input's slot. Gradients mirror it.
    offsets_.assign(graph_.tensors.size(), 0);
    int64_t arena = 0;
    for (std::size_t t = 0; t < graph_.tensors.size(); ++t) {
        const Tensor& tensor = graph_.tensors[t];
        if (tensor.alias_of >= 0) {
            offsets_[t] = offsets_[tensor.alias_of];
            continue;
        }
        offsets_[t] = arena;
        arena += (tensor.shape.elements() + 15) / 16 * 16;  // 64-byte aligned slots
    }
    activations_.assign(arena, 0.0f);
    gradients_arena_.assign(arena, 0.0f);

    argmax_offsets_.assign(graph_.nodes.size(), -1);
    saved_offsets_.assign(graph_.nodes.size(), -1);
    int64_t argmax_count = 0, saved_count = 0;
    std::size_t workspace = 0;
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) {
        const Node& node = graph_.nodes[i];
        if (node.spec.op == OpKind::max_pool2d) {
            argmax_offsets_[i] = argmax_count;
            argmax_count += node.pool.output_size();
        }
        if (node.spec.op == OpKind::batch_norm) {
            saved_offsets_[i] = saved_count;
            saved_count += 2 * node.batch_norm.channels;
        }
        if (node.spec.op == OpKind::conv2d)
            workspace = std::max(workspace, cpu::conv2d_workspace_floats(node.conv, threads_));
    }
    argmax_.assign(argmax_count, 0);
    saved_statistics_.assign(saved_count, 0.0f);
    workspace_.assign(std::max<std::size_t>(workspace, 1), 0.0f);

    int64_t target_count = 0;
    for (int h = 0; h < heads; ++h) {
        target_offsets_.push_back(target_count);
        target_count += target_floats(h) * graph_.batch;
    }
    targets_.assign(target_count, 0.0f);
    masks_.assign(heads * graph_.batch, 1.0f);
    head_losses_.assign(heads, 0.0f);
    head_weights_.assign(heads, 0.0f);
    for (int h = 0; h < heads; ++h) {
        const Head& head = graph_.heads[h];
        ops::LossHead loss;
        loss.kind = kernel_loss(head.spec.loss);
        loss.width = head.width;
        loss.logits = value(head.output);
        loss.targets = targets(h);
        loss.mask = mask(h);
        loss.label_smoothing = head.spec.label_smoothing;
        loss.beta = head.spec.beta;
        loss.grad_logits = grad(head.output);
        loss_heads_.push_back(loss);
    }
    initialise_parameters();
}

int64_t Executor::target_floats(int head) const {
    const Head& h = graph_.heads[head];
    return h.spec.loss == Loss::softmax_cross_entropy ? 1 : h.width;
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
}

uint64_t Executor::dropout_seed(std::size_t node_index) const {
    return ops::mix64(options_.seed ^ ops::mix64(uint64_t(step_) * 0x100000001B3ull + node_index));
}

const float* Executor::head_output(int head) const { return activations_.data() + offsets_[graph_.heads[head].output]; }

std::span<const float> Executor::task_log_variances() const {
    if (!options_.learn_task_weights) return {};
    return std::span<const float>(parameters_).subspan(graph_.parameter_count);
}

void Executor::forward(bool training) {
    // The conv workspace holds one slice per OpenMP thread, sized when the
    // executor was built; a changed thread count would overrun it.
    if (omp_get_max_threads() != threads_)
        throw Error(fmt::format("executor: planned for {} OpenMP threads but now running with {}; build a new "
                                "executor after changing the thread count",
                                threads_, omp_get_max_threads()));
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) forward_node(graph_.nodes[i], training, i);
}

void Executor::forward_node(const Node& node, bool training, std::size_t index) {
    const float* x = value(node.inputs[0]);
    float* y = value(node.output);
    const int64_t count = graph_.tensors[node.output].shape.elements();
    switch (node.spec.op) {
        case OpKind::conv2d:
            cpu::conv2d_forward(node.conv, x, param(node.weight), param(node.bias), y, workspace_.data());
            break;
        case OpKind::max_pool2d:
            cpu::max_pool2d_forward(node.pool, x, y, argmax_.data() + argmax_offsets_[index]);
            break;
        case OpKind::avg_pool2d: cpu::avg_pool2d_forward(node.pool, x, y); break;
        case OpKind::dense: cpu::dense_forward(node.dense, x, param(node.weight), param(node.bias), y); break;
        case OpKind::relu:
        case OpKind::leaky_relu:
        case OpKind::sigmoid:
        case OpKind::tanh:
            cpu::activation_forward(kernel_activation(node.spec.op), node.spec.negative_slope, count, x, y);
            break;
        case OpKind::flatten: break;  // a view of its input
        case OpKind::batch_norm: {
            float* running_mean = state_.data() + graph_.state[node.running_mean].offset;
            float* running_var = state_.data() + graph_.state[node.running_var].offset;
            if (training) {
                float* saved = saved_statistics_.data() + saved_offsets_[index];
                cpu::batch_norm_forward_training(node.batch_norm, x, param(node.weight), param(node.bias), y, saved,
                                                 saved + node.batch_norm.channels, running_mean, running_var);
            } else {
                cpu::batch_norm_forward_inference(node.batch_norm, x, param(node.weight), param(node.bias),
                                                  running_mean, running_var, y);
            }
            break;
        }
        case OpKind::dropout:
            if (training)
                cpu::dropout_forward(count, node.spec.probability, dropout_seed(index), x, y);
            else
                std::copy(x, x + count, y);
            break;
        case OpKind::add:
            cpu::add_forward(count, x, value(node.inputs[1]), y);
            for (std::size_t k = 2; k < node.inputs.size(); ++k) cpu::accumulate(count, value(node.inputs[k]), y);
            break;
        case OpKind::concat: {
            const TensorShape& out = graph_.tensors[node.output].shape;
            int64_t offset = 0;
            for (int input : node.inputs) {
                const TensorShape& in = graph_.tensors[input].shape;
                cpu::concat_forward(out.batch, out.height * out.width, in.channels, offset, out.channels, value(input),
                                    y);
                offset += in.channels;
            }
            break;
        }
    }
}

double Executor::compute_loss() {
    std::fill(gradients_.begin(), gradients_.end(), 0.0f);
    std::fill(gradients_arena_.begin(), gradients_arena_.end(), 0.0f);
    const int heads = int(graph_.heads.size());
    const float* log_variance = parameters_.data() + graph_.parameter_count;
    for (int h = 0; h < heads; ++h) {
        float weight = graph_.heads[h].spec.weight;
        if (options_.learn_task_weights) weight *= std::exp(-log_variance[h]);
        head_weights_[h] = weight;
        loss_heads_[h].weight = weight;
    }
    cpu::multi_head_loss(graph_.batch, loss_heads_, head_losses_.data());
    double total = 0.0;
    for (int h = 0; h < heads; ++h) {
        total += double(head_weights_[h]) * head_losses_[h];
        if (options_.learn_task_weights) {
            // d/ds [exp(-s) w L + s] = 1 - exp(-s) w L
            total += log_variance[h];
            gradients_[graph_.parameter_count + h] = 1.0f - head_weights_[h] * head_losses_[h];
        }
    }
    return total;
}

void Executor::backward() {
    for (std::size_t i = graph_.nodes.size(); i-- > 0;) backward_node(graph_.nodes[i], i);
}

void Executor::backward_node(const Node& node, std::size_t index) {
    const float* gy = grad(node.output);
    // The model input needs no gradient; neither does a view of it.
    auto needs_grad = [&](int tensor) {
        const int base = graph_.tensors[tensor].alias_of >= 0 ? graph_.tensors[tensor].alias_of : tensor;
        return base != 0;
    };
    const int in = node.inputs[0];
    const float* x = value(in);
    const int64_t count = graph_.tensors[node.output].shape.elements();
    switch (node.spec.op) {
        case OpKind::conv2d:
            cpu::conv2d_backward_filter(node.conv, x, gy, param_grad(node.weight), param_grad(node.bias),
                                        workspace_.data());
            if (needs_grad(in)) cpu::conv2d_backward_data(node.conv, param(node.weight), gy, grad(in), workspace_.data());
            break;
        case OpKind::max_pool2d:
            if (needs_grad(in)) cpu::max_pool2d_backward(node.pool, gy, argmax_.data() + argmax_offsets_[index], grad(in));
            break;
        case OpKind::avg_pool2d:
            if (needs_grad(in)) cpu::avg_pool2d_backward(node.pool, gy, grad(in));
            break;
        case OpKind::dense:
            cpu::dense_backward_filter(node.dense, x, gy, param_grad(node.weight), param_grad(node.bias));
            if (needs_grad(in)) cpu::dense_backward_data(node.dense, param(node.weight), gy, grad(in));
            break;
        case OpKind::relu:
        case OpKind::leaky_relu:
        case OpKind::sigmoid:
        case OpKind::tanh:
            if (needs_grad(in))
                cpu::activation_backward(kernel_activation(node.spec.op), node.spec.negative_slope, count, x,
                                         value(node.output), gy, grad(in));
            break;
        case OpKind::flatten: break;  // shares its input's gradient slot
        case OpKind::batch_norm: {
            const float* saved = saved_statistics_.data() + saved_offsets_[index];
            // On the model input grad_x lands in the input's (unused) slot.
            cpu::batch_norm_backward(node.batch_norm, x, gy, param(node.weight), saved,
                                     saved + node.batch_norm.channels, grad(in), param_grad(node.weight),
                                     param_grad(node.bias));
            break;
        }
        case OpKind::dropout:
            if (needs_grad(in)) cpu::dropout_backward(count, node.spec.probability, dropout_seed(index), gy, grad(in));
            break;
        case OpKind::add:
            for (int input : node.inputs)
                if (needs_grad(input)) cpu::accumulate(count, gy, grad(input));
            break;
        case OpKind::concat: {
            const TensorShape& out = graph_.tensors[node.output].shape;
            int64_t offset = 0;
            for (int input : node.inputs) {
                const TensorShape& shape = graph_.tensors[input].shape;
                if (needs_grad(input))
                    cpu::concat_backward(out.batch, out.height * out.width, shape.channels, offset, out.channels, gy,
                                         grad(input));
                offset += shape.channels;
            }
            break;
        }
    }
}

void Executor::update(const OptimizerOptions& optimizer, float learning_rate) {
    if (optimizer.kind != options_.optimizer)
        throw Error("executor: the optimizer kind changed after the optimizer state was planned");
    ++step_;
    const int64_t model = graph_.parameter_count;
    const int64_t total = int64_t(parameters_.size());
    // Weight decay applies to the model's parameters, never to the learned
    // task log-variances (decay would pull every task weight towards 1).
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

Executor::Timing Executor::profile(int iterations, const OptimizerOptions& optimizer, float learning_rate) {
    using clock = std::chrono::steady_clock;
    auto ms_since = [](clock::time_point start) {
        return std::chrono::duration<double, std::milli>(clock::now() - start).count();
    };
    Timing timing;
    timing.forward_ms.assign(graph_.nodes.size(), 0.0);
    timing.backward_ms.assign(graph_.nodes.size(), 0.0);
    forward(true);  // warm-up: first touches of every buffer
    compute_loss();
    backward();
    update(optimizer, learning_rate);
    for (int it = 0; it < iterations; ++it) {
        const auto step_start = clock::now();
        for (std::size_t i = 0; i < graph_.nodes.size(); ++i) {
            const auto start = clock::now();
            forward_node(graph_.nodes[i], true, i);
            timing.forward_ms[i] += ms_since(start);
        }
        auto start = clock::now();
        compute_loss();
        timing.loss_ms += ms_since(start);
        for (std::size_t i = graph_.nodes.size(); i-- > 0;) {
            start = clock::now();
            backward_node(graph_.nodes[i], i);
            timing.backward_ms[i] += ms_since(start);
        }
        start = clock::now();
        update(optimizer, learning_rate);
        timing.update_ms += ms_since(start);
        timing.step_ms += ms_since(step_start);
    }
    const double n = std::max(iterations, 1);
    for (auto& t : timing.forward_ms) t /= n;
    for (auto& t : timing.backward_ms) t /= n;
    timing.loss_ms /= n;
    timing.update_ms /= n;
    timing.step_ms /= n;
    return timing;
}

Executor::MemoryPlan Executor::memory_plan() const {
    MemoryPlan plan;
    plan.parameters = int64_t(parameters_.size() + state_.size()) * 4;
    plan.gradients = int64_t(gradients_.size()) * 4;
    plan.optimizer_state = int64_t(optimizer_state_.size()) * 4;
    plan.activations = int64_t(activations_.size() + gradients_arena_.size() + saved_statistics_.size() +
                               targets_.size() + masks_.size()) * 4 +
                       int64_t(argmax_.size()) * 4;
    plan.workspace = int64_t(workspace_.size()) * 4;
    return plan;
}

}  // namespace ladon::engine
