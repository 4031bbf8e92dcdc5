#pragma once
// Per-task metrics accumulated over batches: accuracy for class tasks
// (argmax) and binary tasks (logit > 0, per label), mean absolute error for
// regression; each head's mean loss weighted by its present samples. In
// detailed mode (evaluation) also top-5 accuracy, ROC AUC, RMSE and box IoU;
// detailed mode keeps every binary score, so it allocates.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/executor.hpp"
#include "ladon/training.hpp"

namespace ladon::engine {

class MetricAccumulator {
public:
    explicit MetricAccumulator(const Graph& graph, bool detailed = false);
    // Adds the executor's current outputs, targets, masks and head losses.
    // The executor's outputs and losses on `batch` (its last step's or forward's).
    void add(Executor& executor, const Batch& batch);
    std::vector<TaskMetric> result() const;
    void reset();
    // The running sums (all but detailed mode's scores), packed, so that data
    // parallel ranks can add theirs up: set_totals(sum over ranks of totals()).
    std::vector<double> totals() const;
    void set_totals(std::span<const double> totals);

private:
    const Graph& graph_;
    bool detailed_;
    std::vector<double> loss_sum_, loss_count_, metric_sum_, metric_count_;
    std::vector<double> top5_sum_, squared_sum_, iou_sum_, iou_count_;
    std::vector<std::vector<std::pair<float, bool>>> scores_;  // binary: (logit, label)
};

// ROC AUC of (score, positive) pairs: the probability that a random positive
// scores above a random negative (ties count half). 0.5 with one class only.
double roc_auc(std::vector<std::pair<float, bool>> scores);
// Intersection over union of two (x0, y0, x1, y1) boxes; 0 for empty ones.
double box_iou(const float* a, const float* b);

}  // namespace ladon::engine
