#pragma once
// Training options: optimizer, learning-rate schedule, task weighting, and the
// Trainer that runs epochs over datasets on the CPU or the CUDA backend.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ladon/communicator.hpp"
#include "ladon/dataset.hpp"
#include "ladon/model.hpp"

namespace ladon {

struct OptimizerOptions {
    enum class Kind { sgd, adamw } kind = Kind::adamw;
    float learning_rate = 1e-3f;
    float momentum = 0.9f;  // sgd
    bool nesterov = false;  // sgd
    float beta1 = 0.9f;     // adamw
    float beta2 = 0.999f;   // adamw
    float epsilon = 1e-8f;  // adamw
    float weight_decay = 0.0f;
};

struct ScheduleOptions {
    enum class Kind { constant, step, cosine } kind = Kind::constant;
    int64_t warmup_steps = 0;   // linear from 0 to the base rate over these steps
    int64_t step_size = 1000;   // step: multiply by gamma every step_size steps
    float gamma = 0.1f;         // step
    int64_t total_steps = 0;    // cosine: length of the decay (0: the whole run)
    float min_learning_rate = 0.0f;  // cosine floor
};

// Learning rate at 0-based step `step` for base rate `base`.
float learning_rate_at(const ScheduleOptions& schedule, float base, int64_t step);

enum class TaskWeighting {
    fixed,        // each head's `weight`
    uncertainty,  // learned: sum_i exp(-s_i) * weight_i * L_i + s_i (Kendall, Gal, Cipolla 2018)
    rlw,          // random: each step weight_i * softmax(z)_i, z ~ N(0, 1) per head (Lin et al., TMLR 2022)
};

// What to do when a step's loss is NaN or infinite.
// Where training runs: the CPU backend, or the CUDA backend (hand-written
// kernels on an NVIDIA GPU; only in builds with CUDA).
enum class Backend { cpu, cuda };

// The math of convolution and dense layers (config: training.precision).
// fp32: FP32 everywhere, the SIMT kernels. tf32 / bf16 (CUDA): the operands
// rounded to TF32 or BF16 for the tensor cores, FP32 accumulation and
// storage. automatic: tf32 on CUDA (PyTorch's choice for convolutions), fp32
// on the CPU, which computes in FP32 whatever is asked (and says so once).
// Convolutions, dense layers and head groups take the tensor cores.
enum class Precision { automatic, fp32, tf32, bf16 };
const char* precision_name(Precision precision);

enum class NonFiniteLoss {
    stop,  // throw ladon::Error naming the task and the step
    skip,  // skip that batch's update and go on (counted in StepReport)
};

// Training-time augmentation (config: [data] augment_shift, augment_flip,
// box_tasks): a random shift of up to max_shift pixels and a random
// horizontal flip per sample; box tasks (x0, y0, x1, y1 / image size) move
// with the image. Drawn from (seed, step, row): resumes repeat it exactly.
struct AugmentationOptions {
    int64_t max_shift = 0;
    bool horizontal_flip = false;
    std::vector<std::string> box_tasks;
};

struct TrainerOptions {
    int64_t batch_size = 32;
    int64_t epochs = 1;
    int64_t max_steps = 0;  // stop after this many steps (0: no limit)
    uint64_t seed = 1;
    int threads = 0;        // OpenMP threads (0: all cores)
    OptimizerOptions optimizer;
    ScheduleOptions schedule;
    TaskWeighting task_weighting = TaskWeighting::fixed;
    NonFiniteLoss on_non_finite_loss = NonFiniteLoss::stop;
    AugmentationOptions augmentation;
    // Batches loaded ahead on a background thread (0: in the training thread),
    // so that on a GPU the host loads while the device computes
    // (bench/README.md has what it costs on the CPU).
    int prefetch_batches = 2;
    Backend backend = Backend::cpu;  // where the steps run (ladon train --device)
    int cuda_device = 0;             // with Backend::cuda
    bool cuda_graphs = true;         // CUDA: capture the training step once, then replay it
    Precision precision = Precision::automatic;
    // Several ranks: batch norm normalises with the statistics of the whole
    // global batch (summed over the ranks) instead of each rank's own rows.
    bool sync_batch_norm = false;
    // Several ranks: average the gradients in buckets of at least this many
    // MiB (2^20 bytes), each started during the backward pass as soon as it
    // is final, overlapping communication with the rest of the pass. 0: one
    // collective over the whole buffer after the backward pass.
    double allreduce_bucket_mb = 0.0;
};

// After every training step.
struct StepReport {
    int64_t step = 0;             // steps done (1-based: the step just finished)
    int64_t total_steps = 0;      // steps this run will take
    int64_t epoch = 0;            // 1-based
    int64_t steps_per_epoch = 0;
    float learning_rate = 0.0f;
    std::vector<float> losses;    // per head, this step's mean loss
    bool skipped = false;         // a non-finite loss skipped this update
    int64_t skipped_steps = 0;    // so far
    double samples_per_second = 0.0;  // over this fit() call so far
};

// A view of one named tensor of the training state (weights, batch-norm
// running statistics, optimizer moments, learned task weights), pointing
// into the trainer's flat buffers: read it to save, write it to restore.
struct StateTensor {
    std::string name;
    std::vector<int64_t> shape;
    float* data = nullptr;
    int64_t count = 0;
};

struct TaskMetric {
    std::string task;
    std::string metric;  // the headline: "accuracy" (classes, binary) or "mae" (regression)
    double loss = 0.0;   // mean loss over the samples seen
    double value = 0.0;
    // Evaluation adds: "top5" (classes, more than 5), "auc" (binary: ROC AUC
    // over every label), "rmse" and, for 4-wide boxes, "iou" (mean IoU).
    std::vector<std::pair<std::string, double>> extra;
};

struct EpochReport {
    int64_t epoch = 0;  // 1-based
    int64_t steps = 0;  // steps so far
    int64_t samples = 0;  // training samples seen in this epoch
    double seconds = 0.0;
    std::vector<TaskMetric> train;  // running loss over the epoch (metric value: training metric)
    std::vector<TaskMetric> test;   // evaluation on the test set (empty without one)
};

// `ladon time`: mean milliseconds per layer and per step phase.
struct LayerTiming {
    std::string name;  // layer name
    std::string op;
    std::string head;  // empty for the trunk
    double forward_ms = 0, backward_ms = 0;
};
struct StepTimingReport {
    std::vector<LayerTiming> layers;
    double loss_ms = 0, update_ms = 0, step_ms = 0;
    int64_t batch = 0;
};

class Trainer {
public:
    Trainer(ModelSpec model, TrainerOptions options);
    // Data parallel over `group`'s ranks: options.batch_size is the global
    // batch, each rank's executor takes batch_size / group.size() rows of it
    // (see engine/distributed/data_parallel.hpp). Null: one process.
    Trainer(ModelSpec model, TrainerOptions options, std::shared_ptr<Communicator> group);
    ~Trainer();
    Trainer(Trainer&&) noexcept;
    Trainer& operator=(Trainer&&) noexcept;

