// The CUDA executor: the memory plan in one device allocation, every node
// through ladon::cuda on one stream, and one wait per training step.
#include "engine/cuda_executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "engine/fusion.hpp"
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/device_memory.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/multi_head_loss.hpp"
#include "kernels/cuda/optimizer.hpp"
#include "kernels/cuda/task_weights.hpp"
#include "ladon/device.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
#if defined(LADON_EMU)
inline namespace emulated {
#else
inline namespace device {
#endif

namespace {

using cuda::describe;

// Every failure reads "CUDA backend: what: cudaErrorX: text".
void check(cudaError_t error, const char* what) {
    if (error != cudaSuccess) cuda::fail(error, fmt::format("CUDA backend: {}", what));
}

std::string mib(std::size_t bytes) { return fmt::format("{:.1f} MiB", double(bytes) / (1024.0 * 1024.0)); }

// Regions of the one device allocation, each 256-byte aligned like cudaMalloc's.
struct Layout {
    struct Region {
        const char* name;
        std::size_t bytes;
        std::size_t offset = 0;
    };
    std::vector<Region> regions;
    std::size_t total = 0;
    int add(const char* name, std::size_t bytes) {
        total = (total + 255) / 256 * 256;
        regions.push_back({name, bytes, total});
        total += bytes;
        return int(regions.size()) - 1;
    }
};

}  // namespace

// Declaration order is release order reversed: the graph goes before the
// memory it names, the stream last.
struct CudaExecutor::Impl {
    int device = 0;
    std::string device_name;
    cuda::Stream stream;
    cuda::DeviceBuffer<unsigned char> memory;  // the one device allocation
    Layout layout;
    ArenaPlan plan;

    // Device buffers (views into `memory`).
    float *parameters = nullptr, *gradients = nullptr, *optimizer_state = nullptr, *state = nullptr;
    float *activations = nullptr, *gradient_arena = nullptr, *saved = nullptr, *workspace = nullptr;
    int32_t* argmax = nullptr;
    float *targets = nullptr, *masks = nullptr, *head_losses = nullptr, *head_weights = nullptr;
    float *base_weights = nullptr, *group_scratch = nullptr;
    ops::LossHead* heads = nullptr;
    void* loss_scratch = nullptr;
    std::size_t workspace_bytes = 0, loss_scratch_bytes = 0;

    // Pinned host memory: the batch in, the step's results out.
    cuda::PinnedBuffer<float> pinned;
    float *input_host = nullptr, *targets_host = nullptr, *masks_host = nullptr;
    float *losses_host = nullptr, *weights_host = nullptr, *outputs_host = nullptr;
    std::vector<int64_t> output_offsets;  // per head, floats into outputs_host
    int64_t input_floats = 0, mask_floats = 0, output_floats = 0;
    mutable bool outputs_current = false;

    // Each step's values that change from step to step (dropout seeds per
    // node; the optimizer's folded scalars for the model and the
    // log-variances), written to pinned memory by the host and copied to the
    // device at the start of the step, so a captured graph replays with them.
    cuda::PinnedBuffer<unsigned char> pinned_step;
    uint64_t* seeds_host = nullptr;  // in pinned_step, [nodes]
    float* scalars_host = nullptr;   // in pinned_step, [2 * kStepScalars]
    uint64_t* seeds_device = nullptr;
    float* scalars_device = nullptr;

    // The captured training step (use_graphs: after one plain step).
    bool use_graphs = true;
    cuda::GraphExec graph;
    int64_t plain_steps = 0, graph_replays = 0;

    FusionPlan fusion;  // engine/fusion.hpp
    OpBuffers buffers;  // views of the device buffers, for the ops' CUDA functions

    // A node's step for its op's CUDA functions (engine/ops/cuda_op.hpp).
    CudaOpStep op_step(const Graph& graph, std::size_t i, bool training, uint64_t seed) const;
    // A head group's GEMMs, in place of its dense nodes' own.
    cudaError_t forward_group(const Graph& graph, std::size_t i, int g);
    cudaError_t backward_group(const Graph& graph, std::size_t i, int g);
    void open_device(int index);
};

void CudaExecutor::Impl::open_device(int index) {
    int count = 0;
    const cudaError_t counted = cudaGetDeviceCount(&count);
    if (counted != cudaSuccess || count == 0)
        throw Error(fmt::format("CUDA backend: no CUDA device ({})",
                                counted != cudaSuccess ? describe(counted) : "cudaGetDeviceCount found none"));
    if (index < 0 || index >= count)
        throw Error(
            fmt::format("CUDA backend: device cuda:{} does not exist; this machine has {} (cuda:0 to "
                        "cuda:{})",
                        index, count, count - 1));
    device = index;
    check(cudaSetDevice(index), "cudaSetDevice");
    cudaDeviceProp properties{};
    check(cudaGetDeviceProperties(&properties, index), "cudaGetDeviceProperties");
    device_name = properties.name;
    stream = cuda::Stream(cudaStreamNonBlocking, "CUDA backend: cudaStreamCreate");
}

CudaExecutor::CudaExecutor(Graph graph, const ExecutorOptions& options, int device)
    : Executor(std::move(graph), options), impl_(std::make_unique<Impl>()) {
    // A throw from here on releases what impl_ holds so far.
    impl_->open_device(device);
    plan_fusions();
    allocate_device_memory();
    allocate_pinned_memory();
    upload_loss_descriptors();
    push_state();
}

void CudaExecutor::plan_fusions() {
    impl_->fusion = engine::plan_fusions(graph_);
    // A head group's GEMM writes every head's weight and bias gradients at
    // the group's first node (see backward_group).
    for (const HeadGroup& group : graph_.head_groups)
        for (int n : group.nodes)
            for (int slice : {graph_.nodes[n].weight, graph_.nodes[n].bias})
                if (slice >= 0) set_gradient_writer(slice, group.nodes.front());
}

void CudaExecutor::allocate_device_memory() {
    // The memory plan, in one allocation.
    Impl& m = *impl_;
    m.plan = plan_arena(graph_);
    for (const Node& node : graph_.nodes)
        if (const auto bytes = cuda_op_definition(node.spec.op).workspace_bytes)
            m.workspace_bytes = std::max(m.workspace_bytes, bytes(node));
    const int heads = int(graph_.heads.size());
    m.loss_scratch_bytes = cuda::multi_head_loss_scratch_bytes(graph_.batch, heads);
    int64_t group_scratch = 0;
    for (const HeadGroup& group : graph_.head_groups)
        group_scratch = std::max(group_scratch, graph_.batch * group.out_features);
    const std::size_t f = sizeof(float);
    Layout& layout = m.layout;
    const int r_parameters = layout.add("parameters", parameters_.size() * f);
    const int r_gradients = layout.add("gradients", gradients_.size() * f);
    const int r_optimizer = layout.add("optimizer state", optimizer_state_.size() * f);
    const int r_state = layout.add("batch-norm running statistics", state_.size() * f);
    const int r_activations = layout.add("activations", std::size_t(m.plan.arena) * f);
    const int r_gradient_arena = layout.add("activation gradients", std::size_t(m.plan.arena) * f);
    const int r_argmax = layout.add("max-pool argmax", std::size_t(m.plan.argmax_count) * sizeof(int32_t));
    const int r_saved = layout.add("batch-norm statistics", std::size_t(m.plan.saved_count) * f);
    const int r_workspace = layout.add("conv workspace", m.workspace_bytes);
    const int r_targets = layout.add("targets", std::size_t(target_count_) * f);
    const int r_masks = layout.add("masks", std::size_t(heads) * graph_.batch * f);
    const int r_heads = layout.add("loss descriptors", std::size_t(heads) * sizeof(ops::LossHead));
    const int r_losses = layout.add("head losses", 3 * std::size_t(heads) * f);
    const int r_loss_scratch = layout.add("loss scratch", m.loss_scratch_bytes);
    const int r_group = layout.add("head group outputs", 2 * std::size_t(group_scratch) * f);
    const int r_seeds = layout.add("dropout seeds", graph_.nodes.size() * sizeof(uint64_t));
    const int r_scalars = layout.add("optimizer scalars", 2 * cuda::kStepScalars * f);
    cudaError_t allocated = cudaSuccess;
    m.memory = cuda::DeviceBuffer<unsigned char>::try_allocate(layout.total, allocated);
    if (allocated != cudaSuccess) {
        cudaGetLastError();
        std::size_t free_bytes = 0, total_bytes = 0;
        cudaMemGetInfo(&free_bytes, &total_bytes);
        cudaGetLastError();
        std::string parts;
        for (const auto& region : layout.regions)
            if (region.bytes >= layout.total / 20) parts += fmt::format(", {} {}", region.name, mib(region.bytes));
        throw Error(
            fmt::format("CUDA backend: out of memory on cuda:{} ({}) allocating the executor's {} for "
                        "batch {}{}; {} of {} free ({}); lower training.batch_size",
                        m.device, m.device_name, mib(layout.total), graph_.batch, parts, mib(free_bytes),
                        mib(total_bytes), describe(allocated)));
    }
    auto at = [&](int region) { return m.memory.get() + layout.regions[region].offset; };
    m.parameters = reinterpret_cast<float*>(at(r_parameters));
    m.gradients = reinterpret_cast<float*>(at(r_gradients));
    m.optimizer_state = reinterpret_cast<float*>(at(r_optimizer));
    m.state = reinterpret_cast<float*>(at(r_state));
    m.activations = reinterpret_cast<float*>(at(r_activations));
    m.gradient_arena = reinterpret_cast<float*>(at(r_gradient_arena));
    m.argmax = reinterpret_cast<int32_t*>(at(r_argmax));
    m.saved = reinterpret_cast<float*>(at(r_saved));
    m.workspace = m.workspace_bytes ? reinterpret_cast<float*>(at(r_workspace)) : nullptr;
    m.targets = reinterpret_cast<float*>(at(r_targets));
    m.masks = reinterpret_cast<float*>(at(r_masks));
    m.heads = reinterpret_cast<ops::LossHead*>(at(r_heads));
    m.head_losses = reinterpret_cast<float*>(at(r_losses));
    m.head_weights = m.head_losses + heads;
    m.base_weights = m.head_weights + heads;
    m.loss_scratch = at(r_loss_scratch);
    m.group_scratch = reinterpret_cast<float*>(at(r_group));
    m.seeds_device = reinterpret_cast<uint64_t*>(at(r_seeds));
    m.scalars_device = reinterpret_cast<float*>(at(r_scalars));
    m.buffers = {&graph_,      &m.plan,  m.activations, m.gradient_arena, m.parameters,
                 m.gradients,  m.state,  m.saved,       m.workspace,      m.argmax};
    // Poisoned or stale memory must not leak into a step: zero all once
    // (the loss scratch needs it; the arenas' padding is then defined).
    check(cudaMemset(m.memory.get(), 0, layout.total), "cudaMemset");
}

void CudaExecutor::allocate_pinned_memory() {
    Impl& m = *impl_;
    const int heads = int(graph_.heads.size());
    const std::size_t nodes = graph_.nodes.size();
    m.input_floats = graph_.tensors[0].shape.elements();
    m.mask_floats = int64_t(heads) * graph_.batch;
    for (const Head& head : graph_.heads) {
        m.output_offsets.push_back(m.output_floats);
        m.output_floats += graph_.batch * head.width;
    }
    const std::size_t pinned_floats =
        std::size_t(m.input_floats + target_count_ + m.mask_floats + 2 * heads + m.output_floats);
    m.pinned = cuda::PinnedBuffer<float>(std::max<std::size_t>(pinned_floats, 1),
                                         "CUDA backend: cudaMallocHost (batch staging)");
    m.pinned_step =
        cuda::PinnedBuffer<unsigned char>(nodes * sizeof(uint64_t) + 2 * cuda::kStepScalars * sizeof(float) + 8,
                                          "CUDA backend: cudaMallocHost (step values)");
    m.seeds_host = reinterpret_cast<uint64_t*>(m.pinned_step.get());
    m.scalars_host = reinterpret_cast<float*>(m.seeds_host + nodes);
    std::fill(m.seeds_host, m.seeds_host + nodes, 0);
    std::fill(m.scalars_host, m.scalars_host + 2 * cuda::kStepScalars, 0.0f);
    m.use_graphs = options_.cuda_graphs;
    std::fill(m.pinned.get(), m.pinned.get() + pinned_floats, 0.0f);
    m.input_host = m.pinned.get();
    m.targets_host = m.input_host + m.input_floats;
    m.masks_host = m.targets_host + target_count_;
    m.losses_host = m.masks_host + m.mask_floats;
    m.weights_host = m.losses_host + heads;
    m.outputs_host = m.weights_host + heads;
    std::fill(m.masks_host, m.masks_host + m.mask_floats, 1.0f);
    input_ = m.input_host;
    targets_ = m.targets_host;
    masks_ = m.masks_host;
}

void CudaExecutor::upload_loss_descriptors() {
    // The loss's descriptors, resident: device pointers and the weights.
    Impl& m = *impl_;
    const int heads = int(graph_.heads.size());
    compute_head_weights();
    std::vector<ops::LossHead> descriptors;
    std::vector<float> base_weights;
    for (int h = 0; h < heads; ++h) {
        const Head& head = graph_.heads[h];
        ops::LossHead loss;
        loss.kind = kernel_loss(head.spec.loss);
        loss.width = head.width;
        loss.logits = m.activations + m.plan.offsets[head.output];
        loss.targets = m.targets + target_offsets_[h];
        loss.mask = m.masks + int64_t(h) * graph_.batch;
        loss.weight = head_weights_[h];
        loss.label_smoothing = head.spec.label_smoothing;
        loss.beta = head.spec.beta;
        loss.grad_logits = m.gradient_arena + m.plan.offsets[head.output];
        descriptors.push_back(loss);
        base_weights.push_back(head.spec.weight);
    }
    if (heads > 0) {
        check(
            cudaMemcpy(m.heads, descriptors.data(), descriptors.size() * sizeof(ops::LossHead), cudaMemcpyHostToDevice),
            "copying the loss descriptors");
        check(cudaMemcpy(m.base_weights, base_weights.data(), base_weights.size() * sizeof(float),
                         cudaMemcpyHostToDevice),
              "copying the task weights");
    }
}

CudaExecutor::~CudaExecutor() {
    // Nothing is released while the stream may still use it. Errors cannot
    // be thrown from here; a failed release leaks at worst, and its error is
    // cleared so that it does not surface in another executor's next check.
    cudaStreamSynchronize(impl_->stream.get());
    impl_.reset();
    cudaGetLastError();
}

std::string CudaExecutor::backend_name() const {
#if defined(LADON_EMU)
    return "cuda (emulated)";
#else
    return fmt::format("cuda:{} ({})", impl_->device, impl_->device_name);
#endif
}

const std::vector<std::vector<int>>& CudaExecutor::fused_head_groups() const { return impl_->fusion.group_heads; }

void CudaExecutor::upload_batch() {
    Impl& m = *impl_;
    const cudaStream_t s = m.stream.get();
    const std::size_t f = sizeof(float);
    check(cudaMemcpyAsync(m.activations, m.input_host, std::size_t(m.input_floats) * f, cudaMemcpyHostToDevice, s),
          "copying the batch's inputs");
    if (target_count_ > 0)
        check(cudaMemcpyAsync(m.targets, m.targets_host, std::size_t(target_count_) * f, cudaMemcpyHostToDevice, s),
              "copying the batch's targets");
    if (m.mask_floats > 0)
        check(cudaMemcpyAsync(m.masks, m.masks_host, std::size_t(m.mask_floats) * f, cudaMemcpyHostToDevice, s),
              "copying the batch's masks");
    // This step's dropout seeds: written by the host when the step is
    // enqueued (or, for a graph, before each replay), read by the kernels.
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) m.seeds_host[i] = dropout_seed(i);
    check(cudaMemcpyAsync(m.seeds_device, m.seeds_host, graph_.nodes.size() * sizeof(uint64_t), cudaMemcpyHostToDevice,
                          s),
          "copying the dropout seeds");
    m.outputs_current = false;
}

void CudaExecutor::forward(bool training) {
    upload_batch();
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) forward_node(i, training);
}

