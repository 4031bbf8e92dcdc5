#include "engine/batch_loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <numeric>
#include <utility>

#include <omp.h>

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

BatchLoader::BatchLoader(const Dataset& dataset, BatchLayout layout, Augmentation augmentation, int threads)
    : dataset_(dataset), layout_(std::move(layout)), threads_(threads), augmentation_(std::move(augmentation)) {
    const auto& tasks = dataset.tasks();
    const SampleShape sample = dataset.sample_shape();
    const TensorShape& input = layout_.input;
    if (sample.channels != input.channels || sample.height != input.height || sample.width != input.width)
        throw Error(fmt::format("dataset '{}' has samples of shape [{}, {}, {}] but the model's input is [{}, {}, {}]",
                                dataset.name(), sample.channels, sample.height, sample.width, input.channels,
                                input.height, input.width));
    std::string task_names;
    for (const auto& task : tasks) task_names += (task_names.empty() ? "" : ", ") + task.name;
    for (const BatchLayout::HeadTargets& head : layout_.heads) {
        auto it = std::find_if(tasks.begin(), tasks.end(), [&](const TaskInfo& t) { return t.name == head.name; });
        if (it == tasks.end())
            throw Error(fmt::format("head '{}' has no task of that name in dataset '{}' (its tasks: {})", head.name,
                                    dataset.name(), task_names));
        const TaskInfo& task = *it;
        TaskKind wanted = TaskKind::regression;
        if (head.loss == Loss::softmax_cross_entropy) wanted = TaskKind::classes;
        if (head.loss == Loss::sigmoid_binary_cross_entropy) wanted = TaskKind::binary;
        if (task.kind != wanted)
            throw Error(fmt::format("head '{}' uses {} loss, which needs a {} task, but dataset '{}' has '{}' as a {} task",
                                    head.name, to_string(head.loss), kind_name(wanted), dataset.name(), task.name,
                                    kind_name(task.kind)));
        if (task.width != head.width)
            throw Error(fmt::format("head '{}' outputs {} values per sample, but task '{}' of dataset '{}' has width {}{}",
                                    head.name, head.width, task.name, dataset.name(), task.width,
                                    task.kind == TaskKind::classes ? " (classes)" : ""));
        head_tasks_.push_back(int(it - tasks.begin()));
    }
    for (const auto& name : augmentation_.box_tasks) {
        auto it = std::find_if(tasks.begin(), tasks.end(), [&](const TaskInfo& t) { return t.name == name; });
        if (it == tasks.end() || it->kind != TaskKind::regression || it->width != 4)
            throw Error(fmt::format("augmentation: box task '{}' must be a regression task of width 4 (x0, y0, x1, y1) "
                                    "in dataset '{}' (its tasks: {})",
                                    name, dataset.name(), task_names));
        box_task_indices_.push_back(int(it - tasks.begin()));
    }
    const int64_t batch = layout_.rows;
    const int64_t task_count = int64_t(tasks.size());
    if (augmentation_.enabled()) image_scratch_.assign(batch * sample.elements(), 0.0f);
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
    }
}

