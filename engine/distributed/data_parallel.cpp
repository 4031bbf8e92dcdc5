#include "engine/distributed/data_parallel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ladon/error.hpp"

namespace ladon::engine {

int64_t per_rank_batch(int64_t global_batch, const Communicator& group) {
    const int64_t ranks = group.size();
    if (global_batch % ranks != 0 || global_batch < ranks)
        throw Error(
            fmt::format("training: batch_size {} (the global batch) must be a positive multiple of the {} "
                        "ranks, which each take batch_size / ranks rows",
                        global_batch, ranks));
    return global_batch / ranks;
}

DataParallel::DataParallel(Communicator& group, Executor& executor, int64_t bucket_bytes)
    : group_(group), executor_(executor), on_device_(group.device_buffers()) {
    if (bucket_bytes < 0)
        throw Error(fmt::format("data-parallel training: a bucket of {} bytes; expected 0 (one collective) or more",
                                bucket_bytes));
    const std::span<float> device_gradients = executor_.device_buffer(Executor::FlatBuffer::gradients);
    // A device backend without a device communicator stages the gradients
    // through the host in one piece: average_gradients() says why.
    bucketed_ = bucket_bytes > 0 && (on_device_ || device_gradients.data() == nullptr);
    bucket_floats_ = std::max<int64_t>(1, bucket_bytes / int64_t(sizeof(float)));
    gradients_ = on_device_ ? device_gradients.data() : executor_.gradients().data();
    if (!on_device_) return;
    if (device_gradients.data() == nullptr)
        throw Error(
            fmt::format("data-parallel training: the {} communicator averages GPU memory, but the {} "
                        "backend keeps its gradients on the host",
                        group_.backend(), executor_.backend_name()));
    // The collectives go on the executor's stream: backward before them,
    // the update after, and no host wait for them (one per step fewer than
    // waiting for backward first).
    group_.set_device_stream(executor_.device_stream());
    stream_ = executor_.device_stream();
}

DataParallel::~DataParallel() {
    if (on_device_) group_.set_device_stream(nullptr);  // the executor's stream may go before the communicator
}

void DataParallel::broadcast_state() {
    if (group_.size() == 1) return;
    using Buffer = Executor::FlatBuffer;
    if (on_device_) {
        for (Buffer buffer : {Buffer::parameters, Buffer::optimizer_state, Buffer::state}) {
            std::span<float> values = executor_.device_buffer(buffer);
            if (!values.empty()) group_.broadcast(values.data(), int64_t(values.size()));
        }
        executor_.pull_state();  // the host mirrors, as the device now has them
        return;
    }
    // Host buffers: the CPU backend's own, or a device backend's mirrors
    // (one round trip, once per run).
    executor_.pull_state();
    for (std::span<float> buffer : {executor_.parameters(), executor_.optimizer_state(), executor_.state()})
        group_.broadcast(buffer.data(), int64_t(buffer.size()));
    executor_.push_state();
}

std::vector<float> DataParallel::reduce_losses(const Batch& batch_data) {
    const auto local = executor_.head_losses();
    const Graph& graph = executor_.graph();
    const int heads = int(graph.heads.size());
    const int64_t batch = executor_.batch();
    // Present counts are known on the host from the batch's masks, the same
    // rule the loss applies (a row is present where its mask is not 0).
    sums_.assign(2 * std::size_t(heads), 0.0);
    for (int h = 0; h < heads; ++h) {
        const float* mask = batch_data.mask(h);
        int64_t present = 0;
        for (int64_t row = 0; row < batch; ++row) present += mask[row] != 0.0f ? 1 : 0;
        sums_[h] = double(present);
        sums_[heads + h] = present > 0 ? double(local[h]) * double(present) : 0.0;
    }
    const std::vector<double> here(sums_.begin(), sums_.begin() + heads);
    group_.allreduce_sum(sums_.data(), int64_t(sums_.size()));

    std::vector<float> global(heads);
    for (int h = 0; h < heads; ++h) {
        const double total_present = sums_[h];
        global[h] = total_present > 0 ? float(sums_[heads + h] / total_present) : 0.0f;
        // The global loss is sum_r (P_r / P) L_r; the gradients are averaged
        // (a factor 1/N), so rank r's share is weighted by N P_r / P.
        if (total_present <= 0) continue;  // no rank has a label: every gradient is 0 already
        executor_.scale_head_gradient(h, float(double(group_.size()) * here[h] / total_present));
    }
    // The task weighting's learned values: their gradients from the global
    // losses, the same on every rank, so the average keeps them.
    executor_.set_task_weighting_losses(global);
    return global;
}

void DataParallel::average_gradients() {
    if (on_device_) {
        std::span<float> gradients = executor_.device_buffer(Executor::FlatBuffer::gradients);
        group_.allreduce_mean(gradients.data(), int64_t(gradients.size()));
        return;
    }
    // Host memory: the CPU backend's buffer itself, or a device backend's
    // gradients staged through its host mirror (MPI without NCCL). The
    // staged case stays one collective even with buckets asked for: a bucket
    // could go to the host only once its kernels have run, so the host
    // would wait inside backward() for each one and stop enqueueing the rest
    // of the pass meanwhile: the GPU would idle during each MPI call instead
    // of overlapping it, for one wait per bucket instead of one per step.
    executor_.pull_gradients();
    std::span<float> gradients = executor_.gradients();
    group_.allreduce_mean(gradients.data(), int64_t(gradients.size()));
    executor_.push_gradients();
}

bool DataParallel::train_step(const Batch& batch, const OptimizerOptions& optimizer, float learning_rate,
                              std::vector<float>& losses) {
    executor_.forward(batch, true);
    executor_.compute_loss(batch);
    losses = reduce_losses(batch);
    for (float loss : losses)
        if (!std::isfinite(loss)) return false;  // every rank sees the same losses, so every rank skips
    if (bucketed_) {
        backward_in_buckets();
    } else {
        executor_.backward();
        average_gradients();
    }
    executor_.update(optimizer, learning_rate);
    return true;
}

void DataParallel::backward_in_buckets() {
    bucket_begin_ = bucket_end_ = int64_t(executor_.gradients().size());
    buckets_started_ = 0;
    {
        // The hook lives for this backward() only, also when it throws.
        struct Unhook {
            Executor& executor;
            ~Unhook() { executor.set_gradients_final_hook({}); }
        } unhook{executor_};
        executor_.set_gradients_final_hook([this](int64_t begin, int64_t end) { gradients_final(begin, end); });
        executor_.backward();
    }
    start_bucket();  // the rest, below the last full bucket
    if (bucket_begin_ != 0)
        throw Error(fmt::format("data-parallel training: backward() left gradients [0, {}) unreported", bucket_begin_));
    group_.join(stream_);
    buckets_last_step_ = buckets_started_;
}

void DataParallel::gradients_final(int64_t begin, int64_t end) {
    if (end != bucket_begin_)
        throw Error(
            fmt::format("data-parallel training: the gradients [{}, {}) became final, but the buckets "
                        "expected a range ending at {}",
                        begin, end, bucket_begin_));
    bucket_begin_ = begin;
    if (bucket_end_ - bucket_begin_ >= bucket_floats_) start_bucket();
    // MPI moves a started reduction on only inside its calls.
    if (buckets_started_ > 0) group_.progress();
}

void DataParallel::start_bucket() {
    if (bucket_end_ == bucket_begin_) return;
    group_.allreduce_mean_after(gradients_ + bucket_begin_, bucket_end_ - bucket_begin_, stream_);
    bucket_end_ = bucket_begin_;
    ++buckets_started_;
}

bool DataParallel::all_continue(bool continue_here) {
    if (group_.size() == 1) return continue_here;
    int64_t stopping = continue_here ? 0 : 1;
    group_.allreduce_sum(&stopping, 1);
    return stopping == 0;
}

void DataParallel::reduce_metrics(MetricAccumulator& metrics) {
    if (group_.size() == 1) return;
    std::vector<double> totals = metrics.totals();
    group_.allreduce_sum(totals.data(), int64_t(totals.size()));
    metrics.set_totals(totals);
}

}  // namespace ladon::engine
