#pragma once
// Fills an executor's batch buffers (input, per-head targets and masks) from a
// Dataset, matching heads to the dataset's tasks by name. Rows past the end of
// the data (the last, partial batch of an evaluation) get mask 0 everywhere.
// Loads rows in parallel: each row writes only its own slots, so the result
// does not depend on the thread count. Allocates only in the constructor.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/executor.hpp"
#include "ladon/dataset.hpp"

namespace ladon::engine {

class BatchLoader {
public:
    // Throws if a head has no task of its name, or the task's kind or width
    // does not fit the head's loss and output width.
    BatchLoader(const Dataset& dataset, Executor& executor);

    // Loads rows indices[0..n) (n <= batch); returns n.
    int64_t load(std::span<const int64_t> indices);
    // Index of the dataset task each head learns.
    const std::vector<int>& head_tasks() const { return head_tasks_; }

private:
    const Dataset& dataset_;
    Executor& executor_;
    std::vector<int> head_tasks_;
    std::vector<float*> row_targets_;  // [batch][tasks]: where each row's task targets go
    std::vector<float> scratch_;       // targets of tasks no head learns
    std::vector<float> present_;       // [batch][tasks]
};

// A permutation of [0, n) from (seed, epoch), the same on every platform.
void shuffled_indices(uint64_t seed, int64_t epoch, std::vector<int64_t>& indices, int64_t n);

}  // namespace ladon::engine