CudaOpStep CudaExecutor::Impl::op_step(const Graph& graph_, std::size_t i, bool training, uint64_t seed) const {
    const Impl& m = *this;
    CudaOpStep step{{m.buffers, graph_.nodes[i], i, training, seed}};
    step.stream = m.stream.get();
    step.fused_into_producer = m.fusion.fused_activation[i];
    step.dropout_seeds = m.seeds_device;
    if (const int fused = m.fusion.epilogue[i]; fused >= 0) {
        // The layer writes the activation's output through its epilogue.
        const Node& next = graph_.nodes[fused];
        step.epilogue = node_activation(next);
        step.epilogue_slope = next.spec.negative_slope;
        step.epilogue_output = m.activations + m.plan.offsets[next.output];
    }
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
                                        ops::Activation::identity, 0.0f, m.group_scratch, s);
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
    check(cudaMemsetAsync(m.gradient_arena, 0, std::size_t(m.plan.arena) * sizeof(float), m.stream.get()),
          "zeroing the activation gradients");
    if (options_.learn_task_weights)
        check(cuda::set_task_weights(heads, m.base_weights, m.parameters + graph_.parameter_count, m.heads,
                                     m.head_weights, m.stream.get()),
              "task weights");
    check(cuda::multi_head_loss(graph_.batch, m.heads, heads, m.head_losses, m.loss_scratch, m.stream.get()),
          "the fused multi-head loss");
    if (options_.learn_task_weights)
        check(cuda::task_weight_gradients(heads, m.heads, m.head_losses, m.gradients + graph_.parameter_count,
                                          m.stream.get()),
              "task weight gradients");
}

