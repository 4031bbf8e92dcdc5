#include "engine/distributed/data_parallel.hpp"

#include <fmt/format.h>

#include <cmath>

#include "engine/cpu_executor.hpp"
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

DataParallel::DataParallel(Communicator& group, Executor& executor) : group_(group), executor_(executor) {}

void DataParallel::broadcast_state() {
    if (group_.size() == 1) return;
    for (std::span<float> buffer : {executor_.parameters(), executor_.optimizer_state(), executor_.state()})
        group_.broadcast(buffer.data(), int64_t(buffer.size()));
}

std::vector<float> DataParallel::reduce_losses() {
    const auto local = executor_.head_losses();
    if (group_.size() == 1) return {local.begin(), local.end()};
    const Graph& graph = executor_.graph();
    const int heads = int(graph.heads.size());
    const int64_t batch = executor_.batch();
    // Present counts are known on the host from the batch's masks, the same
    // rule the loss applies (a row is present where its mask is not 0).
    sums_.assign(2 * std::size_t(heads), 0.0);
    for (int h = 0; h < heads; ++h) {
        const float* mask = executor_.mask(h);
        int64_t present = 0;
        for (int64_t row = 0; row < batch; ++row) present += mask[row] != 0.0f ? 1 : 0;
        sums_[h] = double(present);
        sums_[heads + h] = present > 0 ? double(local[h]) * double(present) : 0.0;
    }
    const std::vector<double> here(sums_.begin(), sums_.begin() + heads);
    group_.allreduce_sum(sums_.data(), int64_t(sums_.size()));

    std::vector<float> global(heads);
    std::span<float> parameters = executor_.parameters();
    std::span<float> gradients = executor_.gradients();
    const bool learned_weights = int64_t(parameters.size()) > graph.parameter_count;
    for (int h = 0; h < heads; ++h) {
        const double total_present = sums_[h];
        global[h] = total_present > 0 ? float(sums_[heads + h] / total_present) : 0.0f;
        // The global loss is sum_r (P_r / P) L_r; the gradients are averaged
        // (a factor 1/N), so rank r's share is weighted by N P_r / P.
        if (total_present <= 0) continue;  // no rank has a label: every gradient is 0 already
        const float scale = float(double(group_.size()) * here[h] / total_present);
        // The head's logit gradient, which the loss wrote and backward reads.
        // The executor offers it read-only (for tests); the weighting has to
        // happen between the two, in place.
        const Head& head = graph.heads[h];
        auto* cpu = dynamic_cast<CpuExecutor*>(&executor_);
        if (cpu == nullptr)
            throw Error(fmt::format("data-parallel training: {} ranks need the cpu backend in this build (the {} "
                                    "backend trains in one process); use --device cpu",
                                    group_.size(), executor_.backend_name()));
        float* grad_logits = const_cast<float*>(cpu->tensor_gradient(head.output));
        const int64_t count = batch * head.width;
        for (int64_t i = 0; i < count; ++i) grad_logits[i] *= scale;
        if (learned_weights) {
            // d/ds [exp(-s) w L + s] = 1 - exp(-s) w L: only the loss term
            // takes the weight; the +1 of each rank averages to 1.
            const float weight = head.spec.weight * std::exp(-parameters[graph.parameter_count + h]);
            gradients[graph.parameter_count + h] = 1.0f - weight * (scale * local[h]);
        }
    }
    return global;
}

void DataParallel::average_gradients() {
    if (group_.size() == 1) return;
    std::span<float> gradients = executor_.gradients();
    group_.allreduce_mean(gradients.data(), int64_t(gradients.size()));
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
