#pragma once
// Runs a Graph: forward, the fused multi-head loss, backward (reverse order;
// gradients accumulate where a tensor fans out, so the trunk receives the sum
// of its heads' gradients), and the fused optimizer update over the flat
// parameter buffer.
//
// Executor is the interface; CpuExecutor (engine/cpu_executor.hpp) and
// CudaExecutor (engine/cuda_executor.hpp) implement it. Memory is planned
// once, in the constructor (Executor::MemoryPlan below): flat parameter /
// gradient / optimizer-state buffers (tensors are views into them) and one
// activation arena with fixed offsets. No step allocates.
//
// The batch comes as a value (engine/batch.hpp) to forward(), compute_loss()
// and train_step(); the executor keeps none of its own (a device backend
// copies it in, once per step, on its stream). parameters(), gradients(), state() and optimizer_state() are host views: on
// a device backend a mirror, brought up to date by pull_state() and sent back
// by push_state().
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/batch.hpp"
#include "engine/graph.hpp"
#include "engine/weighting/weighting.hpp"
#include "ladon/training.hpp"

namespace ladon::engine {

struct ExecutorOptions {
    uint64_t seed = 1;
    OptimizerOptions::Kind optimizer = OptimizerOptions::Kind::adamw;
    TaskWeighting task_weighting = TaskWeighting::fixed;  // engine/weighting/: fixed, or learned values per head
    bool cuda_graphs = true;          // CUDA backend: replay each training step as a captured graph
    Precision precision = Precision::automatic;  // resolved by the backend: precision() says which
};

class Executor {
public:
    virtual ~Executor() = default;
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    const Graph& graph() const { return graph_; }
    int64_t batch() const { return graph_.batch; }
    // "cpu", "cuda" or "cuda (emulated)".
    virtual std::string backend_name() const = 0;
    // The math of conv and dense layers in effect (never automatic).
    Precision precision() const { return options_.precision; }

    // What a batch for this executor holds, and the host memory to allocate
    // one in (pinned on a device backend, so its copy in is one DMA).
    const BatchLayout& batch_layout() const { return batch_layout_; }
    virtual HostAllocator batch_memory() const { return plain_host_memory(); }

    // Every node's forward on the batch's input. Throws if the batch was laid
    // out for another graph.
    void forward(const Batch& batch, bool training);
    // Zeroes every gradient, then computes each head's loss and weighted logit
    // gradient against the batch's targets and masks (the batch forward()
    // ran on) in one multi-head loss call. Returns the weighted total; on a
    // device backend it waits for the losses.
    double compute_loss(const Batch& batch);
    // Every node's backward, in reverse order, calling the gradients-final
    // hook as ranges become final (on a device: as their kernels are
    // enqueued, so the hook's work is ordered after them on the stream).
    void backward();
    // One optimizer step at learning rate `learning_rate`.
    virtual void update(const OptimizerOptions& optimizer, float learning_rate) = 0;

    // One whole training step: forward, loss, backward, `gradients_ready` (if
    // given: e.g. averaging gradients across processes), and update. The
    // update is skipped when a head's loss is not finite, leaving parameters,
    // optimizer state and step() as they were. Returns whether it ran; the
    // losses are in head_losses() and the outputs in head_output() either way.
    // A device backend enqueues the whole step and synchronises once, at its
    // end. `next` (optional): the batch the following train_step() will
    // get; a device backend copies it in while this step runs (the CPU
    // ignores it). It must stay alive and unchanged until that call.
    virtual bool train_step(const Batch& batch, const OptimizerOptions& optimizer, float learning_rate,
                            const std::function<void(Executor&)>& gradients_ready = {},
                            const Batch* next = nullptr);

    // Synchronised batch norm (training.sync_batch_norm): batch-norm nodes in
    // training mode sum their per-channel statistics (host doubles, in place)
    // through `allreduce_sum`, so each rank normalises with the global batch's
    // statistics; every rank must then run the same steps. Empty (the
    // default): each executor's own batch. Backends without it throw, unless
    // the graph has no batch norm.
    using BatchNormSync = std::function<void(double* data, int64_t count)>;
    virtual void set_batch_norm_sync(BatchNormSync allreduce_sum);