double CudaExecutor::compute_loss() {
    Impl& m = *impl_;
    const int heads = int(graph_.heads.size());
    enqueue_loss();
    // The losses (and learned weights) to the host, and wait for them.
    enqueue_loss_copies();
    check(cudaStreamSynchronize(m.stream.get()), "the loss");
    std::copy(m.losses_host, m.losses_host + heads, head_losses_.begin());
    if (options_.learn_task_weights) std::copy(m.weights_host, m.weights_host + heads, head_weights_.begin());
    // total_loss() writes the log-variances' gradients into the host mirror
    // too; the device has its own.
    return total_loss();
}

void CudaExecutor::backward() {
    // The gradients-final hook runs on the host as each node's kernels are
    // enqueued, not when they have run: its caller orders its work on the
    // range after them on m.stream.get().
    gradients_final_before_backward();
    for (std::size_t i = graph_.nodes.size(); i-- > 0;) {
        backward_node(i);
        gradients_final_after_node(i);
    }
}

void CudaExecutor::backward_node(std::size_t i) {
    const Node& node = graph_.nodes[i];
    const int group = impl_->fusion.group_of_node[i];
    const cudaError_t e =
        group >= 0 ? impl_->backward_group(graph_, i, group)
                   : cuda_op_definition(node.spec.op).backward(impl_->op_step(graph_, i, true, dropout_seed(i)));
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
                                        group.bias_offset >= 0 ? m.gradients + group.bias_offset : nullptr, s);
    if (e == cudaSuccess && step.needs_grad(in))
        e = cuda::dense_backward_data(shape, m.parameters + group.weight_offset, gathered, step.grad(in), s);
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
    // The model's parameters with weight decay, the learned log-variances
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
    forward(true);
    enqueue_loss();
    backward();
    // The update skips itself on the device when a loss is not finite.
    enqueue_update(optimizer, learning_rate, step_ + 1, true);
    enqueue_loss_copies();
    enqueue_output_copies();
}

