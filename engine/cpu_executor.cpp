// The CPU executor: every node through ladon::cpu.
#include "engine/cpu_executor.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "ladon/error.hpp"

namespace ladon::engine {

CpuExecutor::CpuExecutor(Graph graph, const ExecutorOptions& options) : Executor(std::move(graph), options) {
    threads_ = omp_get_max_threads();
    plan_ = plan_arena(graph_);
    activations_.assign(plan_.arena, 0.0f);
    gradients_arena_.assign(plan_.arena, 0.0f);
    argmax_.assign(plan_.argmax_count, 0);
    saved_statistics_.assign(plan_.saved_count, 0.0f);
    std::size_t workspace = 0;
    for (const Node& node : graph_.nodes)
        if (node.spec.op == OpKind::conv2d)
            workspace = std::max(workspace, cpu::conv2d_workspace_floats(node.conv, threads_));
    workspace_.assign(std::max<std::size_t>(workspace, 1), 0.0f);
    int64_t widest_batch_norm = 0;
    for (const Node& node : graph_.nodes)
        if (node.spec.op == OpKind::batch_norm)
            widest_batch_norm = std::max(widest_batch_norm, node.batch_norm.channels);
    // Backward's three sums per channel and the count, twice (local, total).
    batch_norm_sums_.assign(std::size_t(2 * (3 * widest_batch_norm + 1)), 0.0);

    const int heads = int(graph_.heads.size());
    target_buffer_.assign(target_count_, 0.0f);
    mask_buffer_.assign(int64_t(heads) * graph_.batch, 1.0f);
    input_ = activations_.data();  // tensor 0 is the input, at offset 0
    targets_ = target_buffer_.data();
    masks_ = mask_buffer_.data();
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
}

const float* CpuExecutor::head_output(int head) const { return tensor_value(graph_.heads[head].output); }

void CpuExecutor::scale_head_gradient(int head, float scale) {
    float* grad_logits = grad(graph_.heads[head].output);
    const int64_t count = graph_.batch * graph_.heads[head].width;
    for (int64_t i = 0; i < count; ++i) grad_logits[i] *= scale;
}

void CpuExecutor::set_task_weight_gradient(int head, float value) { gradients_[graph_.parameter_count + head] = value; }

void CpuExecutor::forward(bool training) {
    // The conv workspace holds one slice per OpenMP thread, sized when the
    // executor was built; a changed thread count would overrun it.
    if (omp_get_max_threads() != threads_)
        throw Error(fmt::format("executor: planned for {} OpenMP threads but now running with {}; build a new "
                                "executor after changing the thread count",
                                threads_, omp_get_max_threads()));
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) forward_node(graph_.nodes[i], training, i);
}