    // Bucketed gradient averaging (engine/distributed/data_parallel.hpp):
    // during backward(), `hook(begin, end)` is called each time the range
    // [begin, end) of the flat gradient buffer has become final, that is,
    // every node that writes it has run its backward (a head group's GEMM
    // writes all its heads' weights and biases at once). The ranges arrive
    // from the top of the buffer down, each ending where the one before
    // began, and tile [0, gradients().size()) exactly once per backward():
    // first the task weighting's learned values (set by compute_loss() and
    // set_task_weighting_losses(), so final before any node), then the model's
    // parameters, whose layout follows the node order. A device backend calls
    // the hook as the writers' kernels are ENQUEUED on device_stream(): work
    // on the range must be ordered after them there (an event). Empty (the
    // default): no calls.
    using GradientsFinalHook = std::function<void(int64_t begin, int64_t end)>;
    void set_gradients_final_hook(GradientsFinalHook hook) { gradients_final_hook_ = std::move(hook); }

    std::span<const float> head_losses() const { return head_losses_; }
    std::span<const float> head_weights() const { return head_weights_; }
    // The head's output [batch, width] in host memory (after forward()).
    virtual const float* head_output(int head) const = 0;
    int64_t step() const { return step_; }  // updates applied
    void set_step(int64_t step) { step_ = step; }

    // The flat buffers. The trained parameters are [0, graph().parameter_count);
    // the task weighting's learned values, if any, follow (task_weighting_values()).
    std::span<float> parameters() { return parameters_; }
    std::span<float> gradients() { return gradients_; }
    std::span<float> state() { return state_; }
    std::span<float> optimizer_state() { return optimizer_state_; }
    std::span<const float> parameters() const { return parameters_; }
    std::span<const float> task_weighting_values() const;
    const TaskWeightingMethod& task_weighting() const { return weighting_; }
    // Device backends: copy the flat buffers device -> host (pull) before
    // reading them, host -> device (push) after writing them. No-ops on the CPU.
    virtual void pull_state() {}
    virtual void push_state() {}

    // Data parallelism (engine/distributed/data_parallel.hpp), between
    // compute_loss() and backward(), enqueued like a step's work:
    // multiplies head `head`'s logit gradient by `scale` in place, and
    // recomputes the task weighting's learned gradients from `losses` (the
    // global ones) and this step's weights.
    virtual void scale_head_gradient(int head, float scale) = 0;
    void set_task_weighting_losses(std::span<const float> losses);
    // Where a collective finds the flat buffers. Device backends: the buffer
    // in device memory (empty on the CPU) and the stream (a cudaStream_t;
    // null on the CPU) that every step's work is enqueued on, which a
    // collective on device memory must be ordered with. pull_gradients()
    // waits for the step so far and copies the gradients device -> host
    // (into gradients()); push_gradients() enqueues the copy back. No-ops on
    // the CPU, whose gradients() is the buffer itself.
    enum class FlatBuffer { parameters, gradients, optimizer_state, state };
    virtual std::span<float> device_buffer(FlatBuffer) { return {}; }
    virtual void* device_stream() { return nullptr; }
    virtual void pull_gradients() {}
    virtual void push_gradients() {}

    struct MemoryPlan {
        int64_t parameters = 0, gradients = 0, optimizer_state = 0, activations = 0, workspace = 0;
    };
    virtual MemoryPlan memory_plan() const = 0;