bool CudaExecutor::train_step(const OptimizerOptions& optimizer, float learning_rate,
                              const std::function<void(Executor&)>& gradients_ready) {
    if (optimizer.kind != options_.optimizer)
        throw Error("executor: the optimizer kind changed after the optimizer state was planned");
    Impl& m = *impl_;
    const int heads = int(graph_.heads.size());
    if (gradients_ready) {
        // The hook works on the host's view (e.g. an MPI allreduce): the one
        // kind of step that waits in the middle, and is never captured.
        forward(true);
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
        enqueue_output_copies();
        ++m.plain_steps;
    } else if (!m.use_graphs || m.plain_steps == 0) {
        // Plain launches: without graphs, and the warm-up step before capture.
        enqueue_step(optimizer, learning_rate);
        ++m.plain_steps;
    } else {
        if (!m.graph) {
            // Capture the step once. Enqueueing writes this step's values to
            // pinned memory; the graph copies them in when it runs.
            cuda::StreamCapture capture(m.stream.get(), "CUDA backend: cudaStreamBeginCapture");
            enqueue_step(optimizer, learning_rate);
            const cuda::Graph captured = capture.end("CUDA backend: cudaStreamEndCapture");
            m.graph = cuda::GraphExec::instantiate(captured, "CUDA backend: cudaGraphInstantiate");
        } else {
            // Replay: refresh the values the graph copies in.
            for (std::size_t i = 0; i < graph_.nodes.size(); ++i) m.seeds_host[i] = dropout_seed(i);
            write_step_scalars(optimizer, learning_rate, step_ + 1);
        }
        check(cudaGraphLaunch(m.graph.get(), m.stream.get()), "cudaGraphLaunch (the training step)");
        ++m.graph_replays;
    }
    check(cudaStreamSynchronize(m.stream.get()), "the training step");
    m.outputs_current = true;
    std::copy(m.losses_host, m.losses_host + heads, head_losses_.begin());
    if (options_.learn_task_weights) std::copy(m.weights_host, m.weights_host + heads, head_weights_.begin());
    const bool finite = losses_finite();
    if (finite) ++step_;
    return finite;
}

