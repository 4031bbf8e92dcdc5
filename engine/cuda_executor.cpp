// The CUDA executor's steps: every node through its op's CUDA functions
// (engine/ops/) on one stream, the fused loss and update, and one wait per
// training step (a captured CUDA graph after the first).
#include <algorithm>
#include <cmath>
#include <span>
#include <utility>

#include "engine/cuda_executor_impl.hpp"
#include "engine/weighting/cuda_weighting.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/multi_head_loss.hpp"
#include "kernels/cuda/optimizer.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {

using namespace cuda_executor_detail;

std::string CudaExecutor::backend_name() const {
#if defined(LADON_EMU)
    return "cuda (emulated)";
#else
    return fmt::format("cuda:{} ({})", impl_->device, impl_->device_name);
#endif
}

const std::vector<std::vector<int>>& CudaExecutor::fused_head_groups() const { return impl_->fusion.group_heads; }

// The batch's parts, copied in on the stream straight from its (pinned)
// memory: once per step, outside any captured graph, so each step may bring
// another Batch.
void CudaExecutor::load_input(const Batch& batch) {
    Impl& m = *impl_;
    check(cudaMemcpyAsync(m.activations, batch.input().data(), batch.input().size_bytes(), cudaMemcpyHostToDevice,
                          m.stream.get()),
          "copying the batch's inputs");
    m.outputs_current = false;
}

void CudaExecutor::load_labels(const Batch& batch) {
    Impl& m = *impl_;
    if (!batch.all_targets().empty())
        check(cudaMemcpyAsync(m.targets, batch.all_targets().data(), batch.all_targets().size_bytes(),
                              cudaMemcpyHostToDevice, m.stream.get()),
              "copying the batch's targets");
    if (!batch.all_masks().empty())
        check(cudaMemcpyAsync(m.masks, batch.all_masks().data(), batch.all_masks().size_bytes(), cudaMemcpyHostToDevice,
                              m.stream.get()),
              "copying the batch's masks");
}

// train_step's `next`: its parts copied on the copy stream into next_batch,
// after the move that last emptied it, while this step's kernels run.
void CudaExecutor::stage_next(const Batch& next) {
    Impl& m = *impl_;
    const cudaStream_t c = m.copy_stream.get();
    check(cudaStreamWaitEvent(c, m.next_free.get(), 0), "ordering the next batch's copy");
    float* to = m.next_batch;
    for (std::span<const float> part : {next.input(), next.all_targets(), next.all_masks()}) {
        if (!part.empty())
            check(cudaMemcpyAsync(to, part.data(), part.size_bytes(), cudaMemcpyHostToDevice, c),
                  "copying the next batch in");
        to += part.size();
    }
    check(cudaEventRecord(m.next_copied.get(), c), "cudaEventRecord (the next batch)");
    m.staged = &next;
}

// A batch staged by the step before: moved into place on the device (after
// its copy), instead of copied from the host. False if it was not staged.
bool CudaExecutor::load_staged(const Batch& batch) {
    Impl& m = *impl_;
    const bool staged = m.staged == &batch;
    if (m.staged != nullptr && !staged)  // a batch staged but not trained on: its copy must end before it may die
        check(cudaEventSynchronize(m.next_copied.get()), "the next batch's copy");
    m.staged = nullptr;
    if (!staged) return false;
    const cudaStream_t s = m.stream.get();
    check(cudaStreamWaitEvent(s, m.next_copied.get(), 0), "waiting for the next batch's copy");
    const float* from = m.next_batch;
    const std::pair<float*, std::size_t> parts[] = {{m.activations, batch.input().size()},
                                                    {m.targets, batch.all_targets().size()},
                                                    {m.masks, batch.all_masks().size()}};
    for (const auto& [to, floats] : parts) {
        if (floats > 0)
            check(cudaMemcpyAsync(to, from, floats * sizeof(float), cudaMemcpyDeviceToDevice, s),
                  "moving the staged batch into place");
        from += floats;
    }
    check(cudaEventRecord(m.next_free.get(), s), "cudaEventRecord (the staged batch moved)");
    m.outputs_current = false;
    return true;
}

// This step's dropout seeds and, for a task weighting that draws per step,
// its base weights: written by the host when the step is enqueued (or, for a
// graph, before each replay), copied in by the step, read by the kernels.
void CudaExecutor::write_step_values() {
    Impl& m = *impl_;
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) m.seeds_host[i] = dropout_seed(i);
    if (weighting_.step_base) {
        const std::span<const float> base = step_base_weights();
        std::copy(base.begin(), base.end(), m.base_weights_host);
    }
}

