// The CUDA executor's memory (engine/cuda_executor_impl.hpp): the device it
// opens, the memory plan in one device allocation and the pinned host
// buffers, and the copies of the flat buffers between host and device.
#include <algorithm>
#include <cstring>

#include "engine/cuda_executor_impl.hpp"
#include "kernels/cuda/multi_head_loss.hpp"
#include "kernels/cuda/optimizer.hpp"
#include "ladon/device.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {

using namespace cuda_executor_detail;

// The one place devices are enumerated: `ladon info`, --device and the
// executor's own check all see this list.
std::vector<CudaDevice> cuda_devices(std::string& reason) {
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

void CudaExecutor::Impl::open_device(int index) {
    std::string reason;
    const std::vector<CudaDevice> devices = cuda_devices(reason);
    if (devices.empty()) throw Error(fmt::format("CUDA backend: {}", reason));
    const auto found = std::find_if(devices.begin(), devices.end(), [&](const CudaDevice& d) { return d.index == index; });
    if (found == devices.end())
        throw Error(
            fmt::format("CUDA backend: device cuda:{} does not exist; this machine has {} (cuda:0 to "
                        "cuda:{})",
                        index, devices.size(), devices.size() - 1));
    device = index;
    check(cudaSetDevice(index), "cudaSetDevice");
    device_name = found->name;
    stream = cuda::Stream(cudaStreamNonBlocking, "CUDA backend: cudaStreamCreate");
    copy_stream = cuda::Stream(cudaStreamNonBlocking, "CUDA backend: cudaStreamCreate (batch copies)");
    next_copied = cuda::Event(cudaEventDisableTiming, "CUDA backend: cudaEventCreate");
    next_free = cuda::Event(cudaEventDisableTiming, "CUDA backend: cudaEventCreate");
    check(cudaEventRecord(next_free.get(), stream.get()), "cudaEventRecord");
}

CudaExecutor::CudaExecutor(Graph graph, const ExecutorOptions& options, int device)
    : Executor(std::move(graph), options), impl_(std::make_unique<Impl>()) {
    if (options_.precision == Precision::automatic) options_.precision = Precision::tf32;
    impl_->matmul = options_.precision == Precision::bf16   ? cuda::MatmulPrecision::bf16
                    : options_.precision == Precision::tf32 ? cuda::MatmulPrecision::tf32
                                                            : cuda::MatmulPrecision::fp32;
    // A throw from here on releases what impl_ holds so far.
    impl_->open_device(device);
    plan_fusions();
    allocate_device_memory();
    allocate_pinned_memory();
    upload_loss_descriptors();
    push_state();
}

void CudaExecutor::plan_fusions() {
    Impl& m = *impl_;
    m.fusion = engine::plan_fusions(graph_);
    const GradientWrites writes = plan_gradient_writes(graph_, m.fusion);
    m.first_gradient_write.assign(graph_.nodes.size(), 0);
    m.zero_before_backward.assign(graph_.nodes.size(), {});
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i) {
        // A head group's GEMM at its first node stores; other ops say.
        const bool stores = m.fusion.group_of_node[i] >= 0 ||
                            cuda_op_definition(graph_.nodes[i].spec.op).stores_input_gradients;
        if (stores) {
            m.first_gradient_write[i] = writes.first_write[i];
            continue;
        }
        for (std::size_t k = 0; k < graph_.nodes[i].inputs.size(); ++k)
            if (writes.first_write[i] >> k & 1u) m.zero_before_backward[i].push_back(graph_.nodes[i].inputs[k]);
    }
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
            m.workspace_bytes = std::max(m.workspace_bytes, bytes(node, m.matmul));
    for (const HeadGroup& group : graph_.head_groups)  // their one GEMM each
        m.workspace_bytes =
            std::max(m.workspace_bytes,
                     cuda::dense_workspace_bytes({graph_.batch, group.in_features, group.out_features}, m.matmul));
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
    const int r_workspace = layout.add("workspace", m.workspace_bytes);
    const int r_targets = layout.add("targets", std::size_t(batch_layout_.target_floats()) * f);
    const int r_masks = layout.add("masks", std::size_t(heads) * graph_.batch * f);
    const std::size_t batch_floats = std::size_t(batch_layout_.input_floats() + batch_layout_.target_floats()) +
                                     std::size_t(heads) * std::size_t(graph_.batch);
    const int r_next_batch = layout.add("the next batch", batch_floats * f);
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
    m.next_batch = reinterpret_cast<float*>(at(r_next_batch));
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
    for (const Head& head : graph_.heads) {
        m.output_offsets.push_back(m.output_floats);
        m.output_floats += graph_.batch * head.width;
    }
    const std::size_t pinned_floats =
        std::size_t(2 * heads + m.output_floats);
    m.pinned = cuda::PinnedBuffer<float>(std::max<std::size_t>(pinned_floats, 1),
                                         "CUDA backend: cudaMallocHost (step results)");
    m.pinned_step =
        cuda::PinnedBuffer<unsigned char>(nodes * sizeof(uint64_t) + (2 * cuda::kStepScalars + heads) * sizeof(float) + 8,
                                          "CUDA backend: cudaMallocHost (step values)");
    m.seeds_host = reinterpret_cast<uint64_t*>(m.pinned_step.get());
    m.scalars_host = reinterpret_cast<float*>(m.seeds_host + nodes);
    m.base_weights_host = m.scalars_host + 2 * cuda::kStepScalars;
    std::fill(m.seeds_host, m.seeds_host + nodes, 0);
    std::fill(m.scalars_host, m.scalars_host + 2 * cuda::kStepScalars + heads, 0.0f);
    m.use_graphs = options_.cuda_graphs;
    std::fill(m.pinned.get(), m.pinned.get() + pinned_floats, 0.0f);
    m.losses_host = m.pinned.get();
    m.weights_host = m.losses_host + heads;
    m.outputs_host = m.weights_host + heads;
}

HostAllocator CudaExecutor::batch_memory() const {
    return [](std::size_t floats) {
        auto pinned = std::make_shared<cuda::PinnedBuffer<float>>(floats, "CUDA backend: cudaMallocHost (a batch)");
        return std::shared_ptr<float>(pinned, pinned->get());  // owns the buffer, points at its floats
    };
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
        loss.targets = m.targets + batch_layout_.target_offset(h);
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
    cudaStreamSynchronize(impl_->copy_stream.get());
    impl_.reset();
    cudaGetLastError();
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

}  // inline namespace

#if !defined(LADON_EMU)
// backend.cpp's ways in (declared there: the CUDA backend of libladon).
std::unique_ptr<Executor> make_cuda_executor(Graph graph, const ExecutorOptions& options, int device) {
    return std::make_unique<CudaExecutor>(std::move(graph), options, device);
}

std::vector<CudaDevice> query_cuda_devices(std::string& reason) { return device::cuda_devices(reason); }
#endif
}  // namespace ladon::engine