void CpuExecutor::forward_node(const Node& node, bool training, std::size_t index) {
    const float* x = value(node.inputs[0]);
    float* y = value(node.output);
    const int64_t count = graph_.tensors[node.output].shape.elements();
    switch (node.spec.op) {
        case OpKind::conv2d:
            cpu::conv2d_forward(node.conv, x, param(node.weight), param(node.bias), y, workspace_.data());
            break;
        case OpKind::max_pool2d:
            cpu::max_pool2d_forward(node.pool, x, y, argmax_.data() + plan_.argmax_offsets[index]);
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
            if (training && batch_norm_sync_) {
                batch_norm_forward_synchronised(node, index, x, y);
            } else if (training) {
                float* saved = saved_statistics_.data() + plan_.saved_offsets[index];
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

double CpuExecutor::compute_loss() {
    std::fill(gradients_.begin(), gradients_.end(), 0.0f);
    std::fill(gradients_arena_.begin(), gradients_arena_.end(), 0.0f);
    compute_head_weights();
    for (std::size_t h = 0; h < graph_.heads.size(); ++h) loss_heads_[h].weight = head_weights_[h];
    cpu::multi_head_loss(graph_.batch, loss_heads_, head_losses_.data());
    return total_loss();
}

void CpuExecutor::backward() {
    gradients_final_before_backward();
    for (std::size_t i = graph_.nodes.size(); i-- > 0;) {
        backward_node(graph_.nodes[i], i);
        gradients_final_after_node(i);
    }
}

void CpuExecutor::backward_node(const Node& node, std::size_t index) {
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
            if (needs_grad(in)) cpu::max_pool2d_backward(node.pool, gy, argmax_.data() + plan_.argmax_offsets[index], grad(in));
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
            if (batch_norm_sync_) {
                batch_norm_backward_synchronised(node, index, x, gy);
                break;
            }
            const float* saved = saved_statistics_.data() + plan_.saved_offsets[index];
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

// Each collective carries this rank's count of values per channel after the
// sums, so the total count comes out of the same sum (ranks may hold unequal
// batches) and is exact in a double up to 2^53.
void CpuExecutor::batch_norm_forward_synchronised(const Node& node, std::size_t index, const float* x, float* y) {
    const ops::BatchNormShape& shape = node.batch_norm;
    const int64_t channels = shape.channels;
    double* sums = batch_norm_sums_.data();
    double* squared_deviations = sums + channels + 1;
    cpu::batch_norm_forward_sums(shape, x, sums);
    sums[channels] = double(shape.batch * shape.spatial);
    batch_norm_sync_(sums, channels + 1);
    const int64_t count = int64_t(sums[channels]);
    cpu::batch_norm_forward_squared_deviations(shape, count, x, sums, squared_deviations);
    batch_norm_sync_(squared_deviations, channels);
    float* saved = saved_statistics_.data() + plan_.saved_offsets[index];
    float* running_mean = state_.data() + graph_.state[node.running_mean].offset;
    float* running_var = state_.data() + graph_.state[node.running_var].offset;
    cpu::batch_norm_forward_apply(shape, count, x, param(node.weight), param(node.bias), sums, squared_deviations, y,
                                  saved, saved + channels, running_mean, running_var);
}

void CpuExecutor::batch_norm_backward_synchronised(const Node& node, std::size_t index, const float* x,
                                                   const float* grad_y) {
    const ops::BatchNormShape& shape = node.batch_norm;
    const int64_t sums_count = 3 * shape.channels;
    const float* saved = saved_statistics_.data() + plan_.saved_offsets[index];
    double* local = batch_norm_sums_.data();
    double* total = local + sums_count + 1;
    cpu::batch_norm_backward_sums(shape, x, grad_y, saved, local);
    local[sums_count] = double(shape.batch * shape.spatial);
    std::copy(local, local + sums_count + 1, total);
    batch_norm_sync_(total, sums_count + 1);
    // d gamma and d beta take this rank's sums: they are averaged over the
    // ranks with every other parameter gradient.
    cpu::batch_norm_backward_apply(shape, int64_t(total[sums_count]), x, grad_y, param(node.weight), saved,
                                   saved + shape.channels, local, total, grad(node.inputs[0]),
                                   param_grad(node.weight), param_grad(node.bias));
}

void CpuExecutor::update(const OptimizerOptions& optimizer, float learning_rate) {
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

Executor::Timing CpuExecutor::profile(int iterations, const OptimizerOptions& optimizer, float learning_rate) {
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

Executor::MemoryPlan CpuExecutor::memory_plan() const {
    MemoryPlan plan;
    plan.parameters = int64_t(parameters_.size() + state_.size()) * 4;
    plan.gradients = int64_t(gradients_.size()) * 4;
    plan.optimizer_state = int64_t(optimizer_state_.size()) * 4;
    plan.activations = int64_t(activations_.size() + gradients_arena_.size() + saved_statistics_.size() +
                               target_buffer_.size() + mask_buffer_.size()) * 4 +
                       int64_t(argmax_.size()) * 4;
    plan.workspace = int64_t(workspace_.size()) * 4;
    return plan;
}

}  // namespace ladon::engine