int64_t CudaExecutor::graph_replays() const { return impl_->graph_replays; }

void CudaExecutor::enqueue_loss_copies() const {
    const Impl& m = *impl_;
    const std::size_t heads = graph_.heads.size();
    check(cudaMemcpyAsync(m.losses_host, m.head_losses, heads * sizeof(float), cudaMemcpyDeviceToHost, m.stream.get()),
          "copying the losses");
    if (options_.learn_task_weights)
        check(cudaMemcpyAsync(m.weights_host, m.head_weights, heads * sizeof(float), cudaMemcpyDeviceToHost,
                              m.stream.get()),
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

void CudaExecutor::pull_state() {
    Impl& m = *impl_;
    const std::size_t f = sizeof(float);
    check(cudaStreamSynchronize(m.stream.get()), "the pending steps");
    check(cudaMemcpy(parameters_.data(), m.parameters, parameters_.size() * f, cudaMemcpyDeviceToHost),
          "copying the parameters to the host");
    check(cudaMemcpy(gradients_.data(), m.gradients, gradients_.size() * f, cudaMemcpyDeviceToHost),
          "copying the gradients to the host");
    check(cudaMemcpy(optimizer_state_.data(), m.optimizer_state, optimizer_state_.size() * f, cudaMemcpyDeviceToHost),
          "copying the optimizer state to the host");
    if (!state_.empty())
        check(cudaMemcpy(state_.data(), m.state, state_.size() * f, cudaMemcpyDeviceToHost),
              "copying the batch-norm statistics to the host");
}

void CudaExecutor::push_state() {
    Impl& m = *impl_;
    const std::size_t f = sizeof(float);
    check(cudaStreamSynchronize(m.stream.get()), "the pending steps");
    check(cudaMemcpy(m.parameters, parameters_.data(), parameters_.size() * f, cudaMemcpyHostToDevice),
          "copying the parameters to the device");
    check(cudaMemcpy(m.optimizer_state, optimizer_state_.data(), optimizer_state_.size() * f, cudaMemcpyHostToDevice),
          "copying the optimizer state to the device");
    if (!state_.empty())
        check(cudaMemcpy(m.state, state_.data(), state_.size() * f, cudaMemcpyHostToDevice),
              "copying the batch-norm statistics to the device");
}

void CudaExecutor::scale_head_gradient(int head, float scale) {
    Impl& m = *impl_;
    const Head& h = graph_.heads[head];
    check(cuda::scale(graph_.batch * h.width, scale, m.gradient_arena + m.plan.offsets[h.output], m.stream.get()),
          "weighting a head's gradient");
}

void CudaExecutor::set_task_weight_gradient(int head, float value) {
    // A kernel argument, not a copy from host memory: nothing to keep alive
    // until the stream gets there.
    Impl& m = *impl_;
    gradients_[graph_.parameter_count + head] = value;
    check(cuda::fill(1, value, m.gradients + graph_.parameter_count + head, m.stream.get()),
          "setting a task weight's gradient");
}

std::span<float> CudaExecutor::device_buffer(FlatBuffer buffer) {
    Impl& m = *impl_;
    switch (buffer) {
        case FlatBuffer::parameters:
            return {m.parameters, parameters_.size()};
        case FlatBuffer::gradients:
            return {m.gradients, gradients_.size()};
        case FlatBuffer::optimizer_state:
            return {m.optimizer_state, optimizer_state_.size()};
        case FlatBuffer::state:
            return {m.state, state_.size()};
    }
    return {};
}

void* CudaExecutor::device_stream() { return static_cast<void*>(impl_->stream.get()); }

void CudaExecutor::pull_gradients() {
    Impl& m = *impl_;
    check(cudaMemcpyAsync(gradients_.data(), m.gradients, gradients_.size() * sizeof(float), cudaMemcpyDeviceToHost,
                          m.stream.get()),
          "copying the gradients to the host");
    check(cudaStreamSynchronize(m.stream.get()), "the backward pass");
}

void CudaExecutor::push_gradients() {
    // From pageable memory: the copy has read gradients_ when it returns.
    Impl& m = *impl_;
    check(cudaMemcpyAsync(m.gradients, gradients_.data(), gradients_.size() * sizeof(float), cudaMemcpyHostToDevice,
                          m.stream.get()),
          "copying the gradients to the device");
}

std::vector<float> CudaExecutor::tensor_value(int tensor) const {
    std::vector<float> out(std::size_t(graph_.tensors[tensor].shape.elements()));
    check(cudaStreamSynchronize(impl_->stream.get()), "the pending steps");
    check(cudaMemcpy(out.data(), impl_->activations + impl_->plan.offsets[tensor], out.size() * sizeof(float),
                     cudaMemcpyDeviceToHost),
          "copying a tensor");
    return out;
}

std::vector<float> CudaExecutor::tensor_gradient(int tensor) const {
    std::vector<float> out(std::size_t(graph_.tensors[tensor].shape.elements()));
    check(cudaStreamSynchronize(impl_->stream.get()), "the pending steps");
    check(cudaMemcpy(out.data(), impl_->gradient_arena + impl_->plan.offsets[tensor], out.size() * sizeof(float),
                     cudaMemcpyDeviceToHost),
          "copying a tensor's gradient");
    return out;
}

Executor::MemoryPlan CudaExecutor::memory_plan() const {
    const Impl& m = *impl_;
    MemoryPlan plan;
    plan.parameters = int64_t(parameters_.size() + state_.size()) * 4;
    plan.gradients = int64_t(gradients_.size()) * 4;
    plan.optimizer_state = int64_t(optimizer_state_.size()) * 4;
    plan.workspace = int64_t(m.workspace_bytes + m.loss_scratch_bytes);
    plan.activations =
        int64_t(m.layout.total) - plan.parameters - plan.gradients - plan.optimizer_state - plan.workspace;
    return plan;
}

Executor::Timing CudaExecutor::profile(int iterations, const OptimizerOptions& optimizer, float learning_rate) {
    // Each node, the loss and the update between two events on the stream,
    // waiting after each (the waits are the profile's, not a step's); the
    // whole step timed apart, as it runs in training.
    Impl& m = *impl_;
    Timing timing;
    timing.forward_ms.assign(graph_.nodes.size(), 0.0);
    timing.backward_ms.assign(graph_.nodes.size(), 0.0);
    train_step(optimizer, learning_rate);  // warm-up
    const cuda::Event start(cudaEventDefault, "CUDA backend: cudaEventCreate");
    const cuda::Event stop(cudaEventDefault, "CUDA backend: cudaEventCreate");
    auto timed = [&](auto&& work) {
        check(cudaEventRecord(start.get(), m.stream.get()), "cudaEventRecord");
        work();
        check(cudaEventRecord(stop.get(), m.stream.get()), "cudaEventRecord");
        check(cudaEventSynchronize(stop.get()), "cudaEventSynchronize");
        float ms = 0.0f;
        check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "cudaEventElapsedTime");
        return double(ms);
    };
    for (int it = 0; it < iterations; ++it) {
        timing.step_ms += timed([&] { train_step(optimizer, learning_rate); });
        upload_batch();
        for (std::size_t i = 0; i < graph_.nodes.size(); ++i)
            timing.forward_ms[i] += timed([&] { forward_node(i, true); });
        timing.loss_ms += timed([&] { enqueue_loss(); });
        for (std::size_t i = graph_.nodes.size(); i-- > 0;) timing.backward_ms[i] += timed([&] { backward_node(i); });
        timing.update_ms += timed([&] { update(optimizer, learning_rate); });
    }
    const double n = std::max(iterations, 1);
    for (auto& t : timing.forward_ms) t /= n;
    for (auto& t : timing.backward_ms) t /= n;
    timing.loss_ms /= n;
    timing.update_ms /= n;
    timing.step_ms /= n;
    return timing;
}

}  // inline namespace

#if !defined(LADON_EMU)
// backend.cpp's ways in (declared there: the CUDA backend of libladon).
std::unique_ptr<Executor> make_cuda_executor(Graph graph, const ExecutorOptions& options, int device) {
    return std::make_unique<CudaExecutor>(std::move(graph), options, device);
}

std::vector<CudaDevice> query_cuda_devices(std::string& reason) {
    std::vector<CudaDevice> devices;
    int count = 0;
    const cudaError_t error = cudaGetDeviceCount(&count);
    if (error != cudaSuccess) {
        cudaGetLastError();
        reason = fmt::format("no CUDA device ({})", describe(error));
        return devices;
    }
    if (count == 0) reason = "no CUDA device (cudaGetDeviceCount found none)";
    for (int d = 0; d < count; ++d) {
        cudaDeviceProp properties{};
        if (cudaGetDeviceProperties(&properties, d) != cudaSuccess) {
            cudaGetLastError();
            continue;
        }
        devices.push_back({d, properties.name, int64_t(properties.totalGlobalMem), properties.major, properties.minor});
    }
    return devices;
}
#endif
}  // namespace ladon::engine
