#pragma once
// Fills an executor's batch buffers (input, per-head targets and masks) from a
// Dataset, matching heads to the dataset's tasks by name. Rows past the end of
// the data (the last, partial batch of an evaluation) get mask 0 everywhere.
// Loads rows in parallel: each row writes only its own slots, so the result
// does not depend on the thread count. Allocates only in the constructor.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/executor.hpp"
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
    // 4-wide regression task.
    BatchLoader(const Dataset& dataset, Executor& executor, Augmentation augmentation = {});

    // Loads rows indices[0..n) (n <= batch); returns n. With augmentation,
    // `step` picks the draws, so a resumed run augments as the first did.
    int64_t load(std::span<const int64_t> indices, int64_t step = -1);
    // Index of the dataset task each head learns.
    const std::vector<int>& head_tasks() const { return head_tasks_; }

private:
    void augment(int64_t rows, int64_t step);

    const Dataset& dataset_;
    Executor& executor_;
    std::vector<int> head_tasks_;
    std::vector<float*> row_targets_;  // [batch][tasks]: where each row's task targets go
    std::vector<float> scratch_;       // targets of tasks no head learns
    std::vector<float> present_;       // [batch][tasks]
    Augmentation augmentation_;
    std::vector<int> box_task_indices_;
    std::vector<float> image_scratch_;  // [batch][image]: the unaugmented rows
};

// A permutation of [0, n) from (seed, epoch), the same on every platform.
void shuffled_indices(uint64_t seed, int64_t epoch, std::vector<int64_t>& indices, int64_t n);

}  // namespace ladon::engine