void BatchLoader::augment(float* input, int64_t rows, int64_t step) {
    const SampleShape shape = dataset_.sample_shape();
    const int64_t image = shape.elements(), plane = shape.height * shape.width;
    const int64_t task_count = int64_t(dataset_.tasks().size());
    const int64_t span = 2 * augmentation_.max_shift + 1;
    const int team = threads_ > 0 ? threads_ : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(team) if (team > 1)
    for (int64_t row = 0; row < rows; ++row) {
        const uint64_t global_row = uint64_t(augmentation_.first_row + row);
        const uint64_t draw =
            ops::mix64(augmentation_.seed ^ ops::mix64(uint64_t(step) * 0x9E3779B97F4A7C15ull + global_row));
        const int64_t dx = int64_t(draw % uint64_t(span)) - augmentation_.max_shift;
        const int64_t dy = int64_t((draw >> 16) % uint64_t(span)) - augmentation_.max_shift;
        const bool flip = augmentation_.horizontal_flip && ((draw >> 40) & 1u);
        float* pixels = input + row * image;
        float* original = image_scratch_.data() + row * image;
        std::copy(pixels, pixels + image, original);
        for (int64_t c = 0; c < shape.channels; ++c)
            for (int64_t y = 0; y < shape.height; ++y)
                for (int64_t x = 0; x < shape.width; ++x) {
                    // Output (y, x) shows source (y - dy, x' - dx), x' mirrored on a flip.
                    const int64_t shifted_x = flip ? shape.width - 1 - x : x;
                    const int64_t sy = y - dy, sx = shifted_x - dx;
                    const bool inside = sy >= 0 && sy < shape.height && sx >= 0 && sx < shape.width;
                    pixels[c * plane + y * shape.width + x] =
                        inside ? original[c * plane + sy * shape.width + sx] : 0.0f;
                }
        for (int task : box_task_indices_) {
            float* box = row_targets_[row * task_count + task];
            const float ox = float(dx) / float(shape.width), oy = float(dy) / float(shape.height);
            float x0 = std::clamp(box[0] + ox, 0.0f, 1.0f), x1 = std::clamp(box[2] + ox, 0.0f, 1.0f);
            const float y0 = std::clamp(box[1] + oy, 0.0f, 1.0f), y1 = std::clamp(box[3] + oy, 0.0f, 1.0f);
            if (flip) {
                const float mirrored0 = 1.0f - x1, mirrored1 = 1.0f - x0;
                x0 = mirrored0;
                x1 = mirrored1;
            }
            box[0] = x0;
            box[1] = y0;
            box[2] = x1;
            box[3] = y1;
        }
    }
}

int64_t BatchLoader::load(std::span<const int64_t> indices, Batch& batch_out, int64_t step) {
    if (batch_out.layout() != layout_)
        throw Error(fmt::format("BatchLoader: the batch has {} rows for {} heads, but the loader was made for {} rows "
                                "for {} heads",
                                batch_out.rows(), batch_out.layout().heads.size(), layout_.rows, layout_.heads.size()));
    const int64_t batch = layout_.rows;
    const int64_t rows = std::min<int64_t>(int64_t(indices.size()), batch);
    const int64_t task_count = int64_t(dataset_.tasks().size());
    const int64_t image = dataset_.sample_shape().elements();
    float* input = batch_out.input().data();
    // The heads' tasks go straight into this batch's targets.
    for (int64_t row = 0; row < batch; ++row)
        for (std::size_t h = 0; h < head_tasks_.size(); ++h)
            row_targets_[row * task_count + head_tasks_[h]] =
                batch_out.targets(int(h)) + row * layout_.heads[h].target_floats;
    const int team = threads_ > 0 ? threads_ : omp_get_max_threads();
    // An exception must not leave an OpenMP region (it would terminate the
    // process): keep the first failing row's exception and rethrow it after.
    std::exception_ptr failure;
    int64_t failed_row = batch;
#pragma omp parallel for schedule(static) num_threads(team) if (team > 1)
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
    if (augmentation_.enabled() && step >= 0) augment(input, rows, step);
    for (std::size_t h = 0; h < head_tasks_.size(); ++h) {
        float* mask = batch_out.mask(int(h));
        for (int64_t row = 0; row < batch; ++row) mask[row] = present_[row * task_count + head_tasks_[h]];
    }
    batch_out.set_loaded_rows(rows);
    return rows;
}

std::span<const int64_t> StepOrder::rows_of(int64_t step, std::vector<int64_t>& permutation,
                                            int64_t& permutation_epoch) const {
    const int64_t epoch = step / steps_per_epoch() + 1;
    if (permutation_epoch != epoch) {
        shuffled_indices(seed, epoch, permutation, samples);
        permutation_epoch = epoch;
    }
    const int64_t first = (step % steps_per_epoch()) * global_batch + first_row;
    return {permutation.data() + first, std::size_t(rows)};
}