    struct Callbacks {
        // Return false to stop after this step (e.g. on SIGINT); fit() then
        // returns at once, with the state consistent for a checkpoint.
        std::function<bool(const StepReport&)> on_step;
        std::function<void(const EpochReport&)> on_epoch;
    };
    // Trains until step options.epochs * steps_per_epoch (or max_steps),
    // counted from step 0: after set_step(n) (a resume) it goes on from n,
    // and the batches, dropout masks and learning rates are those the
    // uninterrupted run would have used. Evaluates on `test` (may be null)
    // at the end of each epoch.
    std::vector<EpochReport> fit(const Dataset& train, const Dataset* test, const Callbacks& callbacks);
    std::vector<EpochReport> fit(const Dataset& train, const Dataset* test,
                                 const std::function<void(const EpochReport&)>& on_epoch = {});
    std::vector<TaskMetric> evaluate(const Dataset& data);
    // Each head's outputs (logits or regressions) for `count` samples of
    // input (count x C x H x W floats): outputs[h] gets count x width floats.
    void predict(const float* inputs, int64_t count, std::vector<std::vector<float>>& outputs);

    // Times `iterations` training steps layer by layer on one batch of
    // `data` (after a warm-up step). Changes the parameters.
    StepTimingReport time_steps(const Dataset& data, int iterations);

    // Training state, for checkpoints: views of host copies of the flat
    // buffers, current when returned. After writing through them, call
    // state_tensors_written() so a device backend takes the new values.
    std::vector<StateTensor> state_tensors();
    void state_tensors_written();
    // "cpu", "cuda" or "cuda (emulated)".
    std::string backend_name() const;
    // The conv and dense math in effect on that backend (never automatic).
    Precision precision() const;
    int64_t step() const;             // batches trained on so far
    int64_t optimizer_step() const;   // updates applied (AdamW's t)
    int64_t skipped_steps() const;
    void set_progress(int64_t step, int64_t optimizer_step, int64_t skipped_steps);
    const ModelSpec& model() const;
    const TrainerOptions& options() const;
    std::vector<std::string> head_names() const;
    std::vector<int64_t> head_widths() const;

    // What the executor planned, in bytes.
    struct MemoryPlan {
        int64_t parameters = 0, gradients = 0, optimizer_state = 0, activations = 0, workspace = 0;
    };
    MemoryPlan memory_plan() const;
    int64_t parameter_count() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ladon