void CudaExecutor::upload_seeds() {
    Impl& m = *impl_;
    write_step_values();
    check(cudaMemcpyAsync(m.seeds_device, m.seeds_host, graph_.nodes.size() * sizeof(uint64_t), cudaMemcpyHostToDevice,
                          m.stream.get()),
          "copying the dropout seeds");
    if (weighting_.step_base && !graph_.heads.empty())
        check(cudaMemcpyAsync(m.base_weights, m.base_weights_host, graph_.heads.size() * sizeof(float),
                              cudaMemcpyHostToDevice, m.stream.get()),
              "copying the step's task weights");
    m.outputs_current = false;
}

void CudaExecutor::run_forward(bool training) {
    upload_seeds();
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) forward_node(i, training);
}

CudaOpStep CudaExecutor::Impl::op_step(const Graph& graph_, std::size_t i, bool training, uint64_t seed) const {
    const Impl& m = *this;
    CudaOpStep step{{m.buffers, graph_.nodes[i], i, training, seed}};
    step.stream = m.stream.get();
    step.fused_into_producer = m.fusion.fused_activation[i];
    step.dropout_seeds = m.seeds_device;
    step.matmul = m.matmul;
    step.workspace_bytes = m.workspace_bytes;
    step.first_gradient_write = m.first_gradient_write[i];
    if (const int fused = m.fusion.epilogue[i]; fused >= 0) {
        // The layer writes the activation's output through its epilogue.
        const Node& next = graph_.nodes[fused];
        step.epilogue = node_activation(next);
        step.epilogue_slope = next.spec.negative_slope;
        step.epilogue_output = m.activations + m.plan.offsets[next.output];
        if (cuda_op_definition(graph_.nodes[i].spec.op).backward_takes_epilogue)
            step.epilogue_gradient = m.gradient_arena + m.plan.offsets[next.output];
    }
    step.backward_in_producer = i > 0 && m.fusion.fused_activation[i] &&
                                cuda_op_definition(graph_.nodes[i - 1].spec.op).backward_takes_epilogue;
    return step;
}

void CudaExecutor::forward_node(std::size_t i, bool training) {
    const Node& node = graph_.nodes[i];
    const int group = impl_->fusion.group_of_node[i];
    const cudaError_t e = group >= 0 ? impl_->forward_group(graph_, i, group)
                                     : cuda_op_definition(node.spec.op).forward(
                                           impl_->op_step(graph_, i, training, dropout_seed(i)));
    if (e != cudaSuccess)
        throw Error(fmt::format("CUDA backend: forward of layer '{}' ({}): {}", node.name, to_string(node.spec.op),
                                describe(e)));
}

// One GEMM for the whole head group into [batch, sum of widths], at its
// first node, then each head's columns to its own output.
cudaError_t CudaExecutor::Impl::forward_group(const Graph& graph_, std::size_t i, int g) {
    Impl& m = *this;
    const HeadGroup& group = graph_.head_groups[g];
    if (int(i) != group.nodes.front()) return cudaSuccess;
    const cudaStream_t s = m.stream.get();
    const std::size_t f = sizeof(float);
    const ops::DenseShape shape{graph_.batch, group.in_features, group.out_features};
    const float* x = m.activations + m.plan.offsets[graph_.nodes[i].inputs[0]];
    cudaError_t e = cuda::dense_forward(shape, x, m.parameters + group.weight_offset,
                                        group.bias_offset >= 0 ? m.parameters + group.bias_offset : nullptr,
                                        ops::Activation::identity, 0.0f, m.group_scratch, s, m.matmul,
                                        m.gemm_scratch());
    int64_t column = 0;
    for (int n : group.nodes) {
        if (e != cudaSuccess) break;
        const int64_t width = graph_.nodes[n].dense.out_features;
        e = cudaMemcpy2DAsync(m.activations + m.plan.offsets[graph_.nodes[n].output], width * f,
                              m.group_scratch + column, group.out_features * f, width * f, graph_.batch,
                              cudaMemcpyDeviceToDevice, s);
        column += width;
    }
    return e;
}

