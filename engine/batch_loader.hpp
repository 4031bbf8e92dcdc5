#pragma once
// Fills a Batch (engine/batch.hpp: input, per-head targets and masks) from a
// Dataset, matching the layout's heads to the dataset's tasks by name. Rows
// past the end of the data (the last, partial batch of an evaluation) get
// mask 0 everywhere. Loads rows in parallel: each row writes only its own
// slots, so the result does not depend on the thread count. Allocates only in
// the constructor. Needs no executor.
//
// BatchPrefetcher runs loaders on a background thread, so that the next
// batches are ready (each in a Batch of its own, in the executor's host
// memory: pinned on a GPU) while the executor trains on the current one.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/batch.hpp"
#include "ladon/dataset.hpp"

namespace ladon::engine {

// Training-time augmentation, drawn per (seed, step, row): a random shift of
// up to max_shift pixels each way (vacated pixels are 0) and a horizontal
// flip with probability 1/2. Box tasks (x0, y0, x1, y1, normalised to the
// image) move with the image: shifted, clipped to [0, 1], mirrored on a flip.
struct Augmentation {
    int64_t max_shift = 0;
    bool horizontal_flip = false;
    std::vector<std::string> box_tasks;
    uint64_t seed = 1;
    int64_t first_row = 0;  // global row of this loader's row 0 (data parallel: rank × per-rank batch)
    bool enabled() const { return max_shift > 0 || horizontal_flip; }
};

class BatchLoader {
public:
    // Throws if a head has no task of its name, or the task's kind or width
    // does not fit the head's loss and output width, or a box task is not a
    // 4-wide regression task. `threads`: rows loaded in parallel by the
    // OpenMP team (0: the default team; 1: the calling thread alone).
    BatchLoader(const Dataset& dataset, BatchLayout layout, Augmentation augmentation = {}, int threads = 0);

    // Loads rows indices[0..n) (n <= batch) into `batch` (of this loader's
    // layout); returns n, also its loaded_rows(). With augmentation, `step`
    // picks the draws, so a resumed run augments as the first did.
    int64_t load(std::span<const int64_t> indices, Batch& batch, int64_t step = -1);
    const BatchLayout& layout() const { return layout_; }
    // Index of the dataset task each head learns.
    const std::vector<int>& head_tasks() const { return head_tasks_; }

private:
    void augment(float* input, int64_t rows, int64_t step);

    const Dataset& dataset_;
    BatchLayout layout_;
    int threads_;
    std::vector<int> head_tasks_;
    std::vector<float*> row_targets_;  // [batch][tasks]: where each row's task targets go (this load's batch)
    std::vector<float> scratch_;       // targets of tasks no head learns
    std::vector<float> present_;       // [batch][tasks]
    Augmentation augmentation_;
    std::vector<int> box_task_indices_;
    std::vector<float> image_scratch_;  // [batch][image]: the unaugmented rows
};

// The rows each training step trains on: one process's global sample order
// (a permutation per epoch from the seed; step s is global batch
// s % steps_per_epoch of epoch s / steps_per_epoch + 1), of which this rank
// takes rows [first_row, first_row + rows).
struct StepOrder {
    uint64_t seed = 1;
    int64_t samples = 0;  // in the dataset
    int64_t global_batch = 0;
    int64_t first_row = 0;
    int64_t rows = 0;  // per rank
    int64_t steps_per_epoch() const { return samples / global_batch; }
    // This rank's rows of `step`, a view into `permutation`, which is
    // reshuffled when the step is of another epoch than `permutation_epoch`
    // (the cache's epoch; -1: none yet).
    std::span<const int64_t> rows_of(int64_t step, std::vector<int64_t>& permutation,
                                     int64_t& permutation_epoch) const;
};

// Loads the batches of steps first_step, first_step + 1, ..., last_step - 1
// ahead of time, on a background thread, into `depth` batches of its own
// (depth >= 1), allocated by `memory` (an executor's batch_memory()).
// next(step) waits until that step's batch is ready and returns it; it stays
// valid, and is not reloaded, until the following next() call. The batches
// are the ones BatchLoader::load would give for the same step,
// bit for bit (loading and augmentation depend only on the step and row). A
// failure while loading (a corrupt row, a read error) is thrown by the next()
// of the step it was loading for, with the loader's message; the destructor
// stops and joins the thread.
class BatchPrefetcher {
public:
    BatchPrefetcher(const Dataset& dataset, const BatchLayout& layout, const HostAllocator& memory,
                    const StepOrder& order, Augmentation augmentation, int64_t first_step, int64_t last_step,
                    int depth = 2);
    ~BatchPrefetcher();
    BatchPrefetcher(const BatchPrefetcher&) = delete;
    BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

    // Steps must be asked for in order, from first_step.
    const Batch& next(int64_t step);
    // The batch of `step` if it is loaded already (nullptr if not, or if it
    // failed): next(step) will return this one, unchanged. Never waits.
    const Batch* peek(int64_t step);

private:
    struct Slot {
        explicit Slot(Batch b) : batch(std::move(b)) {}
        Batch batch;
        std::unique_ptr<BatchLoader> loader;
        int64_t step = -1;  // the step this slot holds; -1: free
        std::exception_ptr failure;
    };
    void run();
    void release(Slot& slot);

    StepOrder order_;
    int64_t last_step_;
    int64_t expected_;  // the step next() gives next
    std::vector<Slot> slots_;
    Slot* lent_ = nullptr;  // the batch next() returned last, until the next call
    std::mutex mutex_;
    std::condition_variable changed_;
    int64_t next_to_load_;  // guarded by mutex_
    bool stopping_ = false;
    std::thread thread_;
};

// A permutation of [0, n) from (seed, epoch), the same on every platform.
void shuffled_indices(uint64_t seed, int64_t epoch, std::vector<int64_t>& indices, int64_t n);

}  // namespace ladon::engine
