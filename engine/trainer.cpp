// The Trainer: shuffled batches through the executor, evaluation after each
// epoch, and the errors a run can hit (non-finite losses, datasets smaller
// than a batch). Steps are counted globally from 0, and everything a step
// uses (its batch, its dropout masks, its learning rate) is a function of the
// seed and the step, so a resumed run continues exactly as the uninterrupted
// one would have.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "engine/batch_loader.hpp"
#include "engine/distributed/data_parallel.hpp"
#include "engine/executor.hpp"
#include "engine/metrics.hpp"
#include "ladon/error.hpp"
#include "ladon/training.hpp"

namespace ladon {

struct Trainer::Impl {
    Impl(const ModelSpec& model_spec, const TrainerOptions& opts, std::shared_ptr<Communicator> process_group)
        : model(model_spec),
          options(opts),
          group(std::move(process_group)),
          executor(engine::make_executor(
              engine::build_graph(model_spec, engine::per_rank_batch(opts.batch_size, *group)),
              // Several ranks meet inside each step (DataParallel::train_step):
              // never a captured graph.
              engine::ExecutorOptions{opts.seed, opts.optimizer.kind, opts.task_weighting,
                                      opts.cuda_graphs && group->size() == 1, opts.precision},
              engine::BackendChoice{opts.backend, opts.cuda_device})) {}
    ModelSpec model;
    TrainerOptions options;
    std::shared_ptr<Communicator> group;  // data parallel ranks (one alone by default)
    std::unique_ptr<engine::Executor> executor;
    int64_t step = 0;          // batches trained on
    int64_t skipped_steps = 0;
    std::vector<int64_t> order;
    int64_t order_epoch = -1;  // the epoch `order` was shuffled for
};

namespace {
void validate(const TrainerOptions& options) {
    if (options.batch_size <= 0)
        throw Error(fmt::format("training: batch_size must be positive, got {}", options.batch_size));
    if (options.epochs <= 0 && options.max_steps <= 0)
        throw Error(fmt::format("training: epochs must be positive, got {}", options.epochs));
    if (!(options.optimizer.learning_rate > 0.0f))
        throw Error(fmt::format("training: optimizer learning_rate must be positive, got {}",
                                options.optimizer.learning_rate));
    if (!(options.allreduce_bucket_mb >= 0.0 && options.allreduce_bucket_mb <= 1048576.0))
        throw Error(fmt::format("training: allreduce_bucket_mb must be 0 (one collective) to 1048576 MiB, got {}",
                                options.allreduce_bucket_mb));
    if (options.threads > 0) omp_set_num_threads(options.threads);
}

const char* non_finite_name(float value) { return std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf"); }
}  // namespace

Trainer::Trainer(ModelSpec model, TrainerOptions options) : Trainer(std::move(model), std::move(options), nullptr) {}

Trainer::Trainer(ModelSpec model, TrainerOptions options, std::shared_ptr<Communicator> group) {
    validate(options);
    if (group == nullptr) group = make_single_process_communicator();
    impl_ = std::make_unique<Impl>(model, options, std::move(group));
    // Alone, a process's batch is the global batch: nothing to synchronise.
    if (options.sync_batch_norm && impl_->group->size() > 1)
        impl_->executor->set_batch_norm_sync(
            [&ranks = *impl_->group](double* data, int64_t count) { ranks.allreduce_sum(data, count); });
}
Trainer::~Trainer() = default;
Trainer::Trainer(Trainer&&) noexcept = default;
Trainer& Trainer::operator=(Trainer&&) noexcept = default;

int64_t Trainer::parameter_count() const { return impl_->executor->graph().parameter_count; }
int64_t Trainer::step() const { return impl_->step; }
int64_t Trainer::optimizer_step() const { return impl_->executor->step(); }
int64_t Trainer::skipped_steps() const { return impl_->skipped_steps; }
const ModelSpec& Trainer::model() const { return impl_->model; }
const TrainerOptions& Trainer::options() const { return impl_->options; }

void Trainer::set_progress(int64_t step, int64_t optimizer_step, int64_t skipped_steps) {
    if (step < 0 || optimizer_step < 0 || skipped_steps < 0 || optimizer_step > step)
        throw Error(fmt::format("training: inconsistent progress (step {}, optimizer step {}, skipped {})", step,
                                optimizer_step, skipped_steps));
    impl_->step = step;
    impl_->executor->set_step(optimizer_step);
    impl_->skipped_steps = skipped_steps;
}

std::vector<std::string> Trainer::head_names() const {
    std::vector<std::string> names;
    for (const auto& head : impl_->executor->graph().heads) names.push_back(head.spec.name);
    return names;
}

std::vector<int64_t> Trainer::head_widths() const {
    std::vector<int64_t> widths;
    for (const auto& head : impl_->executor->graph().heads) widths.push_back(head.width);
    return widths;
}

std::vector<StateTensor> Trainer::state_tensors() {
    engine::Executor& executor = *impl_->executor;
    executor.pull_state();
    const engine::Graph& graph = executor.graph();
    std::vector<StateTensor> tensors;
    auto add = [&](std::string name, std::vector<int64_t> shape, float* data, int64_t count) {
        tensors.push_back({std::move(name), std::move(shape), data, count});
    };
    for (const auto& slice : graph.parameters)
        add(slice.name, slice.dims, executor.parameters().data() + slice.offset, slice.count);
    for (const auto& slice : graph.state) add(slice.name, slice.dims, executor.state().data() + slice.offset, slice.count);
    // The task weighting's learned values ("task_weights.log_variance" for
    // uncertainty weighting), per head.
    const int64_t learned = int64_t(executor.parameters().size()) - graph.parameter_count;
    const std::string learned_name =
        learned > 0 ? fmt::format("task_weights.{}", executor.task_weighting().parameter_name) : std::string();
    if (learned > 0) add(learned_name, {learned}, executor.parameters().data() + graph.parameter_count, learned);
    // Optimizer state, named after the parameter it belongs to (PyTorch's
    // names for the AdamW moments and the SGD momentum buffer).
    std::span<float> moments = executor.optimizer_state();
    const bool adamw = impl_->options.optimizer.kind == OptimizerOptions::Kind::adamw;
    auto add_moments = [&](const char* kind, int64_t base) {
        for (const auto& slice : graph.parameters)
            add(fmt::format("optimizer.{}.{}", kind, slice.name), slice.dims, moments.data() + base + slice.offset,
                slice.count);
        if (learned > 0)
            add(fmt::format("optimizer.{}.{}", kind, learned_name), {learned}, moments.data() + base + graph.parameter_count,
                learned);
    };
    if (adamw) {
        add_moments("exp_avg", 0);
        add_moments("exp_avg_sq", int64_t(executor.parameters().size()));
    } else {
        add_moments("momentum_buffer", 0);
    }
    return tensors;
}

void Trainer::state_tensors_written() { impl_->executor->push_state(); }

std::string Trainer::backend_name() const { return impl_->executor->backend_name(); }
Precision Trainer::precision() const { return impl_->executor->precision(); }


Trainer::MemoryPlan Trainer::memory_plan() const {
    const auto plan = impl_->executor->memory_plan();
    return {plan.parameters, plan.gradients, plan.optimizer_state, plan.activations, plan.workspace};
}

std::vector<TaskMetric> Trainer::evaluate(const Dataset& data) {
    engine::Executor& executor = *impl_->executor;
    engine::BatchLoader loader(data, executor.batch_layout());
    engine::Batch batch_data(executor.batch_layout(), executor.batch_memory());
    engine::MetricAccumulator metrics(executor.graph(), /*detailed=*/true);
    const int64_t batch = executor.batch();
    std::vector<int64_t> indices(batch);
    for (int64_t begin = 0; begin < data.size(); begin += batch) {
        const int64_t rows = std::min(batch, data.size() - begin);
        for (int64_t r = 0; r < rows; ++r) indices[r] = begin + r;
        loader.load(std::span<const int64_t>(indices.data(), rows), batch_data);
        executor.forward(batch_data, false);
        executor.compute_loss(batch_data);
        metrics.add(executor, batch_data);
    }
    return metrics.result();
}

void Trainer::predict(const float* inputs, int64_t count, std::vector<std::vector<float>>& outputs) {
    engine::Executor& executor = *impl_->executor;
    const engine::Graph& graph = executor.graph();
    const int64_t batch = executor.batch();
    const int64_t sample = graph.tensors[0].shape.per_sample();
    outputs.assign(graph.heads.size(), {});
    for (std::size_t h = 0; h < graph.heads.size(); ++h) outputs[h].resize(count * graph.heads[h].width);
    engine::Batch batch_data(executor.batch_layout(), executor.batch_memory());
    float* input = batch_data.input().data();
    for (int64_t begin = 0; begin < count; begin += batch) {
        const int64_t rows = std::min(batch, count - begin);
        std::copy(inputs + begin * sample, inputs + (begin + rows) * sample, input);
        std::fill(input + rows * sample, input + batch * sample, 0.0f);
        executor.forward(batch_data, false);
        for (std::size_t h = 0; h < graph.heads.size(); ++h) {
            const int64_t width = graph.heads[h].width;
            const float* out = executor.head_output(int(h));
            std::copy(out, out + rows * width, outputs[h].data() + begin * width);
        }
    }
}

StepTimingReport Trainer::time_steps(const Dataset& data, int iterations) {
    engine::Executor& executor = *impl_->executor;
    engine::BatchLoader loader(data, executor.batch_layout());
    engine::Batch batch_data(executor.batch_layout(), executor.batch_memory());
    const int64_t batch = executor.batch();
    std::vector<int64_t> indices(batch);
    for (int64_t r = 0; r < batch; ++r) indices[r] = r % data.size();
    loader.load(indices, batch_data);
    const auto timing = executor.profile(batch_data, iterations, impl_->options.optimizer,
                                         impl_->options.optimizer.learning_rate);
    StepTimingReport report;
    report.batch = batch;
    const engine::Graph& graph = executor.graph();
    for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const engine::Node& node = graph.nodes[i];
        report.layers.push_back({node.name, to_string(node.spec.op),
                                 node.head >= 0 ? graph.heads[node.head].spec.name : std::string(),
                                 timing.forward_ms[i], timing.backward_ms[i]});
    }
    report.loss_ms = timing.loss_ms;
    report.update_ms = timing.update_ms;
    report.step_ms = timing.step_ms;
    return report;
}

std::vector<EpochReport> Trainer::fit(const Dataset& train, const Dataset* test,
                                      const std::function<void(const EpochReport&)>& on_epoch) {
    Callbacks callbacks;
    callbacks.on_epoch = on_epoch;
    return fit(train, test, callbacks);
}

std::vector<EpochReport> Trainer::fit(const Dataset& train, const Dataset* test, const Callbacks& callbacks) {
    Impl& impl = *impl_;
    const TrainerOptions& options = impl.options;
    engine::Executor& executor = *impl.executor;
    const AugmentationOptions& augment = options.augmentation;
    // A positive size of under 4 bytes is one float: each final range its own bucket.
    const double bucket_bytes = options.allreduce_bucket_mb * 1048576.0;
    engine::DataParallel parallel(*impl.group, executor,
                                  bucket_bytes > 0.0 ? std::max<int64_t>(int64_t(bucket_bytes), 1) : 0);
    parallel.broadcast_state();
    const engine::Augmentation augmentation{augment.max_shift, augment.horizontal_flip, augment.box_tasks,
                                            options.seed, parallel.first_row()};
    engine::MetricAccumulator metrics(executor.graph());
    const int64_t rank_batch = executor.batch();
    const int64_t batch = parallel.global_batch();
    const int64_t steps_per_epoch = train.size() / batch;
    if (steps_per_epoch == 0)
        throw Error(fmt::format("training: dataset '{}' has {} samples, fewer than one batch of {}", train.name(),
                                train.size(), batch));
    const int64_t epoch_steps = std::max<int64_t>(options.epochs, 0) * steps_per_epoch;
    const int64_t total_steps =
        options.max_steps > 0 ? (options.epochs > 0 ? std::min(options.max_steps, epoch_steps) : options.max_steps)
                              : epoch_steps;
    ScheduleOptions schedule = options.schedule;
    if (schedule.total_steps <= 0) schedule.total_steps = total_steps;
    // The batches: loaded ahead on a background thread (the same bits), or
    // here, at the start of each step.
    std::optional<engine::BatchLoader> loader;
    std::optional<engine::Batch> loaded;  // the loader's batch, without prefetching
    std::optional<engine::BatchPrefetcher> prefetcher;
    const engine::StepOrder step_order{options.seed, train.size(), batch, parallel.first_row(), rank_batch};
    const int prefetch = options.prefetch_batches;
    if (prefetch > 0 && impl.step < total_steps) {
        prefetcher.emplace(train, executor.batch_layout(), executor.batch_memory(), step_order, augmentation,
                           impl.step, total_steps, prefetch);
    } else {
        loader.emplace(train, executor.batch_layout(), augmentation);
        loaded.emplace(executor.batch_layout(), executor.batch_memory());
    }

    std::vector<EpochReport> reports;
    const auto fit_start = std::chrono::steady_clock::now();
    auto epoch_start = fit_start;
    int64_t fit_samples = 0, epoch_samples = 0;
    StepReport step_report;
    step_report.total_steps = total_steps;
    step_report.steps_per_epoch = steps_per_epoch;
    std::vector<float> losses;  // this step's, per head (kept: no allocation per step)
    while (impl.step < total_steps) {
        const int64_t epoch = impl.step / steps_per_epoch + 1;
        const int64_t position = impl.step % steps_per_epoch;
        const engine::Batch* step_batch = nullptr;
        const engine::Batch* next_batch = nullptr;  // the next step's, if loaded: a GPU copies it in meanwhile
        if (prefetcher) {
            step_batch = &prefetcher->next(impl.step);
            next_batch = prefetcher->peek(impl.step + 1);
        } else {
            loader->load(step_order.rows_of(impl.step, impl.order, impl.order_epoch), *loaded, impl.step);
            step_batch = &*loaded;
        }
        const float learning_rate = learning_rate_at(schedule, options.optimizer.learning_rate, impl.step);
        // A step whose loss is not finite applies no update; then stop, or
        // count it as skipped. One process runs the whole step in the
        // executor (one wait on a GPU, a replayed CUDA graph); several ranks
        // meet between its phases (losses, then gradients).
        bool finite = true;
        if (impl.group->size() == 1) {
            finite = executor.train_step(*step_batch, options.optimizer, learning_rate, {}, next_batch);
            losses.assign(executor.head_losses().begin(), executor.head_losses().end());
        } else {
            finite = parallel.train_step(*step_batch, options.optimizer, learning_rate, losses);
        }
        if (!finite) {
            for (std::size_t h = 0; h < losses.size(); ++h) {
                if (std::isfinite(losses[h])) continue;
                if (options.on_non_finite_loss == NonFiniteLoss::stop)
                    throw Error(fmt::format("training: the loss of task '{}' is {} at step {} (epoch {}); stopping",
                                            executor.graph().heads[h].spec.name, non_finite_name(losses[h]),
                                            impl.step + 1, epoch));
                break;
            }
            ++impl.skipped_steps;
        } else {
            metrics.add(executor, *step_batch);
        }
        ++impl.step;
        fit_samples += batch;
        epoch_samples += batch;

        step_report.step = impl.step;
        step_report.epoch = epoch;
        step_report.learning_rate = learning_rate;
        step_report.losses.assign(losses.begin(), losses.end());
        step_report.skipped = !finite;
        step_report.skipped_steps = impl.skipped_steps;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - fit_start).count();
        step_report.samples_per_second = elapsed > 0 ? double(fit_samples) / elapsed : 0.0;
        if (!parallel.all_continue(!callbacks.on_step || callbacks.on_step(step_report))) break;

        if (position + 1 == steps_per_epoch || impl.step == total_steps) {
            EpochReport report;
            report.epoch = epoch;
            report.steps = impl.step;
            report.samples = epoch_samples;
            parallel.reduce_metrics(metrics);
            report.train = metrics.result();
            report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
            if (test != nullptr) report.test = evaluate(*test);
            if (callbacks.on_epoch) callbacks.on_epoch(report);
            reports.push_back(std::move(report));
            metrics.reset();
            epoch_samples = 0;
            epoch_start = std::chrono::steady_clock::now();
        }
    }
    return reports;
}

}  // namespace ladon
