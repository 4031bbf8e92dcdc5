#pragma once
// The CPU backend's executor: every op from ladon::cpu (kernels/cpu/), the
// reference the CUDA backend is tested against and the fallback without a GPU.
#include "engine/executor.hpp"
#include "engine/ops/op.hpp"

namespace ladon::engine {

class CpuExecutor final : public Executor {
public:
    CpuExecutor(Graph graph, const ExecutorOptions& options);

    std::string backend_name() const override { return "cpu"; }
    void update(const OptimizerOptions& optimizer, float learning_rate) override;
    const float* head_output(int head) const override;
    void scale_head_gradient(int head, float scale) override;
    MemoryPlan memory_plan() const override;
    void set_batch_norm_sync(BatchNormSync allreduce_sum) override { batch_norm_sync_ = std::move(allreduce_sum); }

    // Value and gradient of a tensor (after forward / backward), for tests.
    const float* tensor_value(int tensor) const { return activations_.data() + plan_.offsets[tensor]; }
    const float* tensor_gradient(int tensor) const { return gradients_arena_.data() + plan_.offsets[tensor]; }

private:
    void load_input(const Batch& batch) override;
    void load_labels(const Batch& batch) override;
    void run_forward(bool training) override;
    double run_loss() override;
    void forward_node(std::size_t index, bool training) override;
    void backward_node(std::size_t index) override;
    CpuOpStep op_step(const Node& node, bool training, std::size_t index);
    float* value(int tensor) { return activations_.data() + plan_.offsets[tensor]; }
    float* grad(int tensor) { return gradients_arena_.data() + plan_.offsets[tensor]; }

    int threads_ = 1;
    ArenaPlan plan_;
    OpBuffers buffers_;  // views of the buffers below, for the ops' CPU functions
    std::vector<float> activations_, gradients_arena_;
    std::vector<int32_t> argmax_;
    std::vector<float> saved_statistics_;
    std::vector<float> workspace_;
    std::vector<ops::LossHead> loss_heads_;
    BatchNormSync batch_norm_sync_;
    // Per-channel sums for synchronised batch norm, sized for the widest
    // batch-norm node: [this rank's sums, the sums over the ranks].
    std::vector<double> batch_norm_sums_;
};

}  // namespace ladon::engine
