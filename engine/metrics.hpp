#pragma once
// Per-task metrics accumulated over batches: accuracy for class tasks
// (argmax) and binary tasks (logit > 0, per label), mean absolute error for
// regression; each head's mean loss weighted by its present samples.
#include <cstdint>
#include <vector>

#include "engine/executor.hpp"
#include "ladon/training.hpp"

namespace ladon::engine {

class MetricAccumulator {
public:
    explicit MetricAccumulator(const Graph& graph);
    // Adds the executor's current outputs, targets, masks and head losses.
    void add(Executor& executor);
    std::vector<TaskMetric> result() const;
    void reset();

private:
    const Graph& graph_;
    std::vector<double> loss_sum_, loss_count_, metric_sum_, metric_count_;
};

}  // namespace ladon::engine