void CudaExecutor::enqueue_loss() {
    Impl& m = *impl_;
    const int heads = int(graph_.heads.size());
    check(cudaMemsetAsync(m.gradients, 0, gradients_.size() * sizeof(float), m.stream.get()), "zeroing the gradients");
    // The activation gradients need no zeroing: each slot's first write stores
    // (Impl::first_gradient_write, zero_before_backward).
    const CudaTaskWeightingMethod& weighting = cuda_task_weighting_method(weighting_.kind);
    const CudaWeightingStep step{heads,          m.base_weights,  m.parameters + graph_.parameter_count,
                                 m.heads,        m.head_weights,  m.head_losses,
                                 m.gradients + graph_.parameter_count, m.stream.get()};
    check(weighting.weights(step), "the task weights");
    check(cuda::multi_head_loss(graph_.batch, m.heads, heads, m.head_losses, m.loss_scratch, m.stream.get()),
          "the fused multi-head loss");
    if (weighting.gradients) check(weighting.gradients(step), "the task weights' gradients");
}

double CudaExecutor::run_loss() {
    Impl& m = *impl_;
    const int heads = int(graph_.heads.size());
    enqueue_loss();
    // The losses (and learned weights) to the host, and wait for them.
    enqueue_loss_copies();
    check(cudaStreamSynchronize(m.stream.get()), "the loss");
    std::copy(m.losses_host, m.losses_host + heads, head_losses_.begin());
    std::copy(m.weights_host, m.weights_host + heads, head_weights_.begin());
    // total_loss() writes the learned values' gradients into the host mirror
    // too; the device has its own.
    return total_loss();
}

void CudaExecutor::backward_node(std::size_t i) {
    Impl& m = *impl_;
    const Node& node = graph_.nodes[i];
    const int group = m.fusion.group_of_node[i];
    cudaError_t e = cudaSuccess;
    for (const int tensor : m.zero_before_backward[i])
        if (e == cudaSuccess)
            e = cudaMemsetAsync(m.gradient_arena + m.plan.offsets[tensor], 0,
                                std::size_t(graph_.tensors[tensor].shape.elements()) * sizeof(float), m.stream.get());
    if (e == cudaSuccess)
        e = group >= 0 ? m.backward_group(graph_, i, group)
                       : cuda_op_definition(node.spec.op).backward(m.op_step(graph_, i, true, dropout_seed(i)));
    if (e != cudaSuccess)
        throw Error(fmt::format("CUDA backend: backward of layer '{}' ({}): {}", node.name, to_string(node.spec.op),
                                describe(e)));
}

// At the group's first node, which backward reaches last: every later node
// of every head in the group has then put its gradient into the heads'
// outputs. Gathered into [batch, sum of widths], then one GEMM each for the
// weights' and the input's gradients.
cudaError_t CudaExecutor::Impl::backward_group(const Graph& graph_, std::size_t i, int g) {
    Impl& m = *this;
    const HeadGroup& group = graph_.head_groups[g];
    if (int(i) != group.nodes.front()) return cudaSuccess;
    const cudaStream_t s = m.stream.get();
    const std::size_t f = sizeof(float);
    const OpStep step{m.buffers, graph_.nodes[i], i, true, 0};
    float* gathered = m.group_scratch + graph_.batch * group.out_features;
    cudaError_t e = cudaSuccess;
    int64_t column = 0;
    for (int n : group.nodes) {
        if (e != cudaSuccess) break;
        const int64_t width = graph_.nodes[n].dense.out_features;
        e = cudaMemcpy2DAsync(gathered + column, group.out_features * f, step.grad(graph_.nodes[n].output), width * f,
                              width * f, graph_.batch, cudaMemcpyDeviceToDevice, s);
        column += width;
    }
    const ops::DenseShape shape{graph_.batch, group.in_features, group.out_features};
    const int in = graph_.nodes[i].inputs[0];
    if (e == cudaSuccess)
        e = cuda::dense_backward_filter(shape, step.value(in), gathered, m.gradients + group.weight_offset,
                                        group.bias_offset >= 0 ? m.gradients + group.bias_offset : nullptr, s, m.matmul,
                                        m.gemm_scratch());
    if (e == cudaSuccess && step.needs_grad(in))
        e = cuda::dense_backward_data(shape, m.parameters + group.weight_offset, gathered, step.grad(in), s, m.matmul,
                                      m.gemm_scratch(), !(m.first_gradient_write[i] & 1u));
    return e;
}

