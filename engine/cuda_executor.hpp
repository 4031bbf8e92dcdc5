#pragma once
// The CUDA backend's executor: every node through ladon::cuda (the
// hand-written kernels of kernels/cuda/), on one stream.
//
// Built twice from one source, like the kernels: against the CUDA runtime
// (LADON_CUDA_HOST, linked into libladon where a toolkit exists) and against
// the CPU emulator (LADON_EMU, for the CI tests). The two live in different
// inline namespaces so one program may hold both builds of the library.
//
// Memory: one cudaMalloc for everything the plan needs (flat parameter,
// gradient, state and optimizer buffers, the activation and gradient arenas,
// argmax, batch-norm statistics, the conv workspace, the batch, the loss's
// descriptors and scratch), pinned host memory for the results a step
// returns; batches come in pinned memory of their own (batch_memory()). A
// step enqueues its copies and kernels without waiting; the host waits once,
// at the end of train_step(), for the losses and outputs. Given the next
// step's batch, train_step() copies it in on a second stream while its own
// kernels run, and the next step moves it into place on the device.
//
// CUDA graphs (ExecutorOptions::cuda_graphs): after one plain step,
// train_step() captures the whole step (forward, loss, backward, update,
// result copies) once and then replays it, after enqueueing the batch's
// copies in from the Batch it was given. What else changes from step to step
// (dropout seeds, the optimizer's learning rate and bias corrections) is read
// by the kernels from device memory that the graph fills from pinned host
// memory, so the replayed graph never needs updating; graph and plain steps
// give the same bits.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/executor.hpp"
#include "kernels/cuda/device.hpp"

namespace ladon::engine {
#if defined(LADON_EMU)
inline namespace emulated {
#else
inline namespace device {
#endif

class CudaExecutor final : public Executor {
public:
    // Throws ladon::Error when `device` does not exist, or the plan does not
    // fit in its memory (naming what and how much).
    CudaExecutor(Graph graph, const ExecutorOptions& options, int device);
    ~CudaExecutor() override;

    std::string backend_name() const override;
    HostAllocator batch_memory() const override;
    void update(const OptimizerOptions& optimizer, float learning_rate) override;
    bool train_step(const Batch& batch, const OptimizerOptions& optimizer, float learning_rate,
                    const std::function<void(Executor&)>& gradients_ready = {}, const Batch* next = nullptr) override;
    const float* head_output(int head) const override;
    void pull_state() override;
    void push_state() override;
    void scale_head_gradient(int head, float scale) override;
    std::span<float> device_buffer(FlatBuffer buffer) override;
    void* device_stream() override;
    void pull_gradients() override;
    void push_gradients() override;
    MemoryPlan memory_plan() const override;

    // Copies of a tensor's value and gradient (after forward / backward), for tests.
    std::vector<float> tensor_value(int tensor) const;
    std::vector<float> tensor_gradient(int tensor) const;
    // Heads whose first dense layers run as one GEMM (each group's heads).
    const std::vector<std::vector<int>>& fused_head_groups() const;
    // Training steps run by replaying the captured CUDA graph.
    int64_t graph_replays() const;

protected:
    void load_input(const Batch& batch) override;
    void load_labels(const Batch& batch) override;
    void run_forward(bool training) override;
    double run_loss() override;
    void forward_node(std::size_t index, bool training) override;
    void backward_node(std::size_t index) override;
    double time_ms(const std::function<void()>& work) override;
    void profiled_loss() override { enqueue_loss(); }
    void upload_task_weighting_gradients() override;

private:
    void write_step_values();
    void upload_seeds();
    void stage_next(const Batch& next);
    bool load_staged(const Batch& batch);
    void enqueue_loss();
    void enqueue_loss_copies() const;
    void enqueue_output_copies() const;
    void enqueue_step(const OptimizerOptions& optimizer, float learning_rate);
    void enqueue_update(const OptimizerOptions& optimizer, float learning_rate, int64_t step, bool gated);
    void write_step_scalars(const OptimizerOptions& optimizer, float learning_rate, int64_t step);

    // The constructor's steps, in order.
    void plan_fusions();
    void allocate_device_memory();
    void allocate_pinned_memory();
    void upload_loss_descriptors();

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // inline namespace
}  // namespace ladon::engine