    // Mean milliseconds per node (forward, backward) and per phase over
    // `iterations` training steps on `batch`, after one warm-up
    // step; like `caffe time`. Each iteration times one whole training step
    // as it runs in training, then each node, the loss and the update alone
    // (on a device, waiting after each). The steps do update the parameters.
    struct Timing {
        std::vector<double> forward_ms, backward_ms;  // per node
        double loss_ms = 0, update_ms = 0, step_ms = 0;
    };
    Timing profile(const Batch& batch, int iterations, const OptimizerOptions& optimizer, float learning_rate);

protected:
    Executor(Graph graph, const ExecutorOptions& options);
    // Throws unless `batch` is laid out for this graph.
    void check_batch(const Batch& batch) const;
    // The batch's input as the graph's input, and its targets and masks as the
    // loss's (a device backend enqueues their copies on its stream).
    virtual void load_input(const Batch& batch) = 0;
    virtual void load_labels(const Batch& batch) = 0;
    // forward() and compute_loss() on what was loaded.
    virtual void run_forward(bool training) = 0;
    virtual double run_loss() = 0;
    // One node's forward or backward (enqueued, on a device).
    virtual void forward_node(std::size_t index, bool training) = 0;
    virtual void backward_node(std::size_t index) = 0;
    // profile()'s clock: milliseconds `work` takes to run (on a device, from
    // an event before it to one after it, waiting for the second).
    virtual double time_ms(const std::function<void()>& work);
    // profile()'s loss phase alone.
    virtual void profiled_loss() { run_loss(); }
    // PyTorch's default initialisation of parameters_ and state_.
    void initialise_parameters();
    uint64_t dropout_seed(std::size_t node_index) const;
    // Each head's weight for this step (the task weighting's) into head_weights_.
    void compute_head_weights();
    // This step's base weights: the configured ones, or the method's draw for
    // (seed, step_) where it draws per step.
    std::span<const float> step_base_weights();
    // The weighted total of head_losses_ plus the task weighting's term, and
    // its learned values' gradients into gradients_.
    double total_loss();
    // A device backend: copies the learned values' gradients (host
    // gradients_, just written) to the device, enqueued.
    virtual void upload_task_weighting_gradients() {}
    bool losses_finite() const;
    // Backends whose backward writes a parameter slice's gradient from
    // another node than its own (the CUDA backend's head-group GEMM, at the
    // group's first node) say so before the first backward().
    void set_gradient_writer(int parameter_slice, int node) { gradient_writers_[parameter_slice] = node; }
    // backward() calls these around its nodes (in reverse order) so that the
    // gradients-final hook sees each range as soon as it is final.
    void gradients_final_before_backward();
    void gradients_final_after_node(std::size_t node) {
        if (gradients_final_hook_ && final_from_[node] < reported_from_) report_final_gradients(final_from_[node]);
    }

    Graph graph_;
    ExecutorOptions options_;
    const TaskWeightingMethod& weighting_;
    std::vector<float> base_weights_;  // per head, the config's
    std::vector<float> step_base_weights_;  // this step's, for a method that draws them (TaskWeightingMethod::step_base)
    int64_t step_ = 0;
    std::vector<float> parameters_, gradients_, optimizer_state_, state_;  // host (mirrors on a device)
    BatchLayout batch_layout_;
    std::vector<float> head_losses_, head_weights_;

private:
    void report_final_gradients(int64_t begin);
    GradientsFinalHook gradients_final_hook_;
    std::vector<int> gradient_writers_;  // per parameter slice: the node whose backward writes its gradient
    // Per node i: the gradients [final_from_[i], end) are final once node i's
    // backward has run (it only falls as backward goes down the nodes);
    // computed at the first backward() with a hook.
    std::vector<int64_t> final_from_;
    int64_t reported_from_ = 0;  // this backward's ranges so far cover [reported_from_, end)
};

// The memory layout every backend shares: tensor slots in the activation
// arena (gradients mirror it), per-node argmax and batch-norm statistics.
struct ArenaPlan {
    std::vector<int64_t> offsets;         // per tensor, floats into both arenas
    int64_t arena = 0;                    // floats
    std::vector<int64_t> argmax_offsets;  // per node (max pool only, else -1)
    int64_t argmax_count = 0;
    std::vector<int64_t> saved_offsets;   // per node (batch norm: mean, inv_std; else -1)
    int64_t saved_count = 0;
};
ArenaPlan plan_arena(const Graph& graph);

// The kernels' name for a head's loss: every backend maps the graph the same way.
inline ops::LossKind kernel_loss(Loss loss) {
    switch (loss) {
        case Loss::softmax_cross_entropy: return ops::LossKind::softmax_cross_entropy;
        case Loss::sigmoid_binary_cross_entropy: return ops::LossKind::sigmoid_binary_cross_entropy;
        case Loss::mean_squared_error: return ops::LossKind::mean_squared_error;
        case Loss::smooth_l1: return ops::LossKind::smooth_l1;
    }
    return ops::LossKind::softmax_cross_entropy;
}

// Where to run.
struct BackendChoice {
    Backend backend = Backend::cpu;
    int device = 0;  // CUDA device index
};
// The executor for `choice`; throws ladon::Error when the CUDA backend is not
// compiled in or the device does not exist.
std::unique_ptr<Executor> make_executor(Graph graph, const ExecutorOptions& options, const BackendChoice& choice);

}  // namespace ladon::engine