void CudaExecutor::write_step_scalars(const OptimizerOptions& optimizer, float learning_rate, int64_t step) {
    Impl& m = *impl_;
    for (int run = 0; run < 2; ++run) {
        const float weight_decay = run == 0 ? optimizer.weight_decay : 0.0f;
        float* scalars = m.scalars_host + run * cuda::kStepScalars;
        if (optimizer.kind == OptimizerOptions::Kind::sgd)
            cuda::sgd_step_scalars({learning_rate, optimizer.momentum, weight_decay, optimizer.nesterov}, scalars);
        else
            cuda::adamw_step_scalars(
                {learning_rate, optimizer.beta1, optimizer.beta2, optimizer.epsilon, weight_decay, step}, scalars);
    }
}

void CudaExecutor::enqueue_update(const OptimizerOptions& optimizer, float learning_rate, int64_t step, bool gated) {
    // The model's parameters with weight decay, the task weighting's learned values
    // without; each run's per-step scalars through device memory (see
    // Impl::scalars_host), gated on the step's losses in a training step.
    Impl& m = *impl_;
    const int64_t model = graph_.parameter_count, total = int64_t(parameters_.size());
    const float* gate = gated ? m.head_losses : nullptr;
    const int gate_count = gated ? int(graph_.heads.size()) : 0;
    write_step_scalars(optimizer, learning_rate, step);
    check(cudaMemcpyAsync(m.scalars_device, m.scalars_host, 2 * cuda::kStepScalars * sizeof(float),
                          cudaMemcpyHostToDevice, m.stream.get()),
          "copying the optimizer's step scalars");
    const bool is_sgd = optimizer.kind == OptimizerOptions::Kind::sgd;
    for (int run = 0; run < 2; ++run) {
        const int64_t begin = run == 0 ? 0 : model;
        const int64_t count = run == 0 ? model : total - model;
        if (count == 0) continue;
        const float* scalars = m.scalars_device + run * cuda::kStepScalars;
        const float weight_decay = run == 0 ? optimizer.weight_decay : 0.0f;
        const ops::SgdParameters sgd{learning_rate, optimizer.momentum, weight_decay, optimizer.nesterov};
        const ops::AdamWParameters adamw{learning_rate,     optimizer.beta1, optimizer.beta2,
                                         optimizer.epsilon, weight_decay,    step};
        if (is_sgd)
            check(cuda::sgd_update(count, sgd, m.parameters + begin, m.gradients + begin, m.optimizer_state + begin,
                                   m.stream.get(), gate, gate_count, scalars),
                  "the SGD update");
        else
            check(cuda::adamw_update(count, adamw, m.parameters + begin, m.gradients + begin, m.optimizer_state + begin,
                                     m.optimizer_state + total + begin, m.stream.get(), gate, gate_count, scalars),
                  "the AdamW update");
    }
}

void CudaExecutor::update(const OptimizerOptions& optimizer, float learning_rate) {
    if (optimizer.kind != options_.optimizer)
        throw Error("executor: the optimizer kind changed after the optimizer state was planned");
    ++step_;
    enqueue_update(optimizer, learning_rate, step_, false);
}

void CudaExecutor::enqueue_step(const OptimizerOptions& optimizer, float learning_rate) {
    run_forward(true);
    enqueue_loss();
    backward();
    // The update skips itself on the device when a loss is not finite.
    enqueue_update(optimizer, learning_rate, step_ + 1, true);
    enqueue_loss_copies();  // the outputs only when asked for (head_output)
}

bool CudaExecutor::train_step(const Batch& batch, const OptimizerOptions& optimizer, float learning_rate,
                              const std::function<void(Executor&)>& gradients_ready, const Batch* next) {
    if (optimizer.kind != options_.optimizer)
        throw Error("executor: the optimizer kind changed after the optimizer state was planned");
    Impl& m = *impl_;
    const int heads = int(graph_.heads.size());
    check_batch(batch);
    if (next != nullptr) check_batch(*next);
    if (!load_staged(batch)) {
        load_input(batch);
        load_labels(batch);
    }
    if (gradients_ready) {
        // The hook works on the host's view (e.g. an MPI allreduce): the one
        // kind of step that waits in the middle, and is never captured.
        run_forward(true);
        enqueue_loss();
        backward();
        check(cudaMemcpyAsync(gradients_.data(), m.gradients, gradients_.size() * sizeof(float), cudaMemcpyDeviceToHost,
                              m.stream.get()),
              "copying the gradients");
        check(cudaStreamSynchronize(m.stream.get()), "the backward pass");
        gradients_ready(*this);
        check(cudaMemcpyAsync(m.gradients, gradients_.data(), gradients_.size() * sizeof(float), cudaMemcpyHostToDevice,
                              m.stream.get()),
              "copying the gradients back");
        enqueue_update(optimizer, learning_rate, step_ + 1, true);
        enqueue_loss_copies();
        ++m.plain_steps;
    } else if (!m.use_graphs || m.plain_steps == 0) {
        // Plain launches: without graphs, and the warm-up step before capture.
        enqueue_step(optimizer, learning_rate);
        ++m.plain_steps;
    } else {
        if (!m.captured.captured()) {
            // Capture the step once (the batch's copies stay outside it).
            // Enqueueing writes this step's values to pinned memory; the
            // graph copies them in when it runs.
            m.captured.capture(m.stream.get(), [&] { enqueue_step(optimizer, learning_rate); });
        } else {
            // Replay: refresh the values the graph copies in.
            write_step_values();
            write_step_scalars(optimizer, learning_rate, step_ + 1);
        }
        m.captured.launch(m.stream.get());
    }
    if (next != nullptr && next != &batch) stage_next(*next);  // copied while this step runs
    check(cudaStreamSynchronize(m.stream.get()), "the training step");
    // The step's outputs stay on the device until head_output asks: training
    // reads none, so no step copies them (issue 14).
    m.outputs_current = false;
    std::copy(m.losses_host, m.losses_host + heads, head_losses_.begin());
    std::copy(m.weights_host, m.weights_host + heads, head_weights_.begin());
    const bool finite = losses_finite();
    if (finite) ++step_;
    return finite;
}

