#include "engine/metrics.hpp"

#include <cmath>

namespace ladon::engine {

MetricAccumulator::MetricAccumulator(const Graph& graph) : graph_(graph) { reset(); }

void MetricAccumulator::reset() {
    const std::size_t heads = graph_.heads.size();
    loss_sum_.assign(heads, 0.0);
    loss_count_.assign(heads, 0.0);
    metric_sum_.assign(heads, 0.0);
    metric_count_.assign(heads, 0.0);
}

void MetricAccumulator::add(Executor& executor) {
    const int64_t batch = executor.batch();
    for (std::size_t h = 0; h < graph_.heads.size(); ++h) {
        const Head& head = graph_.heads[h];
        const float* out = executor.head_output(int(h));
        const float* targets = executor.targets(int(h));
        const float* mask = executor.mask(int(h));
        const int64_t width = head.width;
        double present = 0.0;
        for (int64_t row = 0; row < batch; ++row) {
            if (mask[row] == 0.0f) continue;
            present += 1.0;
            const float* logits = out + row * width;
            switch (head.spec.loss) {
                case Loss::softmax_cross_entropy: {
                    int64_t best = 0;
                    for (int64_t j = 1; j < width; ++j)
                        if (logits[j] > logits[best]) best = j;
                    metric_sum_[h] += best == int64_t(targets[row]) ? 1.0 : 0.0;
                    metric_count_[h] += 1.0;
                    break;
                }
                case Loss::sigmoid_binary_cross_entropy:
                    for (int64_t j = 0; j < width; ++j)
                        metric_sum_[h] += (logits[j] > 0.0f) == (targets[row * width + j] > 0.5f) ? 1.0 : 0.0;
                    metric_count_[h] += double(width);
                    break;
                case Loss::mean_squared_error:
                case Loss::smooth_l1:
                    for (int64_t j = 0; j < width; ++j)
                        metric_sum_[h] += std::abs(double(logits[j]) - double(targets[row * width + j]));
                    metric_count_[h] += double(width);
                    break;
            }
        }
        loss_sum_[h] += double(executor.head_losses()[h]) * present;
        loss_count_[h] += present;
    }
}

std::vector<TaskMetric> MetricAccumulator::result() const {
    std::vector<TaskMetric> metrics;
    for (std::size_t h = 0; h < graph_.heads.size(); ++h) {
        const Loss loss = graph_.heads[h].spec.loss;
        const bool regression = loss == Loss::mean_squared_error || loss == Loss::smooth_l1;
        TaskMetric metric;
        metric.task = graph_.heads[h].spec.name;
        metric.metric = regression ? "mae" : "accuracy";
        metric.loss = loss_count_[h] > 0 ? loss_sum_[h] / loss_count_[h] : 0.0;
        metric.value = metric_count_[h] > 0 ? metric_sum_[h] / metric_count_[h] : 0.0;
        metrics.push_back(std::move(metric));
    }
    return metrics;
}

}  // namespace ladon::engine
