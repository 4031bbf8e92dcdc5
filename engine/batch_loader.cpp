#include "engine/batch_loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <numeric>

#include "ladon/error.hpp"

namespace ladon::engine {

namespace {
const char* kind_name(TaskKind kind) {
    switch (kind) {
        case TaskKind::classes: return "classes";
        case TaskKind::binary: return "binary";
        case TaskKind::regression: return "regression";
    }
    return "?";
}
}  // namespace

BatchLoader::BatchLoader(const Dataset& dataset, Executor& executor) : dataset_(dataset), executor_(executor) {
    const Graph& graph = executor.graph();
    const auto& tasks = dataset.tasks();
    const SampleShape sample = dataset.sample_shape();
    const TensorShape& input = graph.tensors[0].shape;
    if (sample.channels != input.channels || sample.height != input.height || sample.width != input.width)
        throw Error(fmt::format("dataset '{}' has samples of shape [{}, {}, {}] but the model's input is [{}, {}, {}]",
                                dataset.name(), sample.channels, sample.height, sample.width, input.channels,
                                input.height, input.width));
    std::string task_names;
    for (const auto& task : tasks) task_names += (task_names.empty() ? "" : ", ") + task.name;
    for (std::size_t h = 0; h < graph.heads.size(); ++h) {
        const Head& head = graph.heads[h];
        auto it = std::find_if(tasks.begin(), tasks.end(), [&](const TaskInfo& t) { return t.name == head.spec.name; });
        if (it == tasks.end())
            throw Error(fmt::format("head '{}' has no task of that name in dataset '{}' (its tasks: {})",
                                    head.spec.name, dataset.name(), task_names));
        const TaskInfo& task = *it;
        TaskKind wanted = TaskKind::regression;
        if (head.spec.loss == Loss::softmax_cross_entropy) wanted = TaskKind::classes;
        if (head.spec.loss == Loss::sigmoid_binary_cross_entropy) wanted = TaskKind::binary;
        if (task.kind != wanted)
            throw Error(fmt::format("head '{}' uses {} loss, which needs a {} task, but dataset '{}' has '{}' as a {} task",
                                    head.spec.name, to_string(head.spec.loss), kind_name(wanted), dataset.name(),
                                    task.name, kind_name(task.kind)));
        if (task.width != head.width)
            throw Error(fmt::format("head '{}' outputs {} values per sample, but task '{}' of dataset '{}' has width {}{}",
                                    head.spec.name, head.width, task.name, dataset.name(), task.width,
                                    task.kind == TaskKind::classes ? " (classes)" : ""));
        head_tasks_.push_back(int(it - tasks.begin()));
    }
    const int64_t batch = executor.batch();
    const int64_t task_count = int64_t(tasks.size());
    int64_t scratch_per_row = 0;
    for (const auto& task : tasks) scratch_per_row += task.target_floats();
    scratch_.assign(batch * scratch_per_row, 0.0f);
    present_.assign(batch * task_count, 0.0f);
    row_targets_.assign(batch * task_count, nullptr);
    for (int64_t row = 0; row < batch; ++row) {
        int64_t scratch_offset = row * scratch_per_row;
        for (int64_t t = 0; t < task_count; ++t) {
            row_targets_[row * task_count + t] = scratch_.data() + scratch_offset;
            scratch_offset += tasks[t].target_floats();
        }
        for (std::size_t h = 0; h < head_tasks_.size(); ++h)
            row_targets_[row * task_count + head_tasks_[h]] =
                executor.targets(int(h)) + row * executor.target_floats(int(h));
    }
}

int64_t BatchLoader::load(std::span<const int64_t> indices) {
    const int64_t batch = executor_.batch();
    const int64_t rows = std::min<int64_t>(int64_t(indices.size()), batch);
    const int64_t task_count = int64_t(dataset_.tasks().size());
    const int64_t image = dataset_.sample_shape().elements();
    float* input = executor_.input();
    // An exception must not leave an OpenMP region (it would terminate the
    // process): keep the first failing row's exception and rethrow it after.
    std::exception_ptr failure;
    int64_t failed_row = batch;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < batch; ++row) {
        float* present = present_.data() + row * task_count;
        try {
            if (row < rows) {
                dataset_.load(indices[row], input + row * image,
                              std::span<float* const>(row_targets_.data() + row * task_count, task_count), present);
            } else {
                std::fill(input + row * image, input + (row + 1) * image, 0.0f);
                std::fill(present, present + task_count, 0.0f);
            }
        } catch (...) {
#pragma omp critical(ladon_batch_loader_failure)
            if (row < failed_row) {
                failed_row = row;
                failure = std::current_exception();
            }
        }
    }
    if (failure) std::rethrow_exception(failure);
    for (std::size_t h = 0; h < head_tasks_.size(); ++h) {
        float* mask = executor_.mask(int(h));
        for (int64_t row = 0; row < batch; ++row) mask[row] = present_[row * task_count + head_tasks_[h]];
    }
    return rows;
}

void shuffled_indices(uint64_t seed, int64_t epoch, std::vector<int64_t>& indices, int64_t n) {
    indices.resize(n);
    std::iota(indices.begin(), indices.end(), int64_t{0});
    // Fisher-Yates with a splitmix64 stream: std::shuffle's draws differ
    // between standard libraries.
    uint64_t state = ops::mix64(seed ^ ops::mix64(uint64_t(epoch) + 0x51ED2701ull));
    for (int64_t i = n - 1; i > 0; --i) {
        state = ops::mix64(state);
        const int64_t j = int64_t(state % uint64_t(i + 1));
        std::swap(indices[i], indices[j]);
    }
}

}  // namespace ladon::engine