int64_t CudaExecutor::graph_replays() const { return impl_->captured.launches(); }

void CudaExecutor::enqueue_loss_copies() const {
    const Impl& m = *impl_;
    const std::size_t heads = graph_.heads.size();
    check(cudaMemcpyAsync(m.losses_host, m.head_losses, heads * sizeof(float), cudaMemcpyDeviceToHost, m.stream.get()),
          "copying the losses");
    check(cudaMemcpyAsync(m.weights_host, m.head_weights, heads * sizeof(float), cudaMemcpyDeviceToHost, m.stream.get()),
          "copying the task weights");
}

void CudaExecutor::enqueue_output_copies() const {
    const Impl& m = *impl_;
    for (std::size_t h = 0; h < graph_.heads.size(); ++h)
        check(cudaMemcpyAsync(m.outputs_host + m.output_offsets[h],
                              m.activations + m.plan.offsets[graph_.heads[h].output],
                              std::size_t(graph_.batch * graph_.heads[h].width) * sizeof(float), cudaMemcpyDeviceToHost,
                              m.stream.get()),
              "copying the head outputs");
}

const float* CudaExecutor::head_output(int head) const {
    const Impl& m = *impl_;
    if (!m.outputs_current) {
        enqueue_output_copies();
        check(cudaStreamSynchronize(m.stream.get()), "the forward pass");
        m.outputs_current = true;
    }
    return m.outputs_host + m.output_offsets[head];
}

void CudaExecutor::scale_head_gradient(int head, float scale) {
    Impl& m = *impl_;
    const Head& h = graph_.heads[head];
    check(cuda::scale(graph_.batch * h.width, scale, m.gradient_arena + m.plan.offsets[h.output], m.stream.get()),
          "weighting a head's gradient");
}

void CudaExecutor::upload_task_weighting_gradients() {
    // From the host mirror, which outlives the copy; a data-parallel step is
    // never captured.
    Impl& m = *impl_;
    const std::size_t learned = gradients_.size() - std::size_t(graph_.parameter_count);
    check(cudaMemcpyAsync(m.gradients + graph_.parameter_count, gradients_.data() + graph_.parameter_count,
                          learned * sizeof(float), cudaMemcpyHostToDevice, m.stream.get()),
          "copying the task weighting's gradients");
}

// profile()'s clock: the stream's time between two events, waiting for the
// second (the waits are the profile's, not a step's).
double CudaExecutor::time_ms(const std::function<void()>& work) {
    Impl& m = *impl_;
    if (!m.profile_start) {
        m.profile_start = cuda::Event(cudaEventDefault, "CUDA backend: cudaEventCreate");
        m.profile_stop = cuda::Event(cudaEventDefault, "CUDA backend: cudaEventCreate");
    }
    check(cudaEventRecord(m.profile_start.get(), m.stream.get()), "cudaEventRecord");
    work();
    check(cudaEventRecord(m.profile_stop.get(), m.stream.get()), "cudaEventRecord");
    check(cudaEventSynchronize(m.profile_stop.get()), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, m.profile_start.get(), m.profile_stop.get()), "cudaEventElapsedTime");
    return double(ms);
}

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
