#pragma once
// Runs a Graph on the CPU backend: forward, the fused multi-head loss,
// backward (reverse order; gradients accumulate where a tensor fans out, so
// the trunk receives the sum of its heads' gradients), and the fused
// optimizer update over the flat parameter buffer.
//
// Memory is planned once, in the constructor: flat parameter / gradient /
// optimizer-state buffers (tensors are views into them) and one activation
// arena with fixed offsets. No step allocates.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/graph.hpp"
#include "ladon/training.hpp"

namespace ladon::engine {

struct ExecutorOptions {
    uint64_t seed = 1;
    OptimizerOptions::Kind optimizer = OptimizerOptions::Kind::adamw;
    bool learn_task_weights = false;  // uncertainty weighting: one log-variance per head
};

class Executor {
public:
    Executor(Graph graph, const ExecutorOptions& options);

    const Graph& graph() const { return graph_; }
    int64_t batch() const { return graph_.batch; }

    // Batch inputs, filled by the caller before forward().
    float* input() { return activations_.data(); }
    float* targets(int head) { return targets_.data() + target_offsets_[head]; }
    float* mask(int head) { return masks_.data() + int64_t(head) * graph_.batch; }
    int64_t target_floats(int head) const;  // per sample

    void forward(bool training);
    // Zeroes every gradient, then computes each head's loss and weighted logit
    // gradient in one multi-head loss call. Returns the weighted total.
    double compute_loss();
    void backward();
    // One optimizer step at learning rate `learning_rate`.
    void update(const OptimizerOptions& optimizer, float learning_rate);

    std::span<const float> head_losses() const { return head_losses_; }
    std::span<const float> head_weights() const { return head_weights_; }
    const float* head_output(int head) const;
    int64_t step() const { return step_; }  // updates applied
    void set_step(int64_t step) { step_ = step; }

    // The flat buffers. The trained parameters are [0, graph().parameter_count);
    // with learned task weights, one log-variance per head follows.
    std::span<float> parameters() { return parameters_; }
    std::span<float> gradients() { return gradients_; }
    std::span<float> state() { return state_; }
    std::span<float> optimizer_state() { return optimizer_state_; }
    std::span<const float> parameters() const { return parameters_; }
    std::span<const float> task_log_variances() const;

    // Gradient of a tensor (after backward), for tests.
    const float* tensor_gradient(int tensor) const { return gradients_arena_.data() + offsets_[tensor]; }
    const float* tensor_value(int tensor) const { return activations_.data() + offsets_[tensor]; }

    struct MemoryPlan {
        int64_t parameters = 0, gradients = 0, optimizer_state = 0, activations = 0, workspace = 0;
    };
    MemoryPlan memory_plan() const;

    // Mean milliseconds per node (forward, backward) and per phase over
    // `iterations` training steps on the current batch, after one warm-up
    // step; like `caffe time`. The steps do update the parameters.
    struct Timing {
        std::vector<double> forward_ms, backward_ms;  // per node
        double loss_ms = 0, update_ms = 0, step_ms = 0;
    };
    Timing profile(int iterations, const OptimizerOptions& optimizer, float learning_rate);

private:
    void initialise_parameters();
    void forward_node(const Node& node, bool training, std::size_t index);
    void backward_node(const Node& node, std::size_t index);
    float* value(int tensor) { return activations_.data() + offsets_[tensor]; }
    float* grad(int tensor) { return gradients_arena_.data() + offsets_[tensor]; }
    const float* param(int slice) const { return slice < 0 ? nullptr : parameters_.data() + graph_.parameters[slice].offset; }
    float* param_grad(int slice) { return slice < 0 ? nullptr : gradients_.data() + graph_.parameters[slice].offset; }
    uint64_t dropout_seed(std::size_t node_index) const;

    Graph graph_;
    ExecutorOptions options_;
    int threads_ = 1;
    int64_t step_ = 0;

    std::vector<float> parameters_, gradients_, optimizer_state_, state_;
    std::vector<int64_t> offsets_;  // per tensor, into both arenas
    std::vector<float> activations_, gradients_arena_;
    std::vector<int64_t> argmax_offsets_;  // per node (max pool only)
    std::vector<int32_t> argmax_;
    std::vector<int64_t> saved_offsets_;  // per node (batch norm: mean, inv_std)
    std::vector<float> saved_statistics_;
    std::vector<float> workspace_;
    std::vector<int64_t> target_offsets_;
    std::vector<float> targets_, masks_;
    std::vector<ops::LossHead> loss_heads_;
    std::vector<float> head_losses_, head_weights_;
};

}  // namespace ladon::engine