BatchPrefetcher::BatchPrefetcher(const Dataset& dataset, const BatchLayout& layout, const HostAllocator& memory,
                                 const StepOrder& order, Augmentation augmentation, int64_t first_step,
                                 int64_t last_step, int depth)
    : order_(order), last_step_(last_step), expected_(first_step), next_to_load_(first_step) {
    if (depth < 1) throw Error(fmt::format("data: prefetch depth must be at least 1, got {}", depth));
    if (order.rows != layout.rows || order.global_batch < order.first_row + order.rows || order.steps_per_epoch() < 1)
        throw Error(fmt::format("BatchPrefetcher: rows [{}, {}) of a global batch of {} over {} samples do not fit an "
                                "executor batch of {}",
                                order.first_row, order.first_row + order.rows, order.global_batch, order.samples,
                                layout.rows));
    slots_.reserve(std::size_t(depth));
    for (int d = 0; d < depth; ++d) {
        Slot& slot = slots_.emplace_back(Batch(layout, memory));
        // One thread: the training thread's OpenMP team keeps the cores.
        slot.loader = std::make_unique<BatchLoader>(dataset, layout, augmentation, 1);
    }
    thread_ = std::thread([this] { run(); });
}

BatchPrefetcher::~BatchPrefetcher() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

void BatchPrefetcher::run() {
    std::vector<int64_t> permutation;
    int64_t permutation_epoch = -1;
    while (true) {
        Slot* slot = nullptr;
        int64_t step = 0;
        {
            std::unique_lock lock(mutex_);
            // Step s goes to slot s % depth, once its previous batch was taken.
            changed_.wait(lock, [&] {
                return stopping_ || next_to_load_ >= last_step_ ||
                       slots_[std::size_t(next_to_load_) % slots_.size()].step < 0;
            });
            if (stopping_ || next_to_load_ >= last_step_) return;
            step = next_to_load_;
            slot = &slots_[std::size_t(step) % slots_.size()];
        }
        std::exception_ptr failure;
        try {
            slot->loader->load(order_.rows_of(step, permutation, permutation_epoch), slot->batch, step);
        } catch (...) {
            failure = std::current_exception();
        }
        {
            std::lock_guard lock(mutex_);
            slot->failure = failure;
            slot->step = step;
            ++next_to_load_;
            // After a failure nothing later is loaded: next() throws it.
            if (failure) stopping_ = true;
        }
        changed_.notify_all();
    }
}

void BatchPrefetcher::release(Slot& slot) {
    {
        std::lock_guard lock(mutex_);
        slot.step = -1;
    }
    changed_.notify_all();
}

const Batch& BatchPrefetcher::next(int64_t step) {
    if (step != expected_ || step >= last_step_)
        throw Error(fmt::format("BatchPrefetcher: asked for step {}, but the next prefetched step is {} (of steps up to {})",
                                step, expected_, last_step_ - 1));
    // The batch lent last time is the caller's no longer: the thread may reload it.
    if (lent_ != nullptr) release(*std::exchange(lent_, nullptr));
    Slot& slot = slots_[std::size_t(step) % slots_.size()];
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return slot.step == step; });
    if (slot.failure) std::rethrow_exception(slot.failure);
    lock.unlock();
    ++expected_;
    lent_ = &slot;
    return slot.batch;
}

const Batch* BatchPrefetcher::peek(int64_t step) {
    if (step != expected_ || step >= last_step_) return nullptr;
    Slot& slot = slots_[std::size_t(step) % slots_.size()];
    std::lock_guard lock(mutex_);
    return slot.step == step && !slot.failure ? &slot.batch : nullptr;
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
