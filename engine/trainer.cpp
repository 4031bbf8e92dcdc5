// The Trainer: epochs of shuffled batches through the executor, evaluation
// after each epoch, and the errors a run can hit (non-finite losses, datasets
// smaller than a batch).
#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cmath>

#include "engine/batch_loader.hpp"
#include "engine/executor.hpp"
#include "engine/metrics.hpp"
#include "ladon/error.hpp"
#include "ladon/training.hpp"

namespace ladon {

struct Trainer::Impl {
    Impl(const ModelSpec& model, const TrainerOptions& opts)
        : options(opts),
          executor(engine::build_graph(model, opts.batch_size),
                   engine::ExecutorOptions{opts.seed, opts.optimizer.kind,
                                           opts.task_weighting == TaskWeighting::uncertainty}) {}
    TrainerOptions options;
    engine::Executor executor;
    std::vector<int64_t> order;
};

namespace {
void validate(const TrainerOptions& options) {
    if (options.batch_size <= 0) throw Error(fmt::format("training: batch_size must be positive, got {}", options.batch_size));
    if (options.epochs <= 0 && options.max_steps <= 0)
        throw Error(fmt::format("training: epochs must be positive, got {}", options.epochs));
    if (!(options.optimizer.learning_rate > 0.0f))
        throw Error(fmt::format("training: optimizer learning_rate must be positive, got {}",
                                options.optimizer.learning_rate));
    if (options.threads > 0) omp_set_num_threads(options.threads);
}
}  // namespace

Trainer::Trainer(ModelSpec model, TrainerOptions options) {
    validate(options);
    impl_ = std::make_unique<Impl>(model, options);
}
Trainer::~Trainer() = default;
Trainer::Trainer(Trainer&&) noexcept = default;
Trainer& Trainer::operator=(Trainer&&) noexcept = default;

int64_t Trainer::parameter_count() const { return impl_->executor.graph().parameter_count; }

Trainer::MemoryPlan Trainer::memory_plan() const {
    const auto plan = impl_->executor.memory_plan();
    return {plan.parameters, plan.gradients, plan.optimizer_state, plan.activations, plan.workspace};
}

std::vector<TaskMetric> Trainer::evaluate(const Dataset& data) {
    engine::Executor& executor = impl_->executor;
    engine::BatchLoader loader(data, executor);
    engine::MetricAccumulator metrics(executor.graph());
    const int64_t batch = executor.batch();
    std::vector<int64_t> indices(batch);
    for (int64_t begin = 0; begin < data.size(); begin += batch) {
        const int64_t rows = std::min(batch, data.size() - begin);
        for (int64_t r = 0; r < rows; ++r) indices[r] = begin + r;
        loader.load(std::span<const int64_t>(indices.data(), rows));
        executor.forward(false);
        executor.compute_loss();
        metrics.add(executor);
    }
    return metrics.result();
}

std::vector<EpochReport> Trainer::fit(const Dataset& train, const Dataset* test,
                                      const std::function<void(const EpochReport&)>& on_epoch) {
    TrainerOptions& options = impl_->options;
    engine::Executor& executor = impl_->executor;
    engine::BatchLoader loader(train, executor);
    engine::MetricAccumulator metrics(executor.graph());
    const int64_t batch = executor.batch();
    const int64_t steps_per_epoch = train.size() / batch;
    if (steps_per_epoch == 0)
        throw Error(fmt::format("training: dataset '{}' has {} samples, fewer than one batch of {}", train.name(),
                                train.size(), batch));
    int64_t epochs = options.epochs;
    if (options.max_steps > 0) epochs = std::max<int64_t>(epochs, (options.max_steps + steps_per_epoch - 1) / steps_per_epoch);
    ScheduleOptions schedule = options.schedule;
    // A second fit() continues training: its steps count from where the last one ended.
    const int64_t first_step = executor.step();
    const int64_t planned_steps =
        first_step +
        (options.max_steps > 0 ? std::min(options.max_steps, epochs * steps_per_epoch) : epochs * steps_per_epoch);
    if (schedule.total_steps <= 0) schedule.total_steps = planned_steps;  // the schedule counts global steps

    std::vector<EpochReport> reports;
    for (int64_t epoch = 1; epoch <= epochs && executor.step() < planned_steps; ++epoch) {
        const auto start = std::chrono::steady_clock::now();
        engine::shuffled_indices(options.seed, epoch, impl_->order, train.size());
        metrics.reset();
        int64_t samples = 0;
        for (int64_t s = 0; s < steps_per_epoch && executor.step() < planned_steps; ++s) {
            loader.load(std::span<const int64_t>(impl_->order.data() + s * batch, batch));
            executor.forward(true);
            executor.compute_loss();
            const auto losses = executor.head_losses();
            for (std::size_t h = 0; h < losses.size(); ++h)
                if (!std::isfinite(losses[h]))
                    throw Error(fmt::format("training: the loss of task '{}' is {} at step {} (epoch {}); stopping",
                                            executor.graph().heads[h].spec.name,
                                            std::isnan(losses[h]) ? "NaN" : (losses[h] > 0 ? "+Inf" : "-Inf"),
                                            executor.step() + 1, epoch));
            metrics.add(executor);
            samples += batch;
            executor.backward();
            executor.update(options.optimizer,
                            learning_rate_at(schedule, options.optimizer.learning_rate, executor.step()));
        }
        EpochReport report;
        report.epoch = epoch;
        report.steps = executor.step();
        report.samples = samples;
        report.train = metrics.result();
        report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (test != nullptr) report.test = evaluate(*test);
        if (on_epoch) on_epoch(report);
        reports.push_back(std::move(report));
    }
    return reports;
}

}  // namespace ladon
